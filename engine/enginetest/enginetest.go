// Package enginetest is the kit for testing mdp components and graphs: a
// Source that emits records from slices, a Sink that collects what reaches
// it, node builders for both, an Output to drive a component directly
// without a job, and a SyncBuffer and Logger to capture logs. Tests of the
// engine, of operators and of sinks use it instead of writing their own.
package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Source is an engine.Source that emits Trades, then Quotes, then Bars, in
// batches of BatchSize (default 64). A record names its instrument by its
// index into Symbols: Run interns Symbols in order for Provider (default
// "test") and gives each record the job's id for it, so the same Source
// runs in any job. A Source may run once at a time.
type Source struct {
	Provider  string
	Symbols   []string
	Trades    []md.Trade
	Quotes    []md.Quote
	Bars      []md.Bar
	BatchSize int
	// Hold makes Run wait, after emitting everything, until the job stops
	// its sources: a live source gone quiet.
	Hold bool
	// Err, when set, is returned after everything was emitted: a source
	// that fails.
	Err error

	emitted atomic.Int64
}

// Emitted is the number of records Run has emitted so far.
func (s *Source) Emitted() int64 { return s.emitted.Load() }

// Kind is the set of record kinds the source emits (md.KindAny when none).
func (s *Source) Kind() md.Kind {
	var k md.Kind
	if len(s.Trades) > 0 {
		k |= md.KindTrade
	}
	if len(s.Quotes) > 0 {
		k |= md.KindQuote
	}
	if len(s.Bars) > 0 {
		k |= md.KindBar
	}
	if k == md.KindNone {
		return md.KindAny
	}
	return k
}

// Run implements engine.Source.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	prov := s.Provider
	if prov == "" {
		prov = "test"
	}
	ids := make([]md.SymID, len(s.Symbols))
	for i, sym := range s.Symbols {
		ids[i] = out.Symbols().Intern(prov, sym)
	}
	id := func(i md.SymID) md.SymID {
		if int(i) < len(ids) {
			return ids[i]
		}
		return i
	}
	bs := s.BatchSize
	if bs <= 0 {
		bs = 64
	}
	emit := func(b *md.Batch) error {
		n := int64(b.Len())
		if err := out.Emit(b); err != nil {
			return err
		}
		s.emitted.Add(n)
		return nil
	}
	for i := 0; i < len(s.Trades); i += bs {
		b := out.NewBatch(md.KindTrade)
		for _, t := range s.Trades[i:min(i+bs, len(s.Trades))] {
			t.Sym = id(t.Sym)
			b.Trades = append(b.Trades, t)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	for i := 0; i < len(s.Quotes); i += bs {
		b := out.NewBatch(md.KindQuote)
		for _, q := range s.Quotes[i:min(i+bs, len(s.Quotes))] {
			q.Sym = id(q.Sym)
			b.Quotes = append(b.Quotes, q)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	for i := 0; i < len(s.Bars); i += bs {
		b := out.NewBatch(md.KindBar)
		for _, r := range s.Bars[i:min(i+bs, len(s.Bars))] {
			r.Sym = id(r.Sym)
			b.Bars = append(b.Bars, r)
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	if s.Hold {
		<-ctx.Done()
	}
	return s.Err
}

// Symbols returns n symbol names S0..S(n-1), for Source.Symbols.
func Symbols(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("S%d", i)
	}
	return out
}

// TradesAt returns one trade per event time in ts, all of symbol 0.
func TradesAt(ts ...int64) []md.Trade {
	out := make([]md.Trade, len(ts))
	for i, t := range ts {
		out[i] = md.Trade{TS: t, Price: 1, Size: 1}
	}
	return out
}

// Trades returns n trades over the first syms symbols (index i%syms),
// event time i ns after t0, price 100+i, size 1: input for Source.Trades.
func Trades(n, syms int, t0 int64) []md.Trade {
	out := make([]md.Trade, n)
	for i := range out {
		out[i] = md.Trade{TS: t0 + int64(i), Price: 100 + float64(i), Size: 1, Sym: md.SymID(i % syms)}
	}
	return out
}

// Sink is an engine.Processor that keeps everything it receives: records,
// batch reasons, watermarks, and whether Close ran. It is safe to read while
// the job runs through its methods; its fields may be read directly once the
// job has ended.
type Sink struct {
	mu         sync.Mutex
	trades     []md.Trade
	quotes     []md.Quote
	bars       []md.Bar
	reasons    []string
	watermarks []int64
	closed     bool
}

// Process implements engine.Processor.
func (c *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trades = append(c.trades, b.Trades...)
	c.quotes = append(c.quotes, b.Quotes...)
	c.bars = append(c.bars, b.Bars...)
	c.reasons = append(c.reasons, b.Reason)
	return nil
}

// OnWatermark implements engine.WatermarkHandler.
func (c *Sink) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	c.mu.Lock()
	c.watermarks = append(c.watermarks, wm)
	c.mu.Unlock()
	return nil
}

// Close implements engine.Closer.
func (c *Sink) Close(ctx context.Context, out *engine.Output) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// Trades returns a copy of the trades received so far, in arrival order.
func (c *Sink) Trades() []md.Trade {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]md.Trade(nil), c.trades...)
}

// Quotes returns a copy of the quotes received so far.
func (c *Sink) Quotes() []md.Quote {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]md.Quote(nil), c.quotes...)
}

// Bars returns a copy of the bars received so far.
func (c *Sink) Bars() []md.Bar {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]md.Bar(nil), c.bars...)
}

// Reasons returns each received batch's Reason (empty but for dead letters).
func (c *Sink) Reasons() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reasons...)
}

// Watermarks returns every watermark the sink saw, in order.
func (c *Sink) Watermarks() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.watermarks...)
}

// LastWatermark is the newest watermark seen (md.MinTime before any).
func (c *Sink) LastWatermark() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.watermarks) == 0 {
		return md.MinTime
	}
	return c.watermarks[len(c.watermarks)-1]
}

// Len is the number of records received so far.
func (c *Sink) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.trades) + len(c.quotes) + len(c.bars)
}

// Closed reports whether Close ran.
func (c *Sink) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// SourceNode returns a source node emitting kind k whose every instance is
// src.
func SourceNode(id string, k md.Kind, src engine.Source) *engine.Node {
	return &engine.Node{ID: id, Type: "provider.test", Kind: engine.KindSource,
		Ports:     map[string]md.Kind{engine.PortMain: k},
		NewSource: func(int) (engine.Source, error) { return src, nil }}
}

// SinkNode returns a sink node taking any kind whose every instance is p.
func SinkNode(id string, p engine.Processor) *engine.Node {
	return &engine.Node{ID: id, Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny,
		Ports:        map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return p, nil }}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers, to
// capture logs (slog.NewTextHandler(buf, …)) or a command's output while it
// runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger returns a debug-level text logger writing to w, for
// engine.Options.Logger in tests that check what was logged.
func Logger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Output is an engine.Output that belongs to no job: whatever a component
// emits on it is kept until Drain. Tests and benchmarks use it to call a
// component's Process and OnWatermark directly, on one goroutine, exactly
// as a node instance would, without queues between goroutines.
type Output struct {
	*engine.Output
	// NC is the node context the output was built with, every nil field
	// filled in; pass it to the component's Open.
	NC    *engine.NodeContext
	drain func(port string) []*md.Batch
}

// NewOutput returns an Output with a main port and the given named ports.
// nc may be nil; its nil fields get a new symbol table, a pool of
// md.DefaultBatchSize batches, a discarding logger and fresh stats. Each
// port holds up to capacity batches (0 means 4096): drain it before it
// fills, or Emit blocks for good.
func NewOutput(nc *engine.NodeContext, capacity int, ports ...string) *Output {
	out, nc, drain := engine.NewDetachedOutput(nc, capacity, ports...)
	return &Output{Output: out, NC: nc, drain: drain}
}

// Drain returns the batches emitted on port since the last Drain, in order
// (watermark-only messages are skipped). The caller owns one reference to
// each batch and should Release it when done. An unknown port has none.
func (o *Output) Drain(port string) []*md.Batch { return o.drain(port) }
