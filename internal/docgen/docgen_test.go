package docgen

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestReferenceIsCurrent fails when a committed page under docs/reference
// differs from what the code generates now (a component, command, job file
// key or series was added or changed without regenerating).
func TestReferenceIsCurrent(t *testing.T) {
	pages, err := Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 4 {
		t.Fatalf("generated %d pages, want 4", len(pages))
	}
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", "reference", name))
		if err != nil {
			t.Errorf("%v (run go generate ./internal/docgen)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/reference/%s is stale: run go generate ./internal/docgen", name)
		}
	}
}
