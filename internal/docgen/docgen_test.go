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
	if len(pages) != 5 {
		t.Fatalf("generated %d pages, want 5", len(pages))
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

// TestTroubleshootingListsEveryReason fails when the code counts a drop or
// error reason that docs/troubleshooting.md does not explain.
func TestTroubleshootingListsEveryReason(t *testing.T) {
	rs, err := Reasons()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 20 {
		t.Fatalf("found %d reasons in the source; the scan is broken", len(rs))
	}
	guide, err := os.ReadFile(filepath.Join("..", "..", "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !bytes.Contains(guide, []byte("`"+r.Name+"`")) {
			t.Errorf("docs/troubleshooting.md does not explain the %s reason `%s` (counted by %v)", r.Kind, r.Name, r.Packages)
		}
	}
}

// The scan finds reasons however they reach NodeStats: literals, package
// constants (bars.DropLate), locals assigned constants (storekit's
// rejected / retries_exhausted), parameters followed to their callers
// (redisconn's Fail, operator.buffer's drop), stats held under another name
// (st := s.stats) and the computed ones it is told about (operator.quality).
func TestReasonsFollowsEveryWay(t *testing.T) {
	rs, err := Reasons()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rs {
		got[r.Kind+" "+r.Name] = true
	}
	for _, want := range []string{"drop late", "drop too_late", "error rejected", "error retries_exhausted",
		"error read_failed", "drop buffer_full_oldest", "drop symbol_filter", "drop crossed_quote",
		"drop unconnected_port_<port>", "error connect_failed", "drop queue_full"} {
		if !got[want] {
			t.Errorf("the scan missed %s", want)
		}
	}
}
