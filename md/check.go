package md

import (
	"fmt"
	"math"
)

// Problem is why a record's numbers are invalid: the field, its value and
// the rule it breaks. The zero Problem (Field "") means valid.
type Problem struct {
	Field string
	Value float64
	Rule  string
}

// OK reports whether there is no problem.
func (p Problem) OK() bool { return p.Field == "" }

func (p Problem) String() string {
	if p.OK() {
		return "valid"
	}
	return fmt.Sprintf("%s %v: %s", p.Field, p.Value, p.Rule)
}

// The number rules every source applies to what it decodes.
const (
	rulePrice     = "a price must be finite and positive"
	ruleSize      = "a size must be finite and non-negative"
	ruleQuoteSide = "a quote price must be finite and non-negative (0 marks an absent side)"
	ruleNoSide    = "a quote needs a bid or an ask"
)

// CheckTrade checks a trade's numbers: the price finite and positive, the
// size finite and non-negative. Sources call it for every decoded trade and
// treat a problem as a malformed row, so no bar can be built from a negative
// or infinite price.
func CheckTrade(t *Trade) Problem {
	if !(t.Price > 0) || math.IsInf(t.Price, 1) { // !(x > 0) is true for NaN
		return Problem{"price", t.Price, rulePrice}
	}
	if !(t.Size >= 0) || math.IsInf(t.Size, 1) {
		return Problem{"size", t.Size, ruleSize}
	}
	return Problem{}
}

// CheckQuote checks a quote's numbers: each side's price finite and
// non-negative, 0 meaning the side is absent (an empty book side), and at
// least one side present; sizes finite and non-negative.
func CheckQuote(q *Quote) Problem {
	if !(q.Bid >= 0) || math.IsInf(q.Bid, 1) {
		return Problem{"bid", q.Bid, ruleQuoteSide}
	}
	if !(q.Ask >= 0) || math.IsInf(q.Ask, 1) {
		return Problem{"ask", q.Ask, ruleQuoteSide}
	}
	if q.Bid == 0 && q.Ask == 0 {
		return Problem{"bid", 0, ruleNoSide}
	}
	if !(q.BidSize >= 0) || math.IsInf(q.BidSize, 1) {
		return Problem{"bid_size", q.BidSize, ruleSize}
	}
	if !(q.AskSize >= 0) || math.IsInf(q.AskSize, 1) {
		return Problem{"ask_size", q.AskSize, ruleSize}
	}
	return Problem{}
}
