package scaleout

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/internal/workload"
	"github.com/mdpio/mdp/runtime"
)

// benchTrades is the workload of BenchmarkEmbeddedVsSingle.
const benchTrades = 5_000_000

// benchJob is the workload with bars in par instances (parallelism) and
// extra appended.
func benchJob(par int, extra string) string {
	return benchJobOf(fmt.Sprintf("{type: provider.synthetic, params: {model: bench, symbol_count: 100, n: %d, seed: 3, max_out_of_orderness: 1s}}", benchTrades), par, extra)
}

// benchJobOf is the bars job over the source node src (a YAML flow map
// without its id).
func benchJobOf(src string, par int, extra string) string {
	src = strings.Replace(src, "{", "{id: src, ", 1)
	return fmt.Sprintf(`mode: dag
name: so-bench
dag:
  nodes:
    - %s
    - id: bars
      type: operator.bars
      parallelism: %d
      params: {interval: 1s}
    - id: sink
      type: sink.null
  edges:
    - [src, bars]
    - [bars, sink]
%s`, src, par, extra)
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
//	go test -run '^$' -bench 'EmbeddedVsSingle$' -benchtime 3x ./scaleout
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
		{"file-interval-8192", config.SyncInterval, false, 8192, busfmt.VersionPacked, 1, false},
		{"file-interval-16384", config.SyncInterval, false, 16384, busfmt.VersionPacked, 1, false},
		{"file-interval-65536", config.SyncInterval, false, 65536, busfmt.VersionPacked, 1, false},
		{"memory-4096", config.SyncInterval, true, 4096, busfmt.VersionPacked, 1, false},
		{"memory-16384", config.SyncInterval, true, 16384, busfmt.VersionPacked, 1, false},
		{"file-always-4096", config.SyncAlways, false, 4096, busfmt.VersionPacked, 1, false},
		{"file-always-8192", config.SyncAlways, false, 8192, busfmt.VersionPacked, 1, false},
		{"file-always-16384", config.SyncAlways, false, 16384, busfmt.VersionPacked, 1, false},
		{"file-always-65536", config.SyncAlways, false, 65536, busfmt.VersionPacked, 1, false},
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
			benchEmbedded(b, func(extra string) string { return benchJob(c.par, extra) }, benchTrades, c.sync, Options{memory: c.memory, frameRecords: c.frame})
		})
	}
}

// benchReplayTrades is the workload of BenchmarkEmbeddedVsSingleReplay.
const benchReplayTrades = 3_000_000

// BenchmarkEmbeddedVsSingleReplay is BenchmarkEmbeddedVsSingle with a
// realistic ingest for its source: provider.replay of the reference bars
// workload as a tardis-layout CSV file (docs/bench/WORKLOAD.md: 100
// symbols, a trade every 10 µs; written once, 3 M trades, 30 event
// seconds), decoded serially (-dec1) or on a decoder goroutine of its own
// (-dec2, the default on 2 cores), with 4096 (the default with sync:
// interval), 16384 (the default with sync: always) or 65536 records a message, and with the ingest's marker rounds every
// second instead of every 200 ms (-m1s). The job without scale-out is the same
// job text without its scaleout section. The synthetic source of
// BenchmarkEmbeddedVsSingle generates trades at about 8 CPU ns each, the
// cheapest source there is; a file replay costs about 100, which is what
// an ingest pays.
//
//	go test -run '^$' -bench EmbeddedVsSingleReplay -benchtime 3x ./scaleout
func BenchmarkEmbeddedVsSingleReplay(b *testing.B) {
	path := filepath.Join(b.TempDir(), "trades.csv")
	if err := workload.WriteFile(path, benchReplayTrades, false); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		sync     string
		decoders int
		frame    int           // records a message
		markers  time.Duration // the marker rounds' interval; 0: markerInterval
	}{
		{"file-interval-4096-dec1", config.SyncInterval, 1, 4096, 0},
		{"file-interval-4096-dec2", config.SyncInterval, 2, 4096, 0},
		{"file-interval-16384-dec2", config.SyncInterval, 2, 16384, 0},
		{"file-always-4096-dec2", config.SyncAlways, 2, 4096, 0},
		{"file-always-16384-dec2", config.SyncAlways, 2, 16384, 0},
		{"file-always-65536-dec2", config.SyncAlways, 2, 65536, 0},
		{"file-always-16384-dec2-m1s", config.SyncAlways, 2, 16384, time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := fmt.Sprintf("{type: provider.replay, params: {path: %q, preset: tardis_trades, progress: never, decoders: %d}}", path, c.decoders)
			benchEmbedded(b, func(extra string) string { return benchJobOf(src, 1, extra) }, benchReplayTrades, c.sync, Options{frameRecords: c.frame, markerInterval: c.markers})
		})
	}
}

// runEnd keeps the attributes of the scale-out run's last log record,
// "scale-out run ended".
type runEnd struct {
	mu    sync.Mutex
	attrs map[string]int64
}

func (h *runEnd) Enabled(context.Context, slog.Level) bool { return true }
func (h *runEnd) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *runEnd) WithGroup(string) slog.Handler            { return h }
func (h *runEnd) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "scale-out run ended" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attrs = map[string]int64{}
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindInt64 {
			h.attrs[a.Key] = a.Value.Int64()
		}
		return true
	})
	return nil
}

// benchEmbedded runs job("") and job with the embedded scaleout section
// alternately, b.N times each; every run is of n trades.
func benchEmbedded(b *testing.B, job func(extra string) string, n int, syncMode string, opts Options) {
	ctx := context.Background()
	var single, scaled, singleCPU, scaledCPU time.Duration
	var frames, markers, carried int64
	end := &runEnd{}
	opts.Logger = slog.New(end)
	for i := 0; i < b.N; i++ {
		u, err := runtime.NewFromBytes("single.yaml", []byte(job("")), runtime.Options{})
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
		doc, err := config.LoadBytes("scaled.yaml", []byte(job(fmt.Sprintf("scaleout: {nats: embedded, partitions: 64, store: %q, sync: %s}\n", store, syncMode))), config.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c0, t0 = cpuTime(b), time.Now()
		if err := Run(ctx, doc, opts); err != nil {
			b.Fatal(err)
		}
		scaled += time.Since(t0)
		scaledCPU += cpuTime(b) - c0
		if a := end.attrs; a["published"] != int64(n) || a["read"] != int64(n) {
			b.Fatalf("the scale-out run published %d and read %d trades, want %d", a["published"], a["read"], n)
		}
		frames += end.attrs["frames"]
		markers += end.attrs["markers"]
		carried += end.attrs["carried"]
	}
	b.ReportMetric(float64(n)*float64(b.N)/float64(frames), "trades/frame")
	b.ReportMetric(float64(markers)/float64(b.N), "markers/run")
	b.ReportMetric(float64(carried)/float64(b.N), "carried/run")
	total := float64(n) * float64(b.N)
	b.ReportMetric(total/single.Seconds(), "single_trades/s")
	b.ReportMetric(total/scaled.Seconds(), "scaleout_trades/s")
	b.ReportMetric(single.Seconds()/scaled.Seconds(), "ratio")
	b.ReportMetric(singleCPU.Seconds()/scaledCPU.Seconds(), "cpu_ratio")
	b.ReportMetric(float64(singleCPU.Nanoseconds())/total, "single_cpu_ns/trade")
	b.ReportMetric(float64(scaledCPU.Nanoseconds())/total, "scaleout_cpu_ns/trade")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
