package websocket

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

const testdataDir = "../../testdata/websocket"

// readLines returns the messages of a testdata file.
func readLines(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// testDec is a decoder outside any engine: emitted batches are collected and
// reported counts summed.
type testDec struct {
	*decoder
	table   *md.SymbolTable
	trades  []md.Trade
	quotes  []md.Quote
	batches int
	c       counts
	exch    []string
}

func newTestDec(t testing.TB, params map[string]any) *testDec {
	t.Helper()
	spec, ok := component.Lookup(Type)
	if !ok {
		t.Fatal("provider.websocket is not registered")
	}
	if _, ok := params["url"]; !ok {
		params["url"] = "ws://127.0.0.1:1/"
	}
	if _, ok := params["max_future"]; !ok {
		// The tests feed recorded messages with made-up arrival times
		// near the epoch; the max_future test sets its own.
		params["max_future"] = "0s"
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	s := newSource(cfg)
	td := &testDec{table: md.NewSymbolTable()}
	pool := md.NewPool(64)
	td.decoder = s.newDecoder(td.table, pool.Get, func(b *md.Batch) error {
		td.batches++
		td.trades = append(td.trades, b.Trades...)
		td.quotes = append(td.quotes, b.Quotes...)
		b.Release()
		return nil
	})
	td.report = func(c counts) {
		td.c.malformed += c.malformed
		td.c.duplicate += c.duplicate
		td.c.filtered += c.filtered
		td.c.otherKind += c.otherKind
		td.c.ignored += c.ignored
		td.c.gaps += c.gaps
		td.c.gapMissing += c.gapMissing
	}
	td.exchErr = func(m string) { td.exch = append(td.exch, m) }
	td.log = slog.New(slog.DiscardHandler)
	return td
}

func (td *testDec) feed(msgs [][]byte, recv int64) {
	for _, m := range msgs {
		td.handle(m, recv)
	}
	td.flush()
}

func (td *testDec) symbol(id md.SymID) string { return td.table.Get(id).Symbol }

func mustFloat(t testing.TB, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestScannerPrimitives(t *testing.T) {
	msg := []byte(` { "a" : "x\"y" , "b":[1,{"c":"]"}], "d" : -12.5e3 ,"e":{"f":true}} `)
	it := newObjIter(msg, skipWS(msg, 0))
	var got []string
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		got = append(got, string(k)+"="+string(raw(msg, v)))
	}
	if it.err != nil {
		t.Fatal(it.err)
	}
	want := []string{`a="x\"y"`, `b=[1,{"c":"]"}]`, `d=-12.5e3`, `e={"f":true}`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("members:\n got %q\nwant %q", got, want)
	}
	if err := endOfMessage(msg, it.i); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":"x`, `{"a":[1,2}`, `{"a":}`, `{a:1}`, `{"a":1`} {
		b := []byte(bad)
		it := newObjIter(b, 0)
		for {
			if _, _, ok := it.next(); !ok {
				break
			}
		}
		if it.err == nil {
			t.Errorf("%s: no syntax error", bad)
		}
	}
}

// binanceTradeMsg is the oracle's view of a Binance trade, decoded by
// encoding/json independently of the scanner.
type binanceTradeMsg struct {
	E     string `json:"e"`
	Event int64  `json:"E"`
	Time  int64  `json:"T"`
	S     string `json:"s"`
	ID    int64  `json:"t"`
	P     string `json:"p"`
	Q     string `json:"q"`
	M     bool   `json:"m"`
}

func TestDecodeBinanceFuturesTradesMatchesOracle(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	td := newTestDec(t, map[string]any{"preset": "binance"})
	const recv = 1_700_000_000_123_456_789
	td.feed(msgs, recv)
	if len(td.trades) != len(msgs) || len(msgs) != 1000 {
		t.Fatalf("got %d trades from %d messages", len(td.trades), len(msgs))
	}
	if td.batches != 1000/64+1 {
		t.Errorf("batches = %d, want %d (full batches of 64, then the rest)", td.batches, 1000/64+1)
	}
	for i, m := range msgs {
		var o binanceTradeMsg
		if err := json.Unmarshal(m, &o); err != nil {
			t.Fatal(err)
		}
		side := md.SideBuy
		if o.M {
			side = md.SideSell
		}
		want := md.Trade{TS: o.Time * 1e6, Ingest: recv, Price: mustFloat(t, o.P), Size: mustFloat(t, o.Q), TradeID: o.ID, Side: side, Sym: td.trades[i].Sym}
		if td.trades[i] != want {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, td.trades[i], want)
		}
		if td.symbol(td.trades[i].Sym) != "BTCUSDT" {
			t.Fatalf("symbol %q", td.symbol(td.trades[i].Sym))
		}
	}
	if inst := td.table.Get(td.trades[0].Sym); inst.Provider != "binance" {
		t.Errorf("provider %q, want binance (the preset name)", inst.Provider)
	}
	if td.c != (counts{}) {
		t.Errorf("counts %+v, want none", td.c)
	}
}

func TestDecodeBinanceCombinedSpot(t *testing.T) {
	msgs := readLines(t, "binance_spot_combined.jsonl")
	td := newTestDec(t, map[string]any{"preset": "binance", "provider": "binance-spot"})
	td.feed(msgs, 42)
	// 12 trades; 3 bookTicker (other kind), 3 depthUpdate and 1 ack (ignored).
	if len(td.trades) != 12 {
		t.Fatalf("trades = %d, want 12", len(td.trades))
	}
	first := md.Trade{TS: 1582330247763 * 1e6, Ingest: 42, Price: 9686.85, Size: 0.875, TradeID: 42378944, Side: md.SideBuy, Sym: td.trades[0].Sym}
	if td.trades[0] != first {
		t.Fatalf("first trade %+v, want %+v", td.trades[0], first)
	}
	if want := (counts{otherKind: 3, ignored: 4}); td.c != want {
		t.Errorf("counts %+v, want %+v", td.c, want)
	}
	if inst := td.table.Get(td.trades[0].Sym); inst.Provider != "binance-spot" || inst.Symbol != "BTCUSDT" {
		t.Errorf("instrument %+v", inst)
	}

	// The same stream read for quotes: spot bookTicker has no time, so the
	// receipt time is the event time, and u is the sequence.
	tq := newTestDec(t, map[string]any{"preset": "binance", "kind": "quote"})
	tq.feed(msgs, 42)
	if len(tq.quotes) != 3 {
		t.Fatalf("quotes = %d, want 3", len(tq.quotes))
	}
	wantQ := md.Quote{TS: 42, Ingest: 42, Bid: 9681.92, BidSize: 0.67, Ask: 9682, AskSize: 0.84, Seq: 400900217, Sym: tq.quotes[0].Sym}
	if tq.quotes[0] != wantQ {
		t.Fatalf("quote %+v, want %+v", tq.quotes[0], wantQ)
	}
	if want := (counts{otherKind: 12, ignored: 4}); tq.c != want {
		t.Errorf("counts %+v, want %+v", tq.c, want)
	}
}

func TestDecodeBinanceFuturesAggTradeAndBookTicker(t *testing.T) {
	msgs := readLines(t, "binance_futures_combined.jsonl")
	td := newTestDec(t, map[string]any{"preset": "binance"})
	td.feed(msgs, 7)
	if len(td.trades) != 10 {
		t.Fatalf("trades = %d", len(td.trades))
	}
	for i, tr := range td.trades {
		if tr.TradeID != 500000000+int64(i) {
			t.Fatalf("aggTrade %d id %d: the aggregate id a is the trade id", i, tr.TradeID)
		}
	}
	want0 := md.Trade{TS: 1582330939036 * 1e6, Ingest: 7, Price: 9693.81, Size: 0.01, TradeID: 500000000, Side: md.SideSell, Sym: td.trades[0].Sym}
	if td.trades[0] != want0 {
		t.Fatalf("aggTrade %+v, want %+v", td.trades[0], want0)
	}
	tq := newTestDec(t, map[string]any{"preset": "binance", "kind": "quote"})
	tq.feed(msgs, 7)
	if len(tq.quotes) != 6 {
		t.Fatalf("quotes = %d", len(tq.quotes))
	}
	// Futures bookTicker: T (transaction time) is the event time.
	var o struct {
		Data struct {
			U int64  `json:"u"`
			T int64  `json:"T"`
			B string `json:"b"`
			A string `json:"a"`
			X string `json:"B"`
			Y string `json:"A"`
		} `json:"data"`
	}
	if err := json.Unmarshal(msgs[11], &o); err != nil {
		t.Fatal(err)
	}
	wantQ := md.Quote{TS: o.Data.T * 1e6, Ingest: 7, Bid: mustFloat(t, o.Data.B), BidSize: mustFloat(t, o.Data.X), Ask: mustFloat(t, o.Data.A), AskSize: mustFloat(t, o.Data.Y), Seq: uint64(o.Data.U), Sym: tq.quotes[0].Sym}
	if tq.quotes[0] != wantQ {
		t.Fatalf("bookTicker %+v, want %+v", tq.quotes[0], wantQ)
	}
}

func TestDecodeCoinbase(t *testing.T) {
	msgs := readLines(t, "coinbase.jsonl")
	td := newTestDec(t, map[string]any{"preset": "coinbase"})
	td.feed(msgs, 5)
	if len(td.trades) != 31 {
		t.Fatalf("trades = %d, want 31 (last_match + 30 match)", len(td.trades))
	}
	type cbMsg struct {
		Type    string `json:"type"`
		TradeID int64  `json:"trade_id"`
		Seq     uint64 `json:"sequence"`
		Time    string `json:"time"`
		Product string `json:"product_id"`
		Size    string `json:"size"`
		Price   string `json:"price"`
		Side    string `json:"side"`
		Bid     string `json:"best_bid"`
		BidSize string `json:"best_bid_size"`
		Ask     string `json:"best_ask"`
		AskSize string `json:"best_ask_size"`
	}
	var wantTrades []md.Trade
	var wantQuotes []md.Quote
	for _, m := range msgs {
		var o cbMsg
		if err := json.Unmarshal(m, &o); err != nil {
			t.Fatal(err)
		}
		ts, _ := time.Parse(time.RFC3339Nano, o.Time)
		switch o.Type {
		case "match", "last_match":
			side := md.SideBuy // the maker sold
			if o.Side == "buy" {
				side = md.SideSell
			}
			wantTrades = append(wantTrades, md.Trade{TS: ts.UnixNano(), Ingest: 5, Price: mustFloat(t, o.Price), Size: mustFloat(t, o.Size), TradeID: o.TradeID, Seq: o.Seq, Side: side})
		case "ticker":
			wantQuotes = append(wantQuotes, md.Quote{TS: ts.UnixNano(), Ingest: 5, Bid: mustFloat(t, o.Bid), BidSize: mustFloat(t, o.BidSize), Ask: mustFloat(t, o.Ask), AskSize: mustFloat(t, o.AskSize), Seq: o.Seq})
		}
	}
	for i := range wantTrades {
		wantTrades[i].Sym = td.trades[i].Sym
		if td.trades[i] != wantTrades[i] {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, td.trades[i], wantTrades[i])
		}
	}
	if td.symbol(td.trades[0].Sym) != "BTC-USD" {
		t.Errorf("symbol %q", td.symbol(td.trades[0].Sym))
	}
	// subscriptions + heartbeat ignored; 5 tickers are quotes.
	if want := (counts{ignored: 2, otherKind: 5}); td.c != want {
		t.Errorf("counts %+v, want %+v", td.c, want)
	}

	tq := newTestDec(t, map[string]any{"preset": "coinbase", "kind": "quote"})
	tq.feed(msgs, 5)
	if len(tq.quotes) != len(wantQuotes) || len(wantQuotes) != 5 {
		t.Fatalf("quotes = %d, want %d", len(tq.quotes), len(wantQuotes))
	}
	for i := range wantQuotes {
		wantQuotes[i].Sym = tq.quotes[i].Sym
		if tq.quotes[i] != wantQuotes[i] {
			t.Fatalf("quote %d:\n got %+v\nwant %+v", i, tq.quotes[i], wantQuotes[i])
		}
	}
}

func TestDecodeCoinbaseSequenceCheckOnFullChannel(t *testing.T) {
	// On the full channel every message of a product advances its sequence,
	// whatever its type; a skipped number is a gap, a repeated one a duplicate.
	msgs := [][]byte{
		[]byte(`{"type":"received","product_id":"BTC-USD","sequence":100,"order_id":"x"}`),
		[]byte(`{"type":"match","trade_id":7,"side":"sell","size":"1","price":"10","product_id":"BTC-USD","sequence":101,"time":"2024-01-02T14:30:00.5Z"}`),
		[]byte(`{"type":"open","product_id":"BTC-USD","sequence":102}`),
		[]byte(`{"type":"heartbeat","last_trade_id":7,"product_id":"BTC-USD","sequence":102,"time":"2024-01-02T14:30:00.9Z"}`),
		[]byte(`{"type":"match","trade_id":8,"side":"buy","size":"2","price":"11","product_id":"BTC-USD","sequence":106,"time":"2024-01-02T14:30:01Z"}`),
		[]byte(`{"type":"match","trade_id":8,"side":"buy","size":"2","price":"11","product_id":"BTC-USD","sequence":106,"time":"2024-01-02T14:30:01Z"}`),
	}
	td := newTestDec(t, map[string]any{"preset": "coinbase", "sequence_check": "sequence"})
	td.feed(msgs, 1)
	if len(td.trades) != 2 || td.trades[0].TradeID != 7 || td.trades[1].TradeID != 8 || td.trades[1].Side != md.SideSell {
		t.Fatalf("trades %+v", td.trades)
	}
	if want := (counts{ignored: 3, gaps: 1, gapMissing: 3, duplicate: 1}); td.c != want {
		t.Errorf("counts %+v, want %+v", td.c, want)
	}
}

func TestDecodeGenericOKX(t *testing.T) {
	msgs := readLines(t, "okx_trades.jsonl")
	td := newTestDec(t, map[string]any{
		"preset": "generic", "provider": "okx", "records": "data",
		"match":  map[string]any{"arg.channel": "trades"},
		"fields": map[string]any{"symbol": "instId", "price": "px", "size": "sz", "side": "side", "trade_id": "tradeId", "ts": "ts"},
	})
	td.feed(msgs, 3)
	var want []md.Trade
	for _, m := range msgs {
		var o struct {
			Data []struct {
				InstID, TradeID, Px, Sz, Side, Ts string
			} `json:"data"`
		}
		// encoding/json matches keys case-insensitively, so the struct above
		// reads instId, tradeId, px, sz, side and ts.
		if err := json.Unmarshal(m, &o); err != nil {
			t.Fatal(err)
		}
		for _, r := range o.Data {
			id, _ := strconv.ParseInt(r.TradeID, 10, 64)
			ms, _ := strconv.ParseInt(r.Ts, 10, 64)
			want = append(want, md.Trade{TS: ms * 1e6, Ingest: 3, Price: mustFloat(t, r.Px), Size: mustFloat(t, r.Sz), TradeID: id, Side: md.ParseSide(r.Side)})
		}
	}
	if len(want) != 24 || len(td.trades) != len(want) {
		t.Fatalf("trades = %d, want %d (24)", len(td.trades), len(want))
	}
	for i := range want {
		want[i].Sym = td.trades[i].Sym
		if td.trades[i] != want[i] {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, td.trades[i], want[i])
		}
	}
	// The subscribe event fails the match and is ignored; trade ids are
	// consecutive (auto check on fields.trade_id): no gaps.
	if wantC := (counts{ignored: 1}); td.c != wantC {
		t.Errorf("counts %+v, want %+v", td.c, wantC)
	}
	if inst := td.table.Get(td.trades[0].Sym); inst.Provider != "okx" || inst.Symbol != "BTC-USDT" {
		t.Errorf("instrument %+v", inst)
	}
}

func TestDecodeGenericQuotesNestedPathsAndTimeFormats(t *testing.T) {
	td := newTestDec(t, map[string]any{
		"preset": "generic", "kind": "quote", "ts_format": "rfc3339",
		"fields": map[string]any{"symbol": "m.sym", "bid": "m.book.0.0", "bid_size": "m.book.0.1", "ask": "m.book.1.0", "ask_size": "m.book.1.1", "ts": "m.time", "seq": "n"},
	})
	td.feed([][]byte{
		[]byte(`{"n":9,"m":{"time":"2024-01-02T14:30:00.25Z","sym":"EURUSD","book":[["1.0850",2e6],[1.0851,"1500000"]]}}`),
		[]byte(`{"n":10,"m":{"sym":"EURUSD","book":[[1.0849,1],[1.0852,1]]}}`),
	}, 99)
	want := []md.Quote{
		{TS: time.Date(2024, 1, 2, 14, 30, 0, 250e6, time.UTC).UnixNano(), Ingest: 99, Bid: 1.085, BidSize: 2e6, Ask: 1.0851, AskSize: 1.5e6, Seq: 9},
		{TS: 99, Ingest: 99, Bid: 1.0849, BidSize: 1, Ask: 1.0852, AskSize: 1, Seq: 10},
	}
	if len(td.quotes) != 2 {
		t.Fatalf("quotes %+v", td.quotes)
	}
	for i := range want {
		want[i].Sym = td.quotes[i].Sym
		if td.quotes[i] != want[i] {
			t.Fatalf("quote %d:\n got %+v\nwant %+v", i, td.quotes[i], want[i])
		}
	}
}

func TestDecodeMalformedMessages(t *testing.T) {
	cases := []struct {
		preset, msg, err string
	}{
		{"binance", `not json`, "not a JSON object"},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1.5","q":"2"`, "invalid JSON"},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1.5","q":"2"} {}`, "invalid JSON: data after the top-level value"},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":1,"q":"2","T":1}`, `trade: missing "p"`},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":1,"p":"abc","q":"2","T":1}`, `trade: bad "p" value "abc"`},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":"x1","p":"1","q":"2","T":1}`, `trade: bad "t" value "x1"`},
		{"binance", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"2","T":1,"m":"yes"}`, `trade: bad "m" value "yes"`},
		{"binance", `{"e":"aggTrade","s":"BTCUSDT","p":"1","q":"2","T":1}`, `aggTrade: missing "a"`},
		{"binance", `{"stream":"x","data":[1]}`, `binance: "data" is not an object`},
		{"binance", `{"E":1}`, `binance: no event type ("e")`},
		{"coinbase", `{"trade_id":1}`, `coinbase: missing "type"`},
		{"coinbase", `{"type":"match","trade_id":1,"product_id":"BTC-USD","price":"1","size":"1","time":"yesterday"}`, `match: bad "time" value "yesterday"`},
		{"coinbase", `{"type":"ticker","product_id":"BTC-USD","best_bid":"1"}`, `ticker: missing "best_ask"`},
	}
	for _, c := range cases {
		td := newTestDec(t, map[string]any{"preset": c.preset})
		var err error
		if c.preset == "binance" {
			err = td.binance([]byte(c.msg), 1)
		} else {
			err = td.coinbase([]byte(c.msg), 1)
		}
		if err == nil || err.Error() != c.err {
			t.Errorf("%s %s: error %v, want %q", c.preset, c.msg, err, c.err)
		}
		td.handle([]byte(c.msg), 1)
		td.flush()
		if td.c.malformed != 1 {
			t.Errorf("%s: malformed count %d", c.msg, td.c.malformed)
		}
	}
}

func TestDecodeBinanceExchangeErrorAndFilter(t *testing.T) {
	td := newTestDec(t, map[string]any{"preset": "binance", "symbols": []any{"ethusdt"}})
	td.feed([][]byte{
		[]byte(`{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":3}`),
		[]byte(`{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","T":1}`),
		[]byte(`{"e":"trade","s":"ETHUSDT","t":5,"p":"2","q":"1","T":1}`),
	}, 1)
	if len(td.trades) != 1 || td.symbol(td.trades[0].Sym) != "ETHUSDT" {
		t.Fatalf("trades %+v", td.trades)
	}
	if want := (counts{filtered: 1, ignored: 1}); td.c != want {
		t.Errorf("counts %+v, want %+v", td.c, want)
	}
	if len(td.exch) != 1 || td.exch[0] != `{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":3}` {
		t.Errorf("exchange errors %q", td.exch)
	}
	if _, ok := td.table.Lookup("binance", "BTCUSDT"); ok {
		t.Error("a filtered symbol was interned")
	}
	// An escaped symbol is interned as the text it spells.
	tg := newTestDec(t, map[string]any{"preset": "generic", "fields": map[string]any{"symbol": "pair", "price": "p", "size": "q"}})
	tg.feed([][]byte{[]byte(`{"pair":"XBT\/USD","p":1,"q":2}`), []byte(`{"pair":"XBT/USD","p":3,"q":4}`)}, 1)
	if len(tg.trades) != 2 || tg.trades[0].Sym != tg.trades[1].Sym || tg.symbol(tg.trades[0].Sym) != "XBT/USD" {
		t.Errorf("escaped symbol: %+v %q", tg.trades, tg.symbol(tg.trades[0].Sym))
	}
}

func TestDecodeGapsAndDuplicatesPerSymbol(t *testing.T) {
	td := newTestDec(t, map[string]any{"preset": "binance"})
	msg := func(sym string, id int) []byte {
		return []byte(`{"e":"trade","s":"` + sym + `","t":` + strconv.Itoa(id) + `,"p":"1","q":"1","T":1}`)
	}
	td.feed([][]byte{msg("A", 10), msg("B", 500), msg("A", 11), msg("A", 15), msg("B", 501), msg("A", 14), msg("A", 15), msg("B", 510), msg("A", 16)}, 1)
	var ids []string
	for _, tr := range td.trades {
		ids = append(ids, td.symbol(tr.Sym)+strconv.FormatInt(tr.TradeID, 10))
	}
	if got := strings.Join(ids, " "); got != "A10 B500 A11 A15 B501 B510 A16" {
		t.Fatalf("kept %s", got)
	}
	if want := (counts{gaps: 2, gapMissing: 3 + 8, duplicate: 2}); td.c != want {
		t.Errorf("counts %+v, want %+v", td.c, want)
	}
	tn := newTestDec(t, map[string]any{"preset": "binance", "sequence_check": "none"})
	tn.feed([][]byte{msg("A", 10), msg("A", 10), msg("A", 20)}, 1)
	if len(tn.trades) != 3 || tn.c != (counts{}) {
		t.Errorf("sequence_check none: %d trades, counts %+v", len(tn.trades), tn.c)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	msgs := readLines(t, "binance_futures_trade.jsonl")
	td := newTestDec(t, map[string]any{"preset": "binance", "sequence_check": "none"})
	td.emit = func(b *md.Batch) error { b.Release(); return nil }
	td.feed(msgs[:1], 1) // interns the symbol
	i := 0
	allocs := testing.AllocsPerRun(5000, func() {
		td.handle(msgs[i%len(msgs)], 1)
		i++
	})
	if allocs != 0 {
		t.Errorf("binance trade decode: %v allocations per message, want 0", allocs)
	}
	cb := readLines(t, "coinbase.jsonl")
	tc := newTestDec(t, map[string]any{"preset": "coinbase", "sequence_check": "none"})
	tc.emit = td.emit
	tc.feed(cb, 1)
	allocs = testing.AllocsPerRun(5000, func() {
		tc.handle(cb[2], 1)
	})
	if allocs != 0 {
		t.Errorf("coinbase match decode: %v allocations per message, want 0", allocs)
	}
}

// TestNumbersAndFutureTimesAreMalformed: prices finite and positive, sizes
// finite and non-negative, a quote side absent (0) but never negative, no
// hex floats; event times more than max_future ahead of arrival are
// malformed, in every preset.
func TestNumbersAndFutureTimesAreMalformed(t *testing.T) {
	const recv = 1704205800000000000 // 2024-01-02T14:30:00Z
	for _, c := range []struct {
		params map[string]any
		good   []string
		bad    []string
	}{
		{map[string]any{"preset": "binance"},
			[]string{`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":1,"p":"42000.5","q":"0","T":1704205800000,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":2,"p":"42000.5","q":"1","T":1704205809999,"m":true}`},
			[]string{`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":3,"p":"-5","q":"1","T":1704205800000,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":4,"p":"0","q":"1","T":1704205800000,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":5,"p":"1","q":"-1","T":1704205800000,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":6,"p":"0x1p3","q":"1","T":1704205800000,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":7,"p":"1","q":"1","T":1704205810001,"m":true}`,
				`{"e":"trade","E":1704205800000,"s":"BTCUSDT","t":8,"p":"1","q":"1","T":7258118400000,"m":true}`}},
		{map[string]any{"preset": "binance", "kind": "quote"},
			[]string{`{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"0","B":"0","a":"42000.5","A":"2","T":1704205800000,"E":1704205800000}`},
			[]string{`{"e":"bookTicker","u":2,"s":"BTCUSDT","b":"-1","B":"1","a":"42000.5","A":"2","T":1704205800000,"E":1704205800000}`,
				`{"e":"bookTicker","u":3,"s":"BTCUSDT","b":"1","B":"-1","a":"42000.5","A":"2","T":1704205800000,"E":1704205800000}`,
				`{"e":"bookTicker","u":4,"s":"BTCUSDT","b":"0","B":"0","a":"0","A":"0","T":1704205800000,"E":1704205800000}`}},
		{map[string]any{"preset": "coinbase"},
			[]string{`{"type":"match","trade_id":1,"sequence":1,"product_id":"BTC-USD","size":"0.5","price":"42000","side":"buy","time":"2024-01-02T14:30:00Z"}`},
			[]string{`{"type":"match","trade_id":2,"sequence":2,"product_id":"BTC-USD","size":"0.5","price":"-42000","side":"buy","time":"2024-01-02T14:30:00Z"}`,
				`{"type":"match","trade_id":3,"sequence":3,"product_id":"BTC-USD","size":"0.5","price":"42000","side":"buy","time":"2024-01-02T15:30:00Z"}`}},
		{map[string]any{"preset": "generic", "fields": map[string]any{"symbol": "s", "price": "p", "size": "q", "ts": "t"}},
			[]string{`{"s":"A","p":1.5,"q":2,"t":1704205800000}`},
			[]string{`{"s":"A","p":-1.5,"q":2,"t":1704205800000}`, `{"s":"A","p":1.5,"q":-2,"t":1704205800000}`,
				`{"s":"A","p":1.5,"q":2,"t":1704209400000}`}},
	} {
		c.params["max_future"] = "10s"
		td := newTestDec(t, c.params)
		var msgs [][]byte
		for _, m := range append(append([]string{}, c.good...), c.bad...) {
			msgs = append(msgs, []byte(m))
		}
		td.feed(msgs, recv)
		if n := len(td.trades) + len(td.quotes); n != len(c.good) || td.c.malformed != int64(len(c.bad)) {
			t.Errorf("%v: %d records, %d malformed; want %d and %d", c.params["preset"], n, td.c.malformed, len(c.good), len(c.bad))
		}
	}
}
