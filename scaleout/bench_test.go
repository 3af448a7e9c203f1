package scaleout

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// benchTrades is the workload of BenchmarkEmbeddedVsSingle.
const benchTrades = 5_000_000

// benchJob is the workload with bars in par instances (parallelism) and
// extra appended.
func benchJob(par int, extra string) string {
	return fmt.Sprintf(`mode: dag
name: so-bench
dag:
  nodes:
    - id: src
      type: provider.synthetic
      params: {model: bench, symbol_count: 100, n: %d, seed: 3, max_out_of_orderness: 1s}
    - id: bars
      type: operator.bars
      parallelism: %d
      params: {interval: 1s}
    - id: sink
      type: sink.null
  edges:
    - [src, bars]
    - [bars, sink]
%s`, benchTrades, par, extra)
}

// BenchmarkEmbeddedVsSingle runs the same job (synthetic trades -> 1s bars
// -> null) without scale-out and through the embedded server (ingest ->
// stream -> one worker), alternating, and reports both rates, their ratio
// (the cost of the stream, measured in one run) and the ratio of the CPU
// time the process spent on each (getrusage; steadier than the rates on a
// loaded machine). Sub-benchmarks vary the store (file with sync always,
// the default, or interval; memory), the records per data message, the
// frame (packed, the default; -v2: compact, built record by record; -v1:
// version 1), the bars' instances (-par64: parallelism 64, in both jobs,
// against one) and S2 compression of the file store (-s2).
//
//	go test -run '^$' -bench EmbeddedVsSingle -benchtime 3x ./scaleout
func BenchmarkEmbeddedVsSingle(b *testing.B) {
	for _, c := range []struct {
		name   string
		sync   string
		memory bool
		frame  int
		ver    int
		par    int  // the bars' instances
		s2     bool // S2 compression on the file store
	}{
		{"file-interval-256", config.SyncInterval, false, 256, busfmt.VersionPacked, 1, false},
		{"file-interval-1024", config.SyncInterval, false, 1024, busfmt.VersionPacked, 1, false},
		{"file-interval-4096", config.SyncInterval, false, 4096, busfmt.VersionPacked, 1, false},
		{"file-interval-16384", config.SyncInterval, false, 16384, busfmt.VersionPacked, 1, false},
		{"memory-4096", config.SyncInterval, true, 4096, busfmt.VersionPacked, 1, false},
		{"file-always-4096", config.SyncAlways, false, 4096, busfmt.VersionPacked, 1, false},
		{"file-interval-4096-v2", config.SyncInterval, false, 4096, busfmt.VersionCompact, 1, false},
		{"memory-4096-v2", config.SyncInterval, true, 4096, busfmt.VersionCompact, 1, false},
		{"file-always-4096-v2", config.SyncAlways, false, 4096, busfmt.VersionCompact, 1, false},
		{"file-interval-4096-s2", config.SyncInterval, false, 4096, busfmt.VersionPacked, 1, true},
		{"file-interval-4096-par64", config.SyncInterval, false, 4096, busfmt.VersionPacked, 64, false},
		{"file-interval-4096-v1", config.SyncInterval, false, 4096, busfmt.Version, 1, false},
		{"memory-4096-v1", config.SyncInterval, true, 4096, busfmt.Version, 1, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			frameVersion = c.ver
			if c.s2 {
				streamCompression = jetstream.S2Compression
			}
			defer func() { frameVersion, streamCompression = busfmt.VersionPacked, jetstream.NoCompression }()
			benchEmbedded(b, c.sync, c.par, Options{memory: c.memory, frameRecords: c.frame})
		})
	}
}

func benchEmbedded(b *testing.B, sync string, par int, opts Options) {
	ctx := context.Background()
	var single, scaled, singleCPU, scaledCPU time.Duration
	for i := 0; i < b.N; i++ {
		u, err := runtime.NewFromBytes("single.yaml", []byte(benchJob(par, "")), runtime.Options{})
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
		doc, err := config.LoadBytes("scaled.yaml", []byte(benchJob(par, fmt.Sprintf("scaleout: {nats: embedded, partitions: 64, store: %q, sync: %s}\n", store, sync))), config.LoadOptions{})
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
