package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLateDropsAreLogged: late drops were counted in metrics only; now the
// first is logged at once, the rest as one summary per interval, and what is
// left when the node ends.
func TestLateDropsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	s := newNodeStats()
	s.log = slog.New(slog.NewTextHandler(&buf, nil))
	s.Drop("late", 3)
	s.Drop("late", 4)
	s.Drop("late", 5)
	s.Drop("queue_full", 2) // not a logged reason
	if got := strings.Count(buf.String(), "late records dropped"); got != 1 ||
		!strings.Contains(buf.String(), "reason=late count=3 total=3 first=true") {
		t.Fatalf("after three drops:\n%s", buf.String())
	}
	s.dropLogs["late"].last = s.dropLogs["late"].last.Add(-dropLogEvery)
	s.Drop("late", 1)
	if !strings.Contains(buf.String(), "reason=late count=10 total=13 first=false") {
		t.Fatalf("summary:\n%s", buf.String())
	}
	s.Drop("late", 6)
	s.FlushDropLog()
	if !strings.Contains(buf.String(), "reason=late count=6 total=19 first=false") || strings.Contains(buf.String(), "queue_full") {
		t.Fatalf("flush:\n%s", buf.String())
	}
	if s.Drops()["late"] != 19 {
		t.Fatalf("drops %v", s.Drops())
	}
}
