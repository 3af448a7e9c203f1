package scaleout

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
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
// stream -> one worker), alternating, and reports both rates, their ratio
// (the cost of the stream, measured in one run) and the ratio of the CPU
// time the process spent on each (getrusage; steadier than the rates on a
// loaded machine). Sub-benchmarks vary the store (file with sync interval
// or always, memory), the records per data message and the frame (compact,
// the default, or version 1: the -v1 variants).
//
//	go test -run '^$' -bench EmbeddedVsSingle -benchtime 3x ./scaleout
func BenchmarkEmbeddedVsSingle(b *testing.B) {
	for _, c := range []struct {
		name   string
		sync   string
		memory bool
		frame  int
		v1     bool
	}{
		{"file-interval-256", config.SyncInterval, false, 256, false},
		{"file-interval-1024", config.SyncInterval, false, 1024, false},
		{"file-interval-4096", config.SyncInterval, false, 4096, false},
		{"file-interval-16384", config.SyncInterval, false, 16384, false},
		{"memory-4096", config.SyncInterval, true, 4096, false},
		{"file-always-4096", config.SyncAlways, false, 4096, false},
		{"file-interval-4096-v1", config.SyncInterval, false, 4096, true},
		{"memory-4096-v1", config.SyncInterval, true, 4096, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			compactFrames = !c.v1
			defer func() { compactFrames = true }()
			benchEmbedded(b, c.sync, Options{memory: c.memory, frameRecords: c.frame})
		})
	}
}

func benchEmbedded(b *testing.B, sync string, opts Options) {
	ctx := context.Background()
	var single, scaled, singleCPU, scaledCPU time.Duration
	for i := 0; i < b.N; i++ {
		u, err := runtime.NewFromBytes("single.yaml", []byte(benchJob("")), runtime.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c0, t0 := cpuTime(b), time.Now()
		if err := u.Run(ctx); err != nil {
			b.Fatal(err)
		}
		single += time.Since(t0)
		singleCPU += cpuTime(b) - c0

		store := filepath.Join(b.TempDir(), "nats")
		doc, err := config.LoadBytes("scaled.yaml", []byte(benchJob(fmt.Sprintf("scaleout: {nats: embedded, partitions: 64, store: %q, sync: %s}\n", store, sync))), config.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c0, t0 = cpuTime(b), time.Now()
		if err := Run(ctx, doc, opts); err != nil {
			b.Fatal(err)
		}
		scaled += time.Since(t0)
		scaledCPU += cpuTime(b) - c0
	}
	n := float64(benchTrades) * float64(b.N)
	b.ReportMetric(n/single.Seconds(), "single_trades/s")
	b.ReportMetric(n/scaled.Seconds(), "scaleout_trades/s")
	b.ReportMetric(single.Seconds()/scaled.Seconds(), "ratio")
	b.ReportMetric(singleCPU.Seconds()/scaledCPU.Seconds(), "cpu_ratio")
	b.ReportMetric(float64(singleCPU.Nanoseconds())/n, "single_cpu_ns/trade")
	b.ReportMetric(float64(scaledCPU.Nanoseconds())/n, "scaleout_cpu_ns/trade")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
