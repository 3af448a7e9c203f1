package websocket

import (
	"errors"
	"fmt"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// Binance message shapes (spot and USDⓈ-M futures), raw or inside a
// combined-stream envelope {"stream":"btcusdt@trade","data":{…}}:
//
//	trade      {"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}
//	aggTrade   {"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true}
//	bookTicker {"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}
//	           futures adds "e":"bookTicker","E" (event) and "T" (transaction) times.
//	ack        {"result":null,"id":1}
//	error      {"error":{"code":2,"msg":"Invalid request"},"id":1} or {"code":2,"msg":"…"}
//
// Event time is "T" (trade or transaction time), else "E", else the receipt
// time (spot bookTicker carries no time). "m" true means the buyer was the
// maker, so the aggressor sold: side sell. One-letter keys mean different
// things in different events ("a" is the aggregate id in aggTrade, the ask
// in bookTicker, a seller order id in old spot trades), so the scan keeps
// value spans and the event type decides how to read them.

type binFields struct {
	e, bigE, bigT, s, t, p, q, m, a, b, bigB, bigA, u span
	data, result, id, code, msg, errObj               span
}

// binScan collects the spans of the keys Binance messages use from the
// object that opens at msg[i]; it returns the offset after the object.
func binScan(msg []byte, i int, f *binFields) (int, error) {
	it := newObjIter(msg, i)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if len(k) == 1 {
			switch k[0] {
			case 'e':
				f.e = v
			case 'E':
				f.bigE = v
			case 'T':
				f.bigT = v
			case 's':
				f.s = v
			case 't':
				f.t = v
			case 'p':
				f.p = v
			case 'q':
				f.q = v
			case 'm':
				f.m = v
			case 'a':
				f.a = v
			case 'b':
				f.b = v
			case 'B':
				f.bigB = v
			case 'A':
				f.bigA = v
			case 'u':
				f.u = v
			}
			continue
		}
		switch string(k) {
		case "data":
			f.data = v
		case "result":
			f.result = v
		case "id":
			f.id = v
		case "code":
			f.code = v
		case "msg":
			f.msg = v
		case "error":
			f.errObj = v
		}
	}
	return it.i, it.err
}

func (d *decoder) binance(msg []byte, recv int64) error {
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return errNotObject
	}
	var f binFields
	end, err := binScan(msg, i, &f)
	if err != nil {
		return err
	}
	if err := endOfMessage(msg, end); err != nil {
		return err
	}
	if f.data.ok() {
		if !isObject(msg, f.data) {
			return errors.New(`binance: "data" is not an object`)
		}
		var g binFields
		if _, err := binScan(msg, int(f.data.s), &g); err != nil {
			return err
		}
		return d.binancePayload(msg, &g, recv)
	}
	return d.binancePayload(msg, &f, recv)
}

func (d *decoder) binancePayload(msg []byte, f *binFields, recv int64) error {
	switch {
	case f.e.ok():
		switch ev := text(msg, f.e); string(ev) {
		case "trade":
			return d.binTrade(msg, f, f.t, "trade", "t", recv)
		case "aggTrade":
			return d.binTrade(msg, f, f.a, "aggTrade", "a", recv)
		case "bookTicker":
			return d.binQuote(msg, f, recv)
		}
		d.pend.ignored++ // another event type (depthUpdate, kline, …)
		return nil
	case f.u.ok() && f.b.ok() && f.a.ok() && f.s.ok():
		return d.binQuote(msg, f, recv) // spot bookTicker has no "e"
	case f.errObj.ok() || (f.code.ok() && f.msg.ok()):
		d.exchErr(string(msg))
		d.pend.ignored++
		return nil
	case f.result.ok() || f.id.ok():
		d.pend.ignored++ // subscription acknowledgement
		return nil
	}
	return errors.New(`binance: no event type ("e")`)
}

// binTime returns the event time: "T", else "E", else recv.
func binTime(msg []byte, f *binFields, recv int64, event string) (int64, error) {
	v := f.bigT
	key := "T"
	if !v.ok() {
		v, key = f.bigE, "E"
	}
	if !v.ok() {
		return recv, nil
	}
	ns, ok := tsparse.ParseUnix(text(msg, v), 1e6)
	if !ok || ns < 0 {
		return 0, badValue(event, key, msg, v)
	}
	return ns, nil
}

func (d *decoder) binTrade(msg []byte, f *binFields, idv span, event, idKey string, recv int64) error {
	switch {
	case !f.s.ok():
		return missing(event, "s")
	case !idv.ok():
		return missing(event, idKey)
	case !f.p.ok():
		return missing(event, "p")
	case !f.q.ok():
		return missing(event, "q")
	}
	var t md.Trade
	var ok bool
	if t.TradeID, ok = tsparse.ParseInt(text(msg, idv)); !ok {
		return badValue(event, idKey, msg, idv)
	}
	if t.Price, ok = tsparse.ParseFloat(text(msg, f.p)); !ok {
		return badValue(event, "p", msg, f.p)
	}
	if t.Size, ok = tsparse.ParseFloat(text(msg, f.q)); !ok {
		return badValue(event, "q", msg, f.q)
	}
	ts, err := binTime(msg, f, recv, event)
	if err != nil {
		return err
	}
	t.TS, t.Ingest = ts, recv
	if f.m.ok() {
		switch m := raw(msg, f.m); string(m) {
		case "true":
			t.Side = md.SideSell
		case "false":
			t.Side = md.SideBuy
		default:
			return badValue(event, "m", msg, f.m)
		}
	}
	st := d.sym(text(msg, f.s))
	if st == nil {
		d.pend.filtered++
		return nil
	}
	if !d.wants(md.KindTrade) {
		return nil
	}
	if d.check == checkTradeID && !d.sequence(st, t.TradeID) {
		return nil
	}
	d.sizes.Note(st.id, tsparse.Decimals(text(msg, f.q)))
	return d.addTrade(st, &t)
}

func (d *decoder) binQuote(msg []byte, f *binFields, recv int64) error {
	const event = "bookTicker"
	switch {
	case !f.s.ok():
		return missing(event, "s")
	case !f.b.ok():
		return missing(event, "b")
	case !f.a.ok():
		return missing(event, "a")
	}
	var q md.Quote
	var ok bool
	if q.Bid, ok = tsparse.ParseFloat(text(msg, f.b)); !ok {
		return badValue(event, "b", msg, f.b)
	}
	if q.Ask, ok = tsparse.ParseFloat(text(msg, f.a)); !ok {
		return badValue(event, "a", msg, f.a)
	}
	if f.bigB.ok() {
		if q.BidSize, ok = tsparse.ParseFloat(text(msg, f.bigB)); !ok {
			return badValue(event, "B", msg, f.bigB)
		}
	}
	if f.bigA.ok() {
		if q.AskSize, ok = tsparse.ParseFloat(text(msg, f.bigA)); !ok {
			return badValue(event, "A", msg, f.bigA)
		}
	}
	if f.u.ok() {
		if q.Seq, ok = tsparse.ParseUint(text(msg, f.u)); !ok {
			return badValue(event, "u", msg, f.u)
		}
	}
	ts, err := binTime(msg, f, recv, event)
	if err != nil {
		return err
	}
	q.TS, q.Ingest = ts, recv
	st := d.sym(text(msg, f.s))
	if st == nil {
		d.pend.filtered++
		return nil
	}
	if !d.wants(md.KindQuote) {
		return nil
	}
	return d.addQuote(st, &q)
}

func missing(event, key string) error {
	return fmt.Errorf("%s: missing %q", event, key)
}

func badValue(event, key string, msg []byte, v span) error {
	return fmt.Errorf("%s: bad %q value %s", event, key, raw(msg, v))
}
