package md

import (
	"math"
	"testing"
)

func TestCheckTradeAndQuote(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		t    Trade
		want string
	}{
		{Trade{Price: 1.5, Size: 0}, ""},
		{Trade{Price: 1.5, Size: 2}, ""},
		{Trade{Price: -5, Size: 1}, "price"},
		{Trade{Price: 0, Size: 1}, "price"},
		{Trade{Price: nan, Size: 1}, "price"},
		{Trade{Price: inf, Size: 1}, "price"},
		{Trade{Price: 1, Size: -1}, "size"},
		{Trade{Price: 1, Size: nan}, "size"},
		{Trade{Price: 1, Size: inf}, "size"},
	} {
		if p := CheckTrade(&c.t); p.Field != c.want {
			t.Errorf("%+v: %v, want field %q", c.t, p, c.want)
		}
	}
	for _, c := range []struct {
		q    Quote
		want string
	}{
		{Quote{Bid: 1, Ask: 1.1}, ""},
		{Quote{Bid: 0, Ask: 1.1, AskSize: 3}, ""}, // no bid: an absent side
		{Quote{Bid: 1, Ask: 0, BidSize: 3}, ""},
		{Quote{Bid: -1, Ask: 1}, "bid"},
		{Quote{Bid: 1, Ask: nan}, "ask"},
		{Quote{Bid: 1, Ask: inf}, "ask"},
		{Quote{}, "bid"},
		{Quote{Bid: 1, Ask: 2, BidSize: -1}, "bid_size"},
		{Quote{Bid: 1, Ask: 2, AskSize: inf}, "ask_size"},
	} {
		if p := CheckQuote(&c.q); p.Field != c.want {
			t.Errorf("%+v: %v, want field %q", c.q, p, c.want)
		}
	}
	if s := CheckTrade(&Trade{Price: -5, Size: 1}).String(); s != "price -5: a price must be finite and positive" {
		t.Errorf("message %q", s)
	}
}
