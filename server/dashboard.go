package server

import (
	"net/http"
	"strings"

	"github.com/mdpio/mdp/web"
)

// dashboard serves the web dashboard's files (GET and HEAD only).
func dashboard() http.Handler {
	files := web.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": the dashboard's files are read with GET")
			return
		}
		files.ServeHTTP(w, r)
	})
}

// isDashboardFile reports whether a path is one of the dashboard's files
// rather than the API or /metrics: those need no token (they hold no job
// data; the pages log in with POST /api/v1/login).
func isDashboardFile(path string) bool {
	return !strings.HasPrefix(path, "/api/") && path != "/metrics"
}
