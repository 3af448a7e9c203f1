package parquet

import (
	"os"
	"path/filepath"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit/storetest"

	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/operator/buffer"
)

// reference is the plain-library loop: the rows already in barRow form,
// one parquet-go GenericWriter with zstd (default level) and the same row
// group size as the sink, written 10,000 rows per call, then closed.
func reference(b *testing.B, path string, rows []barRow) storetest.Result {
	b.Helper()
	return storetest.Measure(len(rows), func() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := pq.NewGenericWriter[barRow](f, pq.Compression(&zstd.Codec{Level: zstd.SpeedDefault}), pq.MaxRowsPerRowGroup(131072))
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
	})
}

// BenchmarkParquet measures, in one run, the plain-library reference and
// the sink end to end (bars in batches through operator.buffer and the
// sink's workers to renamed, complete files), and trades → operator.bars →
// operator.buffer → sink.parquet. The best of -benchtime iterations is
// reported, as rows/s, CPU µs per row and sink/reference ratios.
//
//	go test -run '^$' -bench Parquet -benchtime 3x ./sink/parquet/
func BenchmarkParquet(b *testing.B) {
	n := storetest.BenchRows(b)
	bars := storetest.GenBars(n, 100)
	rows := make([]barRow, n)
	for i, x := range bars {
		rows[i] = barRow{Provider: "sim", Symbol: x.Symbol, Interval: "1s", TS: x.Start / 1000, Open: x.Open, High: x.High,
			Low: x.Low, Close: x.Close, Volume: x.Volume, VWAP: x.VWAP, Trades: x.Trades, BarType: "time", Source: "trade"}
	}
	trades := storetest.GenBarTrades(n, 100)
	// The upstream is the cheapest possible: records already interned,
	// copied into pooled batches of md.DefaultBatchSize.
	syms := md.NewSymbolTable()
	prepBars := storetest.PrepareBars(syms, "sim", bars)
	prepTrades := storetest.PrepareTrades(syms, "sim", trades)
	barSrc := func() engine.Source { return &storetest.Prepared{Bars: prepBars} }
	buffer := storetest.Stage{Type: "operator.buffer", Params: map[string]any{"max_rows": 10000, "flush_interval": "100ms"}}
	best := storetest.NewBest("ref", "sink", "bars_e2e", "sink_1worker")
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		sink := func(sub string) storetest.Stage {
			return storetest.Stage{Type: "sink.parquet", Params: map[string]any{"dir": filepath.Join(dir, sub)}}
		}
		var r [4]storetest.Result
		r[0] = reference(b, filepath.Join(dir, "ref.parquet"), rows)
		r[1], _ = storetest.RunChain(b, barSrc(), syms, []storetest.Stage{buffer, sink("sink")}, int64(n))
		r[2], _ = storetest.RunChain(b, &storetest.Prepared{Trades: prepTrades}, syms,
			[]storetest.Stage{{Type: "operator.bars", Params: map[string]any{"interval": "1s"}}, buffer, sink("e2e")}, int64(n))
		one := storetest.Stage{Type: "sink.parquet", Params: map[string]any{"dir": filepath.Join(dir, "w1"), "workers": 1}}
		r[3], _ = storetest.RunChain(b, barSrc(), syms, []storetest.Stage{buffer, one}, int64(n))
		best.Add(b, i, r[:])
	}
	best.Report(b)
	b.ReportMetric(best.Rate(1)/best.Rate(0), "sink/ref")
	b.ReportMetric(best.Rate(2)/best.Rate(0), "bars_e2e/ref")
}
