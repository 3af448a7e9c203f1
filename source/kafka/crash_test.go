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
	crashResume(t, "", 9092)
}

// crashResume publishes 200 000 trades to a one-partition topic and runs
// bustest.CrashResume on it, in group+"."+run (each run its own group,
// the source a static member of it) or, with group empty, reading the
// partition directly.
func crashResume(t *testing.T, group string, seed uint64) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	topic := unique("mdptest.")
	_, brokers := cluster(t, 1, unique("mdptest."), kfake.SeedTopics(1, topic))
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	bustest.Publish(t, "sink.kafka", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"brokers": brokers, "topic": topic})
	bustest.CrashResume(t, func(run string) string {
		g := ""
		if group != "" {
			g = fmt.Sprintf(", group: %q, instance_id: %q", group+"."+run, "mdp-"+run)
		}
		return fmt.Sprintf(`{id: bus, type: provider.kafka, params: {brokers: [%q], topics: [%q]%s}}`, brokers[0], topic, g)
	}, len(want), seed)
}

// TestCrashResumeGroup is TestCrashResume with the source in a consumer
// group: offsets are committed to the group only when a checkpoint
// completes, and a resumed run seeks to the checkpoint's offsets (not the
// group's, which may lag behind or run ahead of the restored checkpoint).
// Each run ("clean", "crash") has its own group over the same topic, and
// the source a static member id (instance_id): a resumed process takes
// the killed one's place in the group at once. Without it the killed
// member holds the partition until its session times out (45 s), so each
// resume waited that long, and a resumed run stopped during that wait
// could not leave the group before the shutdown timeout (the source now
// waits at most 5 s to leave).
func TestCrashResumeGroup(t *testing.T) {
	crashResume(t, unique("mdpgroup."), 9093)
}
