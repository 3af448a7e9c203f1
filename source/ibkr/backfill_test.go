package ibkr

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
)

// TestPacerHistoricalLimits: on a fake clock, the pacer keeps every
// historical request inside IB's limits: 60 per 10 minutes, no identical
// request within 15 s, at most 5 for one contract in 2 s.
func TestPacerHistoricalLimits(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(t0)
	p := newPacer(clk, 40)
	var at []time.Time
	for i := range 61 {
		if err := p.historical(ctx, fmt.Sprint("C", i), fmt.Sprint("R", i)); err != nil {
			t.Fatal(err)
		}
		at = append(at, clk.Now())
	}
	if got := at[60].Sub(at[0]); got != histWindow {
		t.Errorf("61st request %s after the first, want exactly 10m", got)
	}
	// 60 in any 10-minute window, checked over the whole sequence.
	for i := 60; i < len(at); i++ {
		if at[i].Sub(at[i-60]) < histWindow {
			t.Errorf("requests %d and %d within 10 minutes", i-60, i)
		}
	}

	clk = newFakeClock(t0)
	p = newPacer(clk, 40)
	p.historical(ctx, "AAPL", "same")
	p.historical(ctx, "AAPL", "same")
	if got := clk.Now().Sub(t0); got != histIdentical {
		t.Errorf("identical request after %s, want 15s", got)
	}

	clk = newFakeClock(t0)
	p = newPacer(clk, 40)
	for i := range 6 {
		p.historical(ctx, "AAPL", fmt.Sprint("R", i))
		if i < 5 && !clk.Now().Equal(t0) {
			t.Fatalf("request %d waited", i)
		}
	}
	if got := clk.Now().Sub(t0); got != histContractSpan {
		t.Errorf("6th request for one contract after %s, want 2s", got)
	}
	if p.waits != 1 || p.waited != 2*time.Second {
		t.Errorf("waits %d waited %s", p.waits, p.waited)
	}

	// Message rate: 40 per second.
	clk = newFakeClock(t0)
	p = newPacer(clk, 40)
	for range 81 {
		p.message(ctx)
	}
	if got := clk.Now().Sub(t0); got != 2*time.Second {
		t.Errorf("81 messages took %s, want 2s", got)
	}
}

// TestBackfillStitchedToLive: live subscriptions go first; the cut is the
// next bar boundary; the historical request ends at the cut and is sent
// after it has passed; historical bars that end by the cut are emitted,
// live records before the cut are dropped, so trade bars from the live
// stream start exactly where the backfill ends.
func TestBackfillStitchedToLive(t *testing.T) {
	srv := fakeServer(t)
	at := t0.Add(30 * time.Second) // 14:30:30 UTC: the cut is 14:31:00
	h := start(t, srv, map[string]any{"quotes": false, "contracts": contracts(aaplParams),
		"backfill": map[string]any{"duration": "1800 S", "bar_size": "1 min", "what": "TRADES"}}, at)
	ss := h.session()
	h.expect(ss, reqTrades...)
	cut := int64(1764167460)
	// Past the cut on the local clock, the source asks IB's: it is past
	// the cut too.
	h.expect(ss, 49, 1)
	ss.SendFields(49, 1, cut+2)
	h.expect(ss, concat([]any{20, 1000001}, aaplFields, []any{0, "20251126-14:31:00", "1 min", "1800 S", 0, "TRADES", 2, 0, ""})...)
	if len(h.clk.sleeps) != 1 || h.clk.sleeps[0] != 32*time.Second {
		t.Errorf("the request waited %v, want 32s (to the cut and 2s more)", h.clk.sleeps)
	}
	ss.SendFields(99, 1, 2, cut-10, 189.4, 5, 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, cut, 189.5, 7, 0, "NASDAQ", "")
	ss.SendFields(17, 1000001, 4,
		cut-180, 189.1, 189.3, 189.0, 189.2, 1000, 189.15, 10,
		cut-120, 189.2, 189.4, 189.1, 189.3, 1100, 189.25, 11,
		cut-60, 189.3, 189.5, 189.2, 189.4, "1200.5", 189.35, 12,
		cut, 189.4, 189.5, 189.4, 189.5, 7, 189.5, 1) // the bar the live stream owns
	ss.SendFields(108, 1000001, "20251126 14:01:00", "20251126 14:31:00")
	h.waitFor("bars and trade", func() bool { return len(h.bars) == 3 && len(h.trades) == 1 })
	for i, b := range h.bars {
		start := (cut - int64(180-60*i)) * 1e9
		if b.Start != start || b.End != start+60e9 || b.Interval != 60e9 || h.symbol(b.Sym) != "AAPL" || b.Source != md.FromTrades {
			t.Errorf("bar %d: %+v", i, b)
		}
	}
	if h.bars[2].Volume != 1200.5 || h.bars[2].Trades != 12 || h.bars[2].VWAP != 189.35 {
		t.Errorf("last backfill bar %+v", h.bars[2])
	}
	if last, first := h.bars[2].End, h.trades[0].TS; last != first || first != cut*1e9 {
		t.Errorf("backfill ends at %d, live starts at %d; want both at the cut %d", last, first, cut*1e9)
	}
	h.waitFor("counters", func() bool {
		return h.out.NC.Stats.Counters()["backfill_bars"] == 3 && h.out.NC.Stats.Drops()["before_backfill_cut"] == 1
	})
	// A reconnect re-subscribes but does not backfill again.
	ss.Close()
	ss2 := h.session()
	h.expect(ss2, reqTrades...)
	h.quiet(ss2)
}

// TestBackfillErrorKeepsLive: a historical request that fails (162) is
// logged and counted; the live stream goes on.
func TestBackfillErrorKeepsLive(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"quotes": false, "contracts": contracts(aaplParams),
		"backfill": map[string]any{"duration": "1 D", "bar_size": "5 mins"}}, t0)
	ss := h.session()
	h.expect(ss, reqTrades...)
	h.expect(ss, 49, 1)
	ss.SendFields(49, 1, 1764167402)
	h.expect(ss, concat([]any{20, 1000001}, aaplFields, []any{0, "20251126-14:30:00", "5 mins", "1 D", 0, "TRADES", 2, 0, ""})...)
	sendErr(ss, 1000001, 162, "Historical Market Data Service error message:HMDS query returned no data")
	ss.SendFields(99, 1, 2, 1764167400, 189.5, 7, 0, "NASDAQ", "")
	h.waitFor("trade", func() bool { return len(h.trades) == 1 })
	if e := h.out.NC.Stats.Errors(); e["backfill"] != 1 {
		t.Errorf("errors %v", e)
	}
}

// TestBackfillWaitsForIBsClock: when IB's clock is behind the local one,
// the historical request waits until IB has passed the cut too, so the
// last historical bar is closed in IB's eyes.
func TestBackfillWaitsForIBsClock(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"quotes": false, "contracts": contracts(aaplParams),
		"backfill": map[string]any{"duration": "1800 S", "bar_size": "1 min"}}, t0.Add(30*time.Second))
	ss := h.session()
	h.expect(ss, reqTrades...)
	cut := int64(1764167460)
	h.expect(ss, 49, 1)
	ss.SendFields(49, 1, cut-8) // IB is 10s behind: 8s before the cut when local is 2s past it
	h.expect(ss, 49, 1)
	ss.SendFields(49, 1, cut+2)
	h.expect(ss, concat([]any{20, 1000001}, aaplFields, []any{0, "20251126-14:31:00", "1 min", "1800 S", 0, "TRADES", 2, 0, ""})...)
	if len(h.clk.sleeps) != 2 || h.clk.sleeps[0] != 32*time.Second || h.clk.sleeps[1] != 10*time.Second {
		t.Errorf("sleeps %v, want 32s on the local clock, then 10s for IB's", h.clk.sleeps)
	}
}
