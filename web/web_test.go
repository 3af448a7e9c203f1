package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mdpio/mdp/web"
)

// The vendored libraries are the releases the vendor README names, each
// with its licence.
func TestVendoredReleasesAndLicences(t *testing.T) {
	files := web.Files()
	for path, want := range map[string]string{
		"vendor/lightweight-charts/lightweight-charts.standalone.production.mjs": "TradingView Lightweight Charts™ v5.2.1",
		"vendor/lightweight-charts/LICENSE":                                      "Apache License",
		"vendor/uplot/uPlot.esm.js":                                              "uPlot.js (μPlot)",
		"vendor/uplot/LICENSE":                                                   "MIT License",
		"vendor/README.md":                                                       "`lightweight-charts@5.2.1`",
	} {
		data, err := fs.ReadFile(files, path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("%s does not say %q", path, want)
		}
	}
	readme, _ := fs.ReadFile(files, "vendor/README.md")
	if !strings.Contains(string(readme), "uplot@1.6.32") {
		t.Error("vendor/README.md does not name uplot@1.6.32")
	}
}

// Every file a page loads (links in index.html, imports in the modules)
// is in the tree.
func TestEveryReferencedFileIsEmbedded(t *testing.T) {
	files := web.Files()
	ref := regexp.MustCompile(`(?:href|src)="([^"#:]+)"|from '(\./[^']+)'|import\('(\./[^']+)'\)`)
	n := 0
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".html") || (strings.HasSuffix(path, ".js") && !strings.HasPrefix(path, "vendor/"))) {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			target := strings.TrimPrefix(m[1]+m[2]+m[3], "./")
			if _, err := fs.Stat(files, target); err != nil {
				t.Errorf("%s refers to %s, which is not embedded", path, target)
			}
			n++
		}
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d references: %v", n, err)
	}
}

func TestHandlerServesTheFiles(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/": "text/html", "/app.js": "text/javascript",
		"/vendor/lightweight-charts/lightweight-charts.standalone.production.mjs": "text/javascript",
		"/style.css": "text/css",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("%s: %d %q %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no Content-Security-Policy", path)
		}
	}
}
