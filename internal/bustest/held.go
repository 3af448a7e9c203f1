package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Held is the case of a crash between saving a checkpoint and
// acknowledging what it covers, for one bus source.
type Held struct {
	Source       string         // the source's type (provider.redis)
	SourceParams map[string]any // its params
	Sink         string         // the sink that publishes onto the source's stream
	SinkParams   map[string]any
	// BatchSize is the trades per published batch (default 4).
	BatchSize int
	// AfterCrash, when set, runs after the first job crashed (say, to
	// check what the broker holds unacknowledged).
	AfterCrash func(t *testing.T)
	// Resumed, when set, runs while the resumed job still runs, once it
	// handed on every record after the checkpoint.
	Resumed func(t *testing.T, r *Running)
}

// CheckpointHeldNotRepeated publishes 400 trades, reads them in a job whose
// checkpoint is saved but never completes (so nothing it covers is
// acknowledged), publishes 400 more, reads them, and crashes the job. A job
// restored from that checkpoint gets the first 400 again from the broker:
// the restored state holds their records, so the source must not hand them
// on again, and it must hand on the 400 read after the checkpoint. It
// returns the resumed job, stopped.
func CheckpointHeldNotRepeated(t *testing.T, h Held) *Running {
	t.Helper()
	syms := []string{"A", "B", "C", "D"}
	want := Trades(800, syms)
	if h.BatchSize == 0 {
		h.BatchSize = 4
	}
	publish := func(trades []md.Trade) {
		Publish(t, h.Sink, &enginetest.Source{Symbols: syms, Trades: trades, BatchSize: h.BatchSize}, h.SinkParams)
	}
	publish(want[:400])
	store := &Store{}
	store.Hold.Store(true) // saved, never completed: nothing is acknowledged
	first := Start(t, []*engine.Node{Node(t, h.Source, "sub", h.SourceParams)},
		md.KindTrade, engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: store}})
	first.WaitLen(t, 400, 30*time.Second)
	go func() { _, _ = first.Job.Checkpoint(context.Background()) }()
	store.WaitSaved(t, 1, 30*time.Second)
	publish(want[400:])
	first.WaitLen(t, 800, 30*time.Second)
	first.Crash()
	CheckTrades(t, first.Sink, want, syms)
	if h.AfterCrash != nil {
		h.AfterCrash(t)
	}

	second := Start(t, []*engine.Node{Node(t, h.Source, "sub", h.SourceParams)},
		md.KindTrade, engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: 20 * time.Millisecond, Store: &Store{}, Restore: store.Last()}})
	second.WaitLen(t, 400, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // anything more would be a repeat
	if h.Resumed != nil {
		h.Resumed(t, second)
	}
	second.Stop(t)
	CheckTrades(t, second.Sink, want[400:], syms)
	return second
}
