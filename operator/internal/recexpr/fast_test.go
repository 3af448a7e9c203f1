package recexpr

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mdpio/mdp/md"
)

// The closures give what the VM gives, over random records, for every
// expression shape they take; the shapes they do not take run on the VM.
func TestFastClosuresEqualTheVM(t *testing.T) {
	syms := md.NewSymbolTable()
	ids := []md.SymID{syms.Intern("binance", "BTCUSDT"), syms.Intern("x", "AAPL")}
	type tc struct {
		src  string
		kind md.Kind
		res  Result
		fast bool
	}
	cases := []tc{
		{"price > 0 && size >= 100", md.KindTrade, Bool, true},
		{"price * size >= 1e6 || symbol == \"AAPL\"", md.KindTrade, Bool, true},
		{"not (side == \"buy\") and trade_id % 2 == 0", md.KindTrade, Bool, false},
		{"side != 'sell' && seq > 3 && ts - ingest <= 0", md.KindTrade, Bool, true},
		{"-price < -50.5 ? size > 2 : size < 7", md.KindTrade, Bool, true},
		{"provider == 'binance' == (price > 60)", md.KindTrade, Bool, true},
		{"trade_id / 3 > 10", md.KindTrade, Bool, true},
		{"abs(price - 50) < 10", md.KindTrade, Bool, false},
		{"symbol in ['AAPL', 'MSFT']", md.KindTrade, Bool, false},
		{"price * 100", md.KindTrade, Float, true},
		{"price ** 2 - size / 3", md.KindTrade, Float, true},
		{"trade_id * 2 + seq - 7", md.KindTrade, Float, true},
		{"ts / 1000000000", md.KindTrade, Float, true},
		{"size > 5 ? price : -price", md.KindTrade, Float, true},
		{"ask - bid > 0.5 * mid / 100 || bid_size + ask_size < 3", md.KindQuote, Bool, true},
		{"(bid + ask) / 2 - mid", md.KindQuote, Float, true},
		{"spread / mid * 10000", md.KindQuote, Float, true},
		{"close > open && volume >= 10 && trades > 2 && end - start == 1000000000", md.KindBar, Bool, true},
		{"(high - low) / vwap", md.KindBar, Float, true},
		{"len(symbol) > 3", md.KindBar, Bool, false},
	}
	r := rand.New(rand.NewPCG(5, 6))
	e := NewEnv(syms)
	sides := []md.Side{md.SideUnknown, md.SideBuy, md.SideSell}
	for _, c := range cases {
		p, err := Compile(c.src, c.kind, c.res)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		cp, err := p.For(c.kind)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Fast() != c.fast {
			t.Errorf("%s: fast %v, want %v", c.src, cp.Fast(), c.fast)
		}
		for range 2000 {
			sym := ids[r.IntN(2)]
			px := float64(r.IntN(20000)) / 100
			if r.IntN(50) == 0 {
				px = 0
			}
			switch c.kind {
			case md.KindTrade:
				e.SetTrade(&md.Trade{TS: r.Int64N(1 << 62), Ingest: r.Int64N(1 << 62), Price: px, Size: float64(r.IntN(400)) / 4,
					TradeID: r.Int64N(100) - 20, Seq: uint64(r.IntN(10)), Side: sides[r.IntN(3)], Sym: sym})
			case md.KindQuote:
				e.SetQuote(&md.Quote{TS: r.Int64N(1 << 62), Bid: px, Ask: px + float64(r.IntN(200))/100, BidSize: float64(r.IntN(4)), AskSize: float64(r.IntN(4)), Sym: sym})
			default:
				s := r.Int64N(1 << 60)
				e.SetBar(&md.Bar{Start: s, End: s + int64(r.IntN(2)+1)*1e9 - 1e9*int64(r.IntN(2)), Open: px, High: px + 1, Low: px - float64(r.IntN(3)),
					Close: px + float64(r.IntN(5)-2), Volume: float64(r.IntN(30)), VWAP: px + 0.5, Trades: int64(r.IntN(6)), Sym: sym})
			}
			vmOnly := &Compiled{VM: cp.VM}
			if c.res == Bool {
				got, err1 := e.Bool(cp, c.kind)
				want, err2 := e.Bool(vmOnly, c.kind)
				if got != want || err1 != nil || err2 != nil {
					t.Fatalf("%s: closures %v (%v), VM %v (%v)", c.src, got, err1, want, err2)
				}
				continue
			}
			got, err1 := e.Float(cp, c.kind)
			want, err2 := e.Float(vmOnly, c.kind)
			if (got != want && !(math.IsNaN(got) && math.IsNaN(want))) || err1 != nil || err2 != nil {
				t.Fatalf("%s: closures %v (%v), VM %v (%v)", c.src, got, err1, want, err2)
			}
		}
	}
}

// A fast expression allocates nothing per record.
func TestFastClosuresDoNotAllocate(t *testing.T) {
	syms := md.NewSymbolTable()
	id := syms.Intern("x", "AAPL")
	e := NewEnv(syms)
	pb, _ := Compile("price > 0 && size >= 100 && symbol != 'X'", md.KindTrade, Bool)
	pf, _ := Compile("price * size / 2", md.KindTrade, Float)
	cb, _ := pb.For(md.KindTrade)
	cf, _ := pf.For(md.KindTrade)
	tr := md.Trade{Price: 10, Size: 200, Sym: id}
	if n := testing.AllocsPerRun(1000, func() {
		e.SetTrade(&tr)
		_, _ = e.Bool(cb, md.KindTrade)
		_, _ = e.Float(cf, md.KindTrade)
	}); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}
