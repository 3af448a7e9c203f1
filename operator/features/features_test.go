package features

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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

var all = []string{"sma(2)", "ema(3)", "stddev(2)", "return", "log_return", "zscore(2)", "rsi(2)", "realized_vol(2)"}

type rec = optest.Row

type harness struct {
	*optest.Instance
	f *Features
}

func newHarness(t testing.TB, fs []string) *harness {
	in := optest.NewInstance(t, Type, map[string]any{"features": fs}, []string{"A", "B"})
	return &harness{Instance: in, f: in.Impl.(*Features)}
}

func (h *harness) trades(ts ...md.Trade) { h.Trades(ts...) }

func (h *harness) wm(w int64) []rec {
	h.Watermark(w)
	return optest.Rows(h.Drain(engine.PortMain))
}

func tr(sym md.SymID, tsMS int64, p float64) md.Trade {
	return md.Trade{Sym: sym, TS: t0 + tsMS*ms, Price: p, Size: 1}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func TestHandComputed(t *testing.T) {
	h := newHarness(t, all)
	// 12 arrives before 11: within the watermark, so the series is 10 11 12 11
	h.trades(tr(0, 0, 10), tr(0, 20, 12), tr(0, 10, 11), tr(1, 5, 7))
	got := h.wm(t0 + 20*ms) // releases ts < 20ms
	h.trades(tr(0, 30, 11))
	got = append(got, h.wm(md.MaxTime)...)
	l1, l2, l3 := math.Log(1.1), math.Log(12.0/11), math.Log(11.0/12)
	want := []rec{
		// price sma ema sd ret lr z rsi rv
		{Sym: 0, TS: t0, V: []float64{10, 10, 10, 0, 0, 0, 0, 50, 0}},
		{Sym: 0, TS: t0 + 10*ms, V: []float64{11, 10.5, 10.5, 0.5, 0.1, l1, 1, 100, l1}},
		{Sym: 1, TS: t0 + 5*ms, V: []float64{7, 7, 7, 0, 0, 0, 0, 50, 0}},
		{Sym: 0, TS: t0 + 20*ms, V: []float64{12, 11.5, 11.25, 0.5, 1.0 / 11, l2, 1, 100, math.Sqrt(l1*l1 + l2*l2)}},
		{Sym: 0, TS: t0 + 30*ms, V: []float64{11, 11.5, 11.125, 0.5, 11.0/12 - 1, l3, -1, 50, math.Sqrt(l2*l2 + l3*l3)}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Sym != w.Sym || g.TS != w.TS {
			t.Fatalf("row %d: got %v want %v", i, g, w)
		}
		for k := range w.V {
			if !near(g.V[k], w.V[k]) {
				t.Fatalf("row %d field %d: got %v want %v", i, k, g.V[k], w.V[k])
			}
		}
	}
	h.trades(tr(0, 1, 99))
	if d := h.Out.NC.Stats.Drops(); d["late"] != 1 {
		t.Fatalf("drops %v", d)
	}
}

// brute recomputes every feature from scratch for each record of a
// time-sorted series.
func brute(fs []Feature, ps []float64) [][]float64 {
	var out [][]float64
	gain, loss := make([]float64, len(fs)), make([]float64, len(fs))
	for c, x := range ps {
		row := []float64{x}
		for i, f := range fs {
			lo := max(0, c-f.N+1)
			win := ps[lo : c+1]
			var mean, ss float64
			for _, y := range win {
				mean += y
			}
			mean /= float64(len(win))
			for _, y := range win {
				ss += (y - mean) * (y - mean)
			}
			sd := math.Sqrt(ss / float64(len(win)))
			var v float64
			switch f.Fn {
			case SMA:
				v = mean
			case Stddev:
				v = sd
			case ZScore:
				if sd > 0 {
					v = (x - mean) / sd
				}
			case Return:
				if c > 0 {
					v = x/ps[c-1] - 1
				}
			case LogReturn:
				if c > 0 {
					v = math.Log(x / ps[c-1])
				}
			case RealizedVol:
				var s float64
				for j := max(1, c-f.N+1); j <= c; j++ {
					r := math.Log(ps[j] / ps[j-1])
					s += r * r
				}
				v = math.Sqrt(s)
			case RSI:
				if c > 0 {
					up, down := max(x-ps[c-1], 0), max(ps[c-1]-x, 0)
					if c <= f.N {
						gain[i] += (up - gain[i]) / float64(c)
						loss[i] += (down - loss[i]) / float64(c)
					} else {
						gain[i] = (gain[i]*float64(f.N-1) + up) / float64(f.N)
						loss[i] = (loss[i]*float64(f.N-1) + down) / float64(f.N)
					}
				}
				switch {
				case gain[i] == 0 && loss[i] == 0:
					v = 50
				case loss[i] == 0:
					v = 100
				default:
					v = 100 - 100/(1+gain[i]/loss[i])
				}
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}

// Over random out-of-order streams the features equal a recomputation over
// the time-sorted series (EMA is recursive by definition and is checked by
// the hand test).
func TestEqualsRecomputation(t *testing.T) {
	specs := []string{"sma(5)", "stddev(7)", "zscore(4)", "return", "log_return", "rsi(3)", "realized_vol(6)"}
	var fs []Feature
	for _, s := range specs {
		f, _ := Parse(s)
		fs = append(fs, f)
	}
	f := func(seed uint64, d uint8) bool {
		rng := rand.New(rand.NewPCG(seed, 4))
		disorder := int64(d%4) * 30 * ms
		var in []md.Trade
		base := t0
		for i := 0; i < 300; i++ {
			base += rng.Int64N(20 * ms)
			in = append(in, md.Trade{Sym: md.SymID(rng.IntN(2)), TS: base - rng.Int64N(disorder+1), Price: float64(100 + rng.IntN(10)), Size: 1})
		}
		h := newHarness(t, specs)
		var got []rec
		newest := md.MinTime
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
		for sym := md.SymID(0); sym < 2; sym++ {
			var series []md.Trade
			for _, x := range in {
				if x.Sym == sym {
					series = append(series, x)
				}
			}
			slices.SortStableFunc(series, func(a, b md.Trade) int { return cmp.Compare(a.TS, b.TS) })
			var ps []float64
			for _, x := range series {
				ps = append(ps, x.Price)
			}
			want := brute(fs, ps)
			k := 0
			for _, g := range got {
				if g.Sym != sym {
					continue
				}
				if g.TS != series[k].TS {
					t.Logf("sym %d row %d ts", sym, k)
					return false
				}
				for j := range want[k] {
					if !near(g.V[j], want[k][j]) {
						t.Logf("sym %d row %d %s: got %v want %v", sym, k, specs[max(j-1, 0)], g.V[j], want[k][j])
						return false
					}
				}
				k++
			}
			if k != len(series) {
				return false
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 40}); err != nil {
		t.Fatal(err)
	}
}

func TestBadParams(t *testing.T) {
	spec, _ := component.Lookup(Type)
	for _, c := range []struct {
		fs   []string
		want string
	}{
		{[]string{"sma(0)"}, "needs a window of 1 to 100000 records"},
		{[]string{"macd(12)"}, `unknown function "macd"`},
		{[]string{"return(3)"}, "return takes no window"},
		{[]string{"sma(3)", "sma(3)"}, "declared twice"},
	} {
		if _, err := component.NewParams(spec, map[string]any{"features": c.fs}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.fs, err, c.want)
		}
	}
}

func TestParallelismFourIsIdentical(t *testing.T) {
	syms := enginetest.Symbols(8)
	rng := rand.New(rand.NewPCG(1, 1))
	var in []md.Trade
	base := t0
	for i := 0; i < 4000; i++ {
		base += rng.Int64N(5 * ms)
		in = append(in, md.Trade{Sym: md.SymID(rng.IntN(len(syms))), TS: base - rng.Int64N(40*ms), Price: float64(100 + rng.IntN(10)), Size: 1})
	}
	run := func(par int) []rec {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: in, BatchSize: 11}, Type: Type,
			Params: map[string]any{"features": all}, Parallelism: par, OOO: 40 * time.Millisecond})
		rows := res.Ports[engine.PortMain].Rows()
		// per symbol in order of ts (instances interleave symbols)
		slices.SortStableFunc(rows, func(a, b rec) int {
			if c := cmp.Compare(a.Sym, b.Sym); c != 0 {
				return c
			}
			return cmp.Compare(a.TS, b.TS)
		})
		return rows
	}
	one, four := run(1), run(4)
	if len(one) != len(in) || len(four) != len(one) {
		t.Fatalf("rows %d / %d, inputs %d", len(one), len(four), len(in))
	}
	for i := range one {
		if one[i].Sym != four[i].Sym || one[i].TS != four[i].TS || !slices.Equal(one[i].V, four[i].V) {
			t.Fatalf("row %d differs: %v vs %v", i, one[i], four[i])
		}
	}
}

// BenchmarkFeatures: in-order trades over 100 symbols, five features
// (no log returns), the watermark after each batch of 1024.
func BenchmarkFeatures(b *testing.B) {
	benchFeatures(b, []string{"sma(20)", "ema(12)", "stddev(20)", "return", "rsi(14)"})
}

// BenchmarkFeaturesLogReturns: the same with log returns and realized
// volatility, which take a logarithm per record.
func BenchmarkFeaturesLogReturns(b *testing.B) {
	benchFeatures(b, []string{"sma(20)", "log_return", "realized_vol(30)"})
}

func benchFeatures(b *testing.B, fs []string) {
	in := optest.NewInstance(b, Type, map[string]any{"features": fs}, enginetest.Symbols(100))
	const n = 1024
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = make([]md.Trade, n)
	ts := t0
	optest.Bench(b, in, n, 64, func(int) {
		for k := range batch.Trades {
			ts += 1000
			batch.Trades[k] = md.Trade{Sym: md.SymID(k % 100), TS: ts, Price: float64(100 + k%7), Size: 1}
		}
		in.Process(batch)
		in.Watermark(ts + 1)
	})
}

// TestRealizedVolOfFlatWindowIsZero: once the large returns have left the
// window, a window of zero returns has realized_vol exactly 0, not the
// ~1e-9 the rolling sum's rounding gives through the square root.
func TestRealizedVolOfFlatWindowIsZero(t *testing.T) {
	for _, seq := range [][]float64{
		{100, 103, 107, 101, 109, 100, 100, 100, 100, 100},
		{100, 101, 104, 102, 106, 108, 105, 105, 105, 105, 105, 105},
		{1.1, 1.3, 1.7, 1.2, 1.9, 1.7, 1.7, 1.7, 1.7},
	} {
		h := newHarness(t, []string{"realized_vol(3)"})
		for i, p := range seq {
			h.trades(tr(0, int64(i), p))
		}
		got := h.wm(md.MaxTime)
		if len(got) != len(seq) {
			t.Fatalf("%v: %d rows, want %d", seq, len(got), len(seq))
		}
		// The last three returns are 0: the last row's window is flat.
		if v := got[len(got)-1].V[1]; v != 0 {
			t.Errorf("%v: realized_vol(3) of a flat window = %g, want exactly 0", seq, v)
		}
	}
}
