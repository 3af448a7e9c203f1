package rabbitmqsrc_test

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
// resumed ends with the bars of a clean run (messages are acknowledged
// only at checkpoints, so the broker delivers again what a kill lost; the
// bars' checkpointed state, and the source's note of the messages it
// holds, make nothing count twice).
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	url, ch := amqpURL(t)
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(30_000, syms)
	queues := map[string]string{"clean": queue(t, ch, ""), "crash": queue(t, ch, "")}
	for _, q := range queues {
		bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"url": url, "routing_key": q})
	}
	bustest.CrashResume(t, func(run string) string {
		return fmt.Sprintf(`{id: bus, type: provider.rabbitmq, params: {url: %q, queue: %q, prefetch: 64}}`, url, queues[run])
	}, len(want), 5672)
}
