package main

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

type quoteSource struct{}

func (quoteSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "EURUSD")
	b := out.NewBatch(md.KindQuote)
	b.Quotes = append(b.Quotes,
		md.Quote{TS: 1, Bid: 10812, Ask: 10815, BidSize: 3, AskSize: 4, Sym: sym},
		md.Quote{TS: 2, Bid: 10813.333, Ask: 10816.666, BidSize: 1, AskSize: 2, Sym: sym})
	return out.Emit(b)
}

type collect struct {
	mu     sync.Mutex
	quotes []md.Quote
}

func (c *collect) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	c.quotes = append(c.quotes, b.Quotes...)
	c.mu.Unlock()
	return nil
}

func TestPriceScaleInAJob(t *testing.T) {
	spec, ok := component.Lookup(PriceScaleType)
	if !ok {
		t.Fatal("operator.price_scale is not registered")
	}
	p, err := component.NewParams(spec, map[string]any{"factor": 0.01, "decimals": 2})
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindQuote},
				NewSource: func(int) (engine.Source, error) { return quoteSource{}, nil }},
			component.Node(spec, p, component.NodeOptions{ID: "scale"}),
			{ID: "out", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return c, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "scale"}, {From: "scale", To: "out"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []md.Quote{
		{TS: 1, Bid: 108.12, Ask: 108.15, BidSize: 3, AskSize: 4},
		{TS: 2, Bid: 108.13, Ask: 108.17, BidSize: 1, AskSize: 2},
	}
	if len(c.quotes) != len(want) {
		t.Fatalf("got %d quotes", len(c.quotes))
	}
	for i, q := range c.quotes {
		q.Sym = 0
		if q != want[i] {
			t.Errorf("quote %d: got %+v, want %+v", i, q, want[i])
		}
	}
}

func TestPriceScaleTradesAndBars(t *testing.T) {
	s := NewPriceScale(2, -1)
	pool := md.NewPool(4)
	in := pool.Get(md.KindBar)
	in.Bars = append(in.Bars, md.Bar{Open: 1, High: 2, Low: 0.5, Close: 1.5, VWAP: 1.25, Volume: 10, Trades: 3})
	got := scaleOne(t, s, in)
	if b := got.Bars[0]; b.Open != 2 || b.High != 4 || b.Low != 1 || b.Close != 3 || b.VWAP != 2.5 || b.Volume != 10 || b.Trades != 3 {
		t.Fatalf("bar %+v", b)
	}
	if in.Bars[0].Open != 1 {
		t.Fatal("the input batch was modified")
	}
	tr := pool.Get(md.KindTrade)
	tr.Trades = append(tr.Trades, md.Trade{Price: 0.1, Size: 7})
	if got := scaleOne(t, s, tr); math.Abs(got.Trades[0].Price-0.2) > 1e-15 || got.Trades[0].Size != 7 {
		t.Fatalf("trade %+v", got.Trades[0])
	}
}

// scaleOne runs Process on one batch through a one-node job and returns
// the emitted batch.
func scaleOne(t *testing.T, s *PriceScale, b *md.Batch) *md.Batch {
	t.Helper()
	c := &batchCollect{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: b.Kind},
				NewSource: func(int) (engine.Source, error) { return oneBatch{b}, nil }},
			{ID: "scale", Type: PriceScaleType, Kind: engine.KindOperator, Accepts: md.KindAny, Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput},
				NewProcessor: func(int) (engine.Processor, error) { return s, nil }},
			{ID: "out", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return c, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "scale"}, {From: "scale", To: "out"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.b == nil {
		t.Fatal("nothing emitted")
	}
	return c.b
}

type oneBatch struct{ b *md.Batch }

func (o oneBatch) Run(ctx context.Context, out *engine.Output) error {
	o.b.Retain(1) // keep the input readable after the job for the check
	return out.Emit(o.b)
}

type batchCollect struct{ b *md.Batch }

func (c *batchCollect) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.b = b.Clone()
	return nil
}

func TestPriceScaleRejectsZeroFactor(t *testing.T) {
	spec, _ := component.Lookup(PriceScaleType)
	_, err := component.NewParams(spec, map[string]any{"factor": 0})
	if err == nil || !strings.Contains(err.Error(), "params.factor: must be above 0: a zero price is not a price") {
		t.Fatalf("factor 0: %v", err)
	}
	_, err = component.NewParams(spec, map[string]any{})
	if err == nil || !strings.Contains(err.Error(), `missing required param "factor"`) {
		t.Fatalf("no factor: %v", err)
	}
}
