package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// fillSource emits one batch, waits until the slow node holds it, then
// emits queued more (which wait in the slow node's input queue), closes
// filled and waits for the job to end.
type fillSource struct {
	queued  int
	started <-chan struct{}
	filled  chan struct{}
}

func (s *fillSource) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("t", "X")
	for i := range s.queued + 1 {
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, md.Trade{TS: int64(i), Sym: id, Price: 1, Size: 1})
		if err := out.Emit(b); err != nil {
			return err
		}
		if i == 0 {
			select {
			case <-s.started:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	close(s.filled)
	<-ctx.Done()
	return ctx.Err()
}

// slowOp passes batches on; its first Process closes started and returns
// only when release is closed, whatever the job does meanwhile (a node
// busy with a long batch).
type slowOp struct {
	started, release chan struct{}
	calls            atomic.Int64
}

func (s *slowOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if s.calls.Add(1) == 1 {
		close(s.started)
		<-s.release
	}
	c := out.NewBatch(b.Kind)
	c.Trades = append(c.Trades, b.Trades...)
	return out.Emit(c)
}

// TestAbortLeavesQueuedBatches aborts a job whose slow node has a full
// input queue: once the node's batch in hand returns, the job ends without
// the node handling the queued batches, and what the node emitted after the
// abort reaches nobody, whether the sink behind it is chained to it or
// reads its own queue.
func TestAbortLeavesQueuedBatches(t *testing.T) {
	for _, chained := range []bool{true, false} {
		name := "queued"
		if chained {
			name = "chained"
		}
		t.Run(name, func(t *testing.T) {
			const queued = 8
			slow := &slowOp{started: make(chan struct{}), release: make(chan struct{})}
			src := &fillSource{queued: queued, started: slow.started, filled: make(chan struct{})}
			sink := &enginetest.Sink{}
			srcN := srcNode("src", src)
			srcN.NoChain = true // the source's batches wait in the slow node's queue
			g := &engine.Graph{
				Nodes: []*engine.Node{srcN, {ID: "slow", Type: "operator.slow", Kind: engine.KindOperator, Accepts: md.KindTrade,
					Ports:        map[string]md.Kind{engine.PortMain: engine.SameAsInput},
					NewProcessor: func(int) (engine.Processor, error) { return slow, nil }}, enginetest.SinkNode("sink", sink)},
				Edges: []*engine.Edge{{From: "src", To: "slow", Capacity: 2 * queued}, {From: "slow", To: "sink"}},
			}
			j, err := engine.New(g, engine.Options{NoChaining: !chained})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-src.filled
			j.Abort()
			close(slow.release)
			if err := j.Wait(); !errors.Is(err, engine.ErrAborted) {
				t.Fatalf("got %v, want %v", err, engine.ErrAborted)
			}
			if n := slow.calls.Load(); n != 1 {
				t.Errorf("the slow node handled %d batches, %d of them after the abort; want 1, none after", n, n-1)
			}
			if n := len(sink.Trades()); n != 0 {
				t.Errorf("the sink got %d records emitted after the abort; want 0", n)
			}
		})
	}
}
