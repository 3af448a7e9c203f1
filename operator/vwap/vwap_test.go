package vwap

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
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
	sec = int64(time.Second)
	ms  = int64(time.Millisecond)
)

// t0 is 2024-01-02T14:30:00Z, 09:30 in New York.
var t0 = time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()

type rec struct {
	sym md.SymID
	ts  int64
	v   [5]float64 // price, size, vwap, volume, trades
}

func rowsOf(bs []*md.Batch) []rec {
	var out []rec
	for _, b := range bs {
		for i, d := range b.Derived {
			r := rec{sym: d.Sym, ts: d.TS}
			row := b.Row(i)
			for k := 0; k < 4; k++ {
				r.v[k] = row[k].Float()
			}
			r.v[4] = float64(row[4].Int())
			out = append(out, r)
		}
		b.Release()
	}
	return out
}

type harness struct{ *optest.Instance }

func newHarness(t testing.TB, params map[string]any) *harness {
	return &harness{optest.NewInstance(t, Type, params, []string{"A", "B"})}
}

func (h *harness) trades(ts ...md.Trade) { h.Trades(ts...) }

func (h *harness) wm(w int64) []rec {
	h.Watermark(w)
	return rowsOf(h.Drain(engine.PortMain))
}

func tr(sym md.SymID, ts int64, p, sz float64) md.Trade {
	return md.Trade{Sym: sym, TS: ts, Price: p, Size: sz}
}

func expect(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		ok := g.sym == w.sym && g.ts == w.ts
		for k := range w.v {
			ok = ok && math.Abs(g.v[k]-w.v[k]) <= 1e-12*max(1, math.Abs(w.v[k]))
		}
		if !ok {
			t.Fatalf("row %d: got %v want %v", i, g, w)
		}
	}
}

// A New York session from 09:30: the sums restart at the next day's 09:30;
// a trade arriving out of order within the watermark is folded in time order.
func TestSessionVWAP(t *testing.T) {
	h := newHarness(t, map[string]any{"timezone": "America/New_York", "session_start": "9h30m"})
	before := t0 - sec // 09:29:59, still the previous session
	h.trades(tr(0, before, 50, 1), tr(0, t0+2*sec, 12, 1), tr(0, t0, 10, 3))
	next := t0 + 24*3600*sec
	h.trades(tr(0, next, 20, 1))
	got := h.wm(md.MaxTime)
	expect(t, got, []rec{
		{0, before, [5]float64{50, 1, 50, 1, 1}},
		{0, t0, [5]float64{10, 3, 10, 3, 1}},
		{0, t0 + 2*sec, [5]float64{12, 1, 42.0 / 4, 4, 2}},
		{0, next, [5]float64{20, 1, 20, 1, 1}},
	})
	h.trades(tr(0, t0, 1, 1))
	if d := h.Out.NC.Stats.Drops(); d["late"] != 1 {
		t.Fatalf("drops %v", d)
	}
}

// Rolling over (ts - 1s, ts]: a trade exactly 1s older has left.
func TestRollingVWAP(t *testing.T) {
	h := newHarness(t, map[string]any{"mode": "rolling", "window": "1s"})
	h.trades(tr(0, t0, 10, 1), tr(0, t0+500*ms, 20, 1), tr(0, t0+sec, 30, 2), tr(1, t0+sec, 5, 1))
	got := h.wm(md.MaxTime)
	expect(t, got, []rec{
		{0, t0, [5]float64{10, 1, 10, 1, 1}},
		{0, t0 + 500*ms, [5]float64{20, 1, 15, 2, 2}},
		{0, t0 + sec, [5]float64{30, 2, 80.0 / 3, 3, 2}},
		{1, t0 + sec, [5]float64{5, 1, 5, 1, 1}},
	})
}

func TestBadParams(t *testing.T) {
	spec, _ := component.Lookup(Type)
	for _, c := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{"mode": "rolling"}, "mode rolling needs window"},
		{map[string]any{"window": "1s"}, "window applies to mode rolling"},
		{map[string]any{"timezone": "Nowhere/City"}, `unknown time zone "Nowhere/City"`},
		{map[string]any{"mode": "rolling", "window": "1s", "session_start": "1h"}, "apply to mode session"},
	} {
		if _, err := component.NewParams(spec, c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.p, err, c.want)
		}
	}
}

// Rolling VWAP over random out-of-order streams equals recomputing it over
// the time-sorted records for each one.
func TestRollingEqualsRecomputation(t *testing.T) {
	f := func(seed uint64, d uint8) bool {
		rng := rand.New(rand.NewPCG(seed, 6))
		disorder := int64(d%4) * 50 * ms
		window := int64(1+d%5) * 100 * ms
		var in []md.Trade
		base := t0
		for i := 0; i < 300; i++ {
			base += rng.Int64N(30 * ms)
			in = append(in, tr(md.SymID(rng.IntN(2)), base-rng.Int64N(disorder+1), float64(100+rng.IntN(10)), float64(1+rng.IntN(5))))
		}
		h := newHarness(t, map[string]any{"mode": "rolling", "window": time.Duration(window).String()})
		newest := md.MinTime
		var got []rec
		for i := 0; i < len(in); {
			n := 1 + rng.IntN(10)
			b := in[i:min(i+n, len(in))]
			for _, x := range b {
				newest = max(newest, x.TS)
			}
			h.trades(b...)
			got = append(got, h.wm(newest-disorder)...)
			i += n
		}
		got = append(got, h.wm(md.MaxTime)...)
		var want []rec
		for sym := md.SymID(0); sym < 2; sym++ {
			var s []md.Trade
			for _, x := range in {
				if x.Sym == sym {
					s = append(s, x)
				}
			}
			slices.SortStableFunc(s, func(a, b md.Trade) int { return cmp.Compare(a.TS, b.TS) })
			for i, x := range s {
				var pv, vol, n float64
				for _, y := range s[:i+1] {
					if y.TS > x.TS-window {
						pv += y.Price * y.Size
						vol += y.Size
						n++
					}
				}
				want = append(want, rec{sym, x.TS, [5]float64{x.Price, x.Size, pv / vol, vol, n}})
			}
		}
		slices.SortStableFunc(got, func(a, b rec) int { return cmp.Compare(a.sym, b.sym) })
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			for k := range want[i].v {
				if got[i].ts != want[i].ts || math.Abs(got[i].v[k]-want[i].v[k]) > 1e-9*max(1, math.Abs(want[i].v[k])) {
					t.Logf("row %d: got %v want %v", i, got[i], want[i])
					return false
				}
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 40}); err != nil {
		t.Fatal(err)
	}
}

type sink struct {
	mu   sync.Mutex
	rows []rec
}

func (s *sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Kind == md.KindDerived {
		b.Retain(1)
		s.rows = append(s.rows, rowsOf([]*md.Batch{b})...)
	}
	return nil
}

func TestParallelismFourIsIdentical(t *testing.T) {
	syms := enginetest.Symbols(8)
	rng := rand.New(rand.NewPCG(2, 2))
	var in []md.Trade
	base := t0
	for i := 0; i < 4000; i++ {
		base += rng.Int64N(5 * ms)
		in = append(in, tr(md.SymID(rng.IntN(len(syms))), base-rng.Int64N(40*ms), float64(100+rng.IntN(10)), float64(1+rng.IntN(5))))
	}
	for _, params := range []map[string]any{{"mode": "session"}, {"mode": "rolling", "window": "200ms"}} {
		run := func(par int) []rec {
			spec, _ := component.Lookup(Type)
			p, _ := component.NewParams(spec, params)
			src := enginetest.SourceNode("src", md.KindTrade, &enginetest.Source{Symbols: syms, Trades: in, BatchSize: 11})
			src.MaxOutOfOrderness = 40 * time.Millisecond
			s := &sink{}
			g := &engine.Graph{
				Nodes: []*engine.Node{src, component.Node(spec, p, component.NodeOptions{ID: "v", Parallelism: par}), enginetest.SinkNode("sink", s)},
				Edges: []*engine.Edge{{From: "src", To: "v"}, {From: "v", To: "sink"}},
			}
			j, err := engine.New(g, engine.Options{Job: "vwap-test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			slices.SortStableFunc(s.rows, func(a, b rec) int {
				if c := cmp.Compare(a.sym, b.sym); c != 0 {
					return c
				}
				return cmp.Compare(a.ts, b.ts)
			})
			return s.rows
		}
		one, four := run(1), run(4)
		if len(one) != len(in) || !slices.Equal(one, four) {
			t.Fatalf("%v: parallelism 4 differs (%d vs %d rows)", params, len(four), len(one))
		}
	}
}

// BenchmarkSessionVWAP: in-order trades over 100 symbols, the watermark
// after each batch of 1024.
func BenchmarkSessionVWAP(b *testing.B) { benchVWAP(b, map[string]any{"mode": "session"}) }

// BenchmarkRollingVWAP: the same over a rolling 1ms window (10 trades
// trades of each symbol in it).
func BenchmarkRollingVWAP(b *testing.B) {
	benchVWAP(b, map[string]any{"mode": "rolling", "window": "1ms"})
}

func benchVWAP(b *testing.B, params map[string]any) {
	in := optest.NewInstance(b, Type, params, enginetest.Symbols(100))
	const n = 1024
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = make([]md.Trade, n)
	ts := t0
	optest.Bench(b, in, n, 64, func(int) {
		for k := range batch.Trades {
			ts += 1000
			batch.Trades[k] = tr(md.SymID(k%100), ts, float64(100+k%7), 1)
		}
		in.Process(batch)
		in.Watermark(ts + 1)
	})
}
