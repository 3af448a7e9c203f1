package bars

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// t0 is 2024-01-02T14:30:00Z, aligned to the minute.
const (
	t0  = int64(1704205800) * int64(time.Second)
	sec = int64(time.Second)
	ms  = int64(time.Millisecond)
)

// Symbol ids, interned in this order by every harness.
const (
	symA md.SymID = iota
	symB
	symC
)

type harness struct {
	t  *testing.T
	b  *Bars
	to *enginetest.Output
}

func newHarness(t *testing.T, params map[string]any) *harness {
	t.Helper()
	return newHarnessNC(t, params, nil)
}

func newHarnessNC(t *testing.T, params map[string]any, nc *engine.NodeContext) *harness {
	t.Helper()
	spec, ok := component.Lookup(Type)
	if !ok {
		t.Fatalf("%s is not registered", Type)
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	h := &harness{t: t, b: impl.(*Bars), to: enginetest.NewOutput(nc, 0, engine.PortLate)}
	for _, s := range []string{"A", "B", "C"} {
		h.to.NC.Symbols.Intern("test", s)
	}
	if err := h.b.Open(context.Background(), h.to.NC); err != nil {
		t.Fatal(err)
	}
	return h
}

func tr(sym md.SymID, ts int64, price, size float64) md.Trade {
	return md.Trade{Sym: sym, TS: ts, Price: price, Size: size}
}

func (h *harness) trades(ts ...md.Trade) {
	h.t.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	if err := h.b.Process(context.Background(), b, h.to.Output); err != nil {
		h.t.Fatalf("process: %v", err)
	}
}

func (h *harness) quotes(qs ...md.Quote) {
	h.t.Helper()
	b := md.NewBatch(md.KindQuote)
	b.Quotes = qs
	if err := h.b.Process(context.Background(), b, h.to.Output); err != nil {
		h.t.Fatalf("process: %v", err)
	}
}

func (h *harness) wm(w int64) {
	h.t.Helper()
	if err := h.b.OnWatermark(context.Background(), w, h.to.Output); err != nil {
		h.t.Fatalf("watermark: %v", err)
	}
}

// bars drains the main port.
func (h *harness) bars() []md.Bar {
	var out []md.Bar
	for _, b := range h.to.Drain(engine.PortMain) {
		if b.Kind != md.KindBar {
			h.t.Fatalf("main port carried a %s batch", b.Kind)
		}
		out = append(out, b.Bars...)
		b.Release()
	}
	return out
}

// expect drains the main port and compares with want exactly.
func (h *harness) expect(step string, want ...md.Bar) {
	h.t.Helper()
	got := h.bars()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("%s: bars differ\n got: %s\nwant: %s", step, fmtBars(got), fmtBars(want))
	}
}

func (h *harness) drops() map[string]int64 { return h.to.NC.Stats.Drops() }

func fmtBars(bs []md.Bar) string {
	var sb strings.Builder
	for _, b := range bs {
		fmt.Fprintf(&sb, "\n  {sym %d start t0%+dms end t0%+dms iv %dms O %v H %v L %v C %v V %v vwap %v n %d labelEnd %v update %v type %v source %v}",
			b.Sym, (b.Start-t0)/ms, (b.End-t0)/ms, b.Interval/ms, b.Open, b.High, b.Low, b.Close, b.Volume, b.VWAP, b.Trades, b.LabelEnd, b.Update, b.Type, b.Source)
	}
	return sb.String()
}

// bar builds an expected bar over [start, start+iv).
func bar(sym md.SymID, start, iv int64, o, h, l, c, vol, vwap float64, n int64) md.Bar {
	return md.Bar{Sym: sym, Start: start, End: start + iv, Interval: iv, Open: o, High: h, Low: l, Close: c, Volume: vol, VWAP: vwap, Trades: n}
}

// flat builds an expected empty-interval bar at price c.
func flat(sym md.SymID, start, iv int64, c float64) md.Bar {
	return bar(sym, start, iv, c, c, c, c, 0, c, 0)
}

func updated(b md.Bar) md.Bar { b.Update = true; return b }

func TestBasicOHLCVAndClosingByWatermarkOnly(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(tr(symA, t0+100*ms, 10, 1), tr(symA, t0+500*ms, 12, 2), tr(symA, t0+700*ms, 9, 3), tr(symA, t0+900*ms, 11, 4))
	h.wm(t0 + 900*ms)
	h.expect("watermark inside the bar")
	h.trades(tr(symA, t0+1200*ms, 13, 1))
	h.expect("a later tick does not close the bar")
	h.wm(t0 + 999*ms)
	h.expect("watermark before the end")
	h.wm(t0 + sec)
	// vwap = (10*1 + 12*2 + 9*3 + 11*4) / 10 = 105/10
	h.expect("watermark at the end", bar(symA, t0, sec, 10, 12, 9, 11, 10, 10.5, 4))
	if got := h.b.OutputWatermark(t0 + 1500*ms); got != t0+sec {
		t.Fatalf("output watermark %d, want t0+1s", got-t0)
	}
	h.wm(md.MaxTime)
	h.expect("final watermark", bar(symA, t0+sec, sec, 13, 13, 13, 13, 1, 13, 1))
	if d := h.drops(); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
}

func TestSeveralSymbolsEmitInStartThenSymbolOrder(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(
		tr(symB, t0+100*ms, 20, 1),
		tr(symA, t0+200*ms, 10, 2),
		tr(symC, t0+1100*ms, 30, 1),
		tr(symB, t0+300*ms, 21, 1),
		tr(symA, t0+1500*ms, 11, 1),
	)
	h.wm(t0 + 1500*ms)
	h.expect("first second",
		bar(symA, t0, sec, 10, 10, 10, 10, 2, 10, 1),
		bar(symB, t0, sec, 20, 21, 20, 21, 2, 20.5, 2))
	h.wm(md.MaxTime)
	h.expect("flush",
		bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1),
		bar(symC, t0+sec, sec, 30, 30, 30, 30, 1, 30, 1))
}

func TestBarsGoOutInPooledBatchesOfThePoolSize(t *testing.T) {
	h := newHarnessNC(t, map[string]any{"interval": "1s"}, &engine.NodeContext{Pool: md.NewPool(4)})
	var in []md.Trade
	for i := range 10 {
		id := h.to.NC.Symbols.Intern("test", fmt.Sprintf("S%d", i))
		in = append(in, tr(id, t0+int64(i)*ms, float64(i+1), 1))
	}
	h.trades(in...)
	h.wm(t0 + sec)
	bs := h.to.Drain(engine.PortMain)
	var sizes []int
	var syms []md.SymID
	for _, b := range bs {
		sizes = append(sizes, len(b.Bars))
		for _, x := range b.Bars {
			syms = append(syms, x.Sym)
		}
		b.Release()
	}
	if !reflect.DeepEqual(sizes, []int{4, 4, 2}) {
		t.Fatalf("batch sizes %v, want [4 4 2]", sizes)
	}
	for i := 1; i < len(syms); i++ {
		if syms[i] <= syms[i-1] {
			t.Fatalf("bars not in symbol order: %v", syms)
		}
	}
}

func TestOutOfOrderWithinToleranceGoesIntoTheRightOpenBar(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	// A source with max_out_of_orderness 2s would send these watermarks.
	h.trades(tr(symA, t0+500*ms, 10, 1), tr(symA, t0+2100*ms, 30, 1), tr(symB, t0+1200*ms, 20, 1))
	h.wm(t0 + 100*ms)
	// A's bar 1 opens between its bars 0 and 2; A's bar 0 takes a record.
	h.trades(tr(symA, t0+1300*ms, 21, 2), tr(symA, t0+800*ms, 12, 3))
	h.wm(t0 + 300*ms)
	h.expect("nothing closable yet")
	h.wm(t0 + sec)
	// vwap = (10*1 + 12*3) / 4 = 46/4
	h.expect("bar 0", bar(symA, t0, sec, 10, 12, 10, 12, 4, 11.5, 2))
	h.wm(t0 + 2*sec)
	h.expect("bar 1",
		bar(symA, t0+sec, sec, 21, 21, 21, 21, 2, 21, 1),
		bar(symB, t0+sec, sec, 20, 20, 20, 20, 1, 20, 1))
	h.wm(md.MaxTime)
	h.expect("bar 2", bar(symA, t0+2*sec, sec, 30, 30, 30, 30, 1, 30, 1))
	if d := h.drops(); len(d) != 0 {
		t.Fatalf("nothing is late, drops %v", d)
	}
}

func TestLateDropIsCounted(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(tr(symA, t0+500*ms, 10, 1))
	h.wm(t0 + sec)
	h.expect("bar 0", bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1))
	h.trades(tr(symA, t0+900*ms, 99, 1), tr(symA, t0+1100*ms, 11, 1), tr(symB, t0+999*ms, 98, 1))
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"late": 2}) {
		t.Fatalf("drops %v, want late: 2", d)
	}
	h.wm(md.MaxTime)
	h.expect("bar 1 without the late records", bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1))
	if got := h.to.Drain(engine.PortLate); len(got) != 0 {
		t.Fatalf("drop policy sent %d batches to the late port", len(got))
	}
}

func TestLateSideOutputGoesToTheLatePort(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "late_policy": "side_output"})
	h.trades(tr(symA, t0+500*ms, 10, 1))
	h.wm(t0 + sec)
	h.expect("bar 0", bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1))
	h.trades(tr(symA, t0+900*ms, 99, 1), tr(symA, t0+1100*ms, 11, 1), tr(symB, t0+999*ms, 98, 2))
	late := h.to.Drain(engine.PortLate)
	if len(late) != 1 {
		t.Fatalf("%d late batches, want 1", len(late))
	}
	lb := late[0]
	want := []md.Trade{tr(symA, t0+900*ms, 99, 1), tr(symB, t0+999*ms, 98, 2)}
	if lb.Kind != md.KindTrade || lb.Reason != "late" || !reflect.DeepEqual(lb.Trades, want) {
		t.Fatalf("late batch kind %s reason %q trades %+v", lb.Kind, lb.Reason, lb.Trades)
	}
	lb.Release()
	if d := h.drops(); len(d) != 0 {
		t.Fatalf("side output is not a drop: %v", d)
	}
	h.wm(md.MaxTime)
	h.expect("bar 1", bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1))
}

func TestLateUpdateReemitsCorrectedBars(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "late_policy": "update"})
	h.trades(tr(symA, t0+500*ms, 10, 1), tr(symA, t0+1100*ms, 11, 1))
	h.wm(t0 + sec)
	bar0 := bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1)
	h.expect("bar 0", bar0)
	if got := h.b.OutputWatermark(t0 + sec); got != t0 {
		t.Fatalf("output watermark t0%+dms, want the oldest kept bar's start t0", (got-t0)/ms)
	}
	h.trades(tr(symA, t0+900*ms, 12, 3))
	// vwap = (10 + 36) / 4
	h.expect("first correction", updated(bar(symA, t0, sec, 10, 12, 10, 12, 4, 11.5, 2)))
	h.wm(t0 + 1999*ms) // bar 0 is kept until the watermark reaches its end + 1s
	h.trades(tr(symA, t0+950*ms, 8, 1), tr(symA, t0+960*ms, 9, 1))
	// one re-emission per batch: vwap = (46 + 8 + 9) / 6
	h.expect("second correction", updated(bar(symA, t0, sec, 10, 12, 8, 9, 6, 10.5, 4)))
	h.wm(t0 + 2*sec)
	h.expect("bar 1", bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1))
	if got := h.b.OutputWatermark(t0 + 2*sec); got != t0+sec {
		t.Fatalf("output watermark t0%+dms, want t0+1s", (got-t0)/ms)
	}
	// Bar 0 is no longer kept; a late record for B's empty bar 1 creates it.
	h.trades(tr(symA, t0+990*ms, 7, 1), tr(symB, t0+1500*ms, 20, 2), tr(symA, t0+1600*ms, 12, 1))
	h.expect("corrections after bar 1 closed",
		updated(bar(symA, t0+sec, sec, 11, 12, 11, 12, 2, 11.5, 2)),
		updated(bar(symB, t0+sec, sec, 20, 20, 20, 20, 2, 20, 1)))
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"too_late": 1}) {
		t.Fatalf("drops %v, want too_late: 1", d)
	}
	h.wm(md.MaxTime)
	h.expect("nothing open")
}

func TestLateUpdateWithZeroAllowedLatenessKeepsNothing(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "late_policy": "update", "allowed_lateness": "0s"})
	h.trades(tr(symA, t0+500*ms, 10, 1))
	h.wm(t0 + sec)
	h.expect("bar 0", bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1))
	h.trades(tr(symA, t0+900*ms, 12, 1))
	h.expect("no correction")
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"too_late": 1}) {
		t.Fatalf("drops %v, want too_late: 1", d)
	}
	if got := h.b.OutputWatermark(t0 + sec); got != t0+sec {
		t.Fatalf("output watermark t0%+dms, want t0+1s", (got-t0)/ms)
	}
}

func TestEmptyIntervalsAreSkippedByDefault(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(tr(symA, t0+200*ms, 10, 1), tr(symB, t0+2500*ms, 20, 1), tr(symA, t0+3500*ms, 13, 1))
	h.wm(t0 + 4*sec)
	h.expect("only bars with data",
		bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1),
		bar(symB, t0+2*sec, sec, 20, 20, 20, 20, 1, 20, 1),
		bar(symA, t0+3*sec, sec, 13, 13, 13, 13, 1, 13, 1))
	h.wm(t0 + 6*sec)
	h.expect("quiet watermark")
}

func TestEmitEmptyEmitsFlatBars(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "emit_empty": true})
	h.trades(tr(symA, t0+200*ms, 10, 1), tr(symB, t0+2500*ms, 20, 1), tr(symA, t0+3500*ms, 13, 1))
	h.wm(t0 + 4*sec)
	h.expect("flat bars after each symbol's first bar",
		bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1),
		flat(symA, t0+sec, sec, 10),
		flat(symA, t0+2*sec, sec, 10),
		bar(symB, t0+2*sec, sec, 20, 20, 20, 20, 1, 20, 1),
		bar(symA, t0+3*sec, sec, 13, 13, 13, 13, 1, 13, 1),
		flat(symB, t0+3*sec, sec, 20))
	h.wm(t0 + 6*sec)
	h.expect("live: flat bars follow the watermark",
		flat(symA, t0+4*sec, sec, 13), flat(symB, t0+4*sec, sec, 20),
		flat(symA, t0+5*sec, sec, 13), flat(symB, t0+5*sec, sec, 20))
	h.trades(tr(symA, t0+6500*ms, 14, 2))
	h.wm(md.MaxTime)
	h.expect("end of stream: up to the last interval with data",
		bar(symA, t0+6*sec, sec, 14, 14, 14, 14, 2, 14, 1),
		flat(symB, t0+6*sec, sec, 20))
}

func TestEmitEmptyWithUpdateCorrectsAFlatBar(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "emit_empty": true, "late_policy": "update", "allowed_lateness": "5s"})
	h.trades(tr(symA, t0+200*ms, 10, 1), tr(symA, t0+2200*ms, 12, 1))
	h.wm(t0 + 2*sec)
	h.expect("bar and flat bar", bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1), flat(symA, t0+sec, sec, 10))
	h.trades(tr(symA, t0+1500*ms, 11, 2))
	h.expect("the flat bar replaced", updated(bar(symA, t0+sec, sec, 11, 11, 11, 11, 2, 11, 1)))
}

func TestSkipFirstPartialDropsEachSymbolsFirstBar(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "skip_first_partial": true})
	h.trades(
		tr(symA, t0+500*ms, 10, 1), tr(symB, t0+1200*ms, 20, 2), tr(symB, t0+1400*ms, 22, 1),
		tr(symA, t0+1500*ms, 11, 1), tr(symB, t0+2200*ms, 21, 1),
	)
	h.wm(t0 + 3*sec)
	h.expect("second bars only",
		bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1),
		bar(symB, t0+2*sec, sec, 21, 21, 21, 21, 1, 21, 1))
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"skipped_partial": 3}) {
		t.Fatalf("drops %v, want skipped_partial: 3", d)
	}
}

func TestOriginOffset(t *testing.T) {
	for _, off := range []string{"15s", "-45s", "75s"} {
		t.Run(off, func(t *testing.T) {
			h := newHarness(t, map[string]any{"interval": "1m", "origin_offset": off})
			m := 60 * sec
			h.trades(tr(symA, t0+10*sec, 10, 1), tr(symA, t0+20*sec, 11, 1), tr(symA, t0+74*sec, 12, 1), tr(symA, t0+75*sec, 13, 1))
			h.wm(t0 + 75*sec)
			h.expect("closed at :15",
				bar(symA, t0-45*sec, m, 10, 10, 10, 10, 1, 10, 1),
				bar(symA, t0+15*sec, m, 11, 12, 11, 12, 2, 11.5, 2))
			h.wm(md.MaxTime)
			h.expect("flush", bar(symA, t0+75*sec, m, 13, 13, 13, 13, 1, 13, 1))
		})
	}
}

func TestLabelOpenAndClose(t *testing.T) {
	for _, label := range []string{"open", "close"} {
		t.Run(label, func(t *testing.T) {
			h := newHarness(t, map[string]any{"interval": "1s", "label": label})
			h.trades(tr(symA, t0+500*ms, 10, 1))
			h.wm(md.MaxTime)
			want := bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1)
			want.LabelEnd = label == "close"
			got := h.bars()
			if !reflect.DeepEqual(got, []md.Bar{want}) {
				t.Fatalf("got %s", fmtBars(got))
			}
			wantTS := t0
			if label == "close" {
				wantTS = t0 + sec
			}
			if ts := got[0].TS(); ts != wantTS {
				t.Fatalf("TS t0%+dms, want t0%+dms", (ts-t0)/ms, (wantTS-t0)/ms)
			}
		})
	}
}

func TestBuildDelay(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "build_delay": "200ms"})
	h.trades(tr(symA, t0+500*ms, 10, 1))
	h.wm(t0 + 1100*ms)
	h.expect("within the build delay")
	if got := h.b.OutputWatermark(t0 + 1100*ms); got != t0 {
		t.Fatalf("output watermark t0%+dms, want t0", (got-t0)/ms)
	}
	h.trades(tr(symA, t0+950*ms, 11, 1))
	h.wm(t0 + 1200*ms)
	h.expect("closed at end + delay", bar(symA, t0, sec, 10, 11, 10, 11, 2, 10.5, 2))
	h.trades(tr(symA, t0+990*ms, 12, 1))
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"late": 1}) {
		t.Fatalf("drops %v", d)
	}
}

func TestQuoteBars(t *testing.T) {
	qs := []md.Quote{
		{Sym: symA, TS: t0 + 100*ms, Bid: 10, Ask: 12, BidSize: 5, AskSize: 7},
		{Sym: symA, TS: t0 + 200*ms, Bid: 11, Ask: 13, BidSize: 5, AskSize: 7},
		{Sym: symA, TS: t0 + 300*ms, Bid: 9, Ask: 11, BidSize: 5, AskSize: 7},
	}
	for _, c := range []struct {
		price string
		want  md.Bar
	}{
		{"mid", from(md.FromMid, bar(symA, t0, sec, 11, 12, 10, 10, 0, 11, 3))},
		{"bid", from(md.FromBid, bar(symA, t0, sec, 10, 11, 9, 9, 0, 10, 3))},
		{"ask", from(md.FromAsk, bar(symA, t0, sec, 12, 13, 11, 11, 0, 12, 3))},
	} {
		t.Run(c.price, func(t *testing.T) {
			h := newHarness(t, map[string]any{"interval": "1s", "price": c.price})
			h.quotes(qs...)
			h.wm(md.MaxTime)
			h.expect(c.price, c.want)
		})
	}
	t.Run("default is mid", func(t *testing.T) {
		h := newHarness(t, map[string]any{"interval": "1s"})
		h.quotes(qs...)
		h.wm(md.MaxTime)
		h.expect("mid", from(md.FromMid, bar(symA, t0, sec, 11, 12, 10, 10, 0, 11, 3)))
	})
}

// A quote with a side absent (0) never folds that 0 into a bar: mid bars
// need both sides, bid and ask bars their own, and the skipped quotes are
// counted, not lost silently.
func TestQuotesMissingASideAreCounted(t *testing.T) {
	qs := []md.Quote{
		{Sym: symA, TS: t0 + 100*ms, Bid: 10, Ask: 12},
		{Sym: symA, TS: t0 + 200*ms, Bid: 0, Ask: 13}, // no bid
		{Sym: symA, TS: t0 + 300*ms, Bid: 9, Ask: 0},  // no ask
		{Sym: symA, TS: t0 + 400*ms, Bid: 11, Ask: 13},
	}
	for _, c := range []struct {
		price   string
		want    md.Bar
		missing int64
	}{
		{"mid", from(md.FromMid, bar(symA, t0, sec, 11, 12, 11, 12, 0, 11.5, 2)), 2},
		{"bid", from(md.FromBid, bar(symA, t0, sec, 10, 11, 9, 11, 0, 10, 3)), 1},
		{"ask", from(md.FromAsk, bar(symA, t0, sec, 12, 13, 12, 13, 0, 12.666666666666666, 3)), 1},
	} {
		t.Run(c.price, func(t *testing.T) {
			h := newHarness(t, map[string]any{"interval": "1s", "price": c.price})
			h.quotes(qs...)
			h.wm(md.MaxTime)
			h.expect(c.price, c.want)
			if d := h.drops(); d[DropMissingSide] != c.missing {
				t.Fatalf("drops %v, want %s %d", d, DropMissingSide, c.missing)
			}
		})
	}
}

// from sets what a bar was built from.
func from(s md.BarSource, b md.Bar) md.Bar {
	b.Source = s
	return b
}

func TestLateQuotesGoToTheLatePortAsQuotes(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "late_policy": "side_output"})
	h.quotes(md.Quote{Sym: symA, TS: t0 + 100*ms, Bid: 10, Ask: 12})
	h.wm(t0 + sec)
	h.expect("bar", from(md.FromMid, bar(symA, t0, sec, 11, 11, 11, 11, 0, 11, 1)))
	q := md.Quote{Sym: symA, TS: t0 + 200*ms, Bid: 1, Ask: 2}
	h.quotes(q)
	late := h.to.Drain(engine.PortLate)
	if len(late) != 1 || late[0].Kind != md.KindQuote || late[0].Reason != "late" || !reflect.DeepEqual(late[0].Quotes, []md.Quote{q}) {
		t.Fatalf("late port: %+v", late)
	}
}

func TestMixedTradesAndQuotesAreRefused(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(tr(symA, t0, 10, 1))
	b := md.NewBatch(md.KindQuote)
	b.Quotes = []md.Quote{{Sym: symA, TS: t0, Bid: 1, Ask: 2}}
	err := h.b.Process(context.Background(), b, h.to.Output)
	want := "operator.bars got quote records after trade records; one bars node builds either trade bars or quote bars, use one node per record kind"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
}

func TestOneMillisecondInterval(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1ms"})
	us := int64(time.Microsecond)
	h.trades(tr(symA, t0+100*us, 10, 1), tr(symA, t0+900*us, 11, 1), tr(symA, t0+1000*us, 12, 1), tr(symA, t0+2500*us, 13, 1))
	h.wm(t0 + 2*ms)
	h.expect("two 1ms bars",
		bar(symA, t0, ms, 10, 11, 10, 11, 2, 10.5, 2),
		bar(symA, t0+ms, ms, 12, 12, 12, 12, 1, 12, 1))
	h.wm(md.MaxTime)
	h.expect("flush", bar(symA, t0+2*ms, ms, 13, 13, 13, 13, 1, 13, 1))
}

func TestFinalWatermarkFlushesEveryOpenBar(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	h.trades(
		tr(symB, t0+2500*ms, 22, 1), tr(symA, t0+1500*ms, 11, 1), tr(symA, t0+500*ms, 10, 1),
		tr(symB, t0+200*ms, 20, 1), tr(symC, t0+2100*ms, 30, 1),
	)
	h.wm(t0 + 100*ms)
	h.expect("nothing closable")
	h.wm(md.MaxTime)
	h.expect("every open bar, by start then symbol",
		bar(symA, t0, sec, 10, 10, 10, 10, 1, 10, 1),
		bar(symB, t0, sec, 20, 20, 20, 20, 1, 20, 1),
		bar(symA, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1),
		bar(symB, t0+2*sec, sec, 22, 22, 22, 22, 1, 22, 1),
		bar(symC, t0+2*sec, sec, 30, 30, 30, 30, 1, 30, 1))
	h.trades(tr(symA, t0+5*sec, 1, 1))
	if d := h.drops(); !reflect.DeepEqual(d, map[string]int64{"late": 1}) {
		t.Fatalf("after the final watermark everything is late: %v", d)
	}
}

func TestSymbolsInternedAfterOpenGrowTheState(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s"})
	id := h.to.NC.Symbols.Intern("test", "LATECOMER")
	for i := range 300 {
		h.to.NC.Symbols.Intern("test", fmt.Sprintf("X%d", i))
	}
	last := md.SymID(h.to.NC.Symbols.Len() - 1)
	h.trades(tr(last, t0, 5, 1), tr(id, t0+ms, 4, 1))
	h.wm(md.MaxTime)
	h.expect("new symbols", bar(id, t0, sec, 4, 4, 4, 4, 1, 4, 1), bar(last, t0, sec, 5, 5, 5, 5, 1, 5, 1))
}

func TestExtremeWatermarksAndBadBatches(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "origin_offset": "300ms", "build_delay": "1s"})
	if got := h.b.OutputWatermark(md.MinTime + 5); got != md.MinTime {
		t.Fatalf("output watermark near MinTime: %d", got)
	}
	h.trades(tr(symA, t0, 10, 1))
	h.wm(md.MinTime + 1)
	h.wm(md.MinTime / 2)
	h.expect("nothing closes")
	h.wm(t0 - sec) // not increasing past the last one is ignored, this one is
	h.wm(t0 - 2*sec)
	h.expect("still nothing")
	h.wm(md.MaxTime)
	h.expect("flush", bar(symA, t0-700*ms, sec, 10, 10, 10, 10, 1, 10, 1))

	b := md.NewBatch(md.KindBar)
	b.Bars = []md.Bar{{Sym: symA, Start: t0}}
	err := h.b.Process(context.Background(), b, h.to.Output)
	if want := "operator.bars takes trades or quotes, got a batch of bar records"; err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
	if err := h.b.Process(context.Background(), md.NewBatch(md.KindQuote), h.to.Output); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
}
