package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/mdpio/mdp/md"
)

// genSource emits n trades over symbols in batches of size bs.
type genSource struct {
	n, bs, syms int
}

func (g *genSource) Run(ctx context.Context, out *Output) error {
	ids := make([]md.SymID, g.syms)
	for i := range ids {
		ids[i] = out.Symbols().Intern("test", string(rune('A'+i)))
	}
	b := out.NewBatch(md.KindTrade)
	for i := 0; i < g.n; i++ {
		b.Trades = append(b.Trades, md.Trade{TS: int64(i), Price: float64(i), Size: 1, Sym: ids[i%g.syms]})
		if len(b.Trades) == g.bs {
			if err := out.Emit(b); err != nil {
				return err
			}
			b = out.NewBatch(md.KindTrade)
		}
	}
	return out.Emit(b)
}

type passOp struct{}

func (passOp) Process(ctx context.Context, b *md.Batch, out *Output) error {
	b.Retain(1)
	return out.Emit(b)
}

type collectSink struct {
	mu     sync.Mutex
	trades []md.Trade
	wms    []int64
	closed bool
}

func (c *collectSink) Process(ctx context.Context, b *md.Batch, out *Output) error {
	c.mu.Lock()
	c.trades = append(c.trades, b.Trades...)
	c.mu.Unlock()
	return nil
}

func (c *collectSink) OnWatermark(ctx context.Context, wm int64, out *Output) error {
	c.mu.Lock()
	c.wms = append(c.wms, wm)
	c.mu.Unlock()
	return nil
}

func (c *collectSink) Close(ctx context.Context, out *Output) error {
	c.closed = true
	return nil
}

func srcNode(id string, s Source) *Node {
	return &Node{ID: id, Type: "provider.test", Kind: KindSource, Ports: map[string]md.Kind{PortMain: md.KindTrade},
		NewSource: func(int) (Source, error) { return s, nil }}
}

func opNode(id string, par int) *Node {
	return &Node{ID: id, Type: "operator.pass", Kind: KindOperator, Parallelism: par, Accepts: md.KindAny,
		Ports: map[string]md.Kind{PortMain: SameAsInput}, NewProcessor: func(int) (Processor, error) { return passOp{}, nil }}
}

func sinkNode(id string, c *collectSink) *Node {
	return &Node{ID: id, Type: "sink.collect", Kind: KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (Processor, error) { return c, nil }}
}

func TestLinearRunDeliversEverythingInOrder(t *testing.T) {
	c := &collectSink{}
	g := &Graph{
		Nodes: []*Node{srcNode("src", &genSource{n: 10000, bs: 100, syms: 3}), opNode("op", 1), sinkNode("sink", c)},
		Edges: []*Edge{{From: "src", To: "op", Capacity: 2}, {From: "op", To: "sink", Capacity: 2}},
	}
	j, err := New(g, Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.trades) != 10000 {
		t.Fatalf("got %d trades, want 10000", len(c.trades))
	}
	for i, tr := range c.trades {
		if tr.TS != int64(i) {
			t.Fatalf("trade %d has ts %d", i, tr.TS)
		}
	}
	if !c.closed || c.wms[len(c.wms)-1] != md.MaxTime {
		t.Fatalf("closed=%v last wm=%d", c.closed, c.wms[len(c.wms)-1])
	}
	for i := 1; i < len(c.wms); i++ {
		if c.wms[i] <= c.wms[i-1] {
			t.Fatalf("watermarks not increasing: %v", c.wms)
		}
	}
	st := j.Status()
	if st.Nodes[0].EventsOut != 10000 || st.Nodes[2].EventsIn != 10000 {
		t.Fatalf("status counts: %+v", st.Nodes)
	}
}

func TestParallelismPartitionsBySymbol(t *testing.T) {
	c := &collectSink{}
	g := &Graph{
		Nodes: []*Node{srcNode("src", &genSource{n: 9000, bs: 64, syms: 7}), opNode("op", 3), sinkNode("sink", c)},
		Edges: []*Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := New(g, Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.trades) != 9000 {
		t.Fatalf("got %d trades", len(c.trades))
	}
	// Per symbol, order is kept.
	last := map[md.SymID]int64{}
	for _, tr := range c.trades {
		if l, ok := last[tr.Sym]; ok && tr.TS <= l {
			t.Fatalf("symbol %d out of order", tr.Sym)
		}
		last[tr.Sym] = tr.TS
	}
}
