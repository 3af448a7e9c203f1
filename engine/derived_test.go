package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// derivedOp turns each trade into a derived record (price, ts as int).
type derivedOp struct{ sc *md.Schema }

func (o derivedOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	ob := out.NewBatch(md.KindDerived)
	ob.Schema = o.sc
	for i := range b.Trades {
		v := ob.AddDerived(b.Trades[i].TS, b.Trades[i].Sym)
		v[0], v[1] = md.FloatValue(b.Trades[i].Price), md.IntValue(b.Trades[i].TS)
	}
	return out.Emit(ob)
}

// derivedSink records, per instance, the derived records it received.
type derivedSink struct {
	mu   *sync.Mutex
	got  map[int][]md.Derived
	vals map[int][]md.Value
	scs  map[*md.Schema]bool
	in   int
	seen *[]*engine.NodeContext
}

func (s *derivedSink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.mu.Lock()
	*s.seen = append(*s.seen, nc)
	s.mu.Unlock()
	return nil
}

func (s *derivedSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[s.in] = append(s.got[s.in], b.Derived...)
	s.vals[s.in] = append(s.vals[s.in], b.Values...)
	s.scs[b.Schema] = true
	return nil
}

// Derived records travel partitioned by symbol with their schema and
// values intact, and sinks learn the schema from the graph at Open.
func TestDerivedRecordsArePartitionedWithTheirSchema(t *testing.T) {
	sc, err := md.NewSchema("feat", md.Field{Name: "px", Type: md.Float}, md.Field{Name: "n", Type: md.Int})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []*engine.NodeContext
	got, vals, scs := map[int][]md.Derived{}, map[int][]md.Value{}, map[*md.Schema]bool{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			srcNode("src", gen(3000, 100, 7)),
			{ID: "op", Type: "operator.derive", Kind: engine.KindOperator, Accepts: md.KindTrade,
				Ports: map[string]md.Kind{engine.PortMain: md.KindDerived}, Schemas: map[string]*md.Schema{engine.PortMain: sc},
				NewProcessor: func(int) (engine.Processor, error) { return derivedOp{sc}, nil }},
			{ID: "sink", Type: "sink.derived", Kind: engine.KindSink, Accepts: md.KindAny, Parallelism: 3,
				NewProcessor: func(i int) (engine.Processor, error) {
					return &derivedSink{mu: &mu, got: got, vals: vals, scs: scs, in: i, seen: &seen}, nil
				}},
		},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d sink instances opened", len(seen))
	}
	for _, nc := range seen {
		if nc.Inputs != md.KindDerived || len(nc.InputSchemas) != 1 || nc.InputSchemas[0] != sc {
			t.Fatalf("sink context: inputs %s schemas %v", nc.Inputs, nc.InputSchemas)
		}
	}
	if len(scs) != 1 || !scs[sc] {
		t.Fatalf("batches carried schemas %v", scs)
	}
	total := 0
	owner := map[md.SymID]int{}
	for in, ds := range got {
		if len(vals[in]) != 2*len(ds) {
			t.Fatalf("instance %d: %d records, %d values", in, len(ds), len(vals[in]))
		}
		for i, d := range ds {
			if o, ok := owner[d.Sym]; ok && o != in {
				t.Fatalf("symbol %d on instances %d and %d", d.Sym, o, in)
			}
			owner[d.Sym] = in
			if px, n := vals[in][2*i].Float(), vals[in][2*i+1].Int(); px != 100+float64(d.TS) || n != d.TS {
				t.Fatalf("record ts %d carries px %v n %d", d.TS, px, n)
			}
		}
		total += len(ds)
	}
	if total != 3000 || len(got) != 3 {
		t.Fatalf("%d records over %d instances", total, len(got))
	}
}

// A node that sends derived records must declare their schema, and one
// sink cannot take two different schemas of one name.
func TestValidateChecksDerivedSchemas(t *testing.T) {
	a, _ := md.NewSchema("feat", md.Field{Name: "x", Type: md.Float})
	b, _ := md.NewSchema("feat", md.Field{Name: "x", Type: md.Int})
	op := func(id string, sc *md.Schema) *engine.Node {
		n := &engine.Node{ID: id, Type: "operator.derive", Kind: engine.KindOperator, Accepts: md.KindTrade,
			Ports: map[string]md.Kind{engine.PortMain: md.KindDerived}, NewProcessor: func(int) (engine.Processor, error) { return derivedOp{sc}, nil }}
		if sc != nil {
			n.Schemas = map[string]*md.Schema{engine.PortMain: sc}
		}
		return n
	}
	sink := &engine.Node{ID: "sink", Type: "sink.x", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return nil, nil }}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(0, 1, 1)), op("none", nil), op("a", a), op("b", b), sink},
		Edges: []*engine.Edge{{From: "src", To: "none"}, {From: "src", To: "a"}, {From: "src", To: "b"},
			{From: "none", To: "sink"}, {From: "a", To: "sink"}, {From: "b", To: "sink"}},
	}
	var msgs []string
	for _, e := range g.Validate() {
		msgs = append(msgs, e.Msg)
	}
	want := []string{
		`node "none" (operator.derive) sends derived records on port (main) but declares no schema for them`,
		`edge b -> sink: "sink" receives two different schemas named feat: feat(x float64) and feat(x int64)`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}
