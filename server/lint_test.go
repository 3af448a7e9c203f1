package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mdpio/mdp/server"
)

// ?lint=true answers an invalid file with 200 and its errors where they
// are (the dashboard's editor validates as its user types); without it the
// answer is 400 as before.
func TestValidateLint(t *testing.T) {
	p := newInProcess(t)
	bad := "name: x\ndag:\n  nodes:\n    - {id: src, type: provider.nope}\n  edges: []\n"
	for _, tc := range []struct {
		query string
		code  int
	}{{"?lint=true", 200}, {"", 400}} {
		resp, err := http.Post(p.srv.URL+"/api/v1/validate"+tc.query, "application/yaml", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Valid  bool                 `json:"valid"`
			Errors []server.ConfigError `json:"errors"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code || body.Valid || len(body.Errors) != 1 {
			t.Fatalf("%q: %d %+v %v", tc.query, resp.StatusCode, body, err)
		}
		if e := body.Errors[0]; e.Line != 4 || e.Column != 23 || !strings.Contains(e.Message, "provider.nope") {
			t.Fatalf("%q: error %+v", tc.query, e)
		}
	}
}

// The dashboard is served at / by the job server; its files need no token
// (they hold no job data) while the API still does, and only GET reads
// them.
func TestDashboardMounted(t *testing.T) {
	m := newInProcess(t).m
	h := server.New(server.Options{Manager: m, Token: "s3cret"})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/", 200}, {"GET", "/app.js", 200}, {"GET", "/api/v1/jobs", 401}, {"GET", "/metrics", 401},
		{"POST", "/", 405}, {"GET", "/nope.js", 404},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
}
