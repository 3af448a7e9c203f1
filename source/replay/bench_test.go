package replay

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mdpio/mdp/sink/null"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/workload"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

// writeWorkload writes the reference bars workload as a tardis-layout CSV
// (json=false) or JSON lines (internal/workload).
func writeWorkload(tb testing.TB, path string, n int, json bool) {
	tb.Helper()
	if err := workload.WriteFile(path, n, json); err != nil {
		tb.Fatal(err)
	}
}

// openBenchReader opens path as the replay source would, with the
// tardis_trades preset.
func openBenchReader(tb testing.TB, path string) (*fileReader, *atomic.Int64) {
	tb.Helper()
	return openBenchReaderIn(tb, path, md.NewSymbolTable())
}

// openBenchReaderIn is openBenchReader interning into table.
func openBenchReaderIn(tb testing.TB, path string, table *md.SymbolTable) (*fileReader, *atomic.Int64) {
	tb.Helper()
	spec := specOf(tb, "provider.replay")
	p, err := component.NewParams(spec, map[string]any{"path": path, "preset": "tardis_trades"})
	if err != nil {
		tb.Fatal(err)
	}
	lay, err := rowmap.ResolveLayout(p)
	if err != nil {
		tb.Fatal(err)
	}
	dec := rowmap.NewDecoder(lay, table, nil)
	counter := new(atomic.Int64)
	rc := &readerConfig{lay: lay, format: "auto", comp: "auto", dec: dec, bufSize: 256 << 10, counter: counter,
		mal: &malformed{policy: errFail}, filter: timeFilter{start: md.MinTime, end: md.MaxTime}}
	r, err := openReader(0, path, rc)
	if err != nil {
		tb.Fatal(err)
	}
	return r, counter
}

// TestParseDoesNotAllocatePerRow: decoding a chunk of CSV or JSON-lines rows
// allocates nothing once every symbol has been seen.
func TestParseDoesNotAllocatePerRow(t *testing.T) {
	for _, json := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "w.csv")
		if json {
			path = filepath.Join(t.TempDir(), "w.jsonl")
		}
		writeWorkload(t, path, 60_000, json)
		r, _ := openBenchReader(t, path)
		for range 5 { // warm up: every symbol interned
			if err := r.fill(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(40, func() {
			if err := r.fill(); err != nil || r.buffered() != chunkSize {
				t.Fatalf("fill: %v, %d records", err, r.buffered())
			}
		})
		if allocs != 0 {
			t.Errorf("json=%v: %v allocations per chunk of %d rows", json, allocs, chunkSize)
		}
		r.close()
	}
}

// workloadFile writes n workload trades to a new CSV (json=false) or
// JSON-lines file and returns its path.
func workloadFile(tb testing.TB, n int, json bool) string {
	path := filepath.Join(tb.TempDir(), "w.csv")
	if json {
		path = filepath.Join(tb.TempDir(), "w.jsonl")
	}
	writeWorkload(tb, path, n, json)
	return path
}

func benchParse(b *testing.B, json bool) {
	const n = 1_000_000
	path := workloadFile(b, n, json)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for range b.N {
		r, _ := openBenchReader(b, path)
		got := 0
		for {
			if err := r.fill(); err != nil {
				b.Fatal(err)
			}
			if r.buffered() == 0 {
				break
			}
			got += r.buffered()
		}
		r.close()
		if got != n {
			b.Fatalf("parsed %d trades, want %d", got, n)
		}
	}
	reportRates(b, n, start, cpu0)
}

// BenchmarkParseCSV measures the CSV parse path alone: 1M workload trades in
// the tardis layout, read, split, decoded and interned into chunks.
func BenchmarkParseCSV(b *testing.B) { benchParse(b, false) }

// BenchmarkParseJSONL is the same for JSON lines.
func BenchmarkParseJSONL(b *testing.B) { benchParse(b, true) }

// BenchmarkReplayCSVToBars1s runs the job end to end: provider.replay of 1M
// workload trades (CSV) -> operator.bars 1s -> sink.null, with the file
// decoded on the source goroutine (decoders=1, serial), whole on a decoder
// goroutine of its own (decoders=2/whole, the default on 2 cores) and in
// pieces by two workers (decoders=2/pieces, file_pieces on), in the same
// run.
func BenchmarkReplayCSVToBars1s(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "w.csv")
	writeWorkload(b, path, n, false)
	b.Run("decoders=1", func(b *testing.B) { benchBarsJob(b, []string{path}, n, 1) })
	b.Run("decoders=2/whole", func(b *testing.B) { benchBarsJob(b, []string{path}, n, 2) })
	b.Run("decoders=2/pieces", func(b *testing.B) { benchBarsJob(b, []string{path}, n, 2, true) })
}

// BenchmarkReplayCSVToBars1sTwoFiles is the same job over the workload
// split into two files (even and odd rows, interleaved in event time),
// merged, decoded serially and by two decoders.
func BenchmarkReplayCSVToBars1sTwoFiles(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	path := filepath.Join(dir, "w.csv")
	writeWorkload(b, path, n, false)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	parts := []string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")}
	for k, p := range parts {
		var buf bytes.Buffer
		buf.Write(lines[0])
		for i := 1 + k; i < len(lines); i += 2 {
			buf.Write(lines[i])
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, d := range []int{1, 2} {
		b.Run(fmt.Sprintf("decoders=%d", d), func(b *testing.B) { benchBarsJob(b, parts, n, d) })
	}
}

// benchBarsJob runs replay of paths (n trades in all) -> bars 1s -> null.
func benchBarsJob(b *testing.B, paths []string, n, decoders int, pieces ...bool) {
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for range b.N {
		g := &engine.Graph{
			Nodes: []*engine.Node{
				componentNode(b, "provider.replay", "src", map[string]any{"path": paths, "preset": "tardis_trades", "progress": "never", "decoders": decoders, "file_pieces": len(pieces) > 0 && pieces[0]}),
				componentNode(b, "operator.bars", "bars", map[string]any{"interval": "1s"}),
				componentNode(b, "sink.null", "null", nil),
			},
			Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "null"}},
		}
		j, err := engine.New(g, engine.Options{Job: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		st := j.Status()
		// 10 event-seconds x 100 symbols (WORKLOAD.md: 1,000,000 trades -> 1000 bars).
		if st.Nodes[0].EventsOut != int64(n) || st.Nodes[2].EventsIn != 1000 {
			b.Fatalf("trades out %d, bars in %d", st.Nodes[0].EventsOut, st.Nodes[2].EventsIn)
		}
	}
	reportRates(b, n, start, cpu0)
}

// reportRates reports trades per wall-clock second and CPU ns per trade.
func reportRates(b *testing.B, n int, start time.Time, cpu0 time.Duration) {
	total := float64(n) * float64(b.N)
	b.ReportMetric(total/time.Since(start).Seconds(), "trades/s")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/total, "cpu-ns/trade")
}

// benchFastRows times the fused row decoder alone (no reading, no line
// splitting, no per-record steps after it) over 100k workload rows held in
// memory, one row per op, so a change to the decoder can be measured
// without the noise of the file path.
func benchFastRows(b *testing.B, json bool) {
	const n = 100_000
	path := workloadFile(b, n, json)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if !json {
		lines = lines[1:]
	}
	r, _ := openBenchReader(b, path)
	defer r.close()
	var t md.Trade
	b.ResetTimer()
	for i := range b.N {
		line := lines[i%len(lines)]
		var res rowmap.FastResult
		if json {
			res = r.jfast.Trade(&r.dec, line, &t)
		} else {
			res = r.fast.Trade(&r.dec, line, &t)
		}
		if res != rowmap.FastOK {
			b.Fatalf("row %q: %d", line, res)
		}
	}
}

// BenchmarkFastRowsCSV is benchFastRows for the tardis CSV layout.
func BenchmarkFastRowsCSV(b *testing.B) { benchFastRows(b, false) }

// BenchmarkFastRowsJSONL is benchFastRows for JSON lines.
func BenchmarkFastRowsJSONL(b *testing.B) { benchFastRows(b, true) }
