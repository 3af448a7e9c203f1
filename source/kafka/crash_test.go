package kafkasrc_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// TestStopWhileGroupRebalances: a member killed with SIGKILL stays in its
// group until its session times out (45 s), so the next process's join
// waits for it; stopped during that wait, the job still stops within its
// shutdown timeout and exits 0 (Close and the final checkpoint's commit,
// which both wait for the join in flight, are waited for at most 5 s
// each). Before that bound it aborted after 30 s with exit 130.
func TestStopWhileGroupRebalances(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	topic := unique("mdptest.")
	_, brokers := cluster(t, 1, unique("mdptest."), kfake.SeedTopics(1, topic))
	syms := []string{"A", "B"}
	want := bustest.Trades(1000, syms)
	bustest.Publish(t, "sink.kafka", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"brokers": brokers, "topic": topic})
	db := filepath.Join(dir, "t.db")
	job := filepath.Join(dir, "job.yaml")
	y := fmt.Sprintf(`name: stop
dag:
  nodes:
    - {id: bus, type: provider.kafka, params: {brokers: [%q], topics: [%q], group: %q}}
    - {id: lite, type: sink.sqlite, params: {path: %q}}
  edges:
    - [bus, lite]
checkpoint: {interval: 100ms, store: %q, keep: 3}
`, brokers[0], topic, unique("mdpgroup."), db, filepath.Join(dir, "ck"))
	if err := os.WriteFile(job, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}

	p := crashtest.Start(t, bin, dir, "run", job, "--drain", "--resume")
	deadline := time.Now().Add(time.Minute)
	for bustest.Stored(db) < len(want) {
		if time.Now().After(deadline) {
			p.Signal(syscall.SIGKILL)
			_, stderr := p.Wait(t, 10*time.Second)
			t.Fatalf("%d of %d trades stored within a minute; stderr:\n%s", bustest.Stored(db), len(want), stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Signal(syscall.SIGKILL)
	if code, stderr := p.Wait(t, 10*time.Second); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("first run: exit %d, want a kill; stderr:\n%s", code, stderr)
	}

	p = crashtest.Start(t, bin, dir, "run", job, "--drain", "--resume")
	time.Sleep(2 * time.Second) // signal handling and restore installed
	stop := time.Now()
	p.Signal(syscall.SIGTERM)
	code, stderr := p.Wait(t, time.Minute)
	took := time.Since(stop)
	if code != 0 {
		t.Fatalf("resumed run stopped during the rebalance: exit %d after %s, want 0; stderr:\n%s", code, took.Round(time.Millisecond), stderr)
	}
	if took > 20*time.Second {
		t.Fatalf("resumed run took %s to stop (the dead member's session is 45 s); stderr:\n%s", took.Round(time.Millisecond), stderr)
	}
	t.Logf("stopped in %s during the rebalance", took.Round(time.Millisecond))
}
