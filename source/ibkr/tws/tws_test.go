package tws_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/source/ibkr/tws"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

var aapl = tws.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", PrimaryExchange: "NASDAQ", Currency: "USD"}

func hx(s string) []byte { return faketws.Hex(s) }

func eq(t *testing.T, what string, got []byte, wantHex string) {
	t.Helper()
	want := hx(wantHex)
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %x %s\n want %x %s", what, got, fieldsOf(got), want, fieldsOf(want))
	}
}

func fieldsOf(fr []byte) string {
	if len(fr) < 4 {
		return "?"
	}
	return tws.FieldsString(fr[4:])
}

// TestRequestVectors: every request the provider sends is byte-identical to
// the reference encoder's frame.
func TestRequestVectors(t *testing.T) {
	e := &tws.Encoder{ServerVersion: 200}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(b)
	}
	eq(t, "startApi", must(e.StartAPI(7, "")), faketws.V1StartAPI)
	eq(t, "reqMktData", must(e.ReqMktData(1001, &aapl, "", false, false)), faketws.V2ReqMktData)
	eq(t, "cancelMktData", must(e.CancelMktData(1001)), faketws.V2CancelMkt)
	eq(t, "reqTickByTickData Last", must(e.ReqTickByTickData(2001, &aapl, tws.TickLast, 0, false)), faketws.V3ReqTBTLast)
	eq(t, "cancelTickByTickData", must(e.CancelTickByTickData(2001)), faketws.V3CancelTBT)
	eq(t, "reqTickByTickData BidAsk", must(e.ReqTickByTickData(2003, &aapl, tws.TickBidAsk, 0, true)), faketws.V3ReqTBTBidAs)
	eq(t, "reqRealTimeBars", must(e.ReqRealTimeBars(3001, &aapl, 5, "TRADES", false)), faketws.V4ReqRTBars)
	eq(t, "cancelRealTimeBars", must(e.CancelRealTimeBars(3001)), faketws.V4CancelRT)
	es := tws.Contract{Symbol: "ES", SecType: "FUT", LastTradeDateOrContractMonth: "202612", Multiplier: "50", Exchange: "CME", Currency: "USD"}
	eq(t, "reqMktData future", must(e.ReqMktData(1002, &es, "233", false, false)), faketws.V5ReqMktData)
	eq(t, "reqMarketDataType", must(e.ReqMarketDataType(3)), faketws.VReqMktDataType3)
	eq(t, "reqIds", must(e.ReqIDs(-1)), faketws.VReqIDs)

	// Forms the vectors do not cover are checked field by field against the
	// documented layouts.
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"reqHistoricalData", must(e.ReqHistoricalData(4001, &aapl, &tws.HistoricalRequest{Duration: "2 D", BarSize: "1 min", WhatToShow: "TRADES", FormatDate: 2})),
			`["20" "4001" "0" "AAPL" "STK" "" "" "" "" "SMART" "NASDAQ" "USD" "" "" "0" "" "1 min" "2 D" "0" "TRADES" "2" "0" ""]`},
		{"cancelHistoricalData", must(e.CancelHistoricalData(4001)), `["25" "1" "4001"]`},
		{"reqCurrentTime", must(e.ReqCurrentTime()), `["49" "1"]`},
		{"reqTickByTickData AllLast", must(e.ReqTickByTickData(2002, &aapl, tws.TickAllLast, 0, false)),
			`["97" "2002" "0" "AAPL" "STK" "" "" "" "" "SMART" "NASDAQ" "USD" "" "" "AllLast" "0" "0"]`},
		{"option strike", must(e.ReqTickByTickData(5, &tws.Contract{Symbol: "AAPL", SecType: "OPT", LastTradeDateOrContractMonth: "20261218", Strike: 150, Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD"}, tws.TickLast, 0, false)),
			`["97" "5" "0" "AAPL" "OPT" "20261218" "150.0" "C" "100" "SMART" "" "USD" "" "" "Last" "0" "0"]`},
		{"by con_id", must(e.ReqTickByTickData(6, &tws.Contract{ConID: 265598, Exchange: "SMART"}, tws.TickBidAsk, 0, true)),
			`["97" "6" "265598" "" "" "" "" "" "" "SMART" "" "" "" "" "BidAsk" "0" "1"]`},
	}
	for _, c := range cases {
		if q := quoted(c.got[4:]); q != c.want {
			t.Errorf("%s:\n got  %s\n want %s", c.name, q, c.want)
		}
	}
	if _, err := e.ReqTickByTickData(1, &aapl, "last", 0, false); err == nil {
		t.Error("tick type is case-sensitive on the wire: want an error for \"last\"")
	}
	if _, err := e.ReqMktData(1, &tws.Contract{Symbol: "ÄPL"}, "", false, false); err == nil {
		t.Error("want an error for a non-ASCII symbol")
	}
}

func quoted(p []byte) string {
	parts := bytes.Split(p, []byte{0})
	parts = parts[:len(parts)-1]
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"` + string(f) + `"`)
	}
	b.WriteByte(']')
	return b.String()
}

// TestVersionGate: at 201 the message id becomes a raw int; from 206 and
// 208 the market-data messages need protobuf, which this client refuses
// rather than sending a text frame the server would misread.
func TestVersionGate(t *testing.T) {
	e := &tws.Encoder{ServerVersion: 201}
	b, err := e.ReqMktData(1001, &aapl, "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "reqMktData at 201", b, faketws.VRawIDReqMktData)
	b, err = e.StartAPI(7, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, hx(faketws.VRawIDStartAPI)) {
		t.Errorf("startApi at 201: %x", b)
	}
	e.ServerVersion = 206
	if _, err := e.ReqMktData(1, &aapl, "", false, false); !errors.Is(err, tws.ErrNeedsProtobuf) {
		t.Errorf("reqMktData at 206: %v, want ErrNeedsProtobuf", err)
	}
	if _, err := e.ReqTickByTickData(1, &aapl, tws.TickLast, 0, false); err != nil {
		t.Errorf("tick-by-tick at 206 is still text: %v", err)
	}
	e.ServerVersion = 208
	for name, f := range map[string]func() ([]byte, error){
		"tbt":  func() ([]byte, error) { return e.ReqTickByTickData(1, &aapl, tws.TickLast, 0, false) },
		"rtb":  func() ([]byte, error) { return e.ReqRealTimeBars(1, &aapl, 5, "TRADES", false) },
		"hist": func() ([]byte, error) { return e.ReqHistoricalData(1, &aapl, &tws.HistoricalRequest{}) },
	} {
		if _, err := f(); !errors.Is(err, tws.ErrNeedsProtobuf) {
			t.Errorf("%s at 208: %v, want ErrNeedsProtobuf", name, err)
		}
	}
}

func decode(t *testing.T, frame string, sv int) *tws.Message {
	t.Helper()
	fr := hx(frame)
	var m tws.Message
	if err := tws.Decode(fr[4:], sv, &m); err != nil {
		t.Fatalf("decode %s: %v", tws.FieldsString(fr[4:]), err)
	}
	return &m
}

// TestDecodeReplies: every reply layout at the versions the client accepts.
func TestDecodeReplies(t *testing.T) {
	m := decode(t, faketws.V2TickPrice, 200)
	if m.ID != 1 || m.ReqID != 1001 || m.TickType != 1 || m.Price != 189.5 || m.Size != 300 || m.Mask != 1 {
		t.Errorf("TICK_PRICE: %+v", m)
	}
	m = decode(t, faketws.V2TickSize, 200)
	if m.ID != 2 || m.ReqID != 1001 || m.TickType != 8 || m.Size != 1234567 {
		t.Errorf("TICK_SIZE: %+v", m)
	}
	m = decode(t, faketws.V2TickString, 200)
	if m.ID != 46 || m.TickType != 45 || string(m.Text) != "1764167400" {
		t.Errorf("TICK_STRING: %+v", m)
	}
	m = decode(t, faketws.V3TBTLast, 200)
	if m.ID != 99 || m.ReqID != 2001 || m.TickType != tws.TBTLast || m.Time != 1764167400 || m.Price != 189.51 || m.Size != 100 ||
		m.Mask != 2 || string(m.Exchange) != "NASDAQ" || string(m.Conditions) != "I" {
		t.Errorf("TICK_BY_TICK Last: %+v", m)
	}
	m = decode(t, faketws.V3TBTBidAsk, 200)
	if m.TickType != tws.TBTBidAsk || m.ReqID != 2003 || m.Bid != 189.5 || m.Ask != 189.52 || m.BidSize != 300 || m.AskSize != 200 || m.Mask != 0 {
		t.Errorf("TICK_BY_TICK BidAsk: %+v", m)
	}
	m = decode(t, faketws.V3TBTMidPoint, 200)
	if m.TickType != tws.TBTMidPoint || m.ReqID != 2004 || m.Mid != 189.51 {
		t.Errorf("TICK_BY_TICK MidPoint: %+v", m)
	}
	m = decode(t, faketws.V4RTBar, 200)
	want := tws.Bar{Time: 1764167400, Open: 189.5, High: 189.7, Low: 189.4, Close: 189.6, Volume: 12000, WAP: 189.55, Count: 42}
	if m.ID != 50 || m.ReqID != 3001 || !reflect.DeepEqual(m.Bar, want) {
		t.Errorf("REAL_TIME_BARS: %+v", m.Bar)
	}
	m = decode(t, faketws.V5Err200, 200)
	if m.ID != 4 || m.ReqID != 1002 || m.Code != 200 || string(m.Text) != "No security definition has been found for the request" || m.ErrorTime != 1764167400456 {
		t.Errorf("ERR_MSG 200: %+v", m)
	}
	m = decode(t, faketws.V5Err2104, 200)
	if m.ReqID != -1 || m.Code != 2104 || m.ErrorTime != 1764167400123 {
		t.Errorf("ERR_MSG 2104: %+v", m)
	}
	// Older layouts: a version field, and before 166 no JSON field.
	m = decode(t, hex.EncodeToString(faketws.Text(4, 2, 7, 354, "Requested market data is not subscribed.", "")), 170)
	if m.ReqID != 7 || m.Code != 354 || string(m.Text) != "Requested market data is not subscribed." || m.ErrorTime != 0 {
		t.Errorf("ERR_MSG at 170: %+v", m)
	}
	m = decode(t, hex.EncodeToString(faketws.Text(4, 2, 7, 10167, "Displaying delayed market data")), 163)
	if m.Code != 10167 {
		t.Errorf("ERR_MSG at 163: %+v", m)
	}
	m = decode(t, faketws.V1NextValid, 200)
	if m.ID != 9 || m.OrderID != 1 {
		t.Errorf("NEXT_VALID_ID: %+v", m)
	}
	m = decode(t, faketws.V1Accounts, 200)
	if m.ID != 15 || string(m.Text) != "DU1234567" {
		t.Errorf("MANAGED_ACCTS: %+v", m)
	}
	m = decode(t, faketws.VMarketDataType, 200)
	if m.ID != 58 || m.ReqID != 1001 || m.MarketDataType != 3 {
		t.Errorf("MARKET_DATA_TYPE: %+v", m)
	}
	m = decode(t, faketws.VTickGeneric, 200)
	if m.ID != 45 || m.TickType != 49 || m.Value != 0 {
		t.Errorf("TICK_GENERIC: %+v", m)
	}
	m = decode(t, faketws.VTickReqParams, 200)
	if m.ID != 81 || m.ReqID != 1001 || m.MinTick != 0.01 {
		t.Errorf("TICK_REQ_PARAMS: %+v", m)
	}
	m = decode(t, faketws.VSnapshotEnd, 200)
	if m.ID != 57 || m.ReqID != 1001 {
		t.Errorf("TICK_SNAPSHOT_END: %+v", m)
	}
	m = decode(t, hex.EncodeToString(faketws.Text(49, 1, 1764167400)), 200)
	if m.ID != 49 || m.Time != 1764167400 {
		t.Errorf("CURRENT_TIME: %+v", m)
	}
	// HISTORICAL_DATA from 196 on: no start/end (they come in 108).
	m = decode(t, hex.EncodeToString(faketws.Text(17, 4001, 2,
		1764167400, 189.5, 189.7, 189.4, 189.6, 12000, 189.55, 42,
		1764167460, 189.6, 189.8, 189.5, 189.7, "1500.5", 189.65, 7)), 200)
	if m.ID != 17 || m.ReqID != 4001 || len(m.Bars) != 2 || m.Bars[1].Volume != 1500.5 || m.Bars[1].Count != 7 || string(m.Bars[0].Date) != "1764167400" {
		t.Errorf("HISTORICAL_DATA: %+v", m)
	}
	m = decode(t, hex.EncodeToString(faketws.Text(17, 4001, "20261126  15:30:00", "20261127  15:30:00", 1,
		"20261126", 1, 2, 0.5, 1.5, 10, 1.2, 3)), 190)
	if len(m.Bars) != 1 || m.Bars[0].Close != 1.5 {
		t.Errorf("HISTORICAL_DATA at 190: %+v", m.Bars)
	}
	if ts, ok := tws.HistoricalTime(m.Bars[0].Date); !ok || ts != 1795651200 {
		t.Errorf("daily bar date: %d %v", ts, ok)
	}
	m = decode(t, hex.EncodeToString(faketws.Text(108, 4001, "20261126 15:30:00", "20261127 15:30:00")), 200)
	if m.ID != 108 || m.ReqID != 4001 {
		t.Errorf("HISTORICAL_DATA_END: %+v", m)
	}
	// Unset sizes read as 0.
	m = decode(t, hex.EncodeToString(faketws.Text(1, 6, 1001, 2, 189.52, "9223372036854775807", 0)), 200)
	if m.Size != 0 || m.Price != 189.52 {
		t.Errorf("unset size: %+v", m)
	}
	// Unknown ids decode to just the id.
	m = decode(t, hex.EncodeToString(faketws.Text(10, 1, "x")), 200)
	if m.ID != 10 || m.Known() {
		t.Errorf("unknown id: %+v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		p    []byte
		want error
	}{
		{"truncated", []byte("99\x002001\x001\x001764167400\x00189.51\x00100\x00"), tws.ErrTruncated},
		{"unterminated", []byte("99\x002001\x001"), tws.ErrTruncated},
		{"bad number", []byte("99\x002001\x001\x00x\x00189.51\x00100\x000\x00N\x00\x00"), tws.ErrBadNumber},
		{"bad tbt type", []byte("99\x002001\x009\x001\x00"), tws.ErrUnknownTickByTick},
		{"binary", []byte{0, 0, 0, 1, '1', 0}, tws.ErrBinary},
		{"huge count", []byte("17\x001\x0099999999\x00"), tws.ErrBadNumber},
	} {
		var m tws.Message
		if err := tws.Decode(c.p, 200, &m); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReaderFraming(t *testing.T) {
	var stream []byte
	stream = append(stream, hx(faketws.V3TBTLast)...)
	big := bytes.Repeat([]byte("x"), 200<<10)
	stream, _ = tws.AppendFrame(stream, big)
	stream = append(stream, hx(faketws.V3TBTBidAsk)...)
	r := tws.NewReader(&oneByte{b: stream})
	for i, want := range [][]byte{hx(faketws.V3TBTLast)[4:], big, hx(faketws.V3TBTBidAsk)[4:]} {
		p, err := r.Next()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("frame %d: %v (len %d)", i, err, len(p))
		}
	}
	if _, err := r.Next(); err == nil {
		t.Fatal("want EOF")
	}
	r = tws.NewReader(bytes.NewReader([]byte{0x01, 0, 0, 0}))
	if _, err := r.Next(); !errors.Is(err, tws.ErrFrameTooLarge) {
		t.Fatalf("length 0x01000000: %v", err)
	}
	r = tws.NewReader(bytes.NewReader(hx(faketws.V3TBTLast)[:10]))
	if _, err := r.Next(); err == nil {
		t.Fatal("truncated frame: want an error")
	}
}

type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, errEOF
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}

var errEOF = errors.New("EOF")

// TestHandshake: TV1 byte for byte against the fake TWS, with news before
// the version frame and one-byte TCP segments; the client is ready only
// after both nextValidId and managedAccounts.
func TestHandshake(t *testing.T) {
	srv, err := faketws.New(faketws.Config{Fragment: true, Before: [][]byte{faketws.Text(5, "news", "item", "x")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type result struct {
		c   *tws.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := tws.Dial(context.Background(), tws.Config{Addr: srv.Addr(), ClientID: 7, Timeout: 5 * time.Second})
		res <- result{c, err}
	}()
	ss, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err, srv.Errors())
	}
	if ss.Range != "v100..200" || ss.ClientID != 7 {
		t.Fatalf("range %q client id %d", ss.Range, ss.ClientID)
	}
	fr := srv.Frames()
	if len(fr) != 1 || !bytes.Equal(append(hx("00000008"), fr[0].Payload...), hx(faketws.V1StartAPI)) {
		t.Fatalf("startApi frames %v", fr)
	}
	ss.Send(faketws.V5Err2104, faketws.V1Accounts)
	select {
	case r := <-res:
		t.Fatalf("ready before nextValidId: %v", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	ss.Send(faketws.V1NextValid)
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if r.c.ServerVersion != 200 || r.c.ConnTime != "20261126 15:30:00 Europe/Berlin" || len(r.c.Accounts) != 1 || r.c.Accounts[0] != "DU1234567" || r.c.NextOrderID != 1 {
		t.Fatalf("conn %+v", r.c)
	}
	if got := hx(faketws.V1Greeting); string(got[:4]) != "API\x00" || string(got[8:]) != "v100..200" {
		t.Fatal("vector TV1 greeting")
	}
	// A request goes out byte-exact.
	if err := r.c.ReqTickByTickData(2001, &aapl, tws.TickLast, false); err != nil {
		t.Fatal(err)
	}
	if err := ss.Expect(faketws.V3ReqTBTLast, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ss.Send(faketws.V3TBTLast)
	m, err := r.c.Read()
	if err != nil || m.ID != 99 || m.Price != 189.51 {
		t.Fatalf("read %+v %v", m, err)
	}
}

func dialErr(t *testing.T, srv *faketws.Server, script func(ss *faketws.Session)) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		c, err := tws.Dial(context.Background(), tws.Config{Addr: srv.Addr(), ClientID: 7, Timeout: 3 * time.Second})
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	if script != nil {
		ss, err := srv.Accept(5 * time.Second)
		if err != nil {
			return <-errc
		}
		script(ss)
	}
	return <-errc
}

func TestHandshakeFailures(t *testing.T) {
	srv, _ := faketws.New()
	defer srv.Close()
	err := dialErr(t, srv, func(ss *faketws.Session) {
		ss.SendFields(4, -1, 326, "Unable to connect as the client id is already in use.  Retry with a unique client id.", "", 1764167400456)
	})
	if !errors.Is(err, tws.ErrClientIDInUse) || !strings.Contains(err.Error(), "client_id 7") || !strings.Contains(err.Error(), "own client_id") {
		t.Errorf("326: %v", err)
	}
	for _, v := range []int{150, 201} {
		srv, _ := faketws.New(faketws.Config{Version: v})
		// The handshake fails before startApi, so no session is accepted.
		err := dialErr(t, srv, nil)
		if err == nil || !strings.Contains(err.Error(), "outside what this client speaks") {
			t.Errorf("version %d: %v", v, err)
		}
		srv.Close()
	}
	if _, err := tws.Dial(context.Background(), tws.Config{Addr: "127.0.0.1:1", MaxVersion: 206}); err == nil || !strings.Contains(err.Error(), "text protocol") {
		t.Errorf("max 206: %v", err)
	}
	srv2, _ := faketws.New()
	defer srv2.Close()
	// No ready pair: the handshake times out.
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := tws.Dial(context.Background(), tws.Config{Addr: srv2.Addr(), ClientID: 1, Timeout: 300 * time.Millisecond})
		errc <- err
	}()
	if err := <-errc; err == nil || time.Since(start) > 3*time.Second || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("no ready: %v after %s", err, time.Since(start))
	}
}
