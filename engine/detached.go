package engine

import (
	"context"
	"log/slog"

	"github.com/mdpio/mdp/md"
)

// NewDetachedOutput returns an Output that belongs to no job, with a main
// port and the given named ports, and a drain function that returns (and
// hands over) the batches emitted on a port since its last call, in order,
// skipping watermark-only messages; an unknown port has none. It lets a
// caller drive a component's Process and OnWatermark directly, on one
// goroutine, exactly as a node instance would, without queues between
// goroutines. Tests use it through enginetest.NewOutput.
//
// nc may be nil; its nil fields are filled in place (and it is returned)
// with a new symbol table, a pool of md.DefaultBatchSize batches, a discarding logger and
// fresh stats. Each port holds up to capacity batches (0 means 4096): drain
// it before it fills, or Emit blocks for good.
func NewDetachedOutput(nc *NodeContext, capacity int, ports ...string) (*Output, *NodeContext, func(port string) []*md.Batch) {
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
	queues := map[string]*queue{}
	ps := map[string]*port{}
	for _, name := range append([]string{PortMain}, ports...) {
		es := &edgeState{e: &Edge{From: nc.Node, FromPort: name, To: "test", Capacity: capacity}}
		q := &queue{ch: make(chan message, capacity), edge: es}
		es.queues = []*queue{q}
		ps[name] = &port{name: name, targets: []*target{{edge: es, qs: []*queue{q}}}}
		queues[name] = q
	}
	drain := func(port string) []*md.Batch {
		q := queues[port]
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
	return newOutput(context.Background(), nc, ps), nc, drain
}
