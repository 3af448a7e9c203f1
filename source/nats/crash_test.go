package natssrc_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/crashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// TestCrashResume: a JetStream (ordered consumer) -> 1s bars -> SQLite job
// killed with SIGKILL at seeded moments and resumed ends with the bars of a
// clean run: each checkpoint holds the stream sequence of the last message
// handed on before its barrier, and --resume starts after it.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	url := natsURL(t)
	st, subj := stream(t, url)
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"url": url, "subject": subj})
	bustest.CrashResume(t, func(string) string {
		return fmt.Sprintf(`{id: bus, type: provider.nats, params: {url: %q, subject: %q, stream: %q}}`, url, subj, st)
	}, len(want), 4222)
}
