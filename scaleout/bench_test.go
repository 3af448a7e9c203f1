package scaleout

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// benchTrades is the workload of BenchmarkEmbeddedVsSingle.
const benchTrades = 5_000_000

func benchJob(extra string) string {
	return fmt.Sprintf(`mode: dag
name: so-bench
dag:
  nodes:
    - id: src
      type: provider.synthetic
      params: {model: bench, symbol_count: 100, n: %d, seed: 3, max_out_of_orderness: 1s}
    - id: bars
      type: operator.bars
      params: {interval: 1s}
    - id: sink
      type: sink.null
  edges:
    - [src, bars]
    - [bars, sink]
%s`, benchTrades, extra)
}

// BenchmarkEmbeddedVsSingle runs the same job (synthetic trades -> 1s bars
// -> null) without scale-out and through the embedded server (ingest ->
// stream -> one worker), alternating, and reports both rates and their
// ratio: the cost of the stream, measured in one run.
//
//	go test -run '^$' -bench EmbeddedVsSingle -benchtime 3x ./scaleout
func BenchmarkEmbeddedVsSingle(b *testing.B) {
	ctx := context.Background()
	var single, scaled time.Duration
	for i := 0; i < b.N; i++ {
		u, err := runtime.NewFromBytes("single.yaml", []byte(benchJob("")), runtime.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := u.Run(ctx); err != nil {
			b.Fatal(err)
		}
		single += time.Since(t0)

		store := filepath.Join(b.TempDir(), "nats")
		doc, err := config.LoadBytes("scaled.yaml", []byte(benchJob(fmt.Sprintf("scaleout: {nats: embedded, partitions: 64, store: %q, sync: interval}\n", store))), config.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if err := Run(ctx, doc, Options{}); err != nil {
			b.Fatal(err)
		}
		scaled += time.Since(t0)
	}
	n := float64(benchTrades) * float64(b.N)
	b.ReportMetric(n/single.Seconds(), "single_trades/s")
	b.ReportMetric(n/scaled.Seconds(), "scaleout_trades/s")
	b.ReportMetric(single.Seconds()/scaled.Seconds(), "ratio")
}
