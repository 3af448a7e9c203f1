package engine

import (
	"context"
	"log/slog"

	"github.com/mdpio/mdp/md"
)

// TestOutput is an Output that belongs to no job: whatever a processor emits
// on it is kept until the caller drains it. Tests and benchmarks use it to
// drive a component's Process and OnWatermark directly, on one goroutine,
// exactly as a node instance would, without queues between goroutines.
type TestOutput struct {
	*Output
	// NC is the node context the output was built with, with every nil field
	// filled in; pass it to the component's Open.
	NC     *NodeContext
	queues map[string]*queue
}

// NewTestOutput returns a standalone Output with a main port and the given
// named ports. nc may be nil; its nil fields get a new symbol table, a pool
// of md.DefaultBatchSize batches, a discarding logger and fresh stats.
// Each port holds up to capacity batches (0 means 4096): drain it before it
// fills, or Emit blocks for good.
func NewTestOutput(nc *NodeContext, capacity int, ports ...string) *TestOutput {
	if nc == nil {
		nc = &NodeContext{}
	}
	if nc.Node == "" {
		nc.Node = "test"
	}
	if nc.Instances == 0 {
		nc.Instances = 1
	}
	if nc.Symbols == nil {
		nc.Symbols = md.NewSymbolTable()
	}
	if nc.Pool == nil {
		nc.Pool = md.NewPool(0)
	}
	if nc.Logger == nil {
		nc.Logger = slog.New(slog.DiscardHandler)
	}
	if nc.Stats == nil {
		nc.Stats = newNodeStats()
	}
	if nc.SourceTotals == nil {
		nc.SourceTotals = func() (int64, int64) { return 0, 0 }
	}
	if capacity <= 0 {
		capacity = 4096
	}
	t := &TestOutput{NC: nc, queues: map[string]*queue{}}
	ps := map[string]*port{}
	for _, name := range append([]string{PortMain}, ports...) {
		es := &edgeState{e: &Edge{From: nc.Node, FromPort: name, To: "test", Capacity: capacity}}
		q := &queue{ch: make(chan message, capacity), edge: es}
		es.queues = []*queue{q}
		ps[name] = &port{name: name, targets: []*target{{edge: es, qs: []*queue{q}}}}
		t.queues[name] = q
	}
	t.Output = newOutput(context.Background(), nc, ps)
	return t
}

// Drain returns the batches emitted on port since the last Drain, in order
// (watermark-only messages are skipped). The caller owns one reference to
// each batch and should Release it when done. An unknown port has none.
func (t *TestOutput) Drain(port string) []*md.Batch {
	q := t.queues[port]
	if q == nil {
		return nil
	}
	var out []*md.Batch
	for {
		select {
		case m := <-q.ch:
			if m.b != nil {
				out = append(out, m.b)
			}
		default:
			return out
		}
	}
}
