package storekit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

// memWriter is a store held in memory with failure injection, for the
// paths a real store cannot be made to take on demand (transient outages,
// open breakers). The real-store behaviour is tested in sink/sqlite and
// sink/parquet.
type memWriter struct {
	mu       sync.Mutex
	bars     map[int][]md.Bar // per worker, in write order
	attempts []time.Time
	// fail decides the error for an attempt; nil means success.
	fail   func(b *storekit.Batch, attempt int) error
	closed atomic.Bool
	// gate holds writes back: while false, Write waits.
	gate   atomic.Bool
	writes atomic.Int64
}

func newMem() *memWriter {
	w := &memWriter{bars: map[int][]md.Bar{}}
	w.gate.Store(true)
	return w
}

func (w *memWriter) Open(ctx context.Context, env storekit.Env) error { return nil }

func (w *memWriter) Write(ctx context.Context, b *storekit.Batch) error {
	for !w.gate.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	w.mu.Lock()
	w.attempts = append(w.attempts, time.Now())
	w.mu.Unlock()
	if w.fail != nil {
		if err := w.fail(b, b.Attempt); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.bars[b.Worker] = append(w.bars[b.Worker], b.Bars...)
	w.mu.Unlock()
	w.writes.Add(int64(b.Len()))
	return nil
}

func (w *memWriter) Classify(err error) storekit.ErrorClass {
	c, _ := storekit.ClassOf(err)
	return c
}

func (w *memWriter) Close(ctx context.Context) error { w.closed.Store(true); return nil }

func (w *memWriter) all() []md.Bar {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []md.Bar
	for _, b := range w.bars {
		out = append(out, b...)
	}
	return out
}

// sinkJob runs src → storekit sink over w.
func sinkJob(t *testing.T, src engine.Source, w storekit.Writer, cfg storekit.Config, fb *engine.Feedback) *engine.Job {
	t.Helper()
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindAny},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			{ID: "store", Type: "sink.mem", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return storekit.New(w, cfg), nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "store", Capacity: 4}},
	}
	j, err := engine.New(g, engine.Options{Job: "t", Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestEachSymbolKeepsOrderOnOneWorker(t *testing.T) {
	w := newMem()
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(20000, 37), BatchSize: 333}
	j := sinkJob(t, src, w, storekit.Config{Workers: 4, BatchRows: 500, QueueSize: 3000}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	syms := j.Symbols().Snapshot()
	total := 0
	for worker, bars := range w.bars {
		last := map[md.SymID]int64{}
		for _, b := range bars {
			if got := md.Split(syms[b.Sym].Hash, md.SplitWorkers, 4); got != worker {
				t.Fatalf("symbol %s written by worker %d, want %d", syms[b.Sym].Symbol, worker, got)
			}
			if l, ok := last[b.Sym]; ok && b.Start <= l {
				t.Fatalf("symbol %s out of order", syms[b.Sym].Symbol)
			}
			last[b.Sym] = b.Start
		}
		total += len(bars)
	}
	st := storetest.Stats(t, j)
	if total != 20000 || st.RowsWritten.Load() != 20000 || st.QueueRows.Load() != 0 || !w.closed.Load() {
		t.Fatalf("written %d (stats %d), queue %d, closed %v", total, st.RowsWritten.Load(), st.QueueRows.Load(), w.closed.Load())
	}
	if st.BatchesWritten.Load() < 40 { // 20000 rows, at most 500 per write
		t.Fatalf("%d writes for 20000 rows with batch_rows 500", st.BatchesWritten.Load())
	}
	// The job's end-of-run summary reads the rows written from the sink.
	if sum := j.NodeSummary("store"); sum["rows_written"] != 20000 || sum["rows_dead_lettered"] != 0 {
		t.Fatalf("summary %v", sum)
	}
}

func TestTransientErrorsAreRetried(t *testing.T) {
	w := newMem()
	w.fail = func(b *storekit.Batch, attempt int) error {
		if attempt < 3 {
			return errors.New("connection reset")
		}
		return nil
	}
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(100, 1), BatchSize: 100}
	j := sinkJob(t, src, w, storekit.Config{Workers: 1, RetryMaxAttempts: 5, RetryBackoff: time.Millisecond, RetryBackoffMax: 4 * time.Millisecond}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := storetest.Stats(t, j)
	if len(w.all()) != 100 || st.Retries.Load() != 2 || st.BatchesFailed.Load() != 2 || st.RowsFailed.Load() != 200 || st.RowsDeadLettered.Load() != 0 {
		t.Fatalf("rows %d retries %d failed %d/%d dead %d", len(w.all()), st.Retries.Load(), st.BatchesFailed.Load(), st.RowsFailed.Load(), st.RowsDeadLettered.Load())
	}
}

func TestExhaustedRetriesGoToDeadLetterFile(t *testing.T) {
	dl := filepath.Join(t.TempDir(), "dl.jsonl")
	w := newMem()
	w.fail = func(b *storekit.Batch, attempt int) error {
		if b.Instrument(b.Bars[0].Sym).Symbol == "SYM001" {
			return errors.New("server closed the connection")
		}
		return nil
	}
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(30, 3), BatchSize: 30}
	// batch_rows 1: every write holds one row, so only SYM001's rows fail.
	j := sinkJob(t, src, w, storekit.Config{Workers: 1, BatchRows: 1, RetryMaxAttempts: 3, RetryBackoff: time.Millisecond,
		RetryBackoffMax: time.Millisecond, DeadLetterPath: dl}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := storetest.ReadDeadLetters(t, dl)
	if len(recs) != 10 {
		t.Fatalf("%d dead letters, want 10", len(recs))
	}
	for _, r := range recs {
		if r.Symbol != "SYM001" || r.Class != "transient" || r.Attempts != 3 || r.Error != "server closed the connection" || r.Kind != "bar" || r.Job != "t" {
			t.Fatalf("dead letter %+v", r)
		}
	}
	if len(w.all()) != 20 {
		t.Fatalf("%d rows stored, want 20", len(w.all()))
	}
	st := storetest.Stats(t, j)
	ns := j.Status().Nodes[1]
	if st.RowsDeadLettered.Load() != 10 || st.BatchesDeadLettered.Load() != 10 || ns.Drops["dead_letter"] != 10 || ns.Errors["retries_exhausted"] != 10 ||
		!strings.Contains(ns.LastError, "1 bar row(s) failed 3 attempts, written to "+dl+": server closed the connection") {
		t.Fatalf("stats dead %d/%d; status %+v", st.RowsDeadLettered.Load(), st.BatchesDeadLettered.Load(), ns)
	}
}

func TestDataErrorsIsolateTheRejectedRows(t *testing.T) {
	dl := filepath.Join(t.TempDir(), "dl.jsonl")
	w := newMem()
	w.fail = func(b *storekit.Batch, attempt int) error {
		for _, x := range b.Bars {
			if x.Volume < 0 {
				return storekit.DataError(errors.New("volume must not be negative"))
			}
		}
		return nil
	}
	bars := storetest.GenBars(1000, 5)
	bars[10].Volume, bars[500].Volume, bars[501].Volume = -1, -2, -3
	src := &storetest.Source{Provider: "sim", Bars: bars, BatchSize: 1000}
	j := sinkJob(t, src, w, storekit.Config{Workers: 1, BatchRows: 1000, DeadLetterPath: dl}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := storetest.ReadDeadLetters(t, dl)
	if len(recs) != 3 || float64(*recs[0].Volume) != -1 || float64(*recs[1].Volume) != -2 || float64(*recs[2].Volume) != -3 {
		t.Fatalf("dead letters %+v", recs)
	}
	for _, r := range recs {
		if r.Class != "data" || r.Attempts != 1 || r.Error != "volume must not be negative" {
			t.Fatalf("dead letter %+v", r)
		}
	}
	got := w.all()
	if len(got) != 997 {
		t.Fatalf("%d rows stored, want 997", len(got))
	}
	for i := 1; i < len(got); i++ { // the good rows keep their order
		if got[i].Start < got[i-1].Start {
			t.Fatal("order broken by the split")
		}
	}
	if ns := j.Status().Nodes[1]; ns.Errors["rejected"] != 3 || ns.Drops["dead_letter"] != 3 {
		t.Fatalf("status %+v", ns)
	}
}

func TestFatalErrorFailsTheJob(t *testing.T) {
	w := newMem()
	w.fail = func(b *storekit.Batch, attempt int) error {
		return storekit.Fatal(errors.New(`relation "bars_ohlcv" has no column "vwap"`))
	}
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(5000, 5), BatchSize: 100}
	j := sinkJob(t, src, w, storekit.Config{Workers: 2, QueueSize: 500}, nil)
	err := j.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `node "store": `) || !strings.Contains(err.Error(), `relation "bars_ohlcv" has no column "vwap"`) {
		t.Fatalf("err = %v", err)
	}
	mustBeClosed(t, w)
}

func TestBreakerStopsWritesDuringCooldown(t *testing.T) {
	dl := filepath.Join(t.TempDir(), "dl.jsonl")
	w := newMem()
	var calls atomic.Int64
	w.fail = func(b *storekit.Batch, attempt int) error {
		if calls.Add(1) <= 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	const cooldown = 300 * time.Millisecond
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(10, 1), BatchSize: 10}
	j := sinkJob(t, src, w, storekit.Config{Workers: 1, RetryMaxAttempts: 10, RetryBackoff: time.Millisecond, RetryBackoffMax: time.Millisecond,
		BreakerFailures: 3, BreakerCooldown: cooldown, DeadLetterPath: dl}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := storetest.Stats(t, j)
	if len(w.all()) != 10 || st.BreakerOpens.Load() != 1 || st.BreakerOpen.Load() || st.Retries.Load() != 3 {
		t.Fatalf("rows %d opens %d open %v retries %d", len(w.all()), st.BreakerOpens.Load(), st.BreakerOpen.Load(), st.Retries.Load())
	}
	// The fourth attempt (the probe) waited out the cooldown after the third.
	if gap := w.attempts[3].Sub(w.attempts[2]); gap < cooldown-10*time.Millisecond {
		t.Fatalf("probe came %v after the breaker opened; cooldown is %v", gap, cooldown)
	}
}

func TestBackpressureBlocksAndCloseWritesEverything(t *testing.T) {
	w := newMem()
	w.gate.Store(false)
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(5000, 4), BatchSize: 100}
	j := sinkJob(t, src, w, storekit.Config{Workers: 2, QueueSize: 1000, BatchRows: 200}, nil)
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// With the store stalled the sink takes no more than its queue (plus
	// one batch per worker part) and the source is held back.
	deadline := time.Now().Add(10 * time.Second)
	for storetest.Stats(t, j).QueueRows.Load() < 900 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if q := storetest.Stats(t, j).QueueRows.Load(); q > 1000 || q < 900 {
		t.Fatalf("queue holds %d rows with capacity 1000", q)
	}
	if lvl := engine.Level(storetest.Stats(t, j).Level.Load()); lvl != engine.LevelHard {
		t.Fatalf("level %s at a full queue", lvl)
	}
	if in := j.NodeContexts("store")[0].Stats.EventsIn.Load(); in >= 5000 {
		t.Fatal("the sink accepted everything while the store was stalled")
	}
	w.gate.Store(true)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(w.all()); n != 5000 {
		t.Fatalf("%d of 5000 rows written", n)
	}
	if lvl := engine.Level(storetest.Stats(t, j).Level.Load()); lvl != engine.LevelOK {
		t.Fatalf("level %s after draining", lvl)
	}
}

func TestAbortStopsWorkers(t *testing.T) {
	w := newMem()
	w.gate.Store(false)
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(5000, 4), BatchSize: 100}
	j := sinkJob(t, src, w, storekit.Config{Workers: 2, QueueSize: 1000}, nil)
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for storetest.Stats(t, j).QueueRows.Load() < 500 {
		time.Sleep(5 * time.Millisecond)
	}
	j.Abort()
	select {
	case <-j.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("abort did not end the job")
	}
	if !errors.Is(j.Err(), engine.ErrAborted) {
		t.Fatalf("err = %v", j.Err())
	}
	mustBeClosed(t, w)
}

// mustBeClosed checks the sink released the store by the time the job was
// done: the engine calls Cleanup on every way out before Done is closed.
func mustBeClosed(t *testing.T, w *memWriter) {
	t.Helper()
	if !w.closed.Load() {
		t.Fatal("the store was not closed when the job ended")
	}
}

// TestSeriesRegisteredThroughNodeContext: a store sink registers its
// mdp_sink_* series with its job's MetricSet at Open, one set per instance,
// so package metrics exports them without knowing about storekit.
func TestSeriesRegisteredThroughNodeContext(t *testing.T) {
	w := newMem()
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(2000, 7), BatchSize: 100}
	j := sinkJob(t, src, w, storekit.Config{Workers: 2, BatchRows: 500, QueueSize: 3000}, nil)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range j.Metrics().Series() {
		if m.Node != "store" || m.Type != "sink.mem" || m.Instance != 0 {
			t.Errorf("series %s of %s/%s/%d", m.Name, m.Node, m.Type, m.Instance)
		}
		if m.Kind == engine.HistogramMetric {
			got[m.Name] = float64(m.Histogram.Snapshot().Count)
			continue
		}
		got[m.Name] = m.Value()
	}
	st := storetest.Stats(t, j)
	for name, want := range map[string]float64{
		"mdp_sink_rows_written_total":    2000,
		"mdp_sink_writes_total":          float64(st.BatchesWritten.Load()),
		"mdp_sink_write_latency_seconds": float64(st.BatchesWritten.Load()),
		"mdp_sink_retries_total":         0,
		"mdp_sink_queue_rows":            0,
		"mdp_sink_queue_capacity_rows":   3000,
		"mdp_sink_level":                 0,
		"mdp_sink_breaker_open":          0,
		"pipeline_feedback_queue_depth":  0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (registered %v), want %v", name, v, ok, want)
		}
	}
	if st.BatchesWritten.Load() < 4 {
		t.Errorf("%d writes for 2000 rows with batch_rows 500", st.BatchesWritten.Load())
	}
}
