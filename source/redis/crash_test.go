package redissrc_test

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

// TestCrashResume: the job killed with SIGKILL at seeded moments and
// resumed ends with the bars of a clean run (entries are acknowledged only
// at checkpoints, so what a kill loses is read again, and the bars'
// checkpointed state makes nothing count twice). Kills land right after a
// checkpoint is saved too: the entries it covers and that were not
// acknowledged yet must not count twice.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	url, c := redisURL(t)
	st := stream(t, c)
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"url": url, "stream": st})
	// Each run reads the stream in its own consumer group.
	bustest.CrashResume(t, func(run string) string {
		return fmt.Sprintf(`{id: bus, type: provider.redis, params: {url: %q, stream: %q, group: %q, consumer: crash, count: 1}}`, url, st, run)
	}, len(want), 6379)
}
