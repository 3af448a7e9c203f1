package ibkr

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// fakeClock advances only when slept on; it records every sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// t0 is 2025-11-26 14:30:00 UTC (1764167400), the research vectors' time.
var t0 = time.Unix(1764167400, 0)

type harness struct {
	t    *testing.T
	srv  *faketws.Server
	src  *Source
	out  *enginetest.Output
	clk  *fakeClock
	errc chan error
	stop context.CancelFunc

	mu     sync.Mutex
	trades []md.Trade
	quotes []md.Quote
	bars   []md.Bar
}

func fakeServer(t *testing.T) *faketws.Server {
	t.Helper()
	srv, err := faketws.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// start builds the source from params (host and port filled in), with a
// fake pacing clock at at, and runs it.
func start(t *testing.T, srv *faketws.Server, params map[string]any, at time.Time) *harness {
	t.Helper()
	p := map[string]any{"port": srv.Port(), "reconnect_backoff": "10ms", "reconnect_max_backoff": "20ms", "connect_timeout": "3s"}
	for k, v := range params {
		p[k] = v
	}
	spec, _ := component.Lookup(Type)
	pp, err := component.NewParams(spec, p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(pp)
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(cfg)
	clk := newFakeClock(at)
	src.clk = clk
	src.pacer = newPacer(clk, cfg.rate)
	src.jitter = func() float64 { return 0.5 }
	out := enginetest.NewOutput(&engine.NodeContext{Node: "ib", Pool: md.NewPool(0)}, 0, PortQuotes, PortBars)
	if err := src.Open(context.Background(), out.NC); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, srv: srv, src: src, out: out, clk: clk, errc: make(chan error, 1), stop: cancel}
	go func() { h.errc <- src.Run(ctx, out.Output) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.errc:
		case <-time.After(5 * time.Second):
			t.Error("source did not stop within 5s")
		}
	})
	return h
}

// session waits for the next connection and makes it ready.
func (h *harness) session() *faketws.Session {
	h.t.Helper()
	ss, err := h.srv.Accept(5 * time.Second)
	if err != nil {
		h.t.Fatal(err, h.srv.Errors())
	}
	if err := ss.Ready(); err != nil {
		h.t.Fatal(err)
	}
	return ss
}

func (h *harness) expect(ss *faketws.Session, fields ...any) {
	h.t.Helper()
	if err := ss.ExpectFields(5*time.Second, fields...); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.out.Drain(engine.PortMain) {
		h.trades = append(h.trades, b.Trades...)
		b.Release()
	}
	for _, b := range h.out.Drain(PortQuotes) {
		h.quotes = append(h.quotes, b.Quotes...)
		b.Release()
	}
	for _, b := range h.out.Drain(PortBars) {
		h.bars = append(h.bars, b.Bars...)
		b.Release()
	}
}

// waitFor polls cond (after draining) for up to 5 s.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.drain()
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s (trades %d, quotes %d, bars %d; counters %v; errors %v)",
				what, len(h.trades), len(h.quotes), len(h.bars), h.out.NC.Stats.Counters(), h.out.NC.Stats.Errors())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runErr waits for Run to return.
func (h *harness) runErr() error {
	h.t.Helper()
	select {
	case err := <-h.errc:
		h.errc <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return within 5s")
	}
	return nil
}

func (h *harness) symbol(id md.SymID) string {
	return h.out.NC.Symbols.Get(id).Symbol
}

var aaplParams = map[string]any{"symbol": "AAPL", "sec_type": "STK", "exchange": "SMART", "primary_exchange": "NASDAQ", "currency": "USD"}

func contracts(cs ...map[string]any) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		m := map[string]any{}
		for k, v := range c {
			m[k] = v
		}
		out[i] = m
	}
	return out
}

// aaplFields are the 12 contract fields of aaplParams on the wire.
var aaplFields = []any{0, "AAPL", "STK", "", "", "", "", "SMART", "NASDAQ", "USD", "", ""}

func concat(parts ...[]any) []any {
	var out []any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// waitCounters polls until every named counter has its value: counters are
// reported per flush and by the requesting goroutine, a moment after the
// records or frames a test sees.
func (h *harness) waitCounters(want map[string]int64) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := h.out.NC.Stats.Counters()
		ok := true
		for k, v := range want {
			ok = ok && c[k] == v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("counters %v, want %v", c, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
