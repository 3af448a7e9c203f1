package replay

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

// decodeAll reads the CSV or JSON-lines file at path with the tardis_trades preset
// (symbols: the symbols filter) through fill, with the fused decoder
// (fast) or only the generic path, with checkpoints on (each record's meta
// kept) and no time filter, and returns what came out: the trades, each
// record's meta, the malformed rows (queued with their reasons) and the
// symbol table with its size decimals.
func decodeAll(t *testing.T, path string, fast bool, symbols []string) (trades []md.Trade, meta []recMeta, bad []queuedRow, syms []string, hadFast bool) {
	return decodeWith(t, path, fast, symbols, true, timeFilter{start: md.MinTime, end: md.MaxTime})
}

// decodeWith is decodeAll with checkpoints on or off (track) and a time
// filter: without checkpoints and a jump guard the reader applies the
// filter itself instead of through place.
func decodeWith(t *testing.T, path string, fast bool, symbols []string, track bool, filter timeFilter) (trades []md.Trade, meta []recMeta, bad []queuedRow, syms []string, hadFast bool) {
	t.Helper()
	p, err := component.NewParams(specOf(t, "provider.replay"), map[string]any{"path": path, "preset": "tardis_trades"})
	if err != nil {
		t.Fatal(err)
	}
	lay, err := rowmap.ResolveLayout(p)
	if err != nil {
		t.Fatal(err)
	}
	table := md.NewSymbolTable()
	rc := &readerConfig{lay: lay, format: "auto", comp: "auto", dec: rowmap.NewDecoder(lay, table, symbols), bufSize: 4096,
		counter: new(atomic.Int64), mal: &malformed{policy: errDrop, queue: true}, track: track, filter: filter}
	r, err := openReader(0, path, rc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	hadFast = r.hasFast || r.hasJFast
	r.hasFast = r.hasFast && fast
	r.hasJFast = r.hasJFast && fast
	for {
		if err := r.fill(); err != nil {
			t.Fatal(err)
		}
		if r.buffered() == 0 && r.eof {
			break
		}
		trades = append(trades, r.trades...)
		meta = append(meta, r.meta...)
	}
	for id := range table.Len() {
		in := table.Get(md.SymID(id))
		d, ok := table.SizeDecimals(md.SymID(id))
		syms = append(syms, fmt.Sprintf("%s/%s %d %v", in.Provider, in.Symbol, d, ok))
	}
	return trades, meta, r.mal.queued, syms, hadFast
}

// checkFastSame decodes path with and without the fused decoder and fails
// unless everything that came out is identical: with checkpoints on, and
// without them with no time filter and with one that keeps only the records
// between two of them. It returns the trades of the first.
func checkFastSame(t *testing.T, path string, symbols []string) []md.Trade {
	t.Helper()
	all := timeFilter{start: md.MinTime, end: md.MaxTime}
	gt := checkFastSameWith(t, path, symbols, true, all)
	if got := checkFastSameWith(t, path, symbols, false, all); !slices.Equal(got, gt) {
		t.Fatalf("%s: %d trades without checkpoints, %d with", path, len(got), len(gt))
	}
	if len(gt) > 0 {
		a, b := gt[len(gt)/3].TS, gt[2*len(gt)/3].TS
		mid := timeFilter{start: min(a, b), end: max(a, b) + 1}
		want := slices.DeleteFunc(slices.Clone(gt), func(tr md.Trade) bool { return !mid.pass(tr.TS) })
		if got := checkFastSameWith(t, path, symbols, false, mid); !slices.Equal(got, want) {
			t.Fatalf("%s: time filter %+v: %d trades, want %d", path, mid, len(got), len(want))
		}
	}
	return gt
}

// checkFastSameWith is one comparison of checkFastSame.
func checkFastSameWith(t *testing.T, path string, symbols []string, track bool, filter timeFilter) []md.Trade {
	t.Helper()
	ft, fm, fb, fs, had := decodeWith(t, path, true, symbols, track, filter)
	if !had {
		t.Fatalf("%s: the fused decoder is not used", path)
	}
	gt, gm, gb, gs, _ := decodeWith(t, path, false, symbols, track, filter)
	if len(ft) != len(gt) {
		t.Fatalf("%s: fused %d trades, generic %d", path, len(ft), len(gt))
	}
	for i := range gt {
		// Compare the bits: a NaN would never equal itself.
		if ft[i] != gt[i] {
			t.Fatalf("%s: trade %d: fused %+v, generic %+v", path, i, ft[i], gt[i])
		}
	}
	if !slices.Equal(fm, gm) {
		t.Fatalf("%s: record metas differ", path)
	}
	if len(fb) != len(gb) {
		t.Fatalf("%s: fused %d malformed rows, generic %d", path, len(fb), len(gb))
	}
	for i := range gb {
		if fb[i].line != gb[i].line || !bytes.Equal(fb[i].raw, gb[i].raw) || fb[i].reason != gb[i].reason {
			t.Fatalf("%s: malformed row %d: fused %+v, generic %+v", path, i, fb[i], gb[i])
		}
	}
	if !slices.Equal(fs, gs) {
		t.Fatalf("%s: symbol tables differ:\nfused   %v\ngeneric %v", path, fs, gs)
	}
	return gt
}

// TestCSVFastMatchesGeneric: the fused tardis decoder and the generic path
// read the repo's tardis file, the bench workload and random rows (many of
// them malformed, quoted, padded, CRLF-terminated or otherwise off the
// fused decoder's grammar) to the same trades, metas, malformed reports,
// symbols and size decimals, with and without a symbols filter.
func TestCSVFastMatchesGeneric(t *testing.T) {
	dir := t.TempDir()
	if got := checkFastSame(t, filepath.Join("..", "..", "testdata", "replay", "tardis_trades.csv"), nil); len(got) == 0 {
		t.Fatal("no trades in the tardis test file")
	}
	wl := filepath.Join(dir, "w.csv")
	writeWorkload(t, wl, 20_000, false)
	if got := checkFastSame(t, wl, nil); len(got) != 20_000 {
		t.Fatalf("workload: %d trades", len(got))
	}
	checkFastSame(t, wl, []string{"SYM001", "SYM050"})

	rng := rand.New(rand.NewPCG(7, 11))
	for f := range 40 {
		var b strings.Builder
		b.WriteString("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
		for range 400 {
			b.WriteString(randomRow(rng))
		}
		path := filepath.Join(dir, fmt.Sprintf("r%d.csv", f))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		checkFastSame(t, path, nil)
		checkFastSame(t, path, []string{"BTC", "E\"TH"})
	}
}

// TestCSVFastOnlyTardisOrder: the fused decoder is used for the tardis
// column order only; another order (or extra mapped columns) takes the
// generic path, and both decode the rows.
func TestCSVFastOnlyTardisOrder(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "swapped.csv"),
		"symbol,exchange,timestamp,local_timestamp,id,side,price,amount\nBTC,x,1582329602111000,1582329602418379,1,buy,9682.5,0.25\n")
	tr, _, bad, _, had := decodeAll(t, path, true, nil)
	if had {
		t.Fatal("the fused decoder took a file whose columns are not in the tardis order")
	}
	want := md.Trade{TS: 1582329602111000000, Ingest: 1582329602418379000, Price: 9682.5, Size: 0.25, Side: md.SideBuy, TradeID: 1}
	if len(bad) != 0 || len(tr) != 1 || tr[0] != want {
		t.Fatalf("got %+v (malformed %+v), want %+v", tr, bad, want)
	}
}

// randomRow is a tardis-layout line, usually well formed, often bent in
// one of the ways the fused decoder must leave to the generic path.
func randomRow(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	digits := func(n int) string {
		var b []byte
		for range n {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		return string(b)
	}
	dec := func() string {
		switch rng.IntN(12) {
		case 0:
			return digits(1 + rng.IntN(22)) // long runs: strconv or overflow
		case 1:
			return digits(rng.IntN(12)) + "." + digits(rng.IntN(12))
		case 2:
			return pick("0", "0.0", ".", "1.", ".5", "-1.5", "+2", "1e3", "1.5E-2", "NaN", "inf", "0x1p3", " 1.5", "1.5 ", `"1.5"`, "", "1.2.3", "9007199254740993", "9007199254740992", "1_0")
		}
		return digits(1+rng.IntN(6)) + pick("", "."+digits(1+rng.IntN(8)))
	}
	ts := func() string {
		switch rng.IntN(10) {
		case 0:
			return pick("", "-1582329602111000", "+1582329602111000", "1582329602111000.5", "1.5e15", "9223372036854775", "9223372036854776", "92233720368547758", "x", " 1582329602111000", "2024-01-02T14:30:00Z")
		case 1:
			return digits(1 + rng.IntN(20))
		}
		return "15823296" + digits(8)
	}
	fields := []string{
		pick("binance", "deribit", "", " ftx", "bit ", `"kraken"`, `ok"x`),
		pick("BTC", "ETH", "E\"TH", "SOLUSDT", "", " XRP", "ADA ", `"DOT"`, "A B"),
		ts(), ts(),
		pick(digits(1+rng.IntN(8)), digits(19), digits(20), "", "abc-123", "-5", " 7", "7 ", `"8"`, "0"),
		pick("buy", "sell", "BUY", "s", "", "unknown", " buy", `"sell"`),
		dec(), dec(),
	}
	line := strings.Join(fields, ",")
	switch rng.IntN(12) {
	case 0:
		line += ",extra,\"cols\""
	case 1:
		line = line[:rng.IntN(len(line)+1)] // truncated
	case 2:
		line += "\r"
	case 3:
		line += "\r\r"
	case 4:
		line = ""
	}
	return line + "\n"
}

// TestJSONFastMatchesGeneric is TestCSVFastMatchesGeneric for JSON lines:
// the workload and random rows, many off the fused decoder's template
// (whitespace, escapes, other key orders, null, quoted numbers, nested
// values, trailing text).
func TestJSONFastMatchesGeneric(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "w.jsonl")
	writeWorkload(t, wl, 20_000, true)
	if got := checkFastSame(t, wl, nil); len(got) != 20_000 {
		t.Fatalf("workload: %d trades", len(got))
	}
	checkFastSame(t, wl, []string{"SYM001", "SYM050"})
	rng := rand.New(rand.NewPCG(13, 17))
	for f := range 40 {
		var b strings.Builder
		for range 400 {
			b.WriteString(randomJSONRow(rng))
		}
		path := filepath.Join(dir, fmt.Sprintf("r%d.jsonl", f))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		checkFastSame(t, path, nil)
		checkFastSame(t, path, []string{"BTC", "E\"TH"})
	}
}

// randomJSONRow is a JSON-lines trade, usually in the workload's form,
// often bent.
func randomJSONRow(rng *rand.Rand) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	fields := strings.Split(randomRow(rng), ",")
	if len(fields) < 8 {
		fields = append(fields, make([]string, 8-len(fields))...)
	}
	for i, f := range fields {
		fields[i] = strings.TrimSuffix(strings.TrimSuffix(f, "\n"), "\r")
	}
	str := func(s string) string {
		if strings.HasPrefix(s, `"`) && strings.HasSuffix(s, `"`) && len(s) > 1 {
			return s
		}
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	num := func(s string) string {
		if rng.IntN(15) == 0 {
			return str(s)
		}
		if s == "" {
			return pick("null", `""`, "0")
		}
		return s
	}
	keys := []string{"exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"}
	vals := []string{str(fields[0]), str(fields[1]), num(fields[2]), num(fields[3]), num(fields[4]), str(fields[5]), num(fields[6]), num(fields[7])}
	if rng.IntN(6) == 0 {
		vals[4] = str(fields[4]) // string ids
	}
	if rng.IntN(20) == 0 {
		vals[1] = `"B\u0054C"`
	}
	if rng.IntN(40) == 0 {
		i, j := rng.IntN(8), rng.IntN(8)
		keys[i], keys[j] = keys[j], keys[i]
	}
	// Half the rows keep the template's form; the others bend it once.
	bend := -1
	if rng.IntN(2) == 0 {
		bend = rng.IntN(5)
	}
	at := rng.IntN(8)
	var b strings.Builder
	b.WriteString("{")
	for i := range keys {
		if i > 0 {
			b.WriteString(",")
			if bend == 0 && i == at {
				b.WriteString(" ")
			}
		}
		b.WriteString(`"` + keys[i] + `":`)
		if bend == 1 && i == at {
			b.WriteString(" ")
		}
		b.WriteString(vals[i])
		if bend == 2 && i == at {
			b.WriteString(`,"extra":{"a":[1,2]}`)
		}
	}
	switch bend {
	case 3:
		b.WriteString(pick("} ", "}x", "", "}\r", "}}", " }"))
	default:
		b.WriteString("}")
	}
	if bend == 4 {
		return "\n"
	}
	return b.String() + "\n"
}

// FuzzCSVFastMatchesGeneric: whatever the rows under a tardis header, the
// fused decoder and the generic path give the same output.
func FuzzCSVFastMatchesGeneric(f *testing.F) {
	for _, s := range []string{
		"binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132\n",
		"x,A,1,,abc,sell,.5,5.\r\nx,A,1,2,3,s,0,1\n\"x\",A,1,2,3,b,1,1\n",
		"x,A,99999999999999999,1,1,buy,9007199254740993,1e3\nx, A ,1,1,-1,buy,1.5,2,extra\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rows []byte) {
		path := filepath.Join(t.TempDir(), "f.csv")
		data := append([]byte("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"), rows...)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkFastSame(t, path, nil)
	})
}

// FuzzJSONFastMatchesGeneric is the same for JSON lines.
func FuzzJSONFastMatchesGeneric(f *testing.F) {
	for _, s := range []string{
		`{"exchange":"bench","symbol":"SYM001","timestamp":1704205800000000,"local_timestamp":1704205800000000,"id":0,"side":"buy","price":100.5,"amount":57}` + "\n",
		`{"exchange":"b","symbol":"S\u0041","timestamp":1,"local_timestamp":null,"id":"x-1","side":"sell","price":0,"amount":1} ` + "\n",
		`{"exchange":"b","symbol":"S","timestamp":1,"local_timestamp":2,"id":"7","side":"","price":1.5e2,"amount":"1"}` + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rows []byte) {
		path := filepath.Join(t.TempDir(), "f.jsonl")
		if err := os.WriteFile(path, rows, 0o644); err != nil {
			t.Fatal(err)
		}
		checkFastSame(t, path, nil)
	})
}

// TestFastSymbolCacheKeepsExchangesApart: the fused decoders' symbol
// cache holds the symbols of one exchange at a time. Runs of rows of two
// exchanges that trade the same symbols (short ones, which the cache
// keys, and longer ones, which it does not), a run as short as one row,
// with and without a symbols filter, come out as the generic path's: each
// row with its own exchange's instrument.
func TestFastSymbolCacheKeepsExchangesApart(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 5))
	syms := []string{"BTC", "ETH", "SOLUSDT", "BTCUSDT", "1000PEPEUSDT", "BTC-PERPETUAL"}
	for _, json := range []bool{false, true} {
		var b strings.Builder
		if !json {
			b.WriteString("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
		}
		ts := int64(1582329602111000)
		for run := range 60 {
			exch := []string{"binance", "deribit", "okex"}[run%3]
			for range 1 + rng.IntN(40)*(run%2) {
				sym := syms[rng.IntN(len(syms))]
				ts += int64(rng.IntN(1000))
				if json {
					fmt.Fprintf(&b, `{"exchange":"%s","symbol":"%s","timestamp":%d,"local_timestamp":%d,"id":%d,"side":"buy","price":%d.5,"amount":1}`+"\n", exch, sym, ts, ts, run, 100+run)
				} else {
					fmt.Fprintf(&b, "%s,%s,%d,%d,%d,sell,%d.5,1\n", exch, sym, ts, ts, run, 100+run)
				}
			}
		}
		path := filepath.Join(dir, "runs.csv")
		if json {
			path = filepath.Join(dir, "runs.jsonl")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		got := checkFastSame(t, path, nil)
		checkFastSame(t, path, []string{"ETH", "1000PEPEUSDT"})
		// Every (exchange, symbol) pair is its own instrument.
		ids := map[md.SymID]bool{}
		for _, tr := range got {
			ids[tr.Sym] = true
		}
		if len(ids) != 3*len(syms) {
			t.Fatalf("json=%v: %d instruments, want %d", json, len(ids), 3*len(syms))
		}
	}
}
