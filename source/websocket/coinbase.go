package websocket

import (
	"errors"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// Coinbase Exchange feed (wss://ws-feed.exchange.coinbase.com) shapes:
//
//	match      {"type":"match","trade_id":10,"sequence":50,"maker_order_id":"…","taker_order_id":"…",
//	            "time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"5.23512","price":"400.23","side":"sell"}
//	last_match the same, sent once after subscribing: the product's latest trade.
//	ticker     {"type":"ticker","sequence":37475248783,"product_id":"ETH-USD","price":"1285.22",…,
//	            "best_bid":"1285.04","best_bid_size":"0.46688654","best_ask":"1285.27","best_ask_size":"1.56637040",
//	            "side":"buy","time":"2022-10-19T23:28:22.061769Z","trade_id":370843401,"last_size":"11.4396987"}
//	others     subscriptions, heartbeat, status, received/open/done/change (full channel): no record.
//	error      {"type":"error","message":"…","reason":"…"}
//
// "side" on a match is the MAKER's side, so the aggressor is the opposite:
// side "sell" is a buy trade. Trade ids count up by one per product, which is
// what the default gap check follows; "sequence" counts every message of the
// product on the full channel and skips on the matches and ticker channels
// (tickers and heartbeats repeat the sequence of the message they follow).

type cbFields struct {
	typ, product, tradeID, seq, time, price, size, side span
	bid, bidSize, ask, askSize, message, reason         span
}

func (d *decoder) coinbase(msg []byte, recv int64) error {
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return errNotObject
	}
	var f cbFields
	it := newObjIter(msg, i)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			f.typ = v
		case "product_id":
			f.product = v
		case "trade_id":
			f.tradeID = v
		case "sequence":
			f.seq = v
		case "time":
			f.time = v
		case "price":
			f.price = v
		case "size":
			f.size = v
		case "side":
			f.side = v
		case "best_bid":
			f.bid = v
		case "best_bid_size":
			f.bidSize = v
		case "best_ask":
			f.ask = v
		case "best_ask_size":
			f.askSize = v
		case "message":
			f.message = v
		case "reason":
			f.reason = v
		}
	}
	if it.err != nil {
		return it.err
	}
	if err := endOfMessage(msg, it.i); err != nil {
		return err
	}
	if !f.typ.ok() {
		return errors.New(`coinbase: missing "type"`)
	}
	typ := text(msg, f.typ)
	isTrade := equal(typ, "match") || equal(typ, "last_match")
	isQuote := equal(typ, "ticker")
	if equal(typ, "error") {
		d.exchErr(string(msg))
		d.pend.ignored++
		return nil
	}
	var seq uint64
	if f.seq.ok() {
		var ok bool
		if seq, ok = tsparse.ParseUint(text(msg, f.seq)); !ok || seq > 1<<63-1 {
			return badValue("coinbase", "sequence", msg, f.seq)
		}
	}
	if d.check == checkSequence && f.seq.ok() && f.product.ok() && fullChannelType(typ) {
		// Every full-channel message of the product advances its sequence,
		// recorded or not. Tickers and heartbeats repeat the sequence of the
		// message they follow, so they take no part.
		st := d.sym(text(msg, f.product))
		if st != nil && !d.sequence(st, int64(seq)) {
			return nil
		}
	}
	switch {
	case isTrade:
		event := "match"
		if typ[0] == 'l' {
			event = "last_match"
		}
		return d.cbTrade(msg, &f, event, seq, recv)
	case isQuote:
		return d.cbQuote(msg, &f, seq, recv)
	}
	d.pend.ignored++
	return nil
}

func cbTime(msg []byte, f *cbFields, event string, recv int64) (int64, error) {
	if !f.time.ok() {
		return recv, nil
	}
	ts, ok := tsparse.ParseRFC3339(text(msg, f.time), nil)
	if !ok || !isString(msg, f.time) {
		return 0, badValue(event, "time", msg, f.time)
	}
	return ts, nil
}

func (d *decoder) cbTrade(msg []byte, f *cbFields, event string, seq uint64, recv int64) error {
	switch {
	case !f.product.ok():
		return missing(event, "product_id")
	case !f.tradeID.ok():
		return missing(event, "trade_id")
	case !f.price.ok():
		return missing(event, "price")
	case !f.size.ok():
		return missing(event, "size")
	}
	t := md.Trade{Seq: seq, Ingest: recv}
	var ok bool
	if t.TradeID, ok = tsparse.ParseInt(text(msg, f.tradeID)); !ok {
		return badValue(event, "trade_id", msg, f.tradeID)
	}
	if t.Price, ok = tsparse.ParseFloat(text(msg, f.price)); !ok {
		return badValue(event, "price", msg, f.price)
	}
	if t.Size, ok = tsparse.ParseFloat(text(msg, f.size)); !ok {
		return badValue(event, "size", msg, f.size)
	}
	ts, err := cbTime(msg, f, event, recv)
	if err != nil {
		return err
	}
	t.TS = ts
	if f.side.ok() {
		switch s := text(msg, f.side); string(s) {
		case "sell": // the maker sold: a buyer took liquidity
			t.Side = md.SideBuy
		case "buy":
			t.Side = md.SideSell
		default:
			return badValue(event, "side", msg, f.side)
		}
	}
	st := d.sym(text(msg, f.product))
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
	d.sizes.Note(st.id, tsparse.Decimals(text(msg, f.size)))
	return d.addTrade(st, &t)
}

func (d *decoder) cbQuote(msg []byte, f *cbFields, seq uint64, recv int64) error {
	const event = "ticker"
	switch {
	case !f.product.ok():
		return missing(event, "product_id")
	case !f.bid.ok():
		return missing(event, "best_bid")
	case !f.ask.ok():
		return missing(event, "best_ask")
	}
	q := md.Quote{Seq: seq, Ingest: recv}
	var ok bool
	if q.Bid, ok = tsparse.ParseFloat(text(msg, f.bid)); !ok {
		return badValue(event, "best_bid", msg, f.bid)
	}
	if q.Ask, ok = tsparse.ParseFloat(text(msg, f.ask)); !ok {
		return badValue(event, "best_ask", msg, f.ask)
	}
	if f.bidSize.ok() {
		if q.BidSize, ok = tsparse.ParseFloat(text(msg, f.bidSize)); !ok {
			return badValue(event, "best_bid_size", msg, f.bidSize)
		}
	}
	if f.askSize.ok() {
		if q.AskSize, ok = tsparse.ParseFloat(text(msg, f.askSize)); !ok {
			return badValue(event, "best_ask_size", msg, f.askSize)
		}
	}
	ts, err := cbTime(msg, f, event, recv)
	if err != nil {
		return err
	}
	q.TS = ts
	st := d.sym(text(msg, f.product))
	if st == nil {
		d.pend.filtered++
		return nil
	}
	if !d.wants(md.KindQuote) {
		return nil
	}
	return d.addQuote(st, &q)
}

// fullChannelType reports whether typ is a message of the full channel,
// whose sequence numbers count up by one per product.
func fullChannelType(typ []byte) bool {
	switch string(typ) {
	case "received", "open", "done", "match", "last_match", "change", "activate":
		return true
	}
	return false
}
