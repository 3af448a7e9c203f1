package null

import (
	"context"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

type src struct{ sc *md.Schema }

func (s src) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("p", "X")
	for i := 0; i < 10; i++ {
		b := out.NewBatch(md.KindQuote)
		for k := 0; k < 100; k++ {
			b.Quotes = append(b.Quotes, md.Quote{TS: int64(i*100 + k), Sym: id})
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	b := out.NewBatch(md.KindBar)
	b.Bars = append(b.Bars, md.Bar{Start: 5000, Sym: id})
	if err := out.Emit(b); err != nil {
		return err
	}
	d := out.NewBatch(md.KindDerived)
	d.Schema = s.sc
	for k := 0; k < 7; k++ {
		d.AddDerived(int64(6000+k), id)[0] = md.FloatValue(float64(k))
	}
	return out.Emit(d)
}

func TestCountsAndDiscards(t *testing.T) {
	sc, err := md.NewSchema("feat", md.Field{Name: "x", Type: md.Float})
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := component.Lookup("sink.null")
	if !ok || spec.Accepts != md.KindAny {
		t.Fatalf("sink.null registered %v", ok)
	}
	p, err := component.NewParams(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := component.Node(spec, p, component.NodeOptions{ID: "null"})
	build := node.NewProcessor
	var inst *Sink
	node.NewProcessor = func(i int) (engine.Processor, error) {
		v, err := build(i)
		inst, _ = v.(*Sink)
		return v, err
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindAny}, NewSource: func(int) (engine.Source, error) { return src{sc}, nil }},
			node,
		},
		Edges: []*engine.Edge{{From: "src", To: "null"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := inst.Counts(); c != (Counts{Quotes: 1000, Bars: 1, Derived: 7, Batches: 12}) {
		t.Fatalf("counts %+v", c)
	}
	if n := j.NodeContexts("null")[0].Stats.EventsIn.Load(); n != 1008 {
		t.Fatalf("events in %d", n)
	}
	// The job summary says nothing was written and every record, derived
	// ones included, was discarded.
	if sum := j.NodeSummary("null"); sum["rows_written"] != 0 || sum["discarded"] != 1008 || len(sum) != 2 {
		t.Fatalf("summary %v", sum)
	}
}
