package busfmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// v1Bytes encodes b as a version 1 frame: two batches with the same
// symbols have the same v1 bytes exactly when every field has the same
// bits (NaN payloads and -0 included).
func v1Bytes(t testing.TB, b *md.Batch, syms []md.Instrument) []byte {
	t.Helper()
	var e Encoder
	f, err := e.AppendFrame(nil, b, syms)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// compactRoundTrip encodes in as a compact frame, decodes it into the same
// symbol table and requires every field bit-identical, and does the same
// with a packed frame (packedRoundTrip); it returns the compact frame.
func compactRoundTrip(t testing.TB, st *md.SymbolTable, in *md.Batch) []byte {
	t.Helper()
	packedRoundTrip(t, st, in)
	enc := Encoder{Compact: true}
	syms := st.Snapshot()
	frame, err := enc.AppendFrame(nil, in, syms)
	if err != nil {
		t.Fatal(err)
	}
	if frame[2] != VersionCompact {
		t.Fatalf("version %d, want %d", frame[2], VersionCompact)
	}
	// Columns, record by record, writes the same bytes.
	c := NewColumns(in.Kind)
	for i := range in.Trades {
		if err := c.AddTrade(&in.Trades[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range in.Quotes {
		if err := c.AddQuote(&in.Quotes[i]); err != nil {
			t.Fatal(err)
		}
	}
	if cf, err := c.AppendFrame(nil, syms, in.Reason); err != nil || !bytes.Equal(cf, frame) {
		t.Fatalf("Columns wrote another frame (%v):\n% x\nEncoder:\n% x", err, cf, frame)
	}
	out := md.NewBatch(in.Kind)
	if err := NewDecoder(st).Decode(frame, out); err != nil {
		t.Fatal(err)
	}
	if out.Reason != in.Reason {
		t.Fatalf("reason %q, want %q", out.Reason, in.Reason)
	}
	if got, want := v1Bytes(t, out, st.Snapshot()), v1Bytes(t, in, syms); !bytes.Equal(got, want) {
		t.Fatalf("records differ after a compact round trip:\ngot  %+v %+v\nwant %+v %+v", out.Trades, out.Quotes, in.Trades, in.Quotes)
	}
	return frame
}

// packedRoundTrip encodes in as a packed frame, decodes it into the same
// symbol table and requires every field bit-identical; it returns the frame.
func packedRoundTrip(t testing.TB, st *md.SymbolTable, in *md.Batch) []byte {
	t.Helper()
	enc := Encoder{Packed: true}
	frame, err := enc.AppendFrame(nil, in, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if frame[2] != VersionPacked {
		t.Fatalf("version %d, want %d", frame[2], VersionPacked)
	}
	out := md.NewBatch(in.Kind)
	if err := NewDecoder(st).Decode(frame, out); err != nil {
		t.Fatal(err)
	}
	if out.Reason != in.Reason {
		t.Fatalf("reason %q, want %q", out.Reason, in.Reason)
	}
	if got, want := v1Bytes(t, out, st.Snapshot()), v1Bytes(t, in, st.Snapshot()); !bytes.Equal(got, want) {
		t.Fatalf("records differ after a packed round trip:\ngot  %+v %+v\nwant %+v %+v", out.Trades, out.Quotes, in.Trades, in.Quotes)
	}
	return frame
}

// TestCompactRoundTrip: the fixtures of TestRoundTrip come back equal
// through compact frames, symbols by name in another table.
func TestCompactRoundTrip(t *testing.T) {
	st, a, b := testSyms(t)
	for _, in := range []*md.Batch{tradeBatch(a, b), quoteBatch(a, b), md.NewBatch(md.KindTrade)} {
		in.Reason = "late ü"
		enc := Encoder{Compact: true}
		frame, err := enc.AppendFrame([]byte("prefix"), in, st.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		frame = frame[6:]
		other := md.NewSymbolTable()
		other.Intern("x", "y")
		out := md.NewBatch(in.Kind)
		if err := NewDecoder(other).Decode(frame, out); err != nil {
			t.Fatal(err)
		}
		for i := range out.Trades {
			g := other.Get(out.Trades[i].Sym)
			out.Trades[i].Sym, _ = st.Lookup(g.Provider, g.Symbol)
		}
		for i := range out.Quotes {
			g := other.Get(out.Quotes[i].Sym)
			out.Quotes[i].Sym, _ = st.Lookup(g.Provider, g.Symbol)
		}
		if out.Reason != in.Reason || out.Len() != in.Len() {
			t.Fatalf("reason %q len %d", out.Reason, out.Len())
		}
		eq(t, out.Trades, in.Trades)
		eq(t, out.Quotes, in.Quotes)
	}
	// Bars and derived records stay version 1.
	enc := Encoder{Compact: true}
	for _, in := range []*md.Batch{barBatch(a, b), derivedBatch(t, a, b)} {
		f, err := enc.AppendFrame(nil, in, st.Snapshot())
		if err != nil || f[2] != Version {
			t.Fatalf("%s: version %d, %v", in.Kind, f[2], err)
		}
	}
}

// TestCompactLayout pins the documented bytes of a one-trade compact frame.
func TestCompactLayout(t *testing.T) {
	st := md.NewSymbolTable()
	id := st.Intern("p", "S")
	st.NoteSizeDecimals(id, 3)
	b := md.NewBatch(md.KindTrade)
	b.Trades = []md.Trade{{Sym: id, TS: 1, Ingest: 2, Price: 1.5, Size: 2, TradeID: 3, Seq: 4, Side: md.SideSell}}
	enc := Encoder{Compact: true}
	f, err := enc.AppendFrame(nil, b, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'M', 'D', 2, 1, 1, 0, 0, 0, 1, 0, 1, 'p', 1, 'S', 3, 0, 0,
		// no symbol column: the dictionary has one symbol
		0x02,       // ts: zigzag(1 - 0)
		0x01, 0x02, // ingest_ts: mode 1, zigzag(2 - 1)
		0x01, 0x1e, // price: scale 1, zigzag(15 - 0)
		0x00, 0x04, // size: scale 0, zigzag(2)
		0x06, // trade_id: zigzag(3 - 0)
		0x08, // seq: zigzag(4 - 0)
		0x02, // side: sell in bits 0-1
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("frame\n% x\nwant\n% x", f, want)
	}
	// Two symbols, equal ingest and ts, a raw float, a negative delta.
	x := st.Intern("p", "T")
	b.Trades = []md.Trade{
		{Sym: id, TS: 10, Ingest: 10, Price: 2, Size: math.Copysign(0, -1), TradeID: 5, Seq: 7},
		{Sym: x, TS: 9, Ingest: 9, Price: 3, Size: 1, TradeID: 4, Seq: 6, Side: md.SideBuy},
	}
	f, err = enc.AppendFrame(nil, b, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	want = []byte{'M', 'D', 2, 1, 2, 0, 0, 0, 2, 0, 1, 'p', 1, 'S', 3, 1, 'p', 1, 'T', 255, 0, 0,
		0, 1, // symbol column, one byte each
		20, 1, // ts: zigzag(10), zigzag(-1)
		0,       // ingest_ts: mode 0, every ingest_ts equals ts
		0, 4, 6, // price: scale 0, zigzag(2 - 0), zigzag(3 - 0) (T's first)
		255, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // size: raw, -0 and 1
		10, 8, // trade_id: zigzag(5 - 0), zigzag(4 - 0) (per symbol)
		14, 1, // seq: zigzag(7), zigzag(-1)
		0x04, // side: unknown, buy in bits 2-3
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("frame\n% x\nwant\n% x", f, want)
	}
}

// edgeFloats are values a scaled column cannot hold or holds only at its
// limits.
var edgeFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 1e-22, 1e22, 1.5e-300, 123456789.123456,
	math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1),
	math.NaN(), math.Float64frombits(0x7ff8000000000bad), math.Float64frombits(0xfff0000000000001),
	1 << 53, 1<<53 + 2, -(1 << 53), 1 << 62, 0.1 + 0.2, 9682, 9681.92, 0.001, 1.0 / 3,
}

// TestCompactExactEdges: any float, alone or among others, comes back with
// the same bits, whatever scale the column ends at.
func TestCompactExactEdges(t *testing.T) {
	st := md.NewSymbolTable()
	ids := []md.SymID{st.Intern("p", "A"), st.Intern("p", "B"), st.Intern("p", "C")}
	trade := func(i int, p, s float64) md.Trade {
		return md.Trade{Sym: ids[i%3], TS: int64(i) * 7, Ingest: int64(i) * 7, Price: p, Size: s, TradeID: int64(i), Seq: uint64(i), Side: md.Side(i % 3)}
	}
	// Each edge value alone, then after and before ordinary prices.
	for _, v := range edgeFloats {
		for _, seq := range [][]float64{{v}, {100.25, 100.5, v, 100.75}, {v, 1.5, 2.25, 0.001}} {
			b := md.NewBatch(md.KindTrade)
			for i, p := range seq {
				b.Trades = append(b.Trades, trade(i, p, seq[len(seq)-1-i]))
			}
			compactRoundTrip(t, st, b)
			q := md.NewBatch(md.KindQuote)
			for i, p := range seq {
				q.Quotes = append(q.Quotes, md.Quote{Sym: ids[i%3], TS: int64(i), Ingest: -int64(i), Bid: p, Ask: p * 2, BidSize: seq[0], AskSize: p, Seq: uint64(i)})
			}
			compactRoundTrip(t, st, q)
		}
	}
	// A scale that grows until a held value outgrows 2^53: raw.
	b := md.NewBatch(md.KindTrade)
	b.Trades = []md.Trade{trade(0, 1<<52, 1), trade(1, 3, 1), trade(2, 0.5, 1)}
	f := compactRoundTrip(t, st, b)
	if !bytes.Contains(f, []byte{rawScale, 0, 0, 0, 0, 0, 0, 0x30, 0x43}) { // 2^52 as raw bits
		t.Fatalf("price column not raw:\n% x", f)
	}
	// Random values of random decimals, random symbols and integers.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n := 1 + rng.IntN(300)
		b := md.NewBatch(md.KindTrade)
		q := md.NewBatch(md.KindQuote)
		for i := range n {
			p := func() float64 {
				switch rng.IntN(8) {
				case 0:
					return edgeFloats[rng.IntN(len(edgeFloats))]
				case 1:
					return math.Float64frombits(rng.Uint64())
				default:
					return float64(rng.Int64N(1_000_000_000)) / pow10[rng.IntN(9)]
				}
			}
			b.Trades = append(b.Trades, md.Trade{Sym: ids[rng.IntN(3)], TS: rng.Int64(), Ingest: rng.Int64(), Price: p(), Size: p(),
				TradeID: rng.Int64() - rng.Int64(), Seq: rng.Uint64(), Side: md.Side(rng.IntN(3))})
			q.Quotes = append(q.Quotes, md.Quote{Sym: ids[rng.IntN(3)], TS: int64(i), Ingest: int64(i) + rng.Int64N(3), Bid: p(), BidSize: p(), Ask: p(), AskSize: p(), Seq: rng.Uint64()})
		}
		compactRoundTrip(t, st, b)
		compactRoundTrip(t, st, q)
	}
	// More than 256 symbols: a two-byte symbol column.
	b = md.NewBatch(md.KindTrade)
	for i := range 1000 {
		id := st.Intern("many", strconv.Itoa(i%300))
		b.Trades = append(b.Trades, md.Trade{Sym: id, TS: int64(i), Price: float64(i%300) + 0.5, Size: 1, TradeID: int64(i)})
	}
	compactRoundTrip(t, st, b)
}

// readTardis reads the recorded trades and quotes of testdata/replay.
func readTardis(t *testing.T, st *md.SymbolTable) (*md.Batch, *md.Batch) {
	t.Helper()
	num := func(s string) float64 {
		f, ok := tsparse.ParseFloat([]byte(s))
		if !ok {
			t.Fatalf("number %q", s)
		}
		return f
	}
	integer := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rows := func(name string) [][]string {
		f, err := os.Open(filepath.Join("..", "testdata", "replay", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out [][]string
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			out = append(out, strings.Split(sc.Text(), ","))
		}
		return out
	}
	tr := md.NewBatch(md.KindTrade)
	for i, r := range rows("tardis_trades.csv") {
		// exchange,symbol,timestamp,local_timestamp,id,side,price,amount
		side := md.SideBuy
		if r[5] == "sell" {
			side = md.SideSell
		}
		tr.Trades = append(tr.Trades, md.Trade{Sym: st.Intern(r[0], r[1]), TS: integer(r[2]) * 1000, Ingest: integer(r[3]) * 1000,
			TradeID: integer(r[4]), Side: side, Price: num(r[6]), Size: num(r[7]), Seq: uint64(i)})
	}
	qs := md.NewBatch(md.KindQuote)
	for i, r := range rows("tardis_quotes.csv") {
		// exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
		qs.Quotes = append(qs.Quotes, md.Quote{Sym: st.Intern(r[0], r[1]), TS: integer(r[2]) * 1000, Ingest: integer(r[3]) * 1000,
			AskSize: num(r[4]), Ask: num(r[5]), Bid: num(r[6]), BidSize: num(r[7]), Seq: uint64(i)})
	}
	return tr, qs
}

// TestCompactRecordedData: 5000 recorded trades and 5000 quotes round-trip
// bit-exactly, in frames of up to 4096 records, and take under a third of
// version 1's bytes.
func TestCompactRecordedData(t *testing.T) {
	st := md.NewSymbolTable()
	tr, qs := readTardis(t, st)
	for _, in := range []*md.Batch{tr, qs} {
		v1, v2, v3 := 0, 0, 0
		for lo := 0; lo < in.Len(); lo += 4096 {
			hi := min(lo+4096, in.Len())
			part := md.NewBatch(in.Kind)
			if in.Kind == md.KindTrade {
				part.Trades = in.Trades[lo:hi]
			} else {
				part.Quotes = in.Quotes[lo:hi]
			}
			v2 += len(compactRoundTrip(t, st, part))
			v3 += len(packedRoundTrip(t, st, part))
			v1 += len(v1Bytes(t, part, st.Snapshot()))
		}
		t.Logf("%s: %d records, version 1 %d bytes, compact %d (%.1f bytes a record), packed %d (%.1f)", in.Kind, in.Len(), v1, v2, float64(v2)/float64(in.Len()), v3, float64(v3)/float64(in.Len()))
		if 3*v2 > v1 || 2*v3 > v1 {
			t.Fatalf("%s: compact %d bytes, packed %d, version 1 %d", in.Kind, v2, v3, v1)
		}
	}
}

// TestCompactColumnsAcrossFrames: a builder reused for several frames
// starts each afresh (dictionary, deltas, scales).
func TestCompactColumnsAcrossFrames(t *testing.T) {
	st := md.NewSymbolTable()
	tr, _ := readTardis(t, st)
	c := NewColumns(md.KindTrade)
	dec := NewDecoder(st)
	var buf []byte
	for lo := 0; lo < tr.Len(); lo += 700 {
		want := md.NewBatch(md.KindTrade)
		want.Trades = tr.Trades[lo:min(lo+700, tr.Len())]
		for i := range want.Trades {
			if err := c.AddTrade(&want.Trades[i]); err != nil {
				t.Fatal(err)
			}
		}
		if c.Len() != want.Len() || c.Bytes() == 0 {
			t.Fatalf("Len %d Bytes %d", c.Len(), c.Bytes())
		}
		var err error
		buf, err = c.AppendFrame(buf[:0], st.Snapshot(), "")
		if err != nil {
			t.Fatal(err)
		}
		got := md.NewBatch(md.KindTrade)
		if err := dec.Decode(buf, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v1Bytes(t, got, st.Snapshot()), v1Bytes(t, want, st.Snapshot())) {
			t.Fatalf("frame at %d differs", lo)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("Len %d after a frame", c.Len())
	}
	bad := md.Trade{Sym: 0, Price: 1, Side: 3}
	if err := c.AddTrade(&bad); err == nil || c.Len() != 0 {
		t.Fatalf("side 3 added: %v", err)
	}
}

// TestCompactDecodeRejects: each malformed compact frame is refused with
// its reason and leaves the batch unchanged.
func TestCompactDecodeRejects(t *testing.T) {
	st := md.NewSymbolTable()
	a, b := st.Intern("p", "A"), st.Intern("p", "B")
	in := md.NewBatch(md.KindTrade)
	in.Trades = []md.Trade{
		{Sym: a, TS: 10, Ingest: 11, Price: 1.5, Size: 2, TradeID: 1, Seq: 1, Side: md.SideBuy},
		{Sym: b, TS: 12, Ingest: 12, Price: 2.5, Size: 3, TradeID: 2, Seq: 2, Side: md.SideSell},
	}
	enc := Encoder{Compact: true}
	good, err := enc.AppendFrame(nil, in, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	// Offsets in good: header 10, dictionary 2×5, reason 2 → columns at 22:
	// symbols 22-23, ts 24-25, ingest mode 26 and 27-28, price scale 29,
	// price 30-31, size scale 32, size 33-34, trade_id 35-36, seq 37-38,
	// side 39.
	if len(good) != 40 || good[26] != 1 || good[29] != 1 {
		t.Fatalf("fixture moved:\n% x", good)
	}
	mod := func(fn func([]byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	bars, _ := (&Encoder{}).AppendFrame(nil, barBatch(a, b), st.Snapshot())
	cases := []struct {
		name   string
		frame  []byte
		kind   md.Kind
		reason string
	}{
		{"truncated", good[:len(good)-1], md.KindTrade, ReasonTruncated},
		{"truncated in a column", good[:30], md.KindTrade, ReasonTruncated},
		{"trailing", append(append([]byte(nil), good...), 0), md.KindTrade, ReasonTrailing},
		{"count beyond the bytes", mod(func(f []byte) []byte { f[4] = 100; return f }), md.KindTrade, ReasonTruncated},
		{"symbol index", mod(func(f []byte) []byte { f[23] = 2; return f }), md.KindTrade, ReasonSymbol},
		{"side", mod(func(f []byte) []byte { f[39] = 0x0b; return f }), md.KindTrade, ReasonEnum},
		{"side bits after the last", mod(func(f []byte) []byte { f[39] |= 0x10; return f }), md.KindTrade, ReasonEnum},
		{"scale", mod(func(f []byte) []byte { f[29] = MaxScale + 1; return f }), md.KindTrade, ReasonEnum},
		{"ingest mode", mod(func(f []byte) []byte { f[26] = 2; return f }), md.KindTrade, ReasonEnum},
		{"varint overflow", append(append(append([]byte(nil), good[:24]...), bytes.Repeat([]byte{0xff}, 11)...), good[24:]...), md.KindTrade, ReasonVarint},
		{"raw column short", mod(func(f []byte) []byte { f[29] = rawScale; return f }), md.KindTrade, ReasonTruncated},
		{"no symbols", []byte{'M', 'D', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, md.KindTrade, ReasonSymbol},
		{"bars", mod(func([]byte) []byte { f := append([]byte(nil), bars...); f[2] = 2; return f }), md.KindBar, ReasonKind},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := md.NewBatch(c.kind)
			if c.kind == md.KindTrade {
				out.Trades = append(out.Trades, md.Trade{TS: 99})
			}
			err := NewDecoder(md.NewSymbolTable()).Decode(c.frame, out)
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Reason != c.reason {
				t.Fatalf("err %v, want reason %s", err, c.reason)
			}
			if c.kind == md.KindTrade && (len(out.Trades) != 1 || out.Trades[0].TS != 99) || out.Reason != "" {
				t.Fatalf("batch changed by a rejected frame: %+v", out.Trades)
			}
		})
	}
}

// TestCompactSteadyStateAllocs: compact encoding and decoding of a steady
// stream into pooled batches allocates nothing, scale changes included.
func TestCompactSteadyStateAllocs(t *testing.T) {
	st := md.NewSymbolTable()
	tr, qs := readTardis(t, st)
	syms := st.Snapshot()
	for _, enc := range []*Encoder{{Compact: true}, {Packed: true}} {
		steadyAllocs(t, enc, st, syms, tr, qs)
	}
}

func steadyAllocs(t *testing.T, enc *Encoder, st *md.SymbolTable, syms []md.Instrument, tr, qs *md.Batch) {
	dec := NewDecoder(st)
	pool := md.NewPool(64)
	for _, in := range []*md.Batch{tr, qs} {
		buf, _ := enc.AppendFrame(nil, in, syms)
		allocs := testing.AllocsPerRun(20, func() {
			var err error
			buf, err = enc.AppendFrame(buf[:0], in, syms)
			if err != nil {
				t.Fatal(err)
			}
			out := pool.Get(in.Kind)
			if err := dec.Decode(buf, out); err != nil {
				t.Fatal(err)
			}
			out.Release()
		})
		if allocs != 0 {
			t.Fatalf("%s (packed %v): %v allocations per encode+decode", in.Kind, enc.Packed, allocs)
		}
	}
}

// cpuNow is the CPU time the process has used (the benchmark is one
// goroutine and does not allocate, so nearly all of it is the loop's).
func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFrames encodes and decodes the 5000 recorded trades as one
// frame, version 1 against compact, and reports bytes and CPU ns per trade
// (getrusage: steadier than ns/op on a loaded machine).
//
//	go test -run '^$' -bench Frames -count 5 ./busfmt
func BenchmarkFrames(b *testing.B) {
	st := md.NewSymbolTable()
	tr, _ := readTardis(&testing.T{}, st)
	syms := st.Snapshot()
	for _, v := range []int{Version, VersionCompact, VersionPacked} {
		name, compact := [...]string{"", "v1", "compact", "packed"}[v], v == VersionCompact
		enc := Encoder{Compact: compact, Packed: v == VersionPacked}
		frame, err := enc.AppendFrame(nil, tr, syms)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/encode", func(b *testing.B) {
			c0 := cpuNow(b)
			for range b.N {
				frame, _ = enc.AppendFrame(frame[:0], tr, syms)
			}
			b.ReportMetric(float64((cpuNow(b)-c0).Nanoseconds())/float64(b.N*tr.Len()), "cpu_ns/trade")
			b.ReportMetric(float64(len(frame))/float64(tr.Len()), "bytes/trade")
		})
		if compact {
			b.Run("columns/encode", func(b *testing.B) {
				c := NewColumns(md.KindTrade)
				c0 := cpuNow(b)
				for range b.N {
					for i := range tr.Trades {
						_ = c.AddTrade(&tr.Trades[i])
					}
					frame, _ = c.AppendFrame(frame[:0], syms, "")
				}
				b.ReportMetric(float64((cpuNow(b)-c0).Nanoseconds())/float64(b.N*tr.Len()), "cpu_ns/trade")
			})
		}
		b.Run(name+"/decode", func(b *testing.B) {
			dec := NewDecoder(st)
			out := md.NewBatch(md.KindTrade)
			c0 := cpuNow(b)
			for range b.N {
				out.Reset()
				if err := dec.Decode(frame, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuNow(b)-c0).Nanoseconds())/float64(b.N*tr.Len()), "cpu_ns/trade")
		})
	}
}

// TestCompactColumnsSharing: builders sharing one lookup table, each with
// its own symbols, added to in turn, write the frames Encoder writes for
// their records.
func TestCompactColumnsSharing(t *testing.T) {
	st := md.NewSymbolTable()
	var ids []md.SymID
	for i := range 50 {
		ids = append(ids, st.Intern("p", "S"+strconv.Itoa(i)))
	}
	first := NewColumns(md.KindTrade)
	cols := []*Columns{NewColumnsSharing(md.KindTrade, first), NewColumnsSharing(md.KindTrade, first)}
	enc := Encoder{Compact: true}
	rng := rand.New(rand.NewPCG(3, 4))
	for frame := range 3 {
		want := []*md.Batch{md.NewBatch(md.KindTrade), md.NewBatch(md.KindTrade)}
		for i := range 500 {
			k := rng.IntN(2)
			tr := md.Trade{Sym: ids[2*rng.IntN(25)+k], TS: int64(frame*1000 + i), Ingest: int64(frame*1000 + i), Price: float64(rng.IntN(10000)) / 100, Size: 1, TradeID: int64(i)}
			want[k].Trades = append(want[k].Trades, tr)
			if err := cols[k].AddTrade(&tr); err != nil {
				t.Fatal(err)
			}
		}
		for k, c := range cols {
			got, err := c.AppendFrame(nil, st.Snapshot(), "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := enc.AppendFrame(nil, want[k], st.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("frame %d of builder %d differs from Encoder's", frame, k)
			}
		}
	}
}

// TestPackedLayout pins the documented bytes of a two-trade packed frame,
// and the reasons malformed packed frames are refused for.
func TestPackedLayout(t *testing.T) {
	st := md.NewSymbolTable()
	a, b := st.Intern("p", "A"), st.Intern("p", "B")
	in := md.NewBatch(md.KindTrade)
	in.Trades = []md.Trade{
		{Sym: a, TS: 1000, Ingest: 1000, Price: 1.5, Size: 2, TradeID: 70, Seq: 5, Side: md.SideBuy},
		{Sym: b, TS: 1300, Ingest: 1300, Price: 2.5, Size: 3, TradeID: 71, Seq: 6, Side: md.SideSell},
	}
	enc := Encoder{Packed: true}
	good, err := enc.AppendFrame(nil, in, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	seed := func(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }
	var want []byte
	want = append(want, 'M', 'D', VersionPacked, byte(md.KindTrade), 2, 0, 0, 0)
	want = append(want, 2, 0, 1, 'p', 1, 'A', 255, 1, 'p', 1, 'B', 255, 0, 0) // dictionary, no reason
	want = append(want, 0, 1)                                                 // symbols
	want = append(append(append(want, 2), seed(1000)...), 0, 0, 0x58, 0x02)   // ts: width 2, deltas 0, 300 (zigzag 600)
	want = append(append(want, 0), seed(0)...)                                // ingest_ts: width 0
	want = append(append(append(want, 1, 1), seed(15)...), 0, 20)             // price: scale 1, width 1, seed 15, deltas 0, 10
	want = append(append(append(want, 0, 1), seed(0)...), 4, 6)               // size: scale 0, width 1, 2 and 3
	want = append(append(append(want, 1), seed(70)...), 0, 2)                 // trade_id: per symbol from 70: 0, 1
	want = append(append(append(want, 1), seed(5)...), 0, 2)                  // seq: 0, 1
	want = append(want, 0x09)                                                 // sides 1, 2
	if !bytes.Equal(good, want) {
		t.Fatalf("packed frame\n% x\nwant\n% x", good, want)
	}
	packedRoundTrip(t, st, in)
	tsAt := 24 // the ts column's width byte
	mod := func(fn func([]byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	for _, c := range []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"width", mod(func(f []byte) []byte { f[tsAt] = 3; return f }), ReasonEnum},
		{"truncated in a seed", good[:tsAt+5], ReasonTruncated},
		{"truncated in the values", good[:tsAt+10], ReasonTruncated},
		{"count beyond the bytes", mod(func(f []byte) []byte { f[4] = 200; return f }), ReasonTruncated},
		{"trailing", append(append([]byte(nil), good...), 0), ReasonTrailing},
		{"side", mod(func(f []byte) []byte { f[len(f)-1] = 0x0b; return f }), ReasonEnum},
	} {
		out := md.NewBatch(md.KindTrade)
		err := NewDecoder(md.NewSymbolTable()).Decode(c.frame, out)
		var fe *FrameError
		if !errors.As(err, &fe) || fe.Reason != c.reason || out.Len() != 0 {
			t.Fatalf("%s: err %v (%d records), want reason %s", c.name, err, out.Len(), c.reason)
		}
	}
}
