package ibkr

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

var (
	reqTrades = concat([]any{97, 1}, aaplFields, []any{"AllLast", 0, 0})
	reqQuotes = concat([]any{97, 2}, aaplFields, []any{"BidAsk", 0, 1})
)

// setup streams AAPL trades and quotes and returns the ready session.
func setup(t *testing.T, params map[string]any) (*harness, *faketws.Session) {
	t.Helper()
	p := map[string]any{"contracts": contracts(aaplParams)}
	for k, v := range params {
		p[k] = v
	}
	h := start(t, fakeServer(t), p, t0)
	ss := h.session()
	h.expect(ss, reqTrades...)
	h.expect(ss, reqQuotes...)
	return h, ss
}

func sendErr(ss *faketws.Session, reqID, code int, msg string) {
	ss.SendFields(4, reqID, code, msg, "", 1764167400456)
}

func (h *harness) quiet(ss *faketws.Session) {
	h.t.Helper()
	if p, err := ss.Next(200 * time.Millisecond); err == nil {
		h.t.Fatalf("unexpected request %s", faketws.Frame{Payload: p}.Fields())
	}
}

// TestConfigErrorsFailTheJob: 200 and 321 name a wrong contract or request;
// retrying cannot help, so Run fails, naming the contract and the code,
// whatever on_unavailable says.
func TestConfigErrorsFailTheJob(t *testing.T) {
	for _, c := range []struct {
		code int
		msg  string
		want string
	}{
		{200, "No security definition has been found for the request", "no security definition"},
		{321, "Error validating request.-'bW' : cause - Invalid tick type", "request rejected as invalid"},
	} {
		h, ss := setup(t, map[string]any{"on_unavailable": "skip"})
		sendErr(ss, 1, c.code, c.msg)
		err := h.runErr()
		if err == nil || !strings.Contains(err.Error(), "contract AAPL (trades)") || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), c.msg) {
			t.Errorf("%d: %v", c.code, err)
		}
	}
}

// TestEntitlementErrors: 354, 10089 and 10168 (and the other refusals)
// fail the job under on_unavailable: fail, and skip that subscription under
// skip — the others stream on, and a reconnect does not re-request it.
func TestEntitlementErrors(t *testing.T) {
	for _, code := range []int{354, 10089, 10168, 101, 420, 10190, 10197} {
		h, ss := setup(t, nil)
		sendErr(ss, 1, code, "Requested market data is not subscribed.")
		err := h.runErr()
		if err == nil || !strings.Contains(err.Error(), "IB error "+strconv.Itoa(code)) || !strings.Contains(err.Error(), "on_unavailable: skip") {
			t.Errorf("fail %d: %v", code, err)
		}
	}
	for _, code := range []int{354, 10089, 10168} {
		h, ss := setup(t, map[string]any{"on_unavailable": "skip"})
		sendErr(ss, 1, code, "Requested market data is not subscribed.")
		ss.SendFields(99, 2, 3, 1764167401, 189.5, 189.52, 300, 200, 0)
		h.waitFor("a quote after the skip", func() bool { return len(h.quotes) == 1 })
		if e := h.out.NC.Stats.Errors(); e["entitlement"] != 1 {
			t.Errorf("%d: errors %v", code, e)
		}
		h.waitCounters(map[string]int64{"subscriptions_skipped": 1})
		if code == 354 {
			ss.Close()
			ss2 := h.session()
			h.expect(ss2, reqQuotes...)
			h.quiet(ss2)
		}
	}
	// Every subscription refused: nothing left, the job fails.
	h, ss := setup(t, map[string]any{"on_unavailable": "skip"})
	sendErr(ss, 1, 354, "Requested market data is not subscribed.")
	sendErr(ss, 2, 10168, "Requested market data is not subscribed. Delayed market data is not enabled.")
	if err := h.runErr(); err == nil || !strings.Contains(err.Error(), "refused every subscription") {
		t.Errorf("all refused: %v", err)
	}
}

// TestAdvisoryEntitlement: 10167 (delayed data displayed), 10090 and 10091
// are notices, and 10089 on a market_data subscription is one too: the
// stream stays open.
func TestAdvisoryEntitlement(t *testing.T) {
	h, ss := setup(t, nil)
	sendErr(ss, 1, 10167, "Requested market data is not subscribed. Displaying delayed market data.")
	sendErr(ss, 2, 10090, "Part of requested market data is not subscribed.")
	ss.SendFields(99, 1, 2, 1764167400, 189.51, 100, 0, "NASDAQ", "")
	h.waitFor("trade", func() bool { return len(h.trades) == 1 })
	h.waitFor("notices", func() bool { return h.out.NC.Stats.Counters()["entitlement_notices"] == 2 })
	if e := h.out.NC.Stats.Errors(); len(e) != 0 {
		t.Errorf("errors %v", e)
	}

	h = start(t, fakeServer(t), map[string]any{"trades": "none", "quotes": false, "market_data": true, "contracts": contracts(aaplParams)}, t0)
	ss = h.session()
	h.expect(ss, concat([]any{1, 11, 1}, aaplFields, []any{0, 233, 0, 0, ""})...)
	sendErr(ss, 1, 10089, "Requested market data requires additional subscription for API. Delayed market data is available.")
	ss.SendFields(1, 6, 1, 1, 189.49, 100, 0)
	ss.SendFields(1, 6, 1, 2, 189.53, 200, 0)
	ss.SendFields(2, 6, 1, 3, 250)      // ask size changes: a new quote
	ss.SendFields(2, 6, 1, 3, 250)      // unchanged: none
	ss.SendFields(1, 6, 1, 1, -1, 0, 0) // no bid now: no quote
	// RT_VOLUME: a trade with a millisecond time; an empty price is a
	// volume correction, not a trade.
	ss.SendFields(46, 6, 1, 48, "189.52;300;1764167401234;67854;189.5;true")
	ss.SendFields(46, 6, 1, 48, ";0;1764167401300;67854;189.5;true")
	h.waitFor("quotes and trade", func() bool { return len(h.quotes) == 2 && len(h.trades) == 1 })
	if q := h.quotes[1]; q.Bid != 189.49 || q.Ask != 189.53 || q.AskSize != 250 || q.BidSize != 100 {
		t.Errorf("quote after the size tick: %+v", q)
	}
	if tr := h.trades[0]; tr.TS != 1764167401234e6 || tr.Price != 189.52 || tr.Size != 300 || tr.Seq != 3 {
		t.Errorf("RT_VOLUME trade: %+v", tr)
	}
}

// TestConnectivityCodes: 1100 keeps the socket and opens a gap; 1101
// cancels and re-requests everything; after 1102 (subscriptions kept,
// ticks meanwhile lost) the next record closes the gap, nothing is sent; 2103/2105/2157 are counted as connectivity errors (DEGRADED);
// 2104 is a notice; 1300 reconnects.
func TestConnectivityCodes(t *testing.T) {
	h, ss := setup(t, nil)
	sendErr(ss, -1, 2104, "Market data farm connection is OK:usfarm")
	sendErr(ss, -1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
	h.quiet(ss)
	sendErr(ss, -1, 1101, "Connectivity between IB and TWS has been restored- data lost.")
	h.expect(ss, 98, 1)
	h.expect(ss, 98, 2)
	h.expect(ss, reqTrades...)
	h.expect(ss, reqQuotes...)
	sendErr(ss, 1, 300, "Can't find EId with tickerId:1")
	ss.SendFields(99, 1, 2, 1764167460, 189.7, 10, 0, "NASDAQ", "")
	h.waitFor("trade after 1101", func() bool { return len(h.trades) == 1 })
	h.waitCounters(map[string]int64{"gaps": 1, "resubscriptions": 2, "reconnects": 0})
	if e := h.out.NC.Stats.Errors(); e["ib_connectivity"] != 1 || len(e) != 1 {
		t.Errorf("after 1100/1101: errors %v", e)
	}

	sendErr(ss, -1, 1100, "Connectivity between IB and Trader Workstation has been lost.")
	sendErr(ss, -1, 1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
	h.quiet(ss)
	ss.SendFields(99, 1, 2, 1764167461, 189.7, 10, 0, "NASDAQ", "")
	h.waitFor("trade after 1102", func() bool { return len(h.trades) == 2 })
	// 1102 keeps the subscriptions, not what IB sent meanwhile: a second
	// gap, closed by the trade after it.
	h.waitCounters(map[string]int64{"gaps": 2})
	if g := h.out.NC.Symbols.Gaps(h.trades[0].Sym); len(g) != 2 || g[1] != (md.Gap{From: 1764167460e9, To: 1764167461e9}) {
		t.Errorf("gaps %+v", g)
	}
	for i, code := range []int{2103, 2105, 2157} {
		sendErr(ss, -1, code, "data farm connection is broken:usfarm")
		h.waitFor("farm error", func() bool { return h.out.NC.Stats.Errors()["ib_connectivity"] == int64(3+i) })
	}
	h.quiet(ss)
	sendErr(ss, -1, 1300, "TWS socket port has been reset and this connection is being dropped. Please reconnect on the new port - 4002")
	ss2 := h.session()
	h.expect(ss2, reqTrades...)
	h.expect(ss2, reqQuotes...)
}

// TestBustResubscribesRealTimeBars: 10225 cancels and re-requests the bars.
func TestBustResubscribesRealTimeBars(t *testing.T) {
	h := start(t, fakeServer(t), map[string]any{"trades": "none", "quotes": false, "bars_5s": true, "contracts": contracts(aaplParams)}, t0)
	ss := h.session()
	req := concat([]any{50, 3, 1}, aaplFields, []any{5, "TRADES", 0, ""})
	h.expect(ss, req...)
	sendErr(ss, 1, 10225, "Bust event occurred, current subscription is deactivated. Please resubscribe real-time bars immediately.")
	h.expect(ss, 51, 1, 1)
	h.expect(ss, req...)
}
