package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mdpio/mdp/jobs"
)

// documented lists "METHOD /path" of every operation the served OpenAPI
// document has.
func documented(t *testing.T, h *Handler) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer t")
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("openapi.json: %d %s", rec.Code, rec.Body)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRoutes fails when the handler serves a route the
// OpenAPI document lacks, or documents one it does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	m, err := jobs.New(context.Background(), jobs.Options{State: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	full := New(Options{Manager: m, Token: "t", Gatherer: m.Gatherer(), Components: func() any { return []string{} }})
	defer full.Close()
	readOnly := New(Options{Jobs: m})
	defer readOnly.Close()
	for name, h := range map[string]*Handler{"full": full, "read-only": readOnly} {
		routes := h.Routes()
		sort.Strings(routes)
		if got := documented(t, h); !slices.Equal(got, routes) {
			t.Errorf("%s: documented %v\nserved %v", name, got, routes)
		}
		for _, r := range routes {
			if _, ok := operations[r]; !ok {
				t.Errorf("%s: route %s has no OpenAPI operation", name, r)
			}
			// Every route is really served: the mux knows it.
			method, path, _ := strings.Cut(r, " ")
			req := httptest.NewRequest(method, strings.ReplaceAll(path, "{name}", "x"), nil)
			if _, pattern := h.mux.Handler(req); pattern != r {
				t.Errorf("%s: %s routes to %q", name, r, pattern)
			}
		}
	}
	// Every documented operation is served by the full handler.
	for op := range operations {
		if !slices.Contains(full.Routes(), op) {
			t.Errorf("operation %s is documented but no handler serves it", op)
		}
	}
	if got := len(full.Routes()); got != len(operations) {
		t.Errorf("%d routes, %d operations", got, len(operations))
	}
	// The read-only handler refuses what it does not serve.
	rec := httptest.NewRecorder()
	readOnly.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/jobs", strings.NewReader("x")))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "this is mdp run, serving its one job read-only") {
		t.Errorf("read-only POST /api/v1/jobs: %d %s", rec.Code, rec.Body)
	}
}
