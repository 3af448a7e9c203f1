package ibkr

import (
	"context"
	"sync/atomic"
	"time"
)

// clock is the time the pacing rules see; tests replace it.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IB's pacing limits (TWS API documentation, "Historical data limitations"
// and "Tick-by-tick data"; real-time bar requests count against the
// historical limits).
const (
	histWindow        = 10 * time.Minute
	histPerWindow     = 60
	histIdentical     = 15 * time.Second
	histContractSpan  = 2 * time.Second
	histPerContract   = 5 // "six or more … within two seconds" is a violation
	tickByTickRepeat  = 15 * time.Second
	messageRateWindow = time.Second
)

// pacer spaces requests inside IB's limits. It is used by one goroutine
// (the session's requester) at a time.
type pacer struct {
	clk  clock
	rate float64 // messages per second
	// messages: times of the last sends within the last second.
	msgs []time.Time
	// hist: times of historical and real-time-bar requests (10-minute window).
	hist []time.Time
	// same: last time of each identical historical request.
	same map[string]time.Time
	// perContract: recent historical request times per contract key.
	perContract map[string][]time.Time
	// tbt: last tick-by-tick request per contract and tick type.
	tbt map[string]time.Time

	// waits and waited are what pacing cost, for the node's counters.
	waits  int64
	waited time.Duration
	// waitsOut and waitedMsOut are the same, read (and reset) by the
	// reading goroutine's flush.
	waitsOut, waitedMsOut int64
}

func newPacer(clk clock, rate float64) *pacer {
	return &pacer{clk: clk, rate: rate, same: map[string]time.Time{}, perContract: map[string][]time.Time{}, tbt: map[string]time.Time{}}
}

// waitUntil sleeps until t, counting the wait.
func (p *pacer) waitUntil(ctx context.Context, t time.Time) error {
	d := t.Sub(p.clk.Now())
	if d <= 0 {
		return ctx.Err()
	}
	p.waits++
	p.waited += d
	atomic.AddInt64(&p.waitsOut, 1)
	atomic.AddInt64(&p.waitedMsOut, d.Milliseconds())
	return p.clk.Sleep(ctx, d)
}

// prune drops times before cutoff from a sorted slice.
func prune(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cutoff) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

// message waits for a slot in the message rate (every request and cancel
// counts) and takes it.
func (p *pacer) message(ctx context.Context) error {
	limit := max(1, int(p.rate))
	for {
		now := p.clk.Now()
		p.msgs = prune(p.msgs, now.Add(-messageRateWindow))
		if len(p.msgs) < limit {
			p.msgs = append(p.msgs, now)
			return nil
		}
		if err := p.waitUntil(ctx, p.msgs[0].Add(messageRateWindow)); err != nil {
			return err
		}
	}
}

// tickByTick waits until the same contract and tick type was last
// requested at least 15 s ago, then takes the slot.
func (p *pacer) tickByTick(ctx context.Context, key string) error {
	if last, ok := p.tbt[key]; ok {
		if err := p.waitUntil(ctx, last.Add(tickByTickRepeat)); err != nil {
			return err
		}
	}
	if err := p.message(ctx); err != nil {
		return err
	}
	p.tbt[key] = p.clk.Now()
	return nil
}

// historical waits until a historical (or real-time bar) request may go:
// at most 60 in any 10 minutes, none identical (same request text) within
// 15 s, at most 5 for one contract in 2 s. contract is "" for a real-time
// bar request, which counts only against the 10-minute window.
func (p *pacer) historical(ctx context.Context, contract, request string) error {
	for {
		now := p.clk.Now()
		p.hist = prune(p.hist, now.Add(-histWindow))
		next := now
		if len(p.hist) >= histPerWindow {
			next = later(next, p.hist[0].Add(histWindow))
		}
		if request != "" {
			if last, ok := p.same[request]; ok {
				next = later(next, last.Add(histIdentical))
			}
		}
		if contract != "" {
			pc := prune(p.perContract[contract], now.Add(-histContractSpan))
			p.perContract[contract] = pc
			if len(pc) >= histPerContract {
				next = later(next, pc[0].Add(histContractSpan))
			}
		}
		if next.After(now) {
			if err := p.waitUntil(ctx, next); err != nil {
				return err
			}
			continue
		}
		if err := p.message(ctx); err != nil {
			return err
		}
		now = p.clk.Now()
		p.hist = append(p.hist, now)
		if request != "" {
			p.same[request] = now
		}
		if contract != "" {
			p.perContract[contract] = append(p.perContract[contract], now)
		}
		return nil
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
