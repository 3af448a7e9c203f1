package engine_test

import (
	"context"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// gen is a source of n trades over syms symbols, event time i for trade i,
// in batches of bs.
func gen(n, bs, syms int) *enginetest.Source {
	return &enginetest.Source{Symbols: enginetest.Symbols(syms), Trades: enginetest.Trades(n, syms, 0), BatchSize: bs}
}

type passOp struct{}

func (passOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

func srcNode(id string, s engine.Source) *engine.Node {
	return enginetest.SourceNode(id, md.KindTrade, s)
}

func opNode(id string, par int) *engine.Node {
	return &engine.Node{ID: id, Type: "operator.pass", Kind: engine.KindOperator, Parallelism: par, Accepts: md.KindAny,
		Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput}, NewProcessor: func(int) (engine.Processor, error) { return passOp{}, nil }}
}

func TestLinearRunDeliversEverythingInOrder(t *testing.T) {
	c := &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(10000, 100, 3)), opNode("op", 1), enginetest.SinkNode("sink", c)},
		Edges: []*engine.Edge{{From: "src", To: "op", Capacity: 2}, {From: "op", To: "sink", Capacity: 2}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	trades := c.Trades()
	if len(trades) != 10000 {
		t.Fatalf("got %d trades, want 10000", len(trades))
	}
	for i, tr := range trades {
		if tr.TS != int64(i) {
			t.Fatalf("trade %d has ts %d", i, tr.TS)
		}
	}
	wms := c.Watermarks()
	if !c.Closed() || wms[len(wms)-1] != md.MaxTime {
		t.Fatalf("closed=%v last wm=%d", c.Closed(), wms[len(wms)-1])
	}
	for i := 1; i < len(wms); i++ {
		if wms[i] <= wms[i-1] {
			t.Fatalf("watermarks not increasing: %v", wms)
		}
	}
	st := j.Status()
	if st.Nodes[0].EventsOut != 10000 || st.Nodes[2].EventsIn != 10000 {
		t.Fatalf("status counts: %+v", st.Nodes)
	}
}

func TestParallelismPartitionsBySymbol(t *testing.T) {
	c := &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(9000, 64, 7)), opNode("op", 3), enginetest.SinkNode("sink", c)},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	trades := c.Trades()
	if len(trades) != 9000 {
		t.Fatalf("got %d trades", len(trades))
	}
	// Per symbol, order is kept.
	last := map[md.SymID]int64{}
	for _, tr := range trades {
		if l, ok := last[tr.Sym]; ok && tr.TS <= l {
			t.Fatalf("symbol %d out of order", tr.Sym)
		}
		last[tr.Sym] = tr.TS
	}
}
