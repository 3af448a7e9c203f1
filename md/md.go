// Package md holds the market-data vocabulary shared by every part of mdp:
// trades, quotes and bars as plain value types, batches that carry them between
// nodes, the symbol table that interns instruments to integer ids at the source,
// and time helpers. Times are int64 nanoseconds since the Unix epoch, UTC.
package md

import (
	"fmt"
	"strings"
)

// Kind is the kind of record a batch carries. Kinds are bit flags so a
// component can declare a set of kinds it accepts.
type Kind uint8

// Record kinds.
const (
	KindTrade Kind = 1 << iota
	KindQuote
	KindBar
	// KindDerived is a record a node computes (a window, a feature, a join,
	// a greek): a symbol, an event time and the named fields of the batch's
	// Schema.
	KindDerived
	// KindNone is the zero value: a batch that carries only a watermark.
	KindNone Kind = 0
	// KindAny accepts every record kind.
	KindAny = KindTrade | KindQuote | KindBar | KindDerived
)

// String names the kind set, for example "trade" or "trade|quote".
func (k Kind) String() string {
	if k == KindNone {
		return "none"
	}
	var parts []string
	if k&KindTrade != 0 {
		parts = append(parts, "trade")
	}
	if k&KindQuote != 0 {
		parts = append(parts, "quote")
	}
	if k&KindBar != 0 {
		parts = append(parts, "bar")
	}
	if k&KindDerived != 0 {
		parts = append(parts, "derived")
	}
	return strings.Join(parts, "|")
}

// ParseKind parses a single kind name ("trade", "quote", "bar").
func ParseKind(s string) (Kind, error) {
	switch s {
	case "trade", "trades":
		return KindTrade, nil
	case "quote", "quotes":
		return KindQuote, nil
	case "bar", "bars":
		return KindBar, nil
	case "derived":
		return KindDerived, nil
	}
	return KindNone, fmt.Errorf("unknown record kind %q (want trade, quote, bar or derived)", s)
}

// Side is the aggressor side of a trade.
type Side uint8

// Trade sides.
const (
	SideUnknown Side = iota
	SideBuy
	SideSell
)

// String returns "buy", "sell" or "unknown".
func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	}
	return "unknown"
}

// ParseSide accepts buy/sell in the spellings exchanges use; anything else is unknown.
func ParseSide(s string) Side {
	switch s {
	case "buy", "Buy", "BUY", "b", "B", "bid":
		return SideBuy
	case "sell", "Sell", "SELL", "s", "S", "ask":
		return SideSell
	}
	return SideUnknown
}

// SymID is an interned instrument (provider + symbol) id; see SymbolTable.
type SymID uint32

// Trade is one executed trade.
type Trade struct {
	TS      int64 // event (exchange) time, ns
	Ingest  int64 // time the record entered mdp, ns
	Price   float64
	Size    float64
	TradeID int64
	Seq     uint64
	Sym     SymID
	Side    Side
}

// Quote is a top-of-book update.
type Quote struct {
	TS      int64
	Ingest  int64
	Bid     float64
	BidSize float64
	Ask     float64
	AskSize float64
	Seq     uint64
	Sym     SymID
}

// Mid is the mid price (bid+ask)/2.
func (q *Quote) Mid() float64 { return (q.Bid + q.Ask) / 2 }

// BarType is how a bar's extent is decided.
type BarType uint8

// Bar types. The zero value is a time bar.
const (
	BarTime   BarType = iota // a fixed event-time interval
	BarTick                  // a fixed number of records
	BarVolume                // a fixed traded size
	BarValue                 // a fixed traded value (price × size)
	// BarTickImbalance closes when the signed tick count exceeds its
	// expected imbalance (López de Prado's tick imbalance bars).
	BarTickImbalance
	// BarVolumeImbalance closes when the signed volume exceeds its expected
	// imbalance (López de Prado's volume imbalance bars).
	BarVolumeImbalance
)

var barTypeNames = [...]string{"time", "tick", "volume", "value", "tick_imbalance", "volume_imbalance"}

// String returns time, tick, volume, value, tick_imbalance or
// volume_imbalance.
func (t BarType) String() string {
	if int(t) < len(barTypeNames) {
		return barTypeNames[t]
	}
	return "unknown"
}

// BarSource is what a bar was built from.
type BarSource uint8

// Bar sources. The zero value is trades.
const (
	FromTrades BarSource = iota // trade prices and sizes
	FromMid                     // quote mid prices, (bid+ask)/2
	FromBid                     // quote bid prices
	FromAsk                     // quote ask prices
	// FromBidAsk is IB's BID_ASK bar: open the time-weighted mean bid, high
	// the highest ask, low the lowest bid, close the time-weighted mean
	// ask. No mdp operator builds it; it is kept apart from bid and ask
	// bars, whose prices mean something else.
	FromBidAsk
)

var barSourceNames = [...]string{"trade", "mid", "bid", "ask", "bid_ask"}

// String returns trade, mid, bid, ask or bid_ask: the text of the source
// column.
func (s BarSource) String() string {
	if int(s) < len(barSourceNames) {
		return barSourceNames[s]
	}
	return "unknown"
}

// Bar is one OHLCV bar over [Start, End). It carries its own interval, both
// bounds, its type and what it was built from, so no sink can mislabel it and
// bars of one symbol built differently never share a store key.
type Bar struct {
	Start int64 // inclusive, ns
	End   int64 // exclusive, ns
	// Interval is the bar's size: ns for time bars (End-Start); for tick,
	// volume and value bars the threshold in records, size or value units.
	Interval int64
	Open     float64
	High     float64
	Low      float64
	Close    float64
	// Volume is the summed trade size (0 for quote bars), rounded to the
	// decimal places of the input sizes when that is exact (see
	// RoundSum).
	Volume float64
	// VWAP is the size-weighted mean price of trade bars and the mean
	// price of quote bars.
	VWAP float64
	// Trades counts the records folded in: trades, or quote updates for
	// quote bars (Source says which).
	Trades int64
	Sym    SymID
	Type   BarType
	Source BarSource
	// LabelEnd is true when the bar is labelled by its end (label: close);
	// TS then returns End, otherwise Start.
	LabelEnd bool
	// Update is true when this bar replaces an earlier emission of the same
	// bar (late data under late_policy: update).
	Update bool
	// Partial is true when the bar's interval touches a gap in its
	// source's feed (a disconnect, or data the provider reported lost), so
	// records it should hold may be missing. See SymbolTable.OpenGap.
	Partial bool
}

// TS is the bar's timestamp under its label: Start, or End for label: close.
func (b *Bar) TS() int64 {
	if b.LabelEnd {
		return b.End
	}
	return b.Start
}
