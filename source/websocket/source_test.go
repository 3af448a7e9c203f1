package websocket

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// liveness bounds waits for things that must happen; generous because the
// test machine may be loaded. Nothing asserts how fast they happen.
const liveness = 30 * time.Second

// wsServer is a WebSocket server on loopback that plays a script per
// connection and records what each client sent before the script ran.
type wsServer struct {
	t    testing.TB
	srv  *httptest.Server
	done chan struct{}

	mu    sync.Mutex
	conns int
	subs  [][]string
}

// connScript plays connection n (0-based) on c. It owns c until it returns.
type connScript func(s *wsServer, c *websocket.Conn, n int)

func newWSServer(t testing.TB, subscribeMessages int, script connScript) *wsServer {
	s := &wsServer{t: t, done: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		s.mu.Lock()
		n := s.conns
		s.conns++
		s.subs = append(s.subs, nil)
		s.mu.Unlock()
		for i := 0; i < subscribeMessages; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), liveness)
			_, m, err := c.Read(ctx)
			cancel()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.subs[n] = append(s.subs[n], string(m))
			s.mu.Unlock()
		}
		script(s, c, n)
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.done) }) // runs first: releases holding scripts
	return s
}

func (s *wsServer) url() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") }

func (s *wsServer) subscriptions() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.subs))
	copy(out, s.subs)
	return out
}

// send writes messages as text frames.
func (s *wsServer) send(c *websocket.Conn, msgs [][]byte) bool {
	for _, m := range msgs {
		ctx, cancel := context.WithTimeout(context.Background(), liveness)
		err := c.Write(ctx, websocket.MessageText, m)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}

// hold keeps the connection open and answering pings until the client
// leaves or the test ends.
func (s *wsServer) hold(c *websocket.Conn) {
	ctx := c.CloseRead(context.Background())
	select {
	case <-ctx.Done():
	case <-s.done:
	}
}

// silent keeps the connection open without reading: no pongs, no data.
func (s *wsServer) silent() { <-s.done }

// collector is a sink that keeps everything it receives.
type collector struct {
	mu      sync.Mutex
	trades  []md.Trade
	quotes  []md.Quote
	bars    []md.Bar
	batches []int
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trades = append(c.trades, b.Trades...)
	c.quotes = append(c.quotes, b.Quotes...)
	c.bars = append(c.bars, b.Bars...)
	c.batches = append(c.batches, b.Len())
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.trades) + len(c.quotes) + len(c.bars)
}

func (c *collector) snapshot() ([]md.Trade, []md.Quote, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]md.Trade(nil), c.trades...), append([]md.Quote(nil), c.quotes...), append([]int(nil), c.batches...)
}

func testLogger() *slog.Logger {
	if os.Getenv("MDP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// sourceNode builds the provider.websocket node "src" from params.
func sourceNode(t testing.TB, params map[string]any) *engine.Node {
	t.Helper()
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	return component.Node(spec, p, component.NodeOptions{ID: "src"})
}

func sinkNode(c *collector) *engine.Node {
	return &engine.Node{ID: "sink", Type: "sink.collect", Kind: engine.KindSink, Accepts: md.KindAny,
		Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return c, nil }}
}

// runningJob is a job started in the background.
type runningJob struct {
	j    *engine.Job
	done chan error
}

func startJob(t testing.TB, nodes []*engine.Node, edges []*engine.Edge) *runningJob {
	t.Helper()
	return startJobOpts(t, nodes, edges, engine.Options{})
}

func startJobOpts(t testing.TB, nodes []*engine.Node, edges []*engine.Edge, opts engine.Options) *runningJob {
	t.Helper()
	opts.Job, opts.Logger = "t", testLogger()
	j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: edges}, opts)
	if err != nil {
		t.Fatal(err)
	}
	rj := &runningJob{j: j, done: make(chan error, 1)}
	go func() { rj.done <- j.Run(context.Background()) }()
	t.Cleanup(func() {
		j.Stop()
		select {
		case <-j.Done():
		case <-time.After(liveness):
			t.Error("job did not stop")
		}
	})
	return rj
}

// stop stops the job and returns its error.
func (rj *runningJob) stop(t testing.TB) error {
	t.Helper()
	rj.j.Stop()
	select {
	case err := <-rj.done:
		return err
	case <-time.After(liveness):
		t.Fatal("job did not stop")
		return nil
	}
}

func (rj *runningJob) stats() *engine.NodeStats { return rj.j.NodeContexts("src")[0].Stats }

// startSource runs src -> sink.
func startSource(t testing.TB, params map[string]any) (*runningJob, *collector) {
	c := &collector{}
	rj := startJob(t, []*engine.Node{sourceNode(t, params), sinkNode(c)}, []*engine.Edge{{From: "src", To: "sink"}})
	return rj, c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(liveness)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// expectBinance decodes trade messages with encoding/json: the oracle.
func expectBinance(t testing.TB, msgs [][]byte) []md.Trade {
	var out []md.Trade
	for _, m := range msgs {
		var o binanceTradeMsg
		if err := json.Unmarshal(m, &o); err != nil {
			t.Fatal(err)
		}
		side := md.SideBuy
		if o.M {
			side = md.SideSell
		}
		out = append(out, md.Trade{TS: o.Time * 1e6, Price: mustFloat(t, o.P), Size: mustFloat(t, o.Q), TradeID: o.ID, Side: side})
	}
	return out
}

// sameTrades compares trades ignoring Sym and Ingest, and checks Ingest is a
// receipt time within [from, to].
func sameTrades(t testing.TB, got, want []md.Trade, from, to int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d trades, want %d", len(got), len(want))
	}
	for i := range want {
		g := got[i]
		if g.Ingest < from || g.Ingest > to {
			t.Fatalf("trade %d ingest %d outside the run [%d, %d]", i, g.Ingest, from, to)
		}
		g.Ingest, g.Sym = 0, 0
		if g != want[i] {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, g, want[i])
		}
	}
}

func checkCounts(t testing.TB, what string, got map[string]int64, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", what, got, want)
			return
		}
	}
}

var binanceSubscribe = []any{map[string]any{"method": "SUBSCRIBE", "params": []any{"btcusdt@trade"}, "id": 1}}

const binanceSubscribeJSON = `{"id":1,"method":"SUBSCRIBE","params":["btcusdt@trade"]}`

func TestSourceBinanceTradesOverLoopback(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		if s.send(c, append([][]byte{[]byte(`{"result":null,"id":1}`)}, msgs...)) {
			s.hold(c)
		}
	})
	from := time.Now().UnixNano()
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance", "subscribe": binanceSubscribe})
	waitFor(t, "1000 trades", func() bool { return col.count() >= 1000 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	to := time.Now().UnixNano()
	got, _, batches := col.snapshot()
	sameTrades(t, got, expectBinance(t, msgs), from, to)
	if subs := srv.subscriptions(); len(subs) != 1 || len(subs[0]) != 1 || subs[0][0] != binanceSubscribeJSON {
		t.Errorf("server received %q", subs)
	}
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"connects": 1, "ignored_messages": 1})
	checkCounts(t, "drops", st.Drops(), nil)
	checkCounts(t, "errors", st.Errors(), nil)
	if inst := rj.j.Symbols().Get(got[0].Sym); inst.Provider != "binance" || inst.Symbol != "BTCUSDT" {
		t.Errorf("instrument %+v", inst)
	}
	total := 0
	for _, n := range batches {
		total += n
	}
	if total != 1000 || len(batches) > 1000 {
		t.Errorf("batches %v", batches)
	}
}

func TestSourceReconnectsAfterServerCloseWithoutDuplicates(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		switch n {
		case 0:
			// Mid-stream the server goes away.
			if s.send(c, msgs[:400]) {
				c.Close(websocket.StatusGoingAway, "server restart")
			}
		default:
			// After reconnecting the exchange replays its last 50 trades.
			if s.send(c, msgs[350:]) {
				s.hold(c)
			}
		}
	})
	from := time.Now().UnixNano()
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance", "subscribe": binanceSubscribe,
		"reconnect_backoff": "10ms"})
	waitFor(t, "1000 trades", func() bool { return col.count() >= 1000 })
	waitFor(t, "the duplicates to be counted", func() bool { return rj.stats().Drops()["duplicate"] == 50 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	want := expectBinance(t, msgs)
	sameTrades(t, got, want, from, time.Now().UnixNano())
	// The exchange replayed what the reconnect missed (the trade ids say
	// so): no gap in the feed, no partial bar.
	if g := rj.j.Symbols().Gaps(got[0].Sym); len(g) != 0 {
		t.Errorf("gaps %+v, want none", g)
	}
	subs := srv.subscriptions()
	if len(subs) != 2 || len(subs[0]) != 1 || len(subs[1]) != 1 || subs[0][0] != binanceSubscribeJSON || subs[1][0] != binanceSubscribeJSON {
		t.Errorf("the subscription was not re-sent on reconnect: %q", subs)
	}
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"connects": 2, "reconnects": 1})
	checkCounts(t, "drops", st.Drops(), map[string]int64{"duplicate": 50})
	checkCounts(t, "errors", st.Errors(), map[string]int64{"disconnect": 1})
	if le := st.LastError(); !strings.Contains(le, "StatusGoingAway") || !strings.Contains(le, "server restart") {
		t.Errorf("last error %q does not say why", le)
	}
}

func TestSourceCountsTradeIDGap(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	sent := append(append([][]byte{}, msgs[:100]...), msgs[105:200]...)
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) {
		if s.send(c, sent) {
			s.hold(c)
		}
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance"})
	waitFor(t, "195 trades", func() bool { return col.count() >= 195 })
	waitFor(t, "the gap count", func() bool { return rj.stats().Counters()["sequence_gaps"] == 1 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	sameTrades(t, got, expectBinance(t, sent), 0, time.Now().UnixNano())
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"connects": 1, "sequence_gaps": 1, "sequence_gap_missing": 5})
	checkCounts(t, "drops", st.Drops(), nil)
	// The missed trades are a gap in the feed between the trades around
	// them: bars touching it are partial.
	want := expectBinance(t, sent)
	var before int64
	for _, tr := range want[:100] {
		before = max(before, tr.TS)
	}
	if g := rj.j.Symbols().Gaps(got[0].Sym); len(g) != 1 || g[0] != (md.Gap{From: before, To: max(before, want[100].TS)}) {
		t.Errorf("gaps %+v, want one from %d to %d", g, before, want[100].TS)
	}
}

// TestSourceReconnectWithoutSequenceCheckRecordsTheGap: without ids to
// tell what a reconnect missed, it is a gap in the feed from the newest
// time before it to the first record after it.
func TestSourceReconnectWithoutSequenceCheckRecordsTheGap(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		switch n {
		case 0:
			if s.send(c, msgs[:200]) {
				c.Close(websocket.StatusGoingAway, "server restart")
			}
		default:
			if s.send(c, msgs[200:300]) {
				s.hold(c)
			}
		}
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance", "subscribe": binanceSubscribe,
		"reconnect_backoff": "10ms", "sequence_check": "none"})
	waitFor(t, "300 trades", func() bool { return col.count() >= 300 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	want := expectBinance(t, msgs[:300])
	var before int64
	for _, tr := range want[:200] {
		before = max(before, tr.TS)
	}
	if g := rj.j.Symbols().Gaps(got[0].Sym); len(g) != 1 || g[0] != (md.Gap{From: before, To: max(before, want[200].TS)}) {
		t.Errorf("gaps %+v, want one from %d to %d", g, before, want[200].TS)
	}
}

func TestSourceMalformedFramesAreCountedAndTheConnectionKept(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")[:20]
	bad := [][]byte{
		[]byte(`not json at all`),
		[]byte(`{"e":"trade","s":"BTCUSDT","t":42377950`),
		[]byte(`{"e":"trade","s":"BTCUSDT","t":42377950,"p":"one","q":"1","T":1582329602111}`),
		[]byte(`{"e":"trade","s":"BTCUSDT","p":"9682.00","q":"1","T":1582329602111}`),
	}
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) {
		for i, m := range msgs {
			if i%5 == 2 {
				s.send(c, bad[i/5:i/5+1])
			}
			if !s.send(c, [][]byte{m}) {
				return
			}
		}
		// A binary frame of garbage.
		ctx, cancel := context.WithTimeout(context.Background(), liveness)
		c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00, 0x7b})
		cancel()
		s.hold(c)
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance"})
	waitFor(t, "20 trades", func() bool { return col.count() >= 20 })
	waitFor(t, "5 malformed", func() bool { return rj.stats().Drops()["malformed"] == 5 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	sameTrades(t, got, expectBinance(t, msgs), 0, time.Now().UnixNano())
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"connects": 1})
	checkCounts(t, "drops", st.Drops(), map[string]int64{"malformed": 5})
	checkCounts(t, "errors", st.Errors(), nil)
}

func TestSourceSilentServerTimesOutAndReconnects(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		switch n {
		case 0:
			// Sends a little, then neither sends nor reads (no pongs): a
			// half-dead peer the TCP connection does not reveal.
			if s.send(c, msgs[:10]) {
				s.silent()
			}
		default:
			if s.send(c, msgs[10:20]) {
				s.hold(c)
			}
		}
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance", "subscribe": binanceSubscribe,
		"read_timeout": "1500ms", "ping_interval": "100ms", "reconnect_backoff": "10ms"})
	waitFor(t, "20 trades", func() bool { return col.count() >= 20 })
	// The second connection is quiet but answers pings: it must survive
	// several read_timeouts.
	time.Sleep(4 * time.Second)
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	sameTrades(t, got, expectBinance(t, msgs[:20]), 0, time.Now().UnixNano())
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"connects": 2, "reconnects": 1})
	checkCounts(t, "errors", st.Errors(), map[string]int64{"disconnect": 1})
	if le := st.LastError(); le != "no data for 1.5s (read_timeout): connection presumed dead" {
		t.Errorf("last error %q", le)
	}
	if subs := srv.subscriptions(); len(subs) != 2 || len(subs[1]) != 1 {
		t.Errorf("subscriptions %q", subs)
	}
}

func TestSourceEmitsALoneTradeAtOnce(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	next := make(chan struct{})
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) {
		ctx := c.CloseRead(context.Background())
		for i := 0; i < 3; i++ {
			if !s.send(c, msgs[i:i+1]) {
				return
			}
			select {
			case <-next:
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		}
		<-s.done
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance"})
	// Each trade is the only one on the wire until the sink has it: the
	// source must not hold it waiting for a fuller batch.
	for i := 1; i <= 3; i++ {
		waitFor(t, fmt.Sprintf("trade %d", i), func() bool { return col.count() >= i })
		if i < 3 {
			next <- struct{}{}
		}
	}
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	_, _, batches := col.snapshot()
	if fmt.Sprint(batches) != "[1 1 1]" {
		t.Errorf("batches %v, want [1 1 1]", batches)
	}
}

func TestSourceCoinbaseReconnectDropsReplayedLastMatch(t *testing.T) {
	msgs := readLines(t, "coinbase.jsonl")
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		switch n {
		case 0:
			if s.send(c, msgs[:20]) {
				c.CloseNow() // abrupt: no close frame
			}
		default:
			// On subscribing again Coinbase sends the product's last match
			// first: the last trade the client already has.
			var last []byte
			for _, m := range msgs[:20] {
				if strings.Contains(string(m), `"type":"match"`) {
					last = []byte(strings.Replace(string(m), `"type":"match"`, `"type":"last_match"`, 1))
				}
			}
			if s.send(c, append([][]byte{msgs[0], last}, msgs[20:]...)) {
				s.hold(c)
			}
		}
	})
	sub := []any{map[string]any{"type": "subscribe", "product_ids": []any{"BTC-USD"}, "channels": []any{"matches"}}}
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "coinbase", "subscribe": sub, "reconnect_backoff": "10ms"})
	waitFor(t, "31 trades", func() bool { return col.count() >= 31 })
	waitFor(t, "the duplicate", func() bool { return rj.stats().Drops()["duplicate"] == 1 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	want := newTestDec(t, map[string]any{"preset": "coinbase"})
	want.feed(msgs, 0)
	if len(got) != 31 || len(want.trades) != 31 {
		t.Fatalf("got %d trades, want 31", len(got))
	}
	for i := range got {
		g, w := got[i], want.trades[i]
		g.Ingest, g.Sym, w.Sym = 0, 0, 0
		if g != w {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	st := rj.stats()
	checkCounts(t, "drops", st.Drops(), map[string]int64{"duplicate": 1, "other_kind": 5})
	if c := st.Counters(); c["connects"] != 2 || c["reconnects"] != 1 {
		t.Errorf("counters %v", c)
	}
	if subs := srv.subscriptions(); len(subs) != 2 || subs[1][0] != `{"channels":["matches"],"product_ids":["BTC-USD"],"type":"subscribe"}` {
		t.Errorf("subscriptions %q", subs)
	}
}

func TestSourceGivesUpAfterMaxReconnects(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	rj, _ := startSource(t, map[string]any{"url": url, "preset": "binance", "max_reconnects": 2,
		"reconnect_backoff": "1ms", "reconnect_max_backoff": "5ms"})
	var err error
	select {
	case err = <-rj.done:
	case <-time.After(liveness):
		t.Fatal("the source did not give up")
	}
	prefix := fmt.Sprintf(`node "src": websocket %s: giving up after 2 reconnect attempts that delivered no records: connect: `, url)
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v, want %q… 503", err, prefix)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 {
		t.Errorf("%d connection attempts, want 3 (the first and 2 reconnects)", attempts)
	}
	st := rj.stats()
	checkCounts(t, "counters", st.Counters(), map[string]int64{"reconnects": 2})
	checkCounts(t, "errors", st.Errors(), map[string]int64{"connect_failed": 3, "failed": 1})
}

func TestSourceStopsPromptlyWhileConnected(t *testing.T) {
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) { s.hold(c) })
	rj, _ := startSource(t, map[string]any{"url": srv.url(), "preset": "binance"})
	waitFor(t, "the connection", func() bool { return rj.stats().Counters()["connects"] == 1 })
	if err := rj.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	checkCounts(t, "errors", rj.stats().Errors(), nil)
}

func TestSourceOverTLS(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")[:300]
	srv := newWSServer(t, 1, func(s *wsServer, c *websocket.Conn, n int) {
		if s.send(c, msgs) {
			s.hold(c)
		}
	})
	// The same handler behind TLS on loopback; srv still records.
	tlsSrv := httptest.NewTLSServer(srv.srv.Config.Handler)
	defer tlsSrv.Close()
	node := sourceNode(t, map[string]any{"url": "wss" + strings.TrimPrefix(tlsSrv.URL, "https"), "preset": "binance", "subscribe": binanceSubscribe})
	newSrc := node.NewSource
	node.NewSource = func(i int) (engine.Source, error) {
		v, err := newSrc(i)
		if err == nil {
			v.(*Source).tlsConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
		}
		return v, err
	}
	col := &collector{}
	rj := startJob(t, []*engine.Node{node, sinkNode(col)}, []*engine.Edge{{From: "src", To: "sink"}})
	waitFor(t, "300 trades", func() bool { return col.count() >= 300 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _, _ := col.snapshot()
	sameTrades(t, got, expectBinance(t, msgs), 0, time.Now().UnixNano())
	if subs := srv.subscriptions(); len(subs) != 1 || subs[0][0] != binanceSubscribeJSON {
		t.Errorf("subscriptions %q", subs)
	}
	checkCounts(t, "counters", rj.stats().Counters(), map[string]int64{"connects": 1})
}

func TestSourceQuotesFromBinanceBookTicker(t *testing.T) {
	msgs := readLines(t, "binance_futures_combined.jsonl")
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) {
		if s.send(c, msgs) {
			s.hold(c)
		}
	})
	rj, col := startSource(t, map[string]any{"url": srv.url(), "preset": "binance", "kind": "quote"})
	waitFor(t, "6 quotes", func() bool { return col.count() >= 6 })
	waitFor(t, "the aggTrades dropped as other kind", func() bool { return rj.stats().Drops()["other_kind"] == 10 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	_, got, _ := col.snapshot()
	want := newTestDec(t, map[string]any{"preset": "binance", "kind": "quote"})
	want.feed(msgs, 0)
	if len(got) != 6 {
		t.Fatalf("quotes %d", len(got))
	}
	for i := range got {
		g, w := got[i], want.quotes[i]
		g.Ingest, g.Sym, w.Sym = 0, 0, 0
		if g != w {
			t.Fatalf("quote %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	checkCounts(t, "drops", rj.stats().Drops(), map[string]int64{"other_kind": 10})
}

func TestSourceReportsStoreFeedbackButKeepsReading(t *testing.T) {
	// A live feed cannot be slowed: at level hard (scale 0) a paced source
	// would pause; this one keeps delivering and only records the level.
	msgs := readLines(t, "binance_futures_trade.jsonl")[:100]
	release := make(chan struct{})
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) {
		select {
		case <-release:
		case <-s.done:
			return
		}
		if s.send(c, msgs) {
			s.hold(c)
		}
	})
	fb := engine.NewFeedback(engine.DefaultFeedback())
	col := &collector{}
	rj := startJobOpts(t, []*engine.Node{sourceNode(t, map[string]any{"url": srv.url(), "preset": "binance"}), sinkNode(col)},
		[]*engine.Edge{{From: "src", To: "sink"}}, engine.Options{Feedback: fb})
	waitFor(t, "the connection", func() bool { return rj.stats().Counters()["connects"] == 1 })
	fb.Report("store", engine.LevelHard)
	close(release)
	waitFor(t, "100 trades under level hard", func() bool { return col.count() >= 100 })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, "counters", rj.stats().Counters(), map[string]int64{"connects": 1, "feedback_hard": 1})
	checkCounts(t, "drops", rj.stats().Drops(), nil)
}

// logBuffer collects a job's text log.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged runs src -> sink with the job's log in a buffer; hook may
// adjust the source before it runs.
func startLogged(t *testing.T, params map[string]any, hook func(*Source)) (*engine.Job, *logBuffer, chan error) {
	t.Helper()
	node := sourceNode(t, params)
	newSrc := node.NewSource
	var src *Source
	node.NewSource = func(i int) (engine.Source, error) {
		v, err := newSrc(i)
		if err == nil {
			src = v.(*Source)
			if hook != nil {
				hook(src)
			}
		}
		return v, err
	}
	logs := &logBuffer{}
	j, err := engine.New(&engine.Graph{Nodes: []*engine.Node{node, sinkNode(&collector{})}, Edges: []*engine.Edge{{From: "src", To: "sink"}}},
		engine.Options{Job: "t", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if j.Ready() {
		t.Fatal("ready before the first connection")
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	t.Cleanup(func() {
		j.Stop()
		<-j.Done()
	})
	return j, logs, done
}

// A source that never connected says it failed to connect, not that it
// was disconnected, logs the wait as a duration, and the job is not ready.
func TestSourceNeverConnectedLogsConnectFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	j, logs, _ := startLogged(t, map[string]any{"url": url, "preset": "binance",
		"reconnect_backoff": "20ms", "reconnect_max_backoff": "40ms"}, nil)
	waitFor(t, "two attempts", func() bool { return strings.Count(logs.String(), "connect failed") >= 2 })
	out := logs.String()
	if strings.Contains(out, "disconnected") || strings.Contains(out, "reconnecting") {
		t.Fatalf("never connected, yet logged a disconnect:\n%s", out)
	}
	if !regexp.MustCompile(`msg="websocket connect failed; retrying" .* in=[0-9][0-9.]*(ns|µs|ms|s) attempt=1`).MatchString(out) {
		t.Fatalf("no retry record with a duration:\n%s", out)
	}
	if j.Ready() {
		t.Fatal("ready without ever connecting")
	}
}

// "no such host" a few times in a row fails the job as a mistake in the
// url instead of retrying forever.
func TestSourceUnknownHostFailsTheJob(t *testing.T) {
	dials := 0
	_, _, done := startLogged(t, map[string]any{"url": "wss://feed.example.invalid/ws", "preset": "binance",
		"reconnect_backoff": "1ms", "reconnect_max_backoff": "2ms"}, func(s *Source) {
		s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials++
			return nil, &net.DNSError{Err: "no such host", Name: "feed.example.invalid", IsNotFound: true}
		}
	})
	var err error
	select {
	case err = <-done:
	case <-time.After(liveness):
		t.Fatal("the source kept retrying an unknown host")
	}
	want := `node "src": websocket wss://feed.example.invalid/ws: the host "feed.example.invalid" is not known to DNS (3 attempts in a row): check the url in the job: connect: `
	if err == nil || !strings.HasPrefix(err.Error(), want) || dials != dnsGiveUp {
		t.Fatalf("%d dials, error %v", dials, err)
	}
}

// Readiness follows the first connection.
func TestSourceReadyAfterFirstConnection(t *testing.T) {
	srv := newWSServer(t, 0, func(s *wsServer, c *websocket.Conn, n int) { s.hold(c) })
	j, _, _ := startLogged(t, map[string]any{"url": srv.url(), "preset": "binance"}, nil)
	waitFor(t, "ready", j.Ready)
}

// TestSourceMasksURLSecrets: a listen key in the path and signature / key /
// token query params never reach a log line, the status errors or the job's
// error, though every reconnect logs the URL and the dialer's error quotes
// it.
func TestSourceMasksURLSecrets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections are now refused
	const listenKey = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
	secrets := []string{listenKey, "c0ffee5ig", "k3y-v4lue", "t0ken", "pa55"}
	url := "ws://" + addr + "/ws/" + listenKey + "?timestamp=1&signature=c0ffee5ig&key=k3y-v4lue&token=t0ken&password=pa55"
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := &engine.Graph{Nodes: []*engine.Node{sourceNode(t, map[string]any{"url": url, "preset": "binance", "max_reconnects": 2,
		"reconnect_backoff": "1ms", "reconnect_max_backoff": "5ms"}), sinkNode(&collector{})}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}
	j, err := engine.New(g, engine.Options{Job: "t", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	err = j.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "/ws/xxxxx?") || !strings.Contains(err.Error(), "signature=xxxxx") {
		t.Fatalf("error %v: want the masked URL", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), " attempt="); n != 2 {
		t.Errorf("%d reconnect lines, want 2:\n%s", n, logs.String())
	}
	shown := err.Error() + logs.String() + j.NodeContexts("src")[0].Stats.LastError()
	for _, s := range secrets {
		if strings.Contains(shown, s) {
			t.Errorf("secret %q shown: %s", s, shown)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
