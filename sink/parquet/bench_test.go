package parquet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"

	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/operator/buffer"
)

func benchRows(b *testing.B) int {
	if s := os.Getenv("MDP_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("MDP_BENCH_ROWS=%q", s)
		}
		return n
	}
	return 1000000
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type result struct {
	rate   float64 // rows per wall-clock second
	cpuRow float64 // CPU µs per row
}

func newResult(rows int, wall, cpu time.Duration) result {
	return result{rate: float64(rows) / wall.Seconds(), cpuRow: float64(cpu.Microseconds()) / float64(rows)}
}

// reference is the plain-library loop: the rows already in BarRow form,
// one parquet-go GenericWriter with zstd (default level) and the same row
// group size as the sink, written 10,000 rows per call, then closed.
func reference(b *testing.B, path string, rows []BarRow) result {
	b.Helper()
	runtime.GC() // start every measured run from the same heap state
	start, cpu0 := time.Now(), cpuTime()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := pq.NewGenericWriter[BarRow](f, pq.Compression(&zstd.Codec{Level: zstd.SpeedDefault}), pq.MaxRowsPerRowGroup(131072))
	for i := 0; i < len(rows); i += 10000 {
		if _, err := w.Write(rows[i:min(i+10000, len(rows))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return newResult(len(rows), time.Since(start), cpuTime()-cpu0)
}

func runSink(b *testing.B, src engine.Source, syms *md.SymbolTable, stages []storetest.Stage, want int64) result {
	b.Helper()
	j, err := storetest.Chain(src, stages, engine.Options{Symbols: syms})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC() // start every measured run from the same heap state
	start, cpu0 := time.Now(), cpuTime()
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	r := newResult(int(want), time.Since(start), cpuTime()-cpu0)
	st := j.NodeContexts("store")[0].Stats.Extra.Load().(*storekit.Stats)
	if st.RowsWritten.Load() != want {
		b.Fatalf("%d rows written, want %d", st.RowsWritten.Load(), want)
	}
	return r
}

// BenchmarkParquet measures, in one run, the plain-library reference and
// the sink end to end (bars in batches through operator.buffer and the
// sink's workers to renamed, complete files), and trades → operator.bars →
// operator.buffer → sink.parquet. The best of -benchtime iterations is
// reported, as rows/s, CPU µs per row and sink/reference ratios.
//
//	go test -run '^$' -bench Parquet -benchtime 3x ./sink/parquet/
func BenchmarkParquet(b *testing.B) {
	n := benchRows(b)
	bars := storetest.GenBars(n, 100)
	rows := make([]BarRow, n)
	for i, x := range bars {
		rows[i] = BarRow{Provider: "sim", Symbol: x.Symbol, Interval: "1s", TS: x.Start / 1000, Open: x.Open, High: x.High,
			Low: x.Low, Close: x.Close, Volume: x.Volume, VWAP: x.VWAP, Trades: x.Trades}
	}
	trades := storetest.GenBarTrades(n, 100)
	// The upstream is the cheapest possible: records already interned,
	// copied into pooled batches of md.DefaultBatchSize.
	syms := md.NewSymbolTable()
	prepBars := storetest.PrepareBars(syms, "sim", bars)
	prepTrades := storetest.PrepareTrades(syms, "sim", trades)
	barSrc := func() engine.Source { return &storetest.Prepared{Bars: prepBars} }
	buffer := storetest.Stage{Type: "operator.buffer", Params: map[string]any{"max_rows": 10000, "flush_interval": "100ms"}}
	names := []string{"ref", "sink", "bars_e2e", "sink_1worker"}
	var best [4]result
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		sink := func(sub string) storetest.Stage {
			return storetest.Stage{Type: "sink.parquet", Params: map[string]any{"dir": filepath.Join(dir, sub)}}
		}
		var r [4]result
		r[0] = reference(b, filepath.Join(dir, "ref.parquet"), rows)
		r[1] = runSink(b, barSrc(), syms, []storetest.Stage{buffer, sink("sink")}, int64(n))
		r[2] = runSink(b, &storetest.Prepared{Trades: prepTrades}, syms,
			[]storetest.Stage{{Type: "operator.bars", Params: map[string]any{"interval": "1s"}}, buffer, sink("e2e")}, int64(n))
		one := storetest.Stage{Type: "sink.parquet", Params: map[string]any{"dir": filepath.Join(dir, "w1"), "workers": 1}}
		r[3] = runSink(b, barSrc(), syms, []storetest.Stage{buffer, one}, int64(n))
		line := fmt.Sprintf("iteration %d:", i)
		for k, v := range r {
			if v.rate > best[k].rate {
				best[k] = v
			}
			line += fmt.Sprintf(" %s %.0f rows/s (%.2f cpu-us/row);", names[k], v.rate, v.cpuRow)
		}
		b.Log(line)
	}
	for k, v := range best {
		b.ReportMetric(v.rate, names[k]+"_rows/s")
		b.ReportMetric(v.cpuRow, names[k]+"_cpu-us/row")
	}
	b.ReportMetric(best[1].rate/best[0].rate, "sink/ref")
	b.ReportMetric(best[2].rate/best[0].rate, "bars_e2e/ref")
}
