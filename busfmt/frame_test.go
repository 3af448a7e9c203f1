package busfmt

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/mdpio/mdp/md"
)

func testSyms(t testing.TB) (*md.SymbolTable, md.SymID, md.SymID) {
	t.Helper()
	st := md.NewSymbolTable()
	return st, st.Intern("binance", "BTCUSDT"), st.Intern("coinbase", "ETH-USD")
}

func tradeBatch(a, b md.SymID) *md.Batch {
	x := md.NewBatch(md.KindTrade)
	x.Trades = []md.Trade{
		{TS: 1_700_000_000_123_456_789, Ingest: 1_700_000_000_200_000_000, Price: 42000.5, Size: 0.001, TradeID: 7, Seq: 1, Sym: a, Side: md.SideBuy},
		{TS: 1_700_000_000_223_456_789, Ingest: -5, Price: math.SmallestNonzeroFloat64, Size: 0, TradeID: -1, Seq: math.MaxUint64, Sym: b, Side: md.SideSell},
		{TS: math.MinInt64, Price: 1, Size: math.MaxFloat64, Sym: a, Side: md.SideUnknown},
	}
	return x
}

func quoteBatch(a, b md.SymID) *md.Batch {
	x := md.NewBatch(md.KindQuote)
	x.Quotes = []md.Quote{
		{TS: 1, Ingest: 2, Bid: 1.25, BidSize: 3, Ask: 1.5, AskSize: 4, Seq: 9, Sym: b},
		{TS: 3, Ingest: 4, Bid: 0, BidSize: 0, Ask: 2, AskSize: 1, Seq: 10, Sym: a},
	}
	return x
}

func barBatch(a, b md.SymID) *md.Batch {
	x := md.NewBatch(md.KindBar)
	x.Bars = []md.Bar{
		{Start: 0, End: 1e9, Interval: 1e9, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 10.25, VWAP: 1.2, Trades: 4, Sym: a},
		{Start: 5, End: 99, Interval: 100, Open: 1, High: 1, Low: 1, Close: 1, Volume: 0, VWAP: 1, Trades: 100, Sym: b,
			Type: md.BarTick, Source: md.FromMid, LabelEnd: true, Update: true},
		{Type: md.BarValue, Source: md.FromAsk, Sym: b},
		{Start: 7, End: 8, Interval: 1, Open: 2, High: 3, Low: 1, Close: 2, Sym: a, Source: md.FromBidAsk, Partial: true},
	}
	x.Reason = "late: 3s behind the watermark — ü"
	return x
}

func derivedBatch(t testing.TB, a, b md.SymID) *md.Batch {
	s, err := md.NewSchema("ewma", md.Field{Name: "value", Type: md.Float}, md.Field{Name: "count", Type: md.Int})
	if err != nil {
		t.Fatal(err)
	}
	x := md.NewBatch(md.KindDerived)
	x.Schema = s
	v := x.AddDerived(11, a)
	v[0], v[1] = md.FloatValue(3.5), md.IntValue(-2)
	v = x.AddDerived(12, b)
	v[0], v[1] = md.FloatValue(math.Inf(-1)), md.IntValue(math.MaxInt64)
	return x
}

// TestRoundTrip encodes a batch of every kind and decodes it into another
// symbol table: every field comes back equal, symbols by name.
func TestRoundTrip(t *testing.T) {
	st, a, b := testSyms(t)
	for _, in := range []*md.Batch{tradeBatch(a, b), quoteBatch(a, b), barBatch(a, b), derivedBatch(t, a, b), md.NewBatch(md.KindNone)} {
		t.Run(in.Kind.String(), func(t *testing.T) {
			var enc Encoder
			frame, err := enc.AppendFrame([]byte("prefix"), in, st.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			if string(frame[:6]) != "prefix" {
				t.Fatalf("dst prefix lost: %q", frame[:6])
			}
			frame = frame[6:]
			if k, err := Kind(frame); err != nil || k != in.Kind {
				t.Fatalf("Kind = %v, %v", k, err)
			}
			other := md.NewSymbolTable()
			other.Intern("x", "y") // ids differ between the tables
			dec := NewDecoder(other)
			out := md.NewBatch(in.Kind)
			if err := dec.Decode(frame, out); err != nil {
				t.Fatal(err)
			}
			// Map ids back through names and compare.
			remap := func(id md.SymID) md.SymID {
				g := other.Get(id)
				back, ok := st.Lookup(g.Provider, g.Symbol)
				if !ok {
					t.Fatalf("decoded symbol %v unknown", g)
				}
				return back
			}
			for i := range out.Trades {
				out.Trades[i].Sym = remap(out.Trades[i].Sym)
			}
			for i := range out.Quotes {
				out.Quotes[i].Sym = remap(out.Quotes[i].Sym)
			}
			for i := range out.Bars {
				out.Bars[i].Sym = remap(out.Bars[i].Sym)
			}
			for i := range out.Derived {
				out.Derived[i].Sym = remap(out.Derived[i].Sym)
			}
			if out.Len() != in.Len() || out.Reason != in.Reason {
				t.Fatalf("len %d reason %q, want %d %q", out.Len(), out.Reason, in.Len(), in.Reason)
			}
			switch in.Kind {
			case md.KindTrade:
				eq(t, out.Trades, in.Trades)
			case md.KindQuote:
				eq(t, out.Quotes, in.Quotes)
			case md.KindBar:
				eq(t, out.Bars, in.Bars)
			case md.KindDerived:
				eq(t, out.Derived, in.Derived)
				eq(t, out.Values, in.Values)
				if !out.Schema.Equal(in.Schema) {
					t.Fatalf("schema %s, want %s", out.Schema, in.Schema)
				}
			}
		})
	}
}

func eq[T any](t *testing.T, got, want []T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestFrameLayout pins the documented byte layout of a one-trade frame.
func TestFrameLayout(t *testing.T) {
	st := md.NewSymbolTable()
	id := st.Intern("p", "S")
	st.NoteSizeDecimals(id, 3)
	b := md.NewBatch(md.KindTrade)
	b.Trades = []md.Trade{{Sym: id, TS: 1, Ingest: 2, Price: 1, Size: 2, TradeID: 3, Seq: 4, Side: md.SideSell}}
	var enc Encoder
	f, err := enc.AppendFrame(nil, b, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'M', 'D', 1, 1, 1, 0, 0, 0, 1, 0, 1, 'p', 1, 'S', 3, 0, 0,
		0, 0, // symbol index
		1, 0, 0, 0, 0, 0, 0, 0, // ts
		2, 0, 0, 0, 0, 0, 0, 0, // ingest
		0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // price 1.0
		0, 0, 0, 0, 0, 0, 0, 0x40, // size 2.0
		3, 0, 0, 0, 0, 0, 0, 0, // trade id
		4, 0, 0, 0, 0, 0, 0, 0, // seq
		2, // side sell
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("frame\n% x\nwant\n% x", f, want)
	}
	if len(f)-17 != tradeSize {
		t.Fatalf("trade record %d bytes, documented %d", len(f)-17, tradeSize)
	}
	// The size decimals travel with the symbol.
	other := md.NewSymbolTable()
	if err := NewDecoder(other).Decode(f, md.NewBatch(md.KindTrade)); err != nil {
		t.Fatal(err)
	}
	if d, ok := other.SizeDecimals(0); !ok || d != 3 {
		t.Fatalf("size decimals %d %v, want 3", d, ok)
	}
}

// TestDecodeRejects checks each malformed frame is refused with its reason
// and leaves the batch untouched.
func TestDecodeRejects(t *testing.T) {
	st, a, b := testSyms(t)
	var enc Encoder
	good, err := enc.AppendFrame(nil, tradeBatch(a, b), st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	bars, _ := enc.AppendFrame(nil, barBatch(a, b), st.Snapshot())
	der, _ := enc.AppendFrame(nil, derivedBatch(t, a, b), st.Snapshot())
	mod := func(f []byte, fn func([]byte) []byte) []byte { return fn(append([]byte(nil), f...)) }
	cases := []struct {
		name   string
		frame  []byte
		kind   md.Kind
		reason string
	}{
		{"short", good[:5], md.KindTrade, ReasonTruncated},
		{"magic", mod(good, func(f []byte) []byte { f[0] = 'X'; return f }), md.KindTrade, ReasonMagic},
		{"version", mod(good, func(f []byte) []byte { f[2] = 4; return f }), md.KindTrade, ReasonVersion},
		{"kind byte", mod(good, func(f []byte) []byte { f[3] = 3; return f }), md.KindTrade, ReasonKind},
		{"kind mismatch", good, md.KindQuote, ReasonKind},
		{"truncated records", good[:len(good)-1], md.KindTrade, ReasonTruncated},
		{"trailing", append(append([]byte(nil), good...), 0), md.KindTrade, ReasonTrailing},
		{"count", mod(good, func(f []byte) []byte { f[4] = 4; return f }), md.KindTrade, ReasonTruncated},
		{"too many", mod(good, func(f []byte) []byte { f[7] = 0xff; return f }), md.KindTrade, ReasonTooLarge},
		{"symbol index", mod(good, func(f []byte) []byte { f[len(f)-tradeSize] = 9; return f }), md.KindTrade, ReasonSymbol},
		{"side", mod(good, func(f []byte) []byte { f[len(f)-1] = 3; return f }), md.KindTrade, ReasonEnum},
		{"bar flags", mod(bars, func(f []byte) []byte { f[len(f)-1] = 8; return f }), md.KindBar, ReasonEnum},
		{"bar type", mod(bars, func(f []byte) []byte { f[len(f)-3] = 6; return f }), md.KindBar, ReasonEnum},
		{"bar source", mod(bars, func(f []byte) []byte { f[len(f)-2] = 5; return f }), md.KindBar, ReasonEnum},
		{"schema name", mod(der, func(f []byte) []byte {
			i := indexOf(f, "ewma")
			f[i] = 'E'
			return f
		}), md.KindDerived, ReasonSchema},
		{"schema field type", mod(der, func(f []byte) []byte {
			i := indexOf(f, "count")
			f[i+5] = 7
			return f
		}), md.KindDerived, ReasonSchema},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := md.NewBatch(c.kind)
			err := NewDecoder(md.NewSymbolTable()).Decode(c.frame, out)
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Reason != c.reason {
				t.Fatalf("err %v, want reason %s", err, c.reason)
			}
			if out.Len() != 0 || out.Reason != "" || out.Schema != nil {
				t.Fatalf("batch changed by a rejected frame: %d records", out.Len())
			}
		})
	}
	// Expect refuses another schema.
	other, _ := md.NewSchema("other", md.Field{Name: "v"})
	d := NewDecoder(md.NewSymbolTable())
	d.Expect = other
	var fe *FrameError
	if err := d.Decode(der, md.NewBatch(md.KindDerived)); !errors.As(err, &fe) || fe.Reason != ReasonSchema {
		t.Fatalf("Expect: %v", err)
	}
}

func indexOf(f []byte, s string) int {
	for i := 0; i+len(s) <= len(f); i++ {
		if string(f[i:i+len(s)]) == s {
			return i
		}
	}
	panic(s)
}

func TestEncodeRefuses(t *testing.T) {
	st := md.NewSymbolTable()
	long := st.Intern("p", string(make([]byte, 256)))
	var enc Encoder
	b := md.NewBatch(md.KindTrade)
	b.Trades = []md.Trade{{Sym: long, Price: 1}}
	if out, err := enc.AppendFrame([]byte("x"), b, st.Snapshot()); err == nil || string(out) != "x" {
		t.Fatalf("long symbol: %q %v", out, err)
	}
	b.Trades[0].Sym = 99
	if _, err := enc.AppendFrame(nil, b, st.Snapshot()); err == nil {
		t.Fatal("unknown id encoded")
	}
}

// TestSteadyStateAllocs: encoding and decoding a steady stream into pooled
// batches allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	st, a, b := testSyms(t)
	in := tradeBatch(a, b)
	syms := st.Snapshot()
	var enc Encoder
	dec := NewDecoder(st)
	pool := md.NewPool(64)
	buf, _ := enc.AppendFrame(nil, in, syms)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = enc.AppendFrame(buf[:0], in, syms)
		if err != nil {
			t.Fatal(err)
		}
		out := pool.Get(md.KindTrade)
		if err := dec.Decode(buf, out); err != nil {
			t.Fatal(err)
		}
		out.Release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per encode+decode", allocs)
	}
}

// FuzzDecode: no input panics the decoder (an over-read would), a rejected
// frame is a *FrameError and leaves the batch empty, and an accepted frame
// re-encodes, as version 1, compact and packed frames, to records with the same
// bits.
func FuzzDecode(f *testing.F) {
	st, a, b := testSyms(f)
	var enc Encoder
	compact := Encoder{Compact: true}
	packed := Encoder{Packed: true}
	for _, x := range []*md.Batch{tradeBatch(a, b), quoteBatch(a, b), barBatch(a, b), derivedBatch(f, a, b)} {
		fr, err := enc.AppendFrame(nil, x, st.Snapshot())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
		if fr, err = compact.AppendFrame(nil, x, st.Snapshot()); err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
		if fr, err = packed.AppendFrame(nil, x, st.Snapshot()); err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		k, err := Kind(frame)
		if err != nil {
			return
		}
		syms := md.NewSymbolTable()
		out := md.NewBatch(k)
		if err := NewDecoder(syms).Decode(frame, out); err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error not a FrameError: %v", err)
			}
			if out.Len() != 0 {
				t.Fatalf("rejected frame left %d records", out.Len())
			}
			return
		}
		want := v1Bytes(t, out, syms.Snapshot())
		for _, e := range []*Encoder{{}, {Compact: true}, {Packed: true}} {
			again, err := e.AppendFrame(nil, out, syms.Snapshot())
			if err != nil {
				t.Fatalf("decoded frame does not re-encode: %v", err)
			}
			back := md.NewBatch(k)
			if err := NewDecoder(syms).Decode(again, back); err != nil {
				t.Fatalf("re-encoded frame: %v", err)
			}
			if got := v1Bytes(t, back, syms.Snapshot()); !bytes.Equal(got, want) {
				t.Fatalf("re-encoded (compact %v, packed %v) records differ", e.Compact, e.Packed)
			}
		}
	})
}
