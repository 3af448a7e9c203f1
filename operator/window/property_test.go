package window

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/quick"
	"time"

	"github.com/mdpio/mdp/md"
)

// randomTrades is a stream of n trades over syms symbols whose event times
// run forward at a random pace, each up to disorder behind the newest one
// (so a source with max_out_of_orderness disorder never makes one late).
// Prices and sizes are small integers, so sums are exact in any order.
func randomTrades(seed uint64, n, syms int, disorder int64) []md.Trade {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]md.Trade, n)
	base := t0
	for i := range out {
		base += rng.Int64N(40 * ms)
		ts := base
		if disorder > 0 {
			ts -= rng.Int64N(disorder)
		}
		out[i] = md.Trade{Sym: md.SymID(rng.IntN(syms)), TS: ts, Price: float64(1 + rng.IntN(50)), Size: float64(1 + rng.IntN(9))}
	}
	return out
}

type rec struct {
	ts     int64
	p, s   float64
	arrive int
}

// brute computes one window's aggregates from its records (in arrival
// order) the direct way.
func brute(sym md.SymID, start, end int64, rs []rec) row {
	x := row{Sym: sym, TS: start, F: map[string]float64{"end": float64((end - t0) / ms)}}
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b rec) int { return cmp.Compare(a.ts, b.ts) })
	var sum, pv, vol float64
	mn, mx := math.Inf(1), math.Inf(-1)
	var vals []float64
	for _, r := range rs {
		sum += r.s
		pv += r.p * r.s
		vol += r.s
		mn, mx = min(mn, r.p), max(mx, r.p)
		vals = append(vals, r.p)
	}
	n := float64(len(rs))
	var mean float64
	for _, v := range vals {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
	}
	slices.Sort(vals)
	x.F["count"] = n
	x.F["sum_size"] = sum
	x.F["min_price"], x.F["max_price"] = mn, mx
	x.F["first_price"], x.F["last_price"] = sorted[0].p, sorted[len(sorted)-1].p
	x.F["mean_price"] = mean
	x.F["stddev_price"] = math.Sqrt(ss / n)
	x.F["vwap"] = pv / vol
	x.F["p50_price"] = Quantile(vals, 0.5)
	return x
}

func bySymbol(trades []md.Trade) map[md.SymID][]rec {
	m := map[md.SymID][]rec{}
	for i, t := range trades {
		m[t.Sym] = append(m[t.Sym], rec{ts: t.TS, p: t.Price, s: t.Size, arrive: i})
	}
	return m
}

// bruteGrid is every non-empty window of size, every slide, per symbol.
func bruteGrid(trades []md.Trade, size, slide int64) []row {
	var out []row
	for sym, rs := range bySymbol(trades) {
		lo, hi := rs[0].ts, rs[0].ts
		for _, r := range rs {
			lo, hi = min(lo, r.ts), max(hi, r.ts)
		}
		for e := md.FloorTo(lo, slide, 0) + slide; e-size <= hi; e += slide {
			var in []rec
			for _, r := range rs {
				if r.ts >= e-size && r.ts < e {
					in = append(in, r)
				}
			}
			if len(in) > 0 {
				out = append(out, brute(sym, e-size, e, in))
			}
		}
	}
	sortRows(out)
	return out
}

// bruteSessions splits each symbol's time-sorted records where two are gap
// or more apart.
func bruteSessions(trades []md.Trade, gap int64) []row {
	var out []row
	for sym, rs := range bySymbol(trades) {
		sorted := slices.Clone(rs)
		slices.SortStableFunc(sorted, func(a, b rec) int { return cmp.Compare(a.ts, b.ts) })
		i := 0
		for j := 1; j <= len(sorted); j++ {
			if j == len(sorted) || sorted[j].ts-sorted[j-1].ts >= gap {
				in := slices.Clone(sorted[i:j])
				slices.SortFunc(in, func(a, b rec) int { return cmp.Compare(a.arrive, b.arrive) })
				out = append(out, brute(sym, sorted[i].ts, sorted[j-1].ts+gap, in))
				i = j
			}
		}
	}
	sortRows(out)
	return out
}

// drive runs trades through the operator in random batches with the
// watermark at the newest time minus disorder after each.
func drive(t *testing.T, params map[string]any, trades []md.Trade, disorder int64, seed uint64) []row {
	h := newHarness(t, Type, params)
	rng := rand.New(rand.NewPCG(seed, 9))
	newest := md.MinTime
	var got []row
	for i := 0; i < len(trades); {
		n := 1 + rng.IntN(20)
		b := trades[i:min(i+n, len(trades))]
		for _, tr := range b {
			newest = max(newest, tr.TS)
		}
		h.trades(b...)
		h.wm(newest - disorder)
		got = append(got, h.rows()...)
		i += n
	}
	h.wm(md.MaxTime)
	got = append(got, h.rows()...)
	if d := h.to.NC.Stats.Drops(); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
	sortRows(got)
	return got
}

func sameRows(t *testing.T, got, want []row) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Logf("%d rows, want %d", len(got), len(want))
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Sym != w.Sym || g.TS != w.TS || g.Early || g.Upd || len(g.F) != len(w.F) {
			t.Logf("row %d: got %v want %v", i, g, w)
			return false
		}
		for k, wv := range w.F {
			gv := g.F[k]
			if math.Abs(gv-wv) > 1e-9*max(1, math.Abs(wv)) {
				t.Logf("row %d %s: got %v want %v", i, k, gv, wv)
				return false
			}
		}
	}
	return true
}

// Sliding windows (and tumbling ones, slide = size) equal a brute-force
// recomputation over random out-of-order streams.
func TestSlidingEqualsBruteForce(t *testing.T) {
	f := func(seed uint64, shape uint8) bool {
		slide := int64(100+int(shape%5)*100) * ms
		size := slide * int64(1+shape%4)
		disorder := int64(shape%3) * 150 * ms
		trades := randomTrades(seed, 400, 3, disorder)
		got := drive(t, map[string]any{"window": "sliding", "size": time.Duration(size).String(), "slide": time.Duration(slide).String(), "aggregations": allAggs}, trades, disorder, seed)
		return sameRows(t, got, bruteGrid(trades, size, slide))
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 60}); err != nil {
		t.Fatal(err)
	}
}

// Session windows equal a brute-force split of the time-sorted records.
func TestSessionsEqualBruteForce(t *testing.T) {
	f := func(seed uint64, shape uint8) bool {
		gap := int64(20+int(shape%6)*30) * ms
		disorder := int64(shape%3) * 100 * ms
		trades := randomTrades(seed, 400, 3, disorder)
		got := drive(t, map[string]any{"window": "session", "gap": time.Duration(gap).String(), "aggregations": allAggs}, trades, disorder, seed)
		return sameRows(t, got, bruteSessions(trades, gap))
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 60}); err != nil {
		t.Fatal(err)
	}
}
