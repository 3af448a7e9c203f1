package postgres

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
)

func TestPgMicros(t *testing.T) {
	for ns, want := range map[int64]int64{
		946684800 * int64(time.Second):      0,
		946684800*int64(time.Second) + 1999: 1,
		0:                                   -946684800000000,
		-1:                                  -946684800000001,
		-1000:                               -946684800000001,
		-1001:                               -946684800000002,
	} {
		if got := pgMicros(ns); got != want {
			t.Errorf("pgMicros(%d) = %d, want %d", ns, got, want)
		}
	}
}

func TestDedupeKeepsLastPerKey(t *testing.T) {
	_, syms := testSymbols(2)
	var c colset
	var ks keySet
	var drop []bool
	iv := intervalText{}
	for round := 0; round < 3; round++ { // reused state across batches
		b := &md.Batch{Kind: md.KindTrade, Trades: []md.Trade{
			{TS: 1000, TradeID: 1, Price: 1, Sym: 0},
			{TS: 1000, TradeID: 1, Price: 2, Sym: 1}, // other symbol: kept
			{TS: 1999, TradeID: 1, Price: 3, Sym: 0}, // same microsecond as the first: replaces it
			{TS: 2000, TradeID: 1, Price: 4, Sym: 0}, // next microsecond: kept
			{TS: 1000, TradeID: 2, Price: 5, Sym: 0}, // other trade id: kept
			{TS: 2000, TradeID: 1, Price: 6, Sym: 0}, // replaces price 4
		}}
		c.fill(b, tradesDef, syms, iv)
		if n := c.dedupe(b, &ks, &drop); n != 2 || c.n != 4 {
			t.Fatalf("round %d: removed %d, %d left; want 2 removed, 4 left", round, n, c.n)
		}
		want := []float64{2, 3, 5, 6}
		for i, p := range c.floats[0][:c.n] {
			if p != want[i] {
				t.Fatalf("round %d: prices %v, want %v", round, c.floats[0][:c.n], want)
			}
		}
	}
}

// BenchmarkEncodeCopy measures the Go side of a 10,000-bar COPY write:
// filling the columns, finding duplicate keys, encoding binary COPY. It
// allocates nothing per batch once warm.
func BenchmarkEncodeCopy(b *testing.B) {
	_, syms := testSymbols(1000)
	bars := genBars(10000, 1000)
	mb := &md.Batch{Kind: md.KindBar, Bars: bars}
	var c colset
	var ks keySet
	var drop []bool
	var buf []byte
	iv := intervalText{}
	c.fill(mb, barsDef, syms, iv) // warm the reused buffers
	c.dedupe(mb, &ks, &drop)
	buf = appendCopy(buf[:0], barsDef, &c, 0, c.n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.fill(mb, barsDef, syms, iv)
		c.dedupe(mb, &ks, &drop)
		buf = appendCopy(buf[:0], barsDef, &c, 0, c.n)
	}
	b.ReportMetric(float64(len(bars)*b.N)/b.Elapsed().Seconds(), "rows/s")
}
