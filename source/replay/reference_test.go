package replay

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// The reference parses below are the least a reader of these files must do,
// written by hand for exactly this layout: one pass over a buffer of whole
// lines, each field read where the scan for its end meets it (integers
// digit by digit, the two timestamps eight digits at a time with
// tsparse.ScanDigits, which was faster than a byte loop; price and size as
// a mantissa and decimal places, then one exact division, Clinger's fast
// path, which every workload number takes), the side by its first letter,
// and the symbol looked up in a table (refInterner). No column mapping, no
// checks, no error reporting: they rely on the file being the workload's, and
// TestReferenceParsesAgreeWithReplay asserts that they produce replay's
// trades. BenchmarkParseCSV and BenchmarkParseJSONL measure
// provider.replay's decoder on the same file in the same run, so the ratio
// of the two is what the general reader costs over the format's limit.

// refInterner maps symbol bytes to dense ids without allocating per row:
// an open-addressing table keyed by the symbol's first and last eight (or
// four) bytes and its length, which spell a symbol of up to sixteen bytes
// (the technique of replay's SymResolver; a Go map with a string key cost
// 8 ns a row more in BenchmarkParseCSVReference), and a map for longer
// symbols.
type refInterner struct {
	slots [1024]refSlot
	used  int
	long  map[string]md.SymID
}

type refSlot struct {
	a, z uint64
	n    int // the symbol's length + 1; 0: empty
	id   md.SymID
}

func (r *refInterner) id(b []byte) md.SymID {
	var a, z uint64
	switch n := len(b); {
	case n > 16 || r.used >= len(r.slots)/2:
		if r.long == nil {
			r.long = map[string]md.SymID{}
		}
		id, ok := r.long[string(b)]
		if !ok {
			id = md.SymID(r.used + len(r.long))
			r.long[string(b)] = id
		}
		return id
	case n >= 8:
		a, z = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		a, z = uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	default:
		for i, c := range b {
			a |= uint64(c) << (8 * i)
		}
	}
	for h := ((a ^ z*0x94D049BB133111EB ^ uint64(len(b))) * 0x9E3779B97F4A7C15) >> 54; ; h++ {
		s := &r.slots[h%uint64(len(r.slots))]
		if s.n == len(b)+1 && s.a == a && s.z == z {
			return s.id
		}
		if s.n == 0 {
			*s = refSlot{a: a, z: z, n: len(b) + 1, id: md.SymID(r.used + len(r.long))}
			r.used++
			return s.id
		}
	}
}

// refPow10 are the powers of ten a float64 holds exactly.
var refPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// refRows reads path through one 256 KiB buffer and calls row with each
// run of whole lines (every line ending in '\n'; the file's last line must
// end in one), after skipping the first line when header is set; a line
// cut by the buffer's end is moved to its front and completed by the next
// read.
func refRows(tb testing.TB, path string, header bool, rows func([]byte)) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	kept := 0
	for {
		m, err := f.Read(buf[kept:])
		data := buf[:kept+m]
		last := bytes.LastIndexByte(data, '\n')
		if last >= 0 {
			whole := data[:last+1]
			if header {
				whole, header = whole[bytes.IndexByte(whole, '\n')+1:], false
			}
			rows(whole)
			kept = copy(buf, data[last+1:])
		} else {
			kept = len(data)
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// refParseCSV parses a tardis-layout trades CSV
// (exchange,symbol,timestamp,local_timestamp,id,side,price,amount) into
// chunks of trades, hands each full chunk to keep (once per chunk, not per
// row) and returns how many it parsed. One pass over each row: every
// field is read where the scan for its end meets it (digits accumulated,
// a decimal's mantissa and places counted, then the exact division of
// Clinger's fast path, which the workload's numbers all take).
func refParseCSV(tb testing.TB, path string, keep func([]md.Trade)) int {
	syms := &refInterner{}
	chunk := make([]md.Trade, 0, chunkSize)
	n := 0
	refRows(tb, path, true, func(b []byte) {
		for p := 0; p < len(b); p++ { // p++: past the '\n'
			for b[p] != ',' {
				p++
			}
			p++
			s := p
			for b[p] != ',' {
				p++
			}
			sym := b[s:p]
			p++
			// The 16-digit times eight digits at a time (a byte loop costs
			// more here).
			ts, e := tsparse.ScanDigits(b, p)
			lts, e := tsparse.ScanDigits(b, e+1)
			p = e + 1
			var id int64
			for c := b[p]; c != ','; c = b[p] {
				id = id*10 + int64(c-'0')
				p++
			}
			p++
			side := md.SideBuy
			if b[p] == 's' {
				side = md.SideSell
			}
			for b[p] != ',' {
				p++
			}
			p++
			var m uint64
			frac, dot := 0, 0
			for c := b[p]; c != ','; c = b[p] {
				if c == '.' {
					dot = 1
				} else {
					m = m*10 + uint64(c-'0')
					frac += dot
				}
				p++
			}
			p++
			price := float64(m) / refPow10[frac]
			m, frac, dot = 0, 0, 0
			for c := b[p]; c != '\n'; c = b[p] {
				if c == '.' {
					dot = 1
				} else {
					m = m*10 + uint64(c-'0')
					frac += dot
				}
				p++
			}
			chunk = append(chunk, md.Trade{TS: int64(ts) * 1000, Ingest: int64(lts) * 1000, Price: price, Size: float64(m) / refPow10[frac],
				TradeID: id, Sym: syms.id(sym), Side: side})
			if len(chunk) == chunkSize {
				keep(chunk)
				n += len(chunk)
				chunk = chunk[:0]
			}
		}
	})
	keep(chunk)
	return n + len(chunk)
}

// refColon returns the index after the first ':' at or after p.
func refColon(b []byte, p int) int {
	for b[p] != ':' {
		p++
	}
	return p + 1
}

// refParseJSONL parses the same trades written as JSON lines
// ({"exchange":…,"symbol":…,"timestamp":…,"local_timestamp":…,"id":…,
// "side":…,"price":…,"amount":…}, keys in that order, no whitespace), in
// one pass as refParseCSV does: each value is found by scanning to the
// ':' after its key and read where the scan meets it.
func refParseJSONL(tb testing.TB, path string, keep func([]md.Trade)) int {
	syms := &refInterner{}
	chunk := make([]md.Trade, 0, chunkSize)
	n := 0
	refRows(tb, path, false, func(b []byte) {
		for p := 0; p < len(b); p++ { // p++: past the '\n'
			p = refColon(b, p) // "exchange":"…"
			for p++; b[p] != '"'; p++ {
			}
			p = refColon(b, p) // "symbol":"…"
			s := p + 1
			for p = s; b[p] != '"'; p++ {
			}
			sym := b[s:p]
			p = refColon(b, p)
			ts, e := tsparse.ScanDigits(b, p)
			p = e
			p = refColon(b, p)
			lts, e := tsparse.ScanDigits(b, p)
			p = e
			p = refColon(b, p)
			var id int64
			for c := b[p]; c != ','; c = b[p] {
				id = id*10 + int64(c-'0')
				p++
			}
			p = refColon(b, p) // "side":"…"
			side := md.SideBuy
			if b[p+1] == 's' {
				side = md.SideSell
			}
			for p++; b[p] != '"'; p++ {
			}
			p = refColon(b, p)
			var m uint64
			frac, dot := 0, 0
			for c := b[p]; c != ','; c = b[p] {
				if c == '.' {
					dot = 1
				} else {
					m = m*10 + uint64(c-'0')
					frac += dot
				}
				p++
			}
			price := float64(m) / refPow10[frac]
			p = refColon(b, p)
			m, frac, dot = 0, 0, 0
			for c := b[p]; c != '}'; c = b[p] {
				if c == '.' {
					dot = 1
				} else {
					m = m*10 + uint64(c-'0')
					frac += dot
				}
				p++
			}
			p++ // past '}', at the '\n'
			chunk = append(chunk, md.Trade{TS: int64(ts) * 1000, Ingest: int64(lts) * 1000, Price: price, Size: float64(m) / refPow10[frac],
				TradeID: id, Sym: syms.id(sym), Side: side})
			if len(chunk) == chunkSize {
				keep(chunk)
				n += len(chunk)
				chunk = chunk[:0]
			}
		}
	})
	keep(chunk)
	return n + len(chunk)
}

// TestReferenceParsesAgreeWithReplay: the hand-written reference parses
// read the workload files to the same trades as provider.replay's decoder,
// so the benchmarks compare equal work.
func TestReferenceParsesAgreeWithReplay(t *testing.T) {
	for _, json := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "w.csv")
		parse := refParseCSV
		if json {
			path, parse = filepath.Join(t.TempDir(), "w.jsonl"), refParseJSONL
		}
		writeWorkload(t, path, 3000, json)
		var want []md.Trade
		r, _ := openBenchReader(t, path)
		for {
			if err := r.fill(); err != nil {
				t.Fatal(err)
			}
			if r.buffered() == 0 {
				break
			}
			want = append(want, r.trades...)
		}
		r.close()
		var got []md.Trade
		if n := parse(t, path, func(c []md.Trade) { got = append(got, c...) }); n != len(want) || len(got) != n {
			t.Fatalf("json=%v: reference parsed %d trades (%d kept), replay %d", json, n, len(got), len(want))
		}
		for i := range want {
			w, g := want[i], got[i]
			if w.Sym != g.Sym { // both tables intern SYM… in order of first sight
				t.Fatalf("json=%v row %d: symbol id %d, replay %d", json, i, g.Sym, w.Sym)
			}
			if w != g {
				t.Fatalf("json=%v row %d: reference %+v, replay %+v", json, i, g, w)
			}
		}
	}
}

func benchReference(b *testing.B, json bool) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "w.csv")
	parse := refParseCSV
	if json {
		path, parse = filepath.Join(b.TempDir(), "w.jsonl"), refParseJSONL
	}
	writeWorkload(b, path, n, json)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for range b.N {
		if got := parse(b, path, func([]md.Trade) {}); got != n {
			b.Fatalf("parsed %d trades, want %d", got, n)
		}
	}
	reportRates(b, n, start, cpu0)
}

// BenchmarkParseCSVReference is the format's limit for BenchmarkParseCSV:
// the minimal hand-written parse of the same file.
func BenchmarkParseCSVReference(b *testing.B) { benchReference(b, false) }

// BenchmarkParseJSONLReference is the same for BenchmarkParseJSONL.
func BenchmarkParseJSONLReference(b *testing.B) { benchReference(b, true) }
