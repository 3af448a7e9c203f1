package replay

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// The reference parses below are the least a reader of these files must do,
// written by hand for exactly this layout: read the file through one
// buffer, find each row's fields, parse the two timestamps and the id as
// integers, price and size as decimal floats (tsparse.ParseFloat, the
// bit-exact parse replay uses too), the side, and look the symbol up in a
// map. No column mapping, no checks beyond what parsing itself rejects, no
// error reporting. BenchmarkParseCSV and BenchmarkParseJSONL measure
// provider.replay's decoder on the same file in the same run, so the ratio
// of the two is what the general reader costs over the format's limit.

// refInterner maps symbol bytes to dense ids without allocating per row.
type refInterner map[string]md.SymID

func (m refInterner) id(b []byte) md.SymID {
	if id, ok := m[string(b)]; ok {
		return id
	}
	id := md.SymID(len(m))
	m[string(b)] = id
	return id
}

// refUint parses a run of decimal digits.
func refUint(b []byte) int64 {
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	return n
}

// refSide reads "buy" or "sell".
func refSide(b []byte) md.Side {
	switch {
	case len(b) == 3 && b[0] == 'b':
		return md.SideBuy
	case len(b) == 4 && b[0] == 's':
		return md.SideSell
	}
	return md.SideUnknown
}

// refParseCSV parses a tardis-layout trades CSV
// (exchange,symbol,timestamp,local_timestamp,id,side,price,amount) into
// chunks of trades, hands each full chunk to keep (once per chunk, not per
// row) and returns how many it parsed.
func refParseCSV(tb testing.TB, path string, keep func([]md.Trade)) int {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 256<<10)
	syms := refInterner{}
	chunk := make([]md.Trade, 0, chunkSize)
	n := 0
	var fs [8][]byte
	if _, err := rd.ReadSlice('\n'); err != nil { // header
		tb.Fatal(err)
	}
	for {
		line, err := rd.ReadSlice('\n')
		if len(line) == 0 {
			break
		}
		if err != nil && err != bufio.ErrBufferFull && len(line) == 0 {
			tb.Fatal(err)
		}
		line = line[:len(line)-1]
		for k := range 7 {
			i := bytes.IndexByte(line, ',')
			fs[k], line = line[:i], line[i+1:]
		}
		fs[7] = line
		price, ok1 := tsparse.ParseFloat(fs[6])
		size, ok2 := tsparse.ParseFloat(fs[7])
		if !ok1 || !ok2 {
			tb.Fatalf("row %d: bad number", n)
		}
		ts := refUint(fs[2]) * 1000
		chunk = append(chunk, md.Trade{TS: ts, Ingest: refUint(fs[3]) * 1000, Price: price, Size: size,
			TradeID: refUint(fs[4]), Sym: syms.id(fs[1]), Side: refSide(fs[5])})
		if len(chunk) == chunkSize {
			keep(chunk)
			n += len(chunk)
			chunk = chunk[:0]
		}
	}
	keep(chunk)
	return n + len(chunk)
}

// refJSONValue returns the value after `"key":` in line (without quotes
// for a string) and the rest of the line after it; the keys come in the
// order the file writes them.
func refJSONValue(line []byte, key string) ([]byte, []byte) {
	i := bytes.Index(line, []byte(key))
	line = line[i+len(key)+2:] // past key":
	if line[0] == '"' {
		j := bytes.IndexByte(line[1:], '"')
		return line[1 : j+1], line[j+2:]
	}
	j := 0
	for j < len(line) && line[j] != ',' && line[j] != '}' {
		j++
	}
	return line[:j], line[j:]
}

// refParseJSONL parses the same trades written as JSON lines
// ({"exchange":…,"symbol":…,"timestamp":…,"local_timestamp":…,"id":…,
// "side":…,"price":…,"amount":…}), keys in that order.
func refParseJSONL(tb testing.TB, path string, keep func([]md.Trade)) int {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 256<<10)
	syms := refInterner{}
	chunk := make([]md.Trade, 0, chunkSize)
	n := 0
	for {
		line, _ := rd.ReadSlice('\n')
		if len(line) == 0 {
			break
		}
		var sym, ts, lts, id, side, price, size []byte
		sym, line = refJSONValue(line, `"symbol`)
		ts, line = refJSONValue(line, `"timestamp`)
		lts, line = refJSONValue(line, `"local_timestamp`)
		id, line = refJSONValue(line, `"id`)
		side, line = refJSONValue(line, `"side`)
		price, line = refJSONValue(line, `"price`)
		size, _ = refJSONValue(line, `"amount`)
		p, ok1 := tsparse.ParseFloat(price)
		s, ok2 := tsparse.ParseFloat(size)
		if !ok1 || !ok2 {
			tb.Fatalf("row %d: bad number", n)
		}
		chunk = append(chunk, md.Trade{TS: refUint(ts) * 1000, Ingest: refUint(lts) * 1000, Price: p, Size: s,
			TradeID: refUint(id), Sym: syms.id(sym), Side: refSide(side)})
		if len(chunk) == chunkSize {
			keep(chunk)
			n += len(chunk)
			chunk = chunk[:0]
		}
	}
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
