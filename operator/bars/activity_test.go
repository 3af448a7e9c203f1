package bars

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

type actHarness struct {
	t  *testing.T
	a  *Activity
	to *enginetest.Output
}

func newActHarness(t *testing.T, params map[string]any) *actHarness {
	t.Helper()
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h := &actHarness{t: t, a: impl.(*Activity), to: enginetest.NewOutput(nil, 0, engine.PortLate)}
	for _, s := range []string{"A", "B", "C"} {
		h.to.NC.Symbols.Intern("test", s)
	}
	if err := h.a.Open(context.Background(), h.to.NC); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *actHarness) trades(ts ...md.Trade) {
	h.t.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	if err := h.a.Process(context.Background(), b, h.to.Output); err != nil {
		h.t.Fatalf("process: %v", err)
	}
}

func (h *actHarness) wm(w int64) {
	h.t.Helper()
	if err := h.a.OnWatermark(context.Background(), w, h.to.Output); err != nil {
		h.t.Fatalf("watermark: %v", err)
	}
}

func (h *actHarness) expect(step string, want ...md.Bar) {
	h.t.Helper()
	var got []md.Bar
	for _, b := range h.to.Drain(engine.PortMain) {
		got = append(got, b.Bars...)
		b.Release()
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("%s: bars differ\n got: %s\nwant: %s", step, fmtBars(got), fmtBars(want))
	}
}

// abar is an expected activity bar over [start, end).
func abar(typ md.BarType, iv int64, sym md.SymID, start, end int64, o, h, l, c, vol, vwap float64, n int64) md.Bar {
	return md.Bar{Sym: sym, Start: start, End: end, Interval: iv, Type: typ, Open: o, High: h, Low: l, Close: c, Volume: vol, VWAP: vwap, Trades: n}
}

func TestTickBarsFromKnownTicks(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "tick", "threshold": 3})
	// A: 7 trades, B: 2; B's come between A's. Nothing is folded before
	// the watermark passes it.
	h.trades(tr(symA, t0, 10, 1), tr(symA, t0+ms, 12, 2), tr(symB, t0+ms, 50, 1), tr(symA, t0+2*ms, 9, 3),
		tr(symA, t0+3*ms, 11, 1), tr(symB, t0+4*ms, 51, 1))
	h.expect("before any watermark")
	h.wm(t0 + 2*ms) // releases t0 and t0+1ms: A has 2
	h.expect("two ticks")
	h.wm(t0 + 3*ms) // releases A's third
	vw := (10*1 + 12*2 + 9*3) / 6.0
	h.expect("first bar", abar(md.BarTick, 3, symA, t0, t0+2*ms+1, 10, 12, 9, 9, 6, vw, 3))
	h.trades(tr(symA, t0+5*ms, 13, 1), tr(symA, t0+6*ms, 14, 1), tr(symA, t0+7*ms, 8, 1))
	h.wm(t0 + 8*ms)
	h.expect("second bar", abar(md.BarTick, 3, symA, t0+3*ms, t0+6*ms+1, 11, 14, 11, 14, 3, 38/3.0, 3))
	h.wm(md.MaxTime) // end of stream: the partial bars, in symbol order
	h.expect("flush",
		abar(md.BarTick, 3, symA, t0+7*ms, t0+7*ms+microsecond, 8, 8, 8, 8, 1, 8, 1),
		abar(md.BarTick, 3, symB, t0+ms, t0+4*ms+1, 50, 51, 50, 51, 2, 50.5, 2))
}

func TestTickBarsFoldInEventTimeOrder(t *testing.T) {
	// The same ticks in two arrival orders within the tolerance make the
	// same bars: open is the earliest, close the latest, and a bar is the
	// first three in time, not in arrival.
	run := func(order []md.Trade) []md.Bar {
		h := newActHarness(t, map[string]any{"bar_type": "tick", "threshold": 3, "label": "close"})
		h.trades(order...)
		h.wm(md.MaxTime)
		var got []md.Bar
		for _, b := range h.to.Drain(engine.PortMain) {
			got = append(got, b.Bars...)
		}
		return got
	}
	sorted := []md.Trade{tr(symA, t0, 1, 1), tr(symA, t0+ms, 2, 1), tr(symA, t0+ms, 3, 1), tr(symA, t0+2*ms, 4, 1), tr(symA, t0+3*ms, 5, 1)}
	shuffled := []md.Trade{sorted[3], sorted[1], sorted[0], sorted[4], sorted[2]} // ties keep arrival order: 2 before 3
	want := []md.Bar{
		abar(md.BarTick, 3, symA, t0, t0+ms+1, 1, 3, 1, 3, 3, 2, 3),
		abar(md.BarTick, 3, symA, t0+2*ms, t0+3*ms+1, 4, 5, 4, 5, 2, 4.5, 2),
	}
	for i := range want {
		want[i].LabelEnd = true
	}
	if got := run(sorted); !reflect.DeepEqual(got, want) {
		t.Fatalf("sorted: %s\nwant %s", fmtBars(got), fmtBars(want))
	}
	if got := run(shuffled); !reflect.DeepEqual(got, want) {
		t.Fatalf("shuffled: %s\nwant %s", fmtBars(got), fmtBars(want))
	}
}

func TestActivityLateRecordsDropOrSideOutput(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "tick", "threshold": 2})
	h.trades(tr(symA, t0+5*ms, 10, 1))
	h.wm(t0 + 5*ms)
	h.trades(tr(symA, t0+4*ms, 11, 1), tr(symA, t0+5*ms, 12, 1)) // the first is late
	h.wm(t0 + 6*ms)
	h.expect("late one left out", abar(md.BarTick, 2, symA, t0+5*ms, t0+5*ms+microsecond, 10, 12, 10, 12, 2, 11, 2))
	if d := h.to.NC.Stats.Drops(); d[DropLate] != 1 {
		t.Fatalf("drops %v, want late 1", d)
	}

	h = newActHarness(t, map[string]any{"bar_type": "volume", "threshold": 5, "late_policy": "side_output"})
	h.wm(t0)
	h.trades(tr(symB, t0-1, 10, 7))
	late := h.to.Drain(engine.PortLate)
	if len(late) != 1 || late[0].Reason != DropLate || !reflect.DeepEqual(late[0].Trades, []md.Trade{tr(symB, t0-1, 10, 7)}) {
		t.Fatalf("late port: %v", late)
	}
}

func TestVolumeBarsWholeTrades(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "volume", "threshold": 10})
	h.trades(tr(symA, t0, 10, 4), tr(symA, t0+ms, 11, 4), tr(symA, t0+2*ms, 12, 4), tr(symA, t0+3*ms, 13, 5), tr(symA, t0+4*ms, 14, 5))
	h.wm(md.MaxTime)
	h.expect("bars",
		abar(md.BarVolume, 10, symA, t0, t0+2*ms+1, 10, 12, 10, 12, 12, (40+44+48)/12.0, 3),
		abar(md.BarVolume, 10, symA, t0+3*ms, t0+4*ms+1, 13, 14, 13, 14, 10, (65+70)/10.0, 2))
}

func TestVolumeBarsSplitLargeTrades(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "volume", "threshold": 10, "split_large_trades": true})
	// 4 + 4 + 2 of the third; its other 2 + 8 of the 25; 10 of it; 7 left.
	h.trades(tr(symA, t0, 10, 4), tr(symA, t0+ms, 11, 4), tr(symA, t0+2*ms, 12, 4), tr(symA, t0+3*ms, 13, 25))
	h.wm(t0 + 4*ms)
	t2, t3 := t0+2*ms, t0+3*ms
	h.expect("three full bars",
		abar(md.BarVolume, 10, symA, t0, t2+1, 10, 12, 10, 12, 10, (40+44+24)/10.0, 3),
		abar(md.BarVolume, 10, symA, t2+1, t3+1, 12, 13, 12, 13, 10, (24+104)/10.0, 2),
		abar(md.BarVolume, 10, symA, t3+1, t3+1+microsecond, 13, 13, 13, 13, 10, 13, 1))
	h.wm(md.MaxTime)
	h.expect("the rest at end of stream",
		abar(md.BarVolume, 10, symA, t3+1+microsecond, t3+1+2*microsecond, 13, 13, 13, 13, 7, 13, 1))
}

func TestVolumeBarsSplitDecimalSizesExactly(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "volume", "threshold": 1, "split_large_trades": true})
	h.to.NC.Symbols.NoteSizeDecimals(symA, 1)
	// 0.3 four times: 0.3+0.3+0.3 is 0.8999999999999999 in binary, so
	// without rounding to the sizes' decimals the split part would be
	// 0.10000000000000009 and the rest 0.19999999999999990.
	h.trades(tr(symA, t0, 10, 0.3), tr(symA, t0+ms, 10, 0.3), tr(symA, t0+2*ms, 10, 0.3), tr(symA, t0+3*ms, 10, 0.3))
	h.wm(md.MaxTime)
	got := h.to.Drain(engine.PortMain)[0].Bars
	if len(got) != 2 || got[0].Volume != 1 || got[0].Trades != 4 || got[1].Volume != 0.2 || got[1].Trades != 1 {
		t.Fatalf("bars: %s", fmtBars(got))
	}
}

func TestValueBarsSplitLargeTrades(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "value", "threshold": 100, "split_large_trades": true})
	// 3 @ 10 is 30; 5 @ 20 is 100, of which 70 (3.5) fill the bar and 30
	// (1.5) stay.
	h.trades(tr(symA, t0, 10, 3), tr(symA, t0+ms, 20, 5))
	h.wm(md.MaxTime)
	h.expect("bars",
		abar(md.BarValue, 100, symA, t0, t0+ms+1, 10, 20, 10, 20, 6.5, 100/6.5, 2),
		abar(md.BarValue, 100, symA, t0+ms+1, t0+ms+1+microsecond, 20, 20, 20, 20, 1.5, 20, 1))

	h = newActHarness(t, map[string]any{"bar_type": "value", "threshold": 100})
	h.trades(tr(symA, t0, 10, 3), tr(symA, t0+ms, 20, 5), tr(symA, t0+2*ms, 25, 4))
	h.wm(md.MaxTime)
	h.expect("whole trades", abar(md.BarValue, 100, symA, t0, t0+ms+1, 10, 20, 10, 20, 8, 130/8.0, 2),
		abar(md.BarValue, 100, symA, t0+2*ms, t0+2*ms+microsecond, 25, 25, 25, 25, 4, 25, 1))
}

// The imbalance bars below are worked by hand in the comments, with
// alpha = 2/(3+1) = 0.5 for both means.
func TestTickImbalanceBarsByHand(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "tick_imbalance", "expected_ticks": 3, "ewma_bars": 3, "ewma_ticks": 3,
		"min_expected_ticks": 1, "max_expected_ticks": 100})
	prices := []float64{10, 11, 12, 12, 11, 12, 13, 14, 13, 12, 11, 10, 11}
	var ts []md.Trade
	for i, p := range prices {
		ts = append(ts, tr(symA, t0+int64(i)*ms, p, 1))
	}
	h.trades(ts...)
	h.wm(t0 + 100*ms)
	at := func(i int) int64 { return t0 + int64(i)*ms }
	// Bar 1 (warm-up, a tick bar of 3): signs 0, +1, +1. E[b]: 0, 0.5,
	// 0.75. E[T] = 3 + 0.5(3-3) = 3.
	// Bar 2: threshold 3 × 0.75 = 2.25. Signs +1 (12 = 12 keeps +1), -1,
	// +1, +1, +1: θ = 1, 0, 1, 2, 3 ≥ 2.25 at the 5th. E[b]: 0.875,
	// -0.0625, 0.46875, 0.734375, 0.8671875. E[T] = 3 + 0.5(5-3) = 4.
	// Bar 3: threshold 4 × 0.8671875 = 3.46875. Signs -1 ×4: θ = -4 at the
	// 4th. The last tick (+1) stays open until the end of the stream.
	h.expect("three bars",
		abar(md.BarTickImbalance, 3, symA, at(0), at(2)+1, 10, 12, 10, 12, 3, 11, 3),
		abar(md.BarTickImbalance, 3, symA, at(3), at(7)+1, 12, 14, 11, 14, 5, 62/5.0, 5),
		abar(md.BarTickImbalance, 3, symA, at(8), at(11)+1, 13, 13, 10, 10, 4, 11.5, 4))
	// Bar 4 opened at the last tick with E[T] = 4 + 0.5(4-4) and E[b]
	// after bar 3's four -1s: its threshold is fixed at that.
	eb := 0.8671875
	for range 4 {
		eb += 0.5 * (-1 - eb)
	}
	if s := h.a.st.Get(symA); s.eT != 4 || s.thresh != 4*math.Abs(eb) || s.n != 1 {
		t.Fatalf("E[T] %v, open bar's threshold %v (want %v), %d ticks", s.eT, s.thresh, 4*math.Abs(eb), s.n)
	}
}

func TestVolumeImbalanceBarsByHand(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "volume_imbalance", "expected_ticks": 2, "ewma_bars": 3, "ewma_ticks": 3})
	at := func(i int) int64 { return t0 + int64(i)*ms }
	h.trades(tr(symA, at(0), 10, 1), tr(symA, at(1), 11, 2), // warm-up: x = 0, +2; E[bv] 0, 1; E[T] 2
		tr(symA, at(2), 11, 1), tr(symA, at(3), 10, 3), // threshold 2×1: x = +1, -3; θ = -2 closes; E[bv] 1, -1; E[T] 2
		tr(symA, at(4), 10, 1), tr(symA, at(5), 12, 1), tr(symA, at(6), 9, 4)) // threshold 2×1: θ = -1, 0, -4 closes
	h.wm(md.MaxTime)
	h.expect("bars",
		abar(md.BarVolumeImbalance, 2, symA, at(0), at(1)+1, 10, 11, 10, 11, 3, 32/3.0, 2),
		abar(md.BarVolumeImbalance, 2, symA, at(2), at(3)+1, 11, 11, 10, 10, 4, 41/4.0, 2),
		abar(md.BarVolumeImbalance, 2, symA, at(4), at(6)+1, 10, 12, 9, 9, 6, 58/6.0, 3))
	if s := h.a.st.Get(symA); s.eT != 2.5 {
		t.Fatalf("E[T] %v, want 2 + 0.5(3-2)", s.eT)
	}
}

func TestActivityQuoteTickBars(t *testing.T) {
	h := newActHarness(t, map[string]any{"bar_type": "tick", "threshold": 2, "price": "bid"})
	b := md.NewBatch(md.KindQuote)
	b.Quotes = []md.Quote{{Sym: symA, TS: t0, Bid: 10, Ask: 11}, {Sym: symA, TS: t0 + ms, Ask: 12}, {Sym: symA, TS: t0 + 2*ms, Bid: 12, Ask: 13}}
	if err := h.a.Process(context.Background(), b, h.to.Output); err != nil {
		t.Fatal(err)
	}
	h.wm(md.MaxTime)
	want := abar(md.BarTick, 2, symA, t0, t0+2*ms+1, 10, 12, 10, 12, 0, 11, 2)
	want.Source = md.FromBid
	h.expect("quote bar", want)
	if d := h.to.NC.Stats.Drops(); d[DropMissingSide] != 1 {
		t.Fatalf("drops %v", d)
	}
	h = newActHarness(t, map[string]any{"bar_type": "volume", "threshold": 2})
	if err := h.a.Process(context.Background(), b, h.to.Output); err == nil || !strings.Contains(err.Error(), "bar_type volume takes trades, got quotes") {
		t.Fatalf("quotes into volume bars: %v", err)
	}
}

func TestActivitySpecRejectsBadParams(t *testing.T) {
	spec, _ := component.Lookup(Type)
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{}, "params.interval: time bars need an interval (bar length, 1ms or more)"},
		{map[string]any{"bar_type": "tick"}, "params.threshold: tick bars need a threshold (records per bar, a whole number)"},
		{map[string]any{"bar_type": "volume", "threshold": 0}, "params.threshold: 0 is below the minimum 1"},
		{map[string]any{"bar_type": "value", "threshold": 10, "interval": "1s"}, "params.interval: interval applies only to time bars, not bar_type value"},
		{map[string]any{"bar_type": "tick", "threshold": 10, "split_large_trades": true}, "params.split_large_trades: split_large_trades applies only to volume and value bars, not bar_type tick"},
		{map[string]any{"interval": "1s", "threshold": 10}, "params.threshold: threshold applies only to tick, volume and value bars, not bar_type time"},
		{map[string]any{"bar_type": "tick", "threshold": 10, "late_policy": "update"}, "params.late_policy: late_policy update applies only to time bars: a late record would shift every later tick bar; use drop or side_output"},
		{map[string]any{"bar_type": "tick_imbalance"}, "params.expected_ticks: tick_imbalance bars need expected_ticks (the first estimate of ticks per bar)"},
		{map[string]any{"bar_type": "volume_imbalance", "expected_ticks": 10, "threshold": 5}, "params.threshold: threshold applies only to tick, volume and value bars, not bar_type volume_imbalance"},
		{map[string]any{"bar_type": "volume", "threshold": 10, "ewma_bars": 5}, "params.ewma_bars: ewma_bars applies only to imbalance bars, not bar_type volume"},
	} {
		_, err := component.NewParams(spec, c.params)
		if err == nil || err.Error() != c.want {
			t.Errorf("params %v: error %v\nwant %s", c.params, err, c.want)
		}
	}
	p, _ := component.NewParams(spec, map[string]any{"bar_type": "tick_imbalance", "expected_ticks": 10, "min_expected_ticks": 20})
	if _, err := spec.NewProcessor(p, 0); err == nil || !strings.Contains(err.Error(), "want 1 <= min_expected_ticks (20) <= expected_ticks (10)") {
		t.Fatalf("min above expected: %v", err)
	}
}

// model builds tick or volume bars the slow, obvious way: drop the records
// that arrive behind the watermark (newest ts so far minus ooo), sort each
// symbol's records by time (ties in arrival order), and cut: tick bars
// every n records; volume bars with split_large_trades by laying the
// whole-unit sizes out unit by unit and cutting every n units.
func model(stream []md.Trade, ooo int64, typ string, n int64) (bars []md.Bar, late int) {
	bySym := map[md.SymID][]md.Trade{}
	newest := md.MinTime
	for _, t := range stream {
		if newest != md.MinTime && t.TS < newest-ooo {
			late++
			continue
		}
		newest = max(newest, t.TS)
		bySym[t.Sym] = append(bySym[t.Sym], t)
	}
	for sym, ts := range bySym {
		slices.SortStableFunc(ts, func(a, b md.Trade) int { return cmp.Compare(a.TS, b.TS) })
		type unit struct {
			md.Trade
			i int // which record
		}
		var units []unit // one per record (tick) or per unit of size (volume)
		for i, t := range ts {
			k := int64(1)
			if typ == "volume" {
				k = int64(t.Size)
			}
			for range k {
				units = append(units, unit{t, i})
			}
		}
		lastEnd, ended := int64(0), false
		for i := 0; i < len(units); i += int(n) {
			chunk := units[i:min(i+int(n), len(units))]
			b := md.Bar{Sym: sym, Interval: n, Type: md.BarTick, Open: chunk[0].Price, High: chunk[0].Price, Low: chunk[0].Price, Close: chunk[len(chunk)-1].Price}
			if typ == "volume" {
				b.Type = md.BarVolume
			}
			var pv float64
			for j, u := range chunk {
				b.High, b.Low = max(b.High, u.Price), min(b.Low, u.Price)
				sz := u.Size
				if typ == "volume" {
					sz = 1
				}
				b.Volume += sz
				pv += u.Price * sz
				if j == 0 || u.i != chunk[j-1].i {
					b.Trades++
				}
			}
			b.VWAP = pv / b.Volume
			b.Start = chunk[0].TS
			if ended && lastEnd > b.Start {
				b.Start = lastEnd
			}
			b.End = max(chunk[len(chunk)-1].TS+1, b.Start+microsecond)
			lastEnd, ended = b.End, true
			bars = append(bars, b)
		}
	}
	return bars, late
}

func sortBySymStart(bs []md.Bar) {
	slices.SortFunc(bs, func(a, b md.Bar) int {
		if c := cmp.Compare(a.Sym, b.Sym); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
}

// Random out-of-order streams, cut into random batches, run through the
// engine at parallelism 1 to 3: the bars equal the model's.
func TestActivityBarsEqualAModelWhateverTheBatchingAndParallelism(t *testing.T) {
	seeds := uint64(6)
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 13))
		ooo := []int64{0, 5 * ms, 50 * ms}[rng.IntN(3)]
		syms := md.NewSymbolTable()
		nsym := 1 + rng.IntN(4)
		ids := make([]md.SymID, nsym)
		for i := range ids {
			ids[i] = syms.Intern("test", fmt.Sprintf("S%d", i))
		}
		stream := make([]md.Trade, 500+rng.IntN(2000))
		nominal := t0
		for i := range stream {
			nominal += rng.Int64N(3 * ms)
			ts := nominal - rng.Int64N(ooo+1)
			switch r := rng.IntN(30); {
			case r == 0:
				ts = nominal - ooo - 1 - rng.Int64N(20*ms)
			case r < 5 && i > 0:
				ts = stream[i-1].TS
			}
			stream[i] = tr(ids[rng.IntN(nsym)], ts, float64(100+rng.IntN(50))/4, float64(1+rng.IntN(9)))
		}
		typ := []string{"tick", "volume"}[seed%2]
		n := int64(1 + rng.IntN(20))
		want, wantLate := model(stream, ooo, typ, n)
		sortBySymStart(want)
		params := map[string]any{"bar_type": typ, "threshold": n, "late_policy": "side_output"}
		if typ == "volume" {
			params["split_large_trades"] = true
		}
		for _, maxBatch := range []int{1, 7, len(stream)} {
			batches := cutRandomly(stream, rng, maxBatch)
			for par := 1; par <= 3; par++ {
				got, late, _ := runJob(t, syms, batches, time.Duration(ooo), params, par)
				sortBySymStart(got)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d %v ooo %v batches ≤ %d parallelism %d: %d bars, model %d\n got: %s\nwant: %s",
						seed, params, time.Duration(ooo), maxBatch, par, len(got), len(want), fmtBars(got), fmtBars(want))
				}
				if len(late) != wantLate {
					t.Fatalf("seed %d: %d late, model %d", seed, len(late), wantLate)
				}
			}
		}
	}
}

// A snapshot taken mid-stream and restored (into one instance or two)
// continues exactly as the uninterrupted run.
func TestActivitySnapshotRestoreContinuesExactly(t *testing.T) {
	for _, params := range []map[string]any{
		{"bar_type": "volume", "threshold": 7, "split_large_trades": true},
		{"bar_type": "tick_imbalance", "expected_ticks": 4, "ewma_bars": 3, "ewma_ticks": 5},
		{"bar_type": "volume_imbalance", "expected_ticks": 3},
	} {
		rng := rand.New(rand.NewPCG(7, 7))
		var stream []md.Trade
		for i := range 400 {
			stream = append(stream, tr(md.SymID(rng.IntN(3)), t0+int64(i)*ms-rng.Int64N(3*ms), float64(90+rng.IntN(20)), float64(1+rng.IntN(5))))
		}
		feed := func(h *actHarness, part []md.Trade, newest *int64) {
			for _, tr := range part {
				h.trades(tr)
				*newest = max(*newest, tr.TS)
				h.wm(*newest - 3*ms)
			}
		}
		whole := newActHarness(t, params)
		var nw int64 = md.MinTime
		feed(whole, stream, &nw)
		whole.wm(md.MaxTime)
		var want []md.Bar
		for _, b := range whole.to.Drain(engine.PortMain) {
			want = append(want, b.Bars...)
		}
		sortBySymStart(want)

		for _, instances := range []int{1, 2} {
			first := newActHarness(t, params)
			nw = md.MinTime
			feed(first, stream[:170], &nw)
			var got []md.Bar
			for _, b := range first.to.Drain(engine.PortMain) {
				got = append(got, b.Bars...)
			}
			blob, err := first.a.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var hs []*actHarness
			for i := range instances {
				h := newActHarness(t, params)
				h.a.instance, h.a.instances = i, instances
				if err := h.a.Restore(context.Background(), [][]byte{nil, blob}); err != nil {
					t.Fatal(err)
				}
				hs = append(hs, h)
			}
			for _, x := range stream[170:] {
				hs[keyed.KeyOf(first.to.NC.Symbols, x.Sym).Owner(instances)].trades(x)
				nw = max(nw, x.TS)
				for _, h := range hs {
					h.wm(nw - 3*ms)
				}
			}
			for _, h := range hs {
				h.wm(md.MaxTime)
				for _, b := range h.to.Drain(engine.PortMain) {
					got = append(got, b.Bars...)
				}
			}
			sortBySymStart(got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%v restored into %d: %d bars, want %d\n got: %s\nwant: %s", params, instances, len(got), len(want), fmtBars(got), fmtBars(want))
			}
		}
	}
}

// runActivity drives an activity bar builder the way runDirect drives the
// time bar builder and returns the bars and trades it emitted.
func runActivity(tb testing.TB, syms *md.SymbolTable, batches []*md.Batch, params map[string]any) (bars, trades int64) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, params)
	if err != nil {
		tb.Fatal(err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		tb.Fatal(err)
	}
	op := impl.(*Activity)
	to := enginetest.NewOutput(&engine.NodeContext{Symbols: syms}, 0, engine.PortLate)
	ctx := context.Background()
	if err := op.Open(ctx, to.NC); err != nil {
		tb.Fatal(err)
	}
	collect := func() {
		for _, b := range to.Drain(engine.PortMain) {
			bars += int64(len(b.Bars))
			for i := range b.Bars {
				trades += b.Bars[i].Trades
			}
			b.Release()
		}
	}
	for _, b := range batches {
		if err := op.Process(ctx, b, to.Output); err != nil {
			tb.Fatal(err)
		}
		if err := op.OnWatermark(ctx, b.Trades[len(b.Trades)-1].TS, to.Output); err != nil {
			tb.Fatal(err)
		}
		collect()
	}
	if err := op.OnWatermark(ctx, md.MaxTime, to.Output); err != nil {
		tb.Fatal(err)
	}
	collect()
	if d := to.NC.Stats.Drops(); len(d) != 0 {
		tb.Fatalf("drops %v", d)
	}
	return bars, trades
}

// BenchmarkActivityBars runs the time-bar workload (1M trades, 100
// symbols) through each activity bar type, with the time bars as the
// reference in the same run.
func BenchmarkActivityBars(b *testing.B) {
	const n = 1_000_000
	syms := md.NewSymbolTable()
	batches := workload(n, 100, 42, syms, 1024)
	for _, c := range []struct {
		name   string
		params map[string]any
	}{
		{"time_1s", map[string]any{"interval": "1s"}},
		{"tick_100", map[string]any{"bar_type": "tick", "threshold": 100}},
		{"volume_5000", map[string]any{"bar_type": "volume", "threshold": 5000}},
		{"volume_500_split", map[string]any{"bar_type": "volume", "threshold": 500, "split_large_trades": true}},
		{"value_500000", map[string]any{"bar_type": "value", "threshold": 500000}},
		{"tick_imbalance", map[string]any{"bar_type": "tick_imbalance", "expected_ticks": 100}},
		{"volume_imbalance", map[string]any{"bar_type": "volume_imbalance", "expected_ticks": 100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for range b.N {
				if c.name == "time_1s" {
					var cs checksum
					runDirect(b, syms, batches, &cs, nil)
					continue
				}
				if _, trades := runActivity(b, syms, batches, c.params); trades < n {
					b.Fatalf("%d trades in bars", trades)
				}
			}
			reportPerTrade(b, time.Since(start), cpuTime()-cpu, n)
		})
	}
}
