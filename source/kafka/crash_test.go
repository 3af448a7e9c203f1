package kafkasrc_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

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
// resumed ends with the bars of a clean run. The kfake cluster lives in
// this test process and the mdp processes are the ones killed; each
// checkpoint holds the offsets after the records handed on before its
// barrier, and a resume seeks there, so what a kill loses is read again
// and nothing counts twice. The topic has one partition: the bars of
// records read from several partitions depend on how the partitions'
// reads interleave (a partition read ahead moves the watermark, and the
// others' records can come late), so two clean runs could differ. The
// source reads it directly (no group: a killed group member would hold its
// partitions until its session times out, which only slows the test).
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	topic := unique("mdptest.")
	_, brokers := cluster(t, 1, unique("mdptest."), kfake.SeedTopics(1, topic))
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	bustest.Publish(t, "sink.kafka", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"brokers": brokers, "topic": topic})
	bustest.CrashResume(t, func(string) string {
		return fmt.Sprintf(`{id: bus, type: provider.kafka, params: {brokers: [%q], topics: [%q]}}`, brokers[0], topic)
	}, len(want), 9092)
}
