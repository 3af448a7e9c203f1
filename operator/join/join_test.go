package join

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/quick"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

const (
	t0 = int64(1704205800) * int64(time.Second)
	ms = int64(time.Millisecond)
)

// out is one output record: ts relative to t0 in ms, symbol id, and the
// fields in schema order, rendered.
type out struct {
	Sym md.SymID
	TS  int64
	F   string
}

func rowsOf(b *md.Batch) []out {
	var rs []out
	for i, d := range b.Derived {
		var parts []string
		for k, v := range b.Row(i) {
			f := b.Schema.Field(k)
			switch {
			case f.Name == "right_ts" && v.Int() != 0:
				parts = append(parts, fmt.Sprintf("%s=%d", f.Name, (v.Int()-t0)/ms))
			case f.Type == md.Int:
				parts = append(parts, fmt.Sprintf("%s=%d", f.Name, v.Int()))
			default:
				parts = append(parts, fmt.Sprintf("%s=%g", f.Name, v.Float()))
			}
		}
		rs = append(rs, out{Sym: d.Sym, TS: (d.TS - t0) / ms, F: strings.Join(parts, " ")})
	}
	return rs
}

type harness struct {
	t  *testing.T
	j  *Join
	to *enginetest.Output
}

func newHarness(t testing.TB, params map[string]any, syms ...[2]string) *harness {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{j: impl.(*Join), to: enginetest.NewOutput(nil, 0)}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	if len(syms) == 0 {
		syms = [][2]string{{"test", "A"}, {"test", "B"}}
	}
	for _, s := range syms {
		h.to.NC.Symbols.Intern(s[0], s[1])
	}
	if err := h.j.Open(context.Background(), h.to.NC); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) left(ts ...md.Trade) {
	h.t.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	if err := h.j.ProcessPort(context.Background(), PortLeft, b, h.to.Output); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) rightQ(qs ...md.Quote) {
	h.t.Helper()
	b := md.NewBatch(md.KindQuote)
	b.Quotes = qs
	if err := h.j.ProcessPort(context.Background(), PortRight, b, h.to.Output); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) rightT(ts ...md.Trade) {
	h.t.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	if err := h.j.ProcessPort(context.Background(), PortRight, b, h.to.Output); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wm(w int64) {
	h.t.Helper()
	if err := h.j.OnWatermark(context.Background(), w, h.to.Output); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) rows() []out {
	var rs []out
	for _, b := range h.to.Drain(engine.PortMain) {
		rs = append(rs, rowsOf(b)...)
		b.Release()
	}
	return rs
}

func (h *harness) expect(step string, want ...out) {
	h.t.Helper()
	got := h.rows()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("%s:\n got: %v\nwant: %v", step, got, want)
	}
}

func trade(sym md.SymID, tsMS int64, price, size float64, side md.Side) md.Trade {
	return md.Trade{Sym: sym, TS: t0 + tsMS*ms, Price: price, Size: size, Side: side}
}

func quote(sym md.SymID, tsMS int64, bid, ask float64) md.Quote {
	return md.Quote{Sym: sym, TS: t0 + tsMS*ms, Bid: bid, Ask: ask, BidSize: 1, AskSize: 2}
}

// Trades as-of quotes: a quote arriving after the trade but stamped before
// it still counts (the trade waits for the watermark), a quote at exactly
// the trade's time counts, one after it does not, the staleness limit, an
// unmatched trade, the quote rule, and a late record.
func TestAsOfTradesWithQuotes(t *testing.T) {
	h := newHarness(t, map[string]any{"kind": "asof", "max_staleness": "500ms"})
	h.left(trade(0, 100, 10.4, 1, md.SideBuy), trade(0, 300, 10, 2, md.SideSell), trade(1, 50, 5, 1, md.SideUnknown))
	h.rightQ(quote(0, 90, 10, 10.5), quote(0, 300, 9.75, 10.25), quote(0, 301, 1, 2), quote(1, 60, 4, 6))
	h.wm(t0 + 300*ms) // releases ts < 300
	// in order of release: B's trade at 50 first (its quote at 60 is after it)
	h.expect("released before 300",
		out{1, 50, "price=5 size=1 trade_side=0 bid=0 ask=0 bid_size=0 ask_size=0 mid=0 spread=0 side=0 right_ts=0 matched=0"},
		out{0, 100, "price=10.4 size=1 trade_side=1 bid=10 ask=10.5 bid_size=1 ask_size=2 mid=10.25 spread=0.5 side=1 right_ts=90 matched=1"},
	)
	h.left(trade(0, 1200, 10, 1, md.SideUnknown))
	h.wm(md.MaxTime)
	h.expect("flush",
		// the quote at exactly 300 counts; the trade at the mid has side 0
		out{0, 300, "price=10 size=2 trade_side=-1 bid=9.75 ask=10.25 bid_size=1 ask_size=2 mid=10 spread=0.5 side=0 right_ts=300 matched=1"},
		// the latest quote (301) is 899ms old: stale
		out{0, 1200, "price=10 size=1 trade_side=0 bid=0 ask=0 bid_size=0 ask_size=0 mid=0 spread=0 side=0 right_ts=0 matched=0"},
	)
	h.left(trade(0, 100, 1, 1, 0))
	if d := h.to.NC.Stats.Drops(); d[DropLate] != 1 {
		t.Fatalf("drops %v", d)
	}
}

// Trades of one coin on two venues (two providers, one symbol text) within
// [-100ms, +200ms]; the boundaries are inclusive.
func TestIntervalAcrossProviders(t *testing.T) {
	h := newHarness(t, map[string]any{"kind": "interval", "lower": "-100ms", "upper": "200ms"},
		[2]string{"binance", "BTCUSDT"}, [2]string{"okx", "BTCUSDT"})
	h.left(trade(0, 1000, 100, 1, 0), trade(0, 2000, 101, 1, 0))
	h.rightT(trade(1, 899, 1, 1, 0), trade(1, 900, 2, 1, 0), trade(1, 1200, 3, 1, 0), trade(1, 1201, 4, 1, 0), trade(1, 1950, 5, 1, 0))
	h.wm(t0 + 1200*ms)
	h.expect("the first left waits for ts + upper")
	h.wm(t0 + 1201*ms)
	h.expect("released",
		out{0, 1000, "left_price=100 left_size=1 left_trade_side=0 right_price=2 right_size=1 right_trade_side=0 right_ts=900"},
		out{0, 1000, "left_price=100 left_size=1 left_trade_side=0 right_price=3 right_size=1 right_trade_side=0 right_ts=1200"},
	)
	h.wm(md.MaxTime)
	h.expect("flush", out{0, 2000, "left_price=101 left_size=1 left_trade_side=0 right_price=5 right_size=1 right_trade_side=0 right_ts=1950"})
	if got := h.j.OutputWatermark(t0 + sec); got != t0+sec-200*ms {
		t.Fatalf("held watermark %d", got-t0)
	}
}

const sec = int64(time.Second)

func TestBadParams(t *testing.T) {
	spec, _ := component.Lookup(Type)
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"kind": "interval", "lower": "1s"}, "kind interval needs lower and upper"},
		{map[string]any{"kind": "interval", "lower": "1s", "upper": "0s"}, "lower 1s is after upper 0s"},
		{map[string]any{"kind": "asof", "lower": "1s"}, "lower applies to kind interval, not asof"},
		{map[string]any{"kind": "interval", "lower": "0s", "upper": "1s", "max_staleness": "1s"}, "max_staleness applies to kind asof"},
		{map[string]any{"kind": "nearest"}, "nearest"},
		{map[string]any{"kind": "asof", "name": "trade"}, "reserved"},
	} {
		if _, err := component.NewParams(spec, c.params); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.params, err, c.want)
		}
	}
	h := newHarness(t, map[string]any{"kind": "asof"})
	b := md.NewBatch(md.KindTrade)
	b.Trades = []md.Trade{trade(0, 1, 1, 1, 0)}
	if err := h.j.ProcessPort(context.Background(), PortRight, b, h.to.Output); err == nil || !strings.Contains(err.Error(), "the right input takes quote records") {
		t.Fatalf("wrong kind: %v", err)
	}
}

// streams returns random trades (left) and quotes (right) over syms
// symbols, each stream's times up to disorder behind its newest.
func streams(seed uint64, n, syms int, disorder int64) ([]md.Trade, []md.Quote) {
	rng := rand.New(rand.NewPCG(seed, 3))
	var ts []md.Trade
	var qs []md.Quote
	tl, tq := t0, t0
	for i := 0; i < n; i++ {
		if rng.IntN(2) == 0 {
			tl += rng.Int64N(30 * ms)
			ts = append(ts, md.Trade{Sym: md.SymID(rng.IntN(syms)), TS: tl - rng.Int64N(disorder+1), Price: float64(90 + rng.IntN(20)), Size: 1, Side: md.Side(rng.IntN(3))})
		} else {
			tq += rng.Int64N(30 * ms)
			b := float64(90 + rng.IntN(20))
			qs = append(qs, md.Quote{Sym: md.SymID(rng.IntN(syms)), TS: tq - rng.Int64N(disorder+1), Bid: b, Ask: b + float64(1+rng.IntN(3)), BidSize: 1, AskSize: 1})
		}
	}
	return ts, qs
}

func qrec(q md.Quote) item {
	return item{TS: q.TS, Rec: rec{sym: q.Sym, v: [4]float64{q.Bid, q.Ask, q.BidSize, q.AskSize}}}
}

func trec(t md.Trade) item {
	return item{TS: t.TS, Rec: rec{sym: t.Sym, side: t.Side, v: [4]float64{t.Price, t.Size}}}
}

// nestedAsOf is the as-of join by a nested loop: for each trade, the quote
// of its symbol with the greatest ts at or before it (the last to arrive
// among equal ts), within staleness.
func nestedAsOf(j *Join, ts []md.Trade, qs []md.Quote, stale int64, to *enginetest.Output) []out {
	for _, t := range ts {
		var best *md.Quote
		for i := range qs {
			q := &qs[i]
			if q.Sym == t.Sym && q.TS <= t.TS && (best == nil || q.TS >= best.TS) {
				best = q
			}
		}
		l := trec(t)
		if best != nil && (stale < 0 || t.TS-best.TS <= stale) {
			r := qrec(*best)
			j.emit(&l, &r, to.Output)
		} else {
			j.emit(&l, nil, to.Output)
		}
	}
	j.flush(to.Output)
	var rs []out
	for _, b := range to.Drain(engine.PortMain) {
		rs = append(rs, rowsOf(b)...)
	}
	return rs
}

func sortOut(rs []out) {
	slices.SortStableFunc(rs, func(a, b out) int {
		if c := cmp.Compare(a.Sym, b.Sym); c != 0 {
			return c
		}
		if c := cmp.Compare(a.TS, b.TS); c != 0 {
			return c
		}
		return cmp.Compare(a.F, b.F)
	})
}

// driveJoin feeds left and right batches interleaved at random, with the
// watermark at the lesser of the two streams' newest times minus disorder.
func driveJoin(t *testing.T, h *harness, ts []md.Trade, right func(i, n int), nRight int, leftTS func(i int) int64, rightTS func(i int) int64, disorder int64, seed uint64) []out {
	rng := rand.New(rand.NewPCG(seed, 5))
	li, ri := 0, 0
	nl, nr := md.MinTime, md.MinTime
	var got []out
	for li < len(ts) || ri < nRight {
		n := 1 + rng.IntN(8)
		if ri >= nRight || li < len(ts) && rng.IntN(2) == 0 {
			e := min(li+n, len(ts))
			for k := li; k < e; k++ {
				nl = max(nl, leftTS(k))
			}
			h.left(ts[li:e]...)
			li = e
		} else {
			e := min(ri+n, nRight)
			for k := ri; k < e; k++ {
				nr = max(nr, rightTS(k))
			}
			right(ri, e)
			ri = e
		}
		if nl > md.MinTime && nr > md.MinTime {
			h.wm(min(nl, nr) - disorder)
		}
		got = append(got, h.rows()...)
	}
	h.wm(md.MaxTime)
	got = append(got, h.rows()...)
	if d := h.to.NC.Stats.Drops(); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
	sortOut(got)
	return got
}

// The as-of join equals a nested-loop join over random out-of-order
// streams in random interleavings.
func TestAsOfEqualsNestedLoop(t *testing.T) {
	f := func(seed uint64, shape uint8) bool {
		disorder := int64(shape%4) * 40 * ms
		stale := int64(-1)
		params := map[string]any{"kind": "asof"}
		if shape%2 == 1 {
			stale = int64(shape%5) * 20 * ms
			params["max_staleness"] = time.Duration(stale).String()
		}
		ts, qs := streams(seed, 300, 3, disorder)
		h := newHarness(t, params)
		h.t = t
		got := driveJoin(t, h, ts, func(i, n int) { h.rightQ(qs[i:n]...) }, len(qs),
			func(i int) int64 { return ts[i].TS }, func(i int) int64 { return qs[i].TS }, disorder, seed)
		ref := newHarness(t, params)
		want := nestedAsOf(ref.j, ts, qs, stale, ref.to)
		sortOut(want)
		if !reflect.DeepEqual(got, want) {
			t.Logf("seed %d shape %d: %d rows, want %d", seed, shape, len(got), len(want))
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 60}); err != nil {
		t.Fatal(err)
	}
}

// The interval join equals a nested-loop join.
func TestIntervalEqualsNestedLoop(t *testing.T) {
	f := func(seed uint64, shape uint8) bool {
		disorder := int64(shape%4) * 40 * ms
		lower := int64(int(shape%5)-2) * 30 * ms
		upper := lower + int64(shape%3)*40*ms
		params := map[string]any{"kind": "interval", "lower": time.Duration(lower).String(), "upper": time.Duration(upper).String()}
		ls, _ := streams(seed, 300, 3, disorder)
		rs, _ := streams(seed+1, 300, 3, disorder)
		h := newHarness(t, params)
		h.t = t
		got := driveJoin(t, h, ls, func(i, n int) { h.rightT(rs[i:n]...) }, len(rs),
			func(i int) int64 { return ls[i].TS }, func(i int) int64 { return rs[i].TS }, disorder, seed)
		ref := newHarness(t, params)
		for _, l := range ls {
			lr := trec(l)
			for _, r := range rs {
				if r.Sym == l.Sym && r.TS >= l.TS+lower && r.TS <= l.TS+upper {
					rr := trec(r)
					ref.j.emit(&lr, &rr, ref.to.Output)
				}
			}
		}
		ref.j.flush(ref.to.Output)
		var want []out
		for _, b := range ref.to.Drain(engine.PortMain) {
			want = append(want, rowsOf(b)...)
		}
		sortOut(want)
		if !reflect.DeepEqual(got, want) {
			t.Logf("seed %d shape %d: %d rows, want %d", seed, shape, len(got), len(want))
			return false
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 60}); err != nil {
		t.Fatal(err)
	}
}

type derivedSink struct {
	mu   sync.Mutex
	rows []out
}

func (s *derivedSink) Process(ctx context.Context, b *md.Batch, o *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Kind == md.KindDerived {
		s.rows = append(s.rows, rowsOf(b)...)
	}
	return nil
}

func runJob(t *testing.T, ts []md.Trade, qs []md.Quote, syms []string, ooo time.Duration, par int) []out {
	t.Helper()
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"kind": "asof", "max_staleness": "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	trades := enginetest.SourceNode("trades", md.KindTrade, &enginetest.Source{Symbols: syms, Trades: ts, BatchSize: 5})
	quotes := enginetest.SourceNode("quotes", md.KindQuote, &enginetest.Source{Symbols: syms, Quotes: qs, BatchSize: 9})
	trades.MaxOutOfOrderness, quotes.MaxOutOfOrderness = ooo, ooo
	sink := &derivedSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{trades, quotes, component.Node(spec, p, component.NodeOptions{ID: "join", Parallelism: par}), enginetest.SinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "trades", To: "join", ToPort: "left"}, {From: "quotes", To: "join", ToPort: "right"}, {From: "join", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "join-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sortOut(sink.rows)
	return sink.rows
}

func TestParallelismFourIsIdentical(t *testing.T) {
	syms := enginetest.Symbols(10)
	ts, qs := streams(11, 4000, len(syms), 60*ms)
	one := runJob(t, ts, qs, syms, 60*time.Millisecond, 1)
	four := runJob(t, ts, qs, syms, 60*time.Millisecond, 4)
	if len(one) != len(ts) || !reflect.DeepEqual(one, four) {
		t.Fatalf("parallelism 4: %d rows, parallelism 1: %d, trades %d", len(four), len(one), len(ts))
	}
}

// BenchmarkAsOf joins in-order trades with quotes over 100 symbols, batches
// of 1024 alternating, the watermark after each pair; ns and allocations
// per record (trades and quotes both count).
func BenchmarkAsOf(b *testing.B) { benchJoin(b, map[string]any{"kind": "asof"}) }

// BenchmarkInterval: the same joined by kind interval over [-1ms, 0]
// (each trade pairs with the quote 1µs before it, of its symbol).
func BenchmarkInterval(b *testing.B) {
	benchJoin(b, map[string]any{"kind": "interval", "right": "quote", "lower": "-1ms", "upper": "0s"})
}

func benchJoin(b *testing.B, params map[string]any) {
	in := optest.NewInstance(b, Type, params, enginetest.Symbols(100))
	const n = 1024
	tb, qb := md.NewBatch(md.KindTrade), md.NewBatch(md.KindQuote)
	tb.Trades, qb.Quotes = make([]md.Trade, n), make([]md.Quote, n)
	ts := t0
	optest.Bench(b, in, 2*n, 64, func(int) {
		for k := 0; k < n; k++ {
			ts += 5_000
			qb.Quotes[k] = md.Quote{Sym: md.SymID(k % 100), TS: ts, Bid: 100, Ask: 101}
			tb.Trades[k] = md.Trade{Sym: md.SymID(k % 100), TS: ts + 1, Price: 100.5, Size: 1}
		}
		in.ProcessPort(PortRight, qb)
		in.ProcessPort(PortLeft, tb)
		in.Watermark(ts)
	})
}

// late_policy side_output: a late left trade and a late right quote go to
// the late port unchanged, each in a batch naming its input, and are not
// counted as dropped; records on time are joined as before.
func TestLateRecordsGoToTheLatePort(t *testing.T) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"kind": "asof", "late_policy": "side_output"})
	if err != nil {
		t.Fatal(err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, j: impl.(*Join), to: enginetest.NewOutput(nil, 0, engine.PortLate)}
	h.to.NC.Symbols.Intern("test", "A")
	if err := h.j.Open(context.Background(), h.to.NC); err != nil {
		t.Fatal(err)
	}
	h.rightQ(quote(0, 100, 10, 11))
	h.left(trade(0, 150, 10.5, 1, md.SideBuy))
	h.wm(t0 + 200*ms)
	h.left(trade(0, 199, 10, 2, md.SideSell), trade(0, 200, 10, 3, md.SideSell)) // the first is late
	h.rightQ(quote(0, 120, 1, 2))                                                // late
	h.wm(md.MaxTime)
	h.expect("on time",
		out{0, 150, "price=10.5 size=1 trade_side=1 bid=10 ask=11 bid_size=1 ask_size=2 mid=10.5 spread=1 side=0 right_ts=100 matched=1"},
		out{0, 200, "price=10 size=3 trade_side=-1 bid=10 ask=11 bid_size=1 ask_size=2 mid=10.5 spread=1 side=-1 right_ts=100 matched=1"})
	late := h.to.Drain(engine.PortLate)
	if len(late) != 2 || late[0].Reason != ReasonLateLeft || !reflect.DeepEqual(late[0].Trades, []md.Trade{trade(0, 199, 10, 2, md.SideSell)}) ||
		late[1].Reason != ReasonLateRight || !reflect.DeepEqual(late[1].Quotes, []md.Quote{quote(0, 120, 1, 2)}) {
		t.Fatalf("late port: %+v", late)
	}
	if d := h.to.NC.Stats.Drops(); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
}

// Through the engine, the late port of a join carries both inputs' kinds.
func TestLatePortThroughTheEngine(t *testing.T) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"kind": "asof", "late_policy": "side_output"})
	if err != nil {
		t.Fatal(err)
	}
	trades := &enginetest.Source{Symbols: []string{"A"}, Trades: []md.Trade{
		trade(0, 100, 10, 1, 0), trade(0, 300, 10, 1, 0), trade(0, 50, 9, 1, 0)}} // the last is behind the watermark
	quotes := &enginetest.Source{Symbols: []string{"A"}, Quotes: []md.Quote{quote(0, 90, 9, 11)}}
	main, lateSink := &optest.Collector{}, &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{enginetest.SourceNode("trades", md.KindTrade, trades), enginetest.SourceNode("quotes", md.KindQuote, quotes),
			component.Node(spec, p, component.NodeOptions{ID: "j"}), enginetest.SinkNode("out", main), enginetest.SinkNode("late", lateSink)},
		Edges: []*engine.Edge{{From: "trades", To: "j", ToPort: "left"}, {From: "quotes", To: "j", ToPort: "right"},
			{From: "j", To: "out"}, {From: "j", FromPort: engine.PortLate, To: "late"}},
	}
	job, err := engine.New(g, engine.Options{Job: "join-late"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Whether the trade at 50 is late at the join depends on how far the
	// quotes input had got (the join's watermark is the minimum of both):
	// either way every trade is joined or on the late port, none dropped.
	late := lateSink.Trades()
	if len(main.Derived)+len(late) != 3 || len(late) > 1 || (len(late) == 1 && late[0].TS != t0+50*ms) {
		t.Fatalf("%d joined, late %v", len(main.Derived), late)
	}
	for _, r := range lateSink.Reasons() {
		if r != ReasonLateLeft {
			t.Fatalf("late batch reason %q", r)
		}
	}
	for _, nc := range job.NodeContexts("j") {
		if d := nc.Stats.Drops(); len(d) != 0 {
			t.Fatalf("drops %v", d)
		}
	}
}

// TestAbortStopsALargeBatch: with its context ended (the job aborted), the
// join stops a batch after abortCheck records instead of holding the
// rest, and OnWatermark releases nothing.
func TestAbortStopsALargeBatch(t *testing.T) {
	aborted, cancel := context.WithCancel(context.Background())
	cancel()
	h := newHarness(t, map[string]any{"kind": "asof"})
	b := md.NewBatch(md.KindTrade)
	for i := range 2 * abortCheck {
		b.Trades = append(b.Trades, md.Trade{TS: int64(i + 1), Sym: 0, Price: 1, Size: 1})
	}
	if err := h.j.ProcessPort(aborted, PortLeft, b, h.to.Output); !errors.Is(err, context.Canceled) {
		t.Fatalf("ProcessPort: got %v, want %v", err, context.Canceled)
	}
	h.wm(md.MaxTime - 1)
	if n := len(h.rows()); n != abortCheck {
		t.Fatalf("held %d records, want %d (the batch's first abortCheck)", n, abortCheck)
	}

	h = newHarness(t, map[string]any{"kind": "asof"})
	h.left(trade(0, 100, 10, 1, md.SideBuy), trade(1, 100, 10, 1, md.SideBuy))
	if err := h.j.OnWatermark(aborted, md.MaxTime-1, h.to.Output); !errors.Is(err, context.Canceled) {
		t.Fatalf("OnWatermark: got %v, want %v", err, context.Canceled)
	}
	if n := len(h.rows()); n != 0 {
		t.Fatalf("released %d rows after the abort, want 0", n)
	}
}
