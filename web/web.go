// Package web is mdp's dashboard: static pages embedded in the binary and
// served by the job server at / (mdp serve), talking to the /api/v1 routes
// of package server. The pages are buildless ES modules; charts come from
// vendored releases of Lightweight Charts (candles) and μPlot (sparklines),
// each with its licence under static/vendor.
//
// Pages (hash routes of one index.html): #/ the jobs, #/job/NAME one job's
// graph, figures and logs, #/candles/NAME a node's bars as a live
// candlestick chart, #/edit and #/edit/NAME the job file editor.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Files is the dashboard's file tree (index.html at its root).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}

// Handler serves the dashboard's files. Responses say no-cache, so a
// browser revalidates after an upgrade of the binary; the files carry no
// job data, which comes from the API.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".mjs") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'")
		files.ServeHTTP(w, r)
	})
}
