package ibkr

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/source/ibkr/tws"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// TestStreamsTradesQuotesAndBars: one contract with every stream; the
// requests go out exactly, and each reply layout becomes the right record
// with exchange time, ingest time and a per-contract sequence.
func TestStreamsTradesQuotesAndBars(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"client_id": 7, "bars_5s": true, "market_data": true, "market_data_type": "delayed",
		"contracts": contracts(aaplParams)}, t0)
	if h.src.Ready() {
		t.Error("ready before connecting")
	}
	ss := h.session()
	if ss.ClientID != 7 || ss.Range != "v100..200" {
		t.Fatalf("client id %d range %q", ss.ClientID, ss.Range)
	}
	h.expect(ss, 59, 1, 3)
	h.expect(ss, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	h.expect(ss, concat([]any{97, 2}, aaplFields, []any{"BidAsk", 0, 1})...)
	h.expect(ss, concat([]any{50, 3, 3}, aaplFields, []any{5, "TRADES", 0, ""})...)
	// Delayed data allows no RT_VOLUME generic tick.
	h.expect(ss, concat([]any{1, 11, 4}, aaplFields, []any{0, "", 0, 0, ""})...)

	ss.SendFields(99, 1, 2, 1764167400, 189.51, 100, 2, "NASDAQ", "I")
	ss.SendFields(99, 1, 2, 1764167400, 189.52, 50, 0, "ARCA", "")
	ss.SendFields(99, 2, 3, 1764167401, 189.5, 189.52, 300, 200, 0)
	ss.SendFields(50, 3, 3, 1764167400, 189.5, 189.7, 189.4, 189.6, 12000, 189.55, 42)
	// market_data: delayed bid then ask make one quote.
	ss.SendFields(58, 1, 4, 3)
	ss.SendFields(1, 6, 4, 66, 189.49, 100, 0)
	ss.SendFields(1, 6, 4, 67, 189.53, 200, 0)
	h.waitFor("records", func() bool { return len(h.trades) == 2 && len(h.quotes) == 2 && len(h.bars) == 1 })
	if !h.src.Ready() {
		t.Error("not ready after the handshake")
	}

	tr := h.trades
	if tr[0].TS != 1764167400e9 || tr[0].Price != 189.51 || tr[0].Size != 100 || tr[0].Seq != 1 || tr[0].Ingest <= 0 || h.symbol(tr[0].Sym) != "AAPL" {
		t.Errorf("trade 0: %+v", tr[0])
	}
	if tr[1].TS != 1764167400e9 || tr[1].Price != 189.52 || tr[1].Seq != 2 {
		t.Errorf("trade 1 (same second, next sequence): %+v", tr[1])
	}
	q := h.quotes[0]
	if q.TS != 1764167401e9 || q.Bid != 189.5 || q.Ask != 189.52 || q.BidSize != 300 || q.AskSize != 200 || q.Seq != 3 {
		t.Errorf("quote: %+v", q)
	}
	if q := h.quotes[1]; q.Bid != 189.49 || q.Ask != 189.53 || q.BidSize != 100 || q.AskSize != 200 || q.TS != q.Ingest {
		t.Errorf("market_data quote: %+v", q)
	}
	b := h.bars[0]
	if b.Start != 1764167400e9 || b.End != 1764167405e9 || b.Interval != 5e9 || b.Open != 189.5 || b.High != 189.7 || b.Low != 189.4 ||
		b.Close != 189.6 || b.Volume != 12000 || b.VWAP != 189.55 || b.Trades != 42 || b.Source != md.FromTrades {
		t.Errorf("bar: %+v", b)
	}
	h.waitCounters(map[string]int64{"connects": 1, "subscriptions": 4, "msg_tick_by_tick": 3, "msg_real_time_bar": 1, "msg_tick_price": 2})
}

// TestSizeDecimalsReported: the source reports each contract's size
// precision (the most decimal places IB sent a trade size or a bar volume
// with) to the symbol table, so bars round volumes exactly: fractional
// shares, RT_VOLUME sizes and bar volumes count.
func TestSizeDecimalsReported(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"quotes": false, "market_data": true, "bars_5s": true, "contracts": contracts(aaplParams)}, t0)
	ss := h.session()
	h.expect(ss, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	h.expect(ss, concat([]any{50, 3, 2}, aaplFields, []any{5, "TRADES", 0, ""})...)
	h.expect(ss, concat([]any{1, 11, 3}, aaplFields, []any{0, "233", 0, 0, ""})...)
	dec := func() int {
		d, ok := h.out.NC.Symbols.SizeDecimals(h.trades[0].Sym)
		if !ok {
			t.Fatal("no size decimals reported")
		}
		return d
	}
	ss.SendFields(99, 1, 2, 1764167400, 189.51, 100, 0, "NASDAQ", "")
	h.waitFor("trade", func() bool { return len(h.trades) == 1 })
	if d := dec(); d != 0 {
		t.Fatalf("after size 100: %d decimals", d)
	}
	ss.SendFields(50, 3, 2, 1764167400, 189.5, 189.7, 189.4, 189.6, "12000.5", 189.55, 42)
	h.waitFor("bar", func() bool { return len(h.bars) == 1 })
	if d := dec(); d != 1 {
		t.Fatalf("after bar volume 12000.5: %d decimals", d)
	}
	ss.SendFields(46, 6, 3, 48, "189.5;0.25;1764167401000;1000;189.5;true")
	h.waitFor("RT_VOLUME trade", func() bool { return len(h.trades) == 2 })
	if d := dec(); d != 2 || h.trades[1].Size != 0.25 {
		t.Fatalf("after RT_VOLUME size 0.25: %d decimals, trade %+v", d, h.trades[1])
	}
	ss.SendFields(99, 1, 2, 1764167402, 189.51, "2.125", 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, 1764167402, 189.51, "3", 0, "NASDAQ", "")
	h.waitFor("trades", func() bool { return len(h.trades) == 4 })
	if d := dec(); d != 3 {
		t.Fatalf("after size 2.125: %d decimals", d)
	}
}

// TestForexBarsAreMidBars: forex has no trades, so its 5-second bars are
// requested as MIDPOINT and carry source mid.
func TestForexBarsAreMidBars(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"bars_5s": true, "trades": "none", "quotes": false,
		"contracts": []any{map[string]any{"symbol": "EUR", "sec_type": "CASH", "currency": "USD"}}}, t0)
	ss := h.session()
	h.expect(ss, 50, 3, 1, 0, "EUR", "CASH", "", "", "", "", "IDEALPRO", "", "USD", "", "", 5, "MIDPOINT", 0, "")
	ss.SendFields(50, 3, 1, 1764167400, 1.155, 1.1552, 1.1549, 1.1551, -1, -1, -1)
	h.waitFor("bar", func() bool { return len(h.bars) == 1 })
	if b := h.bars[0]; b.Source != md.FromMid || b.Open != 1.155 || b.Volume != 0 || h.symbol(b.Sym) != "EUR.USD" {
		t.Fatalf("bar %+v", b)
	}
}

// TestReconnectResubscribesAndRecordsTheGap: the connection drops
// mid-stream; the source reconnects after a jittered backoff, redoes the
// handshake, re-requests every subscription (paced: the same instrument's
// tick-by-tick waits 15 s), and records the gap.
func TestReconnectResubscribesAndRecordsTheGap(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"contracts": contracts(aaplParams)}, t0)
	ss := h.session()
	h.expect(ss, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	h.expect(ss, concat([]any{97, 2}, aaplFields, []any{"BidAsk", 0, 1})...)
	ss.SendFields(99, 1, 2, 1764167400, 189.51, 100, 0, "NASDAQ", "")
	h.waitFor("first trade", func() bool { return len(h.trades) == 1 })
	ss.Close()

	ss2 := h.session()
	h.expect(ss2, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	h.expect(ss2, concat([]any{97, 2}, aaplFields, []any{"BidAsk", 0, 1})...)
	ss2.SendFields(99, 1, 2, 1764167460, 189.7, 10, 0, "NASDAQ", "")
	h.waitFor("trade after reconnect", func() bool { return len(h.trades) == 2 })
	if h.trades[1].Seq != 2 || h.trades[1].Price != 189.7 {
		t.Errorf("after reconnect: %+v", h.trades[1])
	}
	h.waitCounters(map[string]int64{"gaps": 1, "reconnects": 1, "connects": 2, "subscriptions": 2, "resubscriptions": 2, "pacing_waits": 1, "pacing_wait_ms": 15000})
	if e := h.out.NC.Stats.Errors(); e["disconnect"] != 1 {
		t.Errorf("errors %v", e)
	}
	// The first tick-by-tick re-request waited out IB's 15 s per
	// instrument (on the fake clock); by then the second's 15 s had passed.
	if len(h.clk.sleeps) != 1 || h.clk.sleeps[0] != 15*time.Second {
		t.Errorf("pacing sleeps %v, want one of 15s", h.clk.sleeps)
	}
}

// TestHeartbeat: a silent connection gets a reqCurrentTime; when that is
// not answered either, the connection is replaced.
func TestHeartbeat(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"heartbeat": "100ms", "quotes": false, "contracts": contracts(aaplParams)}, t0)
	ss := h.session()
	h.expect(ss, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	h.expect(ss, 49, 1)
	ss.SendFields(49, 1, 1764167400)
	h.expect(ss, 49, 1)
	// No reply this time: a new connection follows.
	ss2 := h.session()
	h.expect(ss2, concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})...)
	if e := h.out.NC.Stats.Errors(); e["disconnect"] != 1 {
		t.Errorf("errors %v", e)
	}
	if !strings.Contains(h.out.NC.Stats.LastError(), "presumed dead") {
		t.Errorf("last error %q", h.out.NC.Stats.LastError())
	}
}

// TestDuplicateClientID: 326 at the first connect fails with a clear message.
func TestDuplicateClientID(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"client_id": 3, "contracts": contracts(aaplParams)}, t0)
	ss, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss.SendFields(4, -1, 326, "Unable to connect as the client id is already in use.  Retry with a unique client id.", "", 1764167400456)
	err = h.runErr()
	if err == nil || !strings.Contains(err.Error(), "client_id 3") || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Run: %v", err)
	}
}

func TestMaxReconnects(t *testing.T) {
	srv := fakeServer(t)
	srv.SetRefuse(true)
	h := start(t, srv, map[string]any{"max_reconnects": 2, "contracts": contracts(aaplParams)}, t0)
	err := h.runErr()
	if err == nil || !strings.Contains(err.Error(), "giving up after 2 reconnect attempts") {
		t.Fatalf("Run: %v", err)
	}
	if e := h.out.NC.Stats.Errors(); e["connect_failed"] != 3 {
		t.Errorf("errors %v", e)
	}
}

// TestMalformedRecordsAreDropped: numbers that break md.CheckTrade /
// CheckQuote, event times beyond max_future and undecodable messages are
// counted (drop reason malformed) and the connection is kept.
func TestMalformedRecordsAreDropped(t *testing.T) {
	h, ss := setup(t, nil)
	future := time.Now().Add(time.Hour).Unix()
	ss.SendFields(99, 1, 2, 1764167400, -1, 100, 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, future, 189.5, 100, 0, "NASDAQ", "")
	ss.SendFields(99, 2, 3, 1764167400, 0, 0, 300, 200, 0)
	ss.SendFields(99, 1, 2, "x", 189.5, 100, 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, 1764167401, 189.5, 100, 0, "NASDAQ", "")
	h.waitFor("the good trade", func() bool { return len(h.trades) == 1 })
	h.waitFor("drops", func() bool { return h.out.NC.Stats.Drops()["malformed"] == 4 })
	if h.trades[0].TS != 1764167401e9 || h.trades[0].Seq != 1 {
		t.Errorf("trade %+v", h.trades[0])
	}
	h.waitCounters(map[string]int64{"connects": 1})
}

// TestManySubscriptionsArePaced: 120 tick-by-tick requests at once go out
// at no more than requests_per_second (40) in any second of the pacing
// clock: the research's "120 subscriptions" scenario.
func TestManySubscriptionsArePaced(t *testing.T) {
	var cs []any
	for i := range 120 {
		cs = append(cs, map[string]any{"symbol": fmt.Sprintf("S%03d", i)})
	}
	h := start(t, fakeServer(t), map[string]any{"quotes": false, "contracts": cs}, t0)
	ss := h.session()
	for i := range 120 {
		p, err := ss.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !strings.HasPrefix(string(p), fmt.Sprintf("97\x00%d\x00", i+1)) {
			t.Fatalf("request %d: %q", i, p)
		}
	}
	// 120 requests at 40 per second: the pacer slept through two seconds.
	var slept time.Duration
	for _, d := range h.clk.sleeps {
		slept += d
	}
	if slept != 2*time.Second {
		t.Errorf("slept %s (%v), want 2s", slept, h.clk.sleeps)
	}
}

// TestClientIDInUseOnReconnect: a 326 after the first connection (TWS may
// still hold the old session) is retried, not fatal.
func TestClientIDInUseOnReconnect(t *testing.T) {
	h, ss := setup(t, nil)
	ss.Close()
	ss2, err := h.srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sendErr(ss2, -1, 326, "Unable to connect as the client id is already in use.  Retry with a unique client id.")
	ss3 := h.session()
	h.expect(ss3, reqTrades...)
	if e := h.out.NC.Stats.Errors(); e["connect_failed"] != 1 || !strings.Contains(h.out.NC.Stats.LastError(), "already in use") {
		t.Errorf("errors %v, last %q", e, h.out.NC.Stats.LastError())
	}
}

// TestRecordPathAllocatesNothing: decoding and routing a tick-by-tick trade
// into the batch being filled allocates nothing per record.
func TestRecordPathAllocatesNothing(t *testing.T) {
	cfg, err := params(t, map[string]any{"contracts": []any{map[string]any{"symbol": "AAPL"}}})
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(cfg)
	out := enginetest.NewOutput(nil, 0, PortQuotes, PortBars)
	src.Open(context.Background(), out.NC)
	src.out, src.batchSize = out.Output, 1024
	src.cts[0].sym = out.NC.Symbols.Intern("ibkr", "AAPL")
	frame := faketws.Text(99, 1, 2, 1764167400, 189.51, 100, 0, "NASDAQ", "")[4:]
	var m tws.Message
	n, emitted := 0, 0
	src.recv = time.Now().UnixNano()
	allocs := testing.AllocsPerRun(5000, func() {
		if err := tws.Decode(frame, 200, &m); err != nil {
			t.Fatal(err)
		}
		src.handle(&m)
		if n++; n%1000 == 0 {
			src.flush()
			for _, b := range out.Drain(engine.PortMain) {
				emitted += b.Len()
				b.Release()
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per record", allocs)
	}
	if emitted != 5000 || src.cts[0].seq != 5001 {
		t.Errorf("emitted %d trades, sequence %d", emitted, src.cts[0].seq)
	}
}

// TestServerVersionOutsideTheTextProtocol: a TWS that negotiates 201 (or
// one older than 163) fails the job with a clear message instead of being
// retried forever.
func TestServerVersionOutsideTheTextProtocol(t *testing.T) {
	for _, v := range []int{150, 201} {
		srv, err := faketws.New(faketws.Config{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		h := start(t, srv, map[string]any{"contracts": contracts(aaplParams)}, t0)
		err = h.runErr()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("server version %d", v)) || !strings.Contains(err.Error(), "10.x") {
			t.Errorf("version %d: %v", v, err)
		}
		srv.Close()
	}
}

// TestSlowFrameIsNotADeadConnection: a frame that trickles in slower than
// the heartbeat (bytes keep coming) does not end the connection.
func TestSlowFrameIsNotADeadConnection(t *testing.T) {
	srv := fakeServer(t)
	h := start(t, srv, map[string]any{"heartbeat": "100ms", "quotes": false, "contracts": contracts(aaplParams)}, t0)
	ss := h.session()
	h.expect(ss, reqTrades...)
	fr := faketws.Text(99, 1, 2, 1764167400, 189.51, 100, 0, "NASDAQ", "")
	for i := range fr {
		if err := ss.Write(fr[i : i+1]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the frame takes ~450ms, the heartbeat is 100ms
	}
	h.waitFor("the slow trade", func() bool { return len(h.trades) == 1 })
	h.waitCounters(map[string]int64{"connects": 1})
	if e := h.out.NC.Stats.Errors(); len(e) != 0 {
		t.Errorf("errors %v", e)
	}
}

// TestUnboundedSuspendsWithCheckpoints: a job reading provider.ibkr never
// ends by itself, so with checkpoints on a stop suspends it (the runtime
// asks engine.Job.Unbounded) rather than draining its open bars.
func TestUnboundedSuspendsWithCheckpoints(t *testing.T) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"contracts": contracts(aaplParams)})
	if err != nil {
		t.Fatal(err)
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{component.Node(spec, p, component.NodeOptions{ID: "ib"}), enginetest.SinkNode("out", &enginetest.Sink{})},
		Edges: []*engine.Edge{{From: "ib", To: "out"}},
	}
	j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Second, Store: discardStore{}}})
	if err != nil {
		t.Fatal(err)
	}
	if !j.Unbounded() {
		t.Fatal("a job reading provider.ibkr is not unbounded: a stop would drain it instead of suspending")
	}
}

type discardStore struct{}

func (discardStore) Save(context.Context, *engine.Checkpoint) (int64, error) { return 0, nil }
