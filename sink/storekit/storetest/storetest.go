// Package storetest has helpers for testing and benchmarking store sinks: a
// source that emits given bars, trades and quotes (optionally paced), a
// deterministic bar generator, and a function that runs source → sink as an
// engine job. It is used by the tests of every store sink.
package storetest

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Bar is a bar with its symbol spelled out.
type Bar struct {
	Symbol string
	md.Bar
}

// Trade is a trade with its symbol spelled out.
type Trade struct {
	Symbol string
	md.Trade
}

// Quote is a quote with its symbol spelled out.
type Quote struct {
	Symbol string
	md.Quote
}

// Source emits Bars, then Trades, then Quotes, in batches of BatchSize, for
// Provider. With Rate > 0 it paces itself to Rate records per second
// scaled by the job's store feedback (engine.Feedback.Scale), waiting while
// the scale is zero: the behaviour the feedback loop asks of every source.
type Source struct {
	Provider  string
	Bars      []Bar
	Trades    []Trade
	Quotes    []Quote
	BatchSize int
	Rate      float64
	// Feedback is the job's hub (the same one passed in engine.Options),
	// for paced sources.
	Feedback *engine.Feedback
	// Emitted, when set, is called after each batch with the running count.
	Emitted func(n int64)
}

// Kind is the set of record kinds the source emits.
func (s *Source) Kind() md.Kind {
	var k md.Kind
	if len(s.Bars) > 0 {
		k |= md.KindBar
	}
	if len(s.Trades) > 0 {
		k |= md.KindTrade
	}
	if len(s.Quotes) > 0 {
		k |= md.KindQuote
	}
	if k == md.KindNone {
		return md.KindAny
	}
	return k
}

// Run implements engine.Source.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	in := md.NewInterner(out.Symbols(), s.Provider)
	bs := s.BatchSize
	if bs <= 0 {
		bs = 1000
	}
	var sent int64
	var p pacer
	emit := func(b *md.Batch) error {
		n := b.Len()
		if err := out.Emit(b); err != nil {
			return err
		}
		sent += int64(n)
		if s.Emitted != nil {
			s.Emitted(sent)
		}
		if s.Rate > 0 {
			return p.wait(ctx, s.Feedback, s.Rate, n)
		}
		return ctx.Err()
	}
	for i := 0; i < len(s.Bars); i += bs {
		b := out.NewBatch(md.KindBar)
		for _, r := range s.Bars[i:min(i+bs, len(s.Bars))] {
			r.Bar.Sym = in.ID(r.Symbol)
			b.Bars = append(b.Bars, r.Bar)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	for i := 0; i < len(s.Trades); i += bs {
		b := out.NewBatch(md.KindTrade)
		for _, r := range s.Trades[i:min(i+bs, len(s.Trades))] {
			r.Trade.Sym = in.ID(r.Symbol)
			b.Trades = append(b.Trades, r.Trade)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	for i := 0; i < len(s.Quotes); i += bs {
		b := out.NewBatch(md.KindQuote)
		for _, r := range s.Quotes[i:min(i+bs, len(s.Quotes))] {
			r.Quote.Sym = in.ID(r.Symbol)
			b.Quotes = append(b.Quotes, r.Quote)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	return nil
}

// Prepared emits records whose symbols are already interned in the job's
// symbol table (pass the same table in engine.Options.Symbols), copying them
// into pooled batches of BatchSize: the cheapest possible upstream, for
// benchmarks that measure what comes after it.
type Prepared struct {
	Bars      []md.Bar
	Trades    []md.Trade
	BatchSize int
}

// PrepareBars interns the bars' symbols for provider in t and returns the
// bars with their Sym set.
func PrepareBars(t *md.SymbolTable, provider string, bars []Bar) []md.Bar {
	out := make([]md.Bar, len(bars))
	for i := range bars {
		out[i] = bars[i].Bar
		out[i].Sym = t.Intern(provider, bars[i].Symbol)
	}
	return out
}

// PrepareTrades is PrepareBars for trades.
func PrepareTrades(t *md.SymbolTable, provider string, trades []Trade) []md.Trade {
	out := make([]md.Trade, len(trades))
	for i := range trades {
		out[i] = trades[i].Trade
		out[i].Sym = t.Intern(provider, trades[i].Symbol)
	}
	return out
}

// Kind is the set of record kinds the source emits.
func (s *Prepared) Kind() md.Kind {
	if len(s.Trades) > 0 {
		return md.KindTrade
	}
	return md.KindBar
}

// Run implements engine.Source.
func (s *Prepared) Run(ctx context.Context, out *engine.Output) error {
	bs := s.BatchSize
	if bs <= 0 {
		bs = md.DefaultBatchSize
	}
	for i := 0; i < len(s.Bars); i += bs {
		b := out.NewBatch(md.KindBar)
		b.Bars = append(b.Bars, s.Bars[i:min(i+bs, len(s.Bars))]...)
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	for i := 0; i < len(s.Trades); i += bs {
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, s.Trades[i:min(i+bs, len(s.Trades))]...)
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// pacer spaces batches so the long-run rate is rate×scale records/s. It
// keeps a virtual clock: each batch advances it by n/(rate×scale); the
// source sleeps until the wall clock catches up. After a pause (scale 0) the
// clock restarts from now, so a paused source does not burst afterwards.
type pacer struct {
	next time.Time
}

func (p *pacer) wait(ctx context.Context, fb *engine.Feedback, rate float64, n int) error {
	if fb != nil && fb.Scale() <= 0 {
		if err := fb.Wait(ctx); err != nil {
			return err
		}
		p.next = time.Time{}
	}
	scale := 1.0
	if fb != nil {
		scale = fb.Scale()
	}
	if scale <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.IsZero() || p.next.Before(now.Add(-time.Second)) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(n) / (rate * scale) * float64(time.Second)))
	if d := time.Until(p.next); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// T0 is 2024-01-02T14:30:00Z in ns, the start of generated data.
const T0 = int64(1704205800) * int64(time.Second)

// GenBars returns n one-second bars for syms symbols SYM000…, round-robin
// by symbol, so bar i of symbol k starts at T0 + (i/syms) seconds. Values
// are deterministic and distinct per row.
func GenBars(n, syms int) []Bar {
	out := make([]Bar, n)
	for i := range out {
		k := i % syms
		sec := int64(i / syms)
		base := 100 + float64(k) + float64(sec%1000)/100
		out[i] = Bar{Symbol: fmt.Sprintf("SYM%03d", k), Bar: md.Bar{
			Start: T0 + sec*int64(time.Second), End: T0 + (sec+1)*int64(time.Second), Interval: int64(time.Second),
			Open: base, High: base + 0.5, Low: base - 0.25, Close: base + 0.125,
			Volume: float64(100 + i%37), VWAP: base + 0.0625, Trades: int64(1 + i%11),
		}}
	}
	return out
}

// GenTrades returns n trades for syms symbols, 1 ms apart, with trade ids.
func GenTrades(n, syms int) []Trade {
	out := make([]Trade, n)
	for i := range out {
		k := i % syms
		out[i] = Trade{Symbol: fmt.Sprintf("SYM%03d", k), Trade: md.Trade{
			TS: T0 + int64(i)*int64(time.Millisecond), Ingest: T0 + int64(i)*int64(time.Millisecond) + 500,
			Price: 100 + float64(i%500)/100, Size: float64(1 + i%100), TradeID: int64(1000 + i), Seq: uint64(i + 1),
			Side: md.Side(i % 3),
		}}
	}
	return out
}

// GenQuotes returns n quotes for syms symbols, 1 ms apart.
func GenQuotes(n, syms int) []Quote {
	out := make([]Quote, n)
	for i := range out {
		k := i % syms
		bid := 100 + float64(i%300)/100
		out[i] = Quote{Symbol: fmt.Sprintf("SYM%03d", k), Quote: md.Quote{
			TS: T0 + int64(i)*int64(time.Millisecond), Ingest: T0 + int64(i)*int64(time.Millisecond) + 250,
			Bid: bid, BidSize: float64(1 + i%50), Ask: bid + 0.01, AskSize: float64(2 + i%40), Seq: uint64(i + 1),
		}}
	}
	return out
}

// NaNBar returns a copy of b with a NaN high, a value stores reject.
func NaNBar(b Bar) Bar { b.High = math.NaN(); return b }

// GenBarTrades returns trades that make exactly nBars one-second bars: one
// trade per symbol per second over syms symbols, in time order.
func GenBarTrades(nBars, syms int) []Trade {
	out := make([]Trade, nBars)
	for i := range out {
		k := i % syms
		sec := int64(i / syms)
		ts := T0 + sec*int64(time.Second) + int64(k)*int64(time.Millisecond)
		out[i] = Trade{Symbol: fmt.Sprintf("SYM%03d", k), Trade: md.Trade{
			TS: ts, Ingest: ts, Price: 100 + float64(k) + float64(sec%500)/100, Size: float64(1 + i%100),
			TradeID: int64(i + 1), Seq: uint64(i + 1), Side: md.Side(1 + i%2)}}
	}
	return out
}

// Stage is one node of a chain: a registered component and its params.
type Stage struct {
	Type   string
	Params map[string]any
	// Parallelism of the node (0 or 1: one instance).
	Parallelism int
}

// Chain builds (but does not start) src → stages[0] → … → stages[n-1].
// The source node is "src", the last stage "store" and the others "s1",
// "s2", ….
func Chain(src engine.Source, stages []Stage, opts engine.Options) (*engine.Job, error) {
	kind := md.KindAny
	if k, ok := src.(interface{ Kind() md.Kind }); ok {
		kind = k.Kind()
	}
	g := &engine.Graph{Nodes: []*engine.Node{
		{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: kind},
			NewSource: func(int) (engine.Source, error) { return src, nil }},
	}}
	prev := "src"
	for i, st := range stages {
		spec, ok := component.Lookup(st.Type)
		if !ok {
			return nil, fmt.Errorf("component %s is not registered", st.Type)
		}
		p, err := component.NewParams(spec, st.Params)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.Type, err)
		}
		id := fmt.Sprintf("s%d", i+1)
		if i == len(stages)-1 {
			id = "store"
		}
		g.Nodes = append(g.Nodes, component.Node(spec, p, component.NodeOptions{ID: id, Parallelism: st.Parallelism}))
		g.Edges = append(g.Edges, &engine.Edge{From: prev, To: id})
		prev = id
	}
	if opts.Job == "" {
		opts.Job = "test"
	}
	return engine.New(g, opts)
}

// Job builds (but does not start) source → sink, with the sink built from
// the registered component typ and params. parallelism applies to the sink.
func Job(src engine.Source, typ string, params map[string]any, parallelism int, opts engine.Options) (*engine.Job, error) {
	return Chain(src, []Stage{{Type: typ, Params: params, Parallelism: parallelism}}, opts)
}

// Run builds and runs source → sink to the end.
func Run(ctx context.Context, src engine.Source, typ string, params map[string]any, opts engine.Options) (*engine.Job, error) {
	j, err := Job(src, typ, params, 1, opts)
	if err != nil {
		return nil, err
	}
	return j, j.Run(ctx)
}
