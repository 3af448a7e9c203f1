package replay

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mdpio/mdp/md"
)

// splitFile writes the data rows of a CSV file with a header round-robin
// into k files (each keeps the header), so each is in time order and the
// merge interleaves them; extra[i] lines are inserted into file i after
// its row at, keyed by row index.
func splitFile(t *testing.T, src, dir string, k int, extra map[int]map[int]string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(readFile(t, src), "\n"), "\n")
	bufs := make([]strings.Builder, k)
	for i := range bufs {
		bufs[i].WriteString(lines[0] + "\n")
	}
	for i, l := range lines[1:] {
		f := i % k
		bufs[f].WriteString(l + "\n")
		if x, ok := extra[f][i/k]; ok {
			bufs[f].WriteString(x + "\n")
		}
	}
	var paths []string
	for i := range bufs {
		paths = append(paths, writeFile(t, filepath.Join(dir, fmt.Sprintf("part%d.csv", i)), bufs[i].String()))
	}
	return paths
}

// instruments is the job's symbol table in id order.
func instruments(r *result) []string {
	var out []string
	for _, in := range r.job.Symbols().Snapshot() {
		out = append(out, in.Provider+"/"+in.Symbol)
	}
	return out
}

// TestParallelDecodeMatchesSerial: real tardis trades split over three
// files, with malformed rows and an unconfirmed time jump in them, replay
// with decoders 2 and 3 to exactly what a serial replay (decoders 1)
// emits: every record in the same order with the same symbol ids and
// sequence numbers, the same instruments in the same order of ids, the
// same malformed-row count, and a dead-letter file identical line for
// line (file, line number, reason, raw text).
func TestParallelDecodeMatchesSerial(t *testing.T) {
	dir := t.TempDir()
	bad := map[int]map[int]string{
		0: {10: "garbage", 700: "binance-futures,BTCUSDT,1582329602111000,1582329602418379,1,buy,notaprice,0.1"},
		1: {5: "binance-futures,BTCUSDT,1682329602111000,1682329602111000,7,buy,9682,0.1", 1500: ""},
		2: {1200: "binance-futures,ETHUSDT,x,1,2,buy,1,1", 1201: "a,b"},
	}
	files := splitFile(t, tardisTrades, dir, 3, bad)
	run := func(decoders int) (*result, string) {
		dl := filepath.Join(dir, fmt.Sprintf("dl%d.jsonl", decoders))
		r := mustReplay(t, map[string]any{"path": files, "preset": "tardis_trades", "decoders": decoders,
			"on_error": "dead_letter", "dead_letter_path": dl})
		return r, readFile(t, dl)
	}
	serial, serialDL := run(1)
	if len(serial.c.trades) != 5000 {
		t.Fatalf("serial replay emitted %d trades, want 5000", len(serial.c.trades))
	}
	if n := strings.Count(serialDL, "\n"); n != 5 {
		t.Fatalf("serial replay dead-lettered %d rows, want 5:\n%s", n, serialDL)
	}
	for _, n := range []int{2, 3} {
		par, parDL := run(n)
		if !slices.Equal(par.c.trades, serial.c.trades) {
			i := 0
			for i < min(len(par.c.trades), len(serial.c.trades)) && par.c.trades[i] == serial.c.trades[i] {
				i++
			}
			t.Fatalf("decoders %d: %d trades, serial %d; first difference at %d", n, len(par.c.trades), len(serial.c.trades), i)
		}
		if a, b := instruments(par), instruments(serial); !slices.Equal(a, b) {
			t.Errorf("decoders %d: instruments %v, serial %v", n, a, b)
		}
		if parDL != serialDL {
			t.Errorf("decoders %d: dead letters\n%s\nserial:\n%s", n, parDL, serialDL)
		}
		if a, b := par.job.Status().Nodes[0].Drops["malformed"], serial.job.Status().Nodes[0].Drops["malformed"]; a != b || a != 5 {
			t.Errorf("decoders %d: %d malformed, serial %d, want 5", n, a, b)
		}
	}
}

// TestParallelDecodeFailsLikeSerial: under on_error: fail a malformed row
// stops a parallel replay with the serial replay's error (file and line).
func TestParallelDecodeFailsLikeSerial(t *testing.T) {
	files := splitFile(t, tardisTrades, t.TempDir(), 2, map[int]map[int]string{1: {900: "bad,row"}})
	var errs []string
	for _, n := range []int{1, 2} {
		r := replay(t, map[string]any{"path": files, "preset": "tardis_trades", "decoders": n, "on_error": "fail"})
		if r.err == nil {
			t.Fatalf("decoders %d: no error", n)
		}
		errs = append(errs, r.err.Error())
	}
	want := files[1] + ":903: malformed row (row has 2 fields, want at least 8); on_error is fail"
	for i, e := range errs {
		if !strings.Contains(e, want) {
			t.Errorf("run %d: error %q, want it to contain %q", i, e, want)
		}
	}
}

// TestParallelDecodeQuotesAndSizes: quotes decode in parallel to the
// serial records, and trade size decimals reach the job's table as a
// serial replay notes them.
func TestParallelDecodeQuotesAndSizes(t *testing.T) {
	dir := t.TempDir()
	files := splitFile(t, tardisQuotes, dir, 2, nil)
	q1 := mustReplay(t, map[string]any{"path": files, "preset": "tardis_quotes", "decoders": 1})
	q2 := mustReplay(t, map[string]any{"path": files, "preset": "tardis_quotes", "decoders": 2})
	if len(q1.c.quotes) != 5000 || !slices.Equal(q1.c.quotes, q2.c.quotes) {
		t.Fatalf("quotes: serial %d, parallel %d, equal %v", len(q1.c.quotes), len(q2.c.quotes), slices.Equal(q1.c.quotes, q2.c.quotes))
	}
	tf := splitFile(t, tardisTrades, filepath.Join(dir), 2, nil)
	t1 := mustReplay(t, map[string]any{"path": tf, "preset": "tardis_trades", "decoders": 1})
	t2 := mustReplay(t, map[string]any{"path": tf, "preset": "tardis_trades", "decoders": 2})
	s1, s2 := t1.job.Symbols().Snapshot(), t2.job.Symbols().Snapshot()
	if len(s1) == 0 || len(s1) != len(s2) {
		t.Fatalf("instruments: serial %d, parallel %d", len(s1), len(s2))
	}
	for i := range s1 {
		d1, ok1 := s1[i].SizeDecimals()
		d2, ok2 := s2[i].SizeDecimals()
		if !ok1 || d1 != d2 || ok1 != ok2 {
			t.Errorf("%s: size decimals serial %d %v, parallel %d %v", s1[i].Symbol, d1, ok1, d2, ok2)
		}
	}
	_ = md.KindTrade
}

// TestParallelDecodeDoesNotAllocatePerChunk: once every symbol has been
// seen, taking a chunk from a decoder goroutine (hand-off, id mapping,
// buffer recycling) allocates nothing, and the chunks hold the serial
// reader's trades.
func TestParallelDecodeDoesNotAllocatePerChunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.csv")
	writeWorkload(t, path, 120_000, false)
	serial, _ := openBenchReader(t, path)
	defer serial.close()
	table := md.NewSymbolTable()
	d, _ := openBenchReaderIn(t, path, table)
	global := md.NewSymbolTable()
	r := newAsyncFile(d, table, global, md.NewSizeDecimals(global))
	p := newDecoderPool(2)
	p.start(r)
	defer p.stop()
	take := func() {
		if err := serial.fill(); err != nil {
			t.Fatal(err)
		}
		if err := r.fill(); err != nil || r.buffered() != chunkSize {
			t.Fatalf("fill: %v, %d records", err, r.buffered())
		}
		if !slices.Equal(r.trades, serial.trades) {
			t.Fatalf("chunk differs from the serial reader's")
		}
	}
	for range 5 { // warm up: every symbol interned
		take()
	}
	if allocs := testing.AllocsPerRun(40, take); allocs != 0 {
		t.Errorf("%v allocations per chunk of %d rows", allocs, chunkSize)
	}
}
