package parquet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

// ckWriter opens a Writer of job pqjob as a job with checkpoints opens it:
// one worker, max_rows 3, restoring checkpoint restore (0: none).
func ckWriter(t *testing.T, dir string, restore int64, instance, instances int) *Writer {
	t.Helper()
	w := &Writer{Dir: dir, MaxRows: 3}
	nc := &engine.NodeContext{Job: "pqjob", Fingerprint: "f00d", Instance: instance, Instances: instances, Checkpointing: true, RestoreID: restore}
	if err := w.Open(context.Background(), storekit.Env{Workers: 1, Node: nc}); err != nil {
		t.Fatal(err)
	}
	return w
}

var ckT0 = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()

// writeBars writes 1s bars number from..to-1 of symbol AAA, whose close is
// their number.
func writeBars(t *testing.T, w *Writer, from, to int) {
	t.Helper()
	b := &storekit.Batch{Kind: md.KindBar, Symbols: []md.Instrument{{Provider: "sim", Symbol: "AAA"}}}
	for i := from; i < to; i++ {
		b.Bars = append(b.Bars, md.Bar{Start: ckT0 + int64(i)*int64(time.Second), Interval: int64(time.Second), Close: float64(i), Trades: 1})
	}
	if err := w.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// visibleCloses returns the closes of the rows in the visible files, in
// file and row order, and the hidden files' names.
func visibleCloses(t *testing.T, dir string) (closes []int, hidden []string) {
	t.Helper()
	for _, f := range files(t, dir) {
		base := filepath.Base(f)
		if strings.HasPrefix(base, ".") {
			hidden = append(hidden, base)
			continue
		}
		rows, _ := readAll[barRow](t, filepath.Join(dir, f))
		for _, r := range rows {
			closes = append(closes, int(r.Close))
		}
	}
	return closes, hidden
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// kill abandons a writer as SIGKILL does: open files stay as they are.
func kill(w *Writer) {
	for _, wf := range w.workers {
		for _, f := range wf.bars {
			_ = f.f.Close()
		}
	}
}

func hiddenWith(hidden []string, suffix string) int {
	n := 0
	for _, h := range hidden {
		if strings.HasSuffix(h, suffix) {
			n++
		}
	}
	return n
}

// TestTwoPhaseCommit: completed and open files become pending under the
// barrier's checkpoint id and visible only when it is complete.
func TestTwoPhaseCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := ckWriter(t, dir, 0, 0, 1)
	writeBars(t, w, 0, 5) // a full file (0-2) and an open one (3-4)
	if c, h := visibleCloses(t, dir); len(c) != 0 || hiddenWith(h, ".tmp") != 2 {
		t.Fatalf("before a barrier: visible %v, hidden %v; want nothing visible, 2 temporaries", c, h)
	}
	if err := w.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if c, h := visibleCloses(t, dir); len(c) != 0 || hiddenWith(h, ".pending-1") != 2 || len(h) != 2 {
		t.Fatalf("after barrier 1: visible %v, hidden %v; want 2 files pending under 1", c, h)
	}
	writeBars(t, w, 5, 7)
	if err := w.PreCommit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.NotifyCheckpointComplete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if c, h := visibleCloses(t, dir); !slices.Equal(c, seq(0, 5)) || hiddenWith(h, ".pending-2") != 1 || len(h) != 1 {
		t.Fatalf("checkpoint 1 complete: visible %v, hidden %v; want rows 0-4 and checkpoint 2's file pending", c, h)
	}
	if err := w.NotifyCheckpointComplete(ctx, 3); err != nil { // 2 failed, 3 covers it
		t.Fatal(err)
	}
	writeBars(t, w, 7, 8)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c, h := visibleCloses(t, dir); !slices.Equal(c, seq(0, 8)) || len(h) != 0 {
		t.Fatalf("closed: visible %v, hidden %v; want rows 0-7 and nothing hidden", c, h)
	}
}

// TestRestoreCommitsCoveredAndRemovesTheRest: a restore from checkpoint N
// publishes the files pending under N and earlier and removes pending
// files of later checkpoints, temporaries, and files published after N;
// the replayed rows then land once.
func TestRestoreCommitsCoveredAndRemovesTheRest(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		restore int64
		drained bool // the killed run published its files (an abort's Close)
	}{{"from1", 1, false}, {"from2", 2, false}, {"from1AfterAbortClose", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w := ckWriter(t, dir, 0, 0, 1)
			writeBars(t, w, 0, 5)
			if err := w.PreCommit(ctx, 1); err != nil {
				t.Fatal(err)
			}
			states := map[int64][]byte{}
			var err error
			if states[1], err = w.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			writeBars(t, w, 5, 7)
			if err := w.PreCommit(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if states[2], err = w.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			writeBars(t, w, 7, 11) // a full file under .tmp, one open
			if c.drained {
				if err := w.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if got, _ := visibleCloses(t, dir); !slices.Equal(got, seq(0, 11)) {
					t.Fatalf("after Close: %v", got)
				}
			} else {
				kill(w) // neither checkpoint was notified
			}
			covered := int(map[int64]int{1: 5, 2: 7}[c.restore])
			w2 := ckWriter(t, dir, c.restore, 0, 1)
			if err := w2.Restore(ctx, [][]byte{states[c.restore]}); err != nil {
				t.Fatal(err)
			}
			if got, h := visibleCloses(t, dir); !slices.Equal(got, seq(0, covered)) || len(h) != 0 {
				t.Fatalf("restored from %d: visible %v, hidden %v; want rows 0-%d and nothing hidden", c.restore, got, h, covered-1)
			}
			writeBars(t, w2, covered, 11) // the replay after the checkpoint
			if err := w2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got, h := visibleCloses(t, dir); !slices.Equal(got, seq(0, 11)) || len(h) != 0 {
				t.Fatalf("resumed run closed: visible %v, hidden %v; want rows 0-10 once each", got, h)
			}
		})
	}
}

// TestRestoreAtAnotherParallelism: a checkpoint of two sink instances
// restored into one: the single instance publishes both instances' pending
// files and removes both's leftovers.
func TestRestoreAtAnotherParallelism(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var states [][]byte
	for i := range 2 {
		w := ckWriter(t, dir, 0, i, 2)
		writeBars(t, w, i*10, i*10+4)
		if err := w.PreCommit(ctx, 1); err != nil {
			t.Fatal(err)
		}
		st, err := w.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		writeBars(t, w, i*10+4, i*10+6)
		kill(w)
	}
	w := ckWriter(t, dir, 1, 0, 1)
	if err := w.Restore(ctx, states); err != nil {
		t.Fatal(err)
	}
	got, h := visibleCloses(t, dir)
	slices.Sort(got)
	if want := append(seq(0, 4), seq(10, 14)...); !slices.Equal(got, want) || len(h) != 0 {
		t.Fatalf("visible %v, hidden %v; want %v and nothing hidden", got, h, want)
	}
}

// TestFreshRunRemovesPendingLeftovers: a run that restores nothing removes
// the pending and temporary files a killed run of the job left; another
// job's stay.
func TestFreshRunRemovesPendingLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := ckWriter(t, dir, 0, 0, 1)
	writeBars(t, w, 0, 4)
	if err := w.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	writeBars(t, w, 4, 5)
	kill(w)
	day := filepath.Join(dir, "bars", "date=2024-01-02")
	other := filepath.Join(day, ".part-20240102T000000.000000Z-otherjob-f00d-i0w0-0000.parquet.pending-1")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ckWriter(t, dir, 0, 0, 1)
	if _, h := visibleCloses(t, dir); !slices.Equal(h, []string{filepath.Base(other)}) {
		t.Fatalf("hidden files after a fresh start: %v; want only another job's", h)
	}
}
