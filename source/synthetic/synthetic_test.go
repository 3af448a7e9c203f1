package synthetic

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// sink is a test sink: it counts every record and batch and keeps the
// records when keep is set.
type sink struct {
	keep    bool
	mu      sync.Mutex
	trades  []md.Trade
	quotes  []md.Quote
	events  atomic.Int64
	batches atomic.Int64
	maxLen  atomic.Int64
}

func (s *sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := int64(b.Len())
	s.events.Add(n)
	s.batches.Add(1)
	if n > s.maxLen.Load() {
		s.maxLen.Store(n)
	}
	if s.keep {
		s.mu.Lock()
		s.trades = append(s.trades, b.Trades...)
		s.quotes = append(s.quotes, b.Quotes...)
		s.mu.Unlock()
	}
	return nil
}

func newJob(t testing.TB, params map[string]any, s *sink, fb *engine.Feedback) *engine.Job {
	t.Helper()
	spec, ok := component.Lookup("provider.synthetic")
	if !ok {
		t.Fatal("provider.synthetic is not registered")
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	src := component.Node(spec, p, component.NodeOptions{ID: "src"})
	snk := &engine.Node{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
	g := &engine.Graph{Nodes: []*engine.Node{src, snk}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}
	j, err := engine.New(g, engine.Options{Job: "test", Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func run(t testing.TB, params map[string]any, s *sink) *engine.Job {
	t.Helper()
	j := newJob(t, params, s, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestBenchModelFirstTrades(t *testing.T) {
	s := &sink{keep: true}
	j := run(t, map[string]any{"model": "bench", "n": 3}, s)
	var got []string
	for _, tr := range s.trades {
		in := j.Symbols().Get(tr.Sym)
		got = append(got, fmt.Sprintf("%s %s %v x%v @%d ingest=%d id=%d seq=%d", in.Provider, in.Symbol, tr.Price, tr.Size, tr.TS-benchT0, tr.Ingest-benchT0, tr.TradeID, tr.Seq))
	}
	want := []string{
		"synthetic SYM013 113.09 x8 @0 ingest=0 id=1 seq=1",
		"synthetic SYM058 157.99 x72 @10000 ingest=10000 id=2 seq=2",
		"synthetic SYM050 150.08 x95 @20000 ingest=20000 id=3 seq=3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// Every symbol is interned up front, in name order.
	if n := j.Symbols().Len(); n != 100 {
		t.Fatalf("%d symbols interned", n)
	}
	if in := j.Symbols().Get(13); in.Symbol != "SYM013" {
		t.Fatalf("id 13 is %+v", in)
	}
}

func TestSplitmixMatchesWorkload(t *testing.T) {
	r := splitmix64{42}
	if a, b := r.next(), r.next(); a != 13679457532755275413 || b != 2949826092126892291 {
		t.Fatalf("first outputs %d %d", a, b)
	}
}

func TestFastmodExact(t *testing.T) {
	r := splitmix64{7}
	for _, d := range []uint64{1, 2, 3, 7, 21, 100, 1000, 1 << 20, 12345678901, 1<<63 + 5, ^uint64(0)} {
		f := newFastmod(d)
		for i := 0; i < 200000; i++ {
			a := r.next()
			switch i {
			case 0, 1, 2:
				a = uint64(i)
			case 3:
				a = ^uint64(0)
			case 4:
				a = d
			case 5:
				a = d - 1
			}
			if got := f.mod(a); got != a%d {
				t.Fatalf("%d %% %d: got %d want %d", a, d, got, a%d)
			}
		}
	}
}

// TestSmallmodExact checks smallmod against %, for every divisor the bench
// model uses and a spread of larger ones, on random numerators and the
// edges.
func TestSmallmodExact(t *testing.T) {
	r := splitmix64{11}
	divisors := []uint64{smallmodMax - 1, smallmodMax - 2, 1 << 15, 40_961, 65_521}
	for d := uint64(1); d <= benchMaxSymbols; d++ {
		divisors = append(divisors, d)
	}
	for _, d := range divisors {
		f := newSmallmod(d)
		for i := 0; i < 20000; i++ {
			a := r.next()
			switch i {
			case 0, 1, 2:
				a = uint64(i)
			case 3:
				a = ^uint64(0)
			case 4:
				a = d
			case 5:
				a = d - 1
			case 6:
				a = 1<<32 - 1
			case 7:
				a = 1 << 32
			case 8:
				a = ^uint64(0) - ^uint64(0)%d // the largest multiple of d
			}
			if got := f.mod(a); got != a%d {
				t.Fatalf("%d %% %d: got %d want %d", a, d, got, a%d)
			}
		}
	}
	for _, d := range []uint64{0, smallmodMax} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("newSmallmod(%d) did not panic", d)
				}
			}()
			newSmallmod(d)
		}()
	}
}

// barState and checksum fold trades into 1-second bars exactly as
// bench/limit does (emission order included), to check the generator
// against the WORKLOAD.md table.
type barState struct {
	sec                        int64
	open, high, low, close, pv float64
	vol, count                 int64
}

type checksum struct {
	bars, trades, volume   int64
	open, high, low, close int64
	vwap                   float64
}

func cents(p float64) int64 { return int64(math.Round(p * 100)) }

func (c *checksum) emit(st *barState) {
	c.bars++
	c.trades += st.count
	c.volume += st.vol
	c.open += cents(st.open)
	c.high += cents(st.high)
	c.low += cents(st.low)
	c.close += cents(st.close)
	c.vwap += st.pv / float64(st.vol)
}

func (st *barState) apply(tr *md.Trade, cs *checksum) {
	sec := tr.TS / 1e9
	pv := float64(tr.Price * tr.Size)
	if st.count != 0 && sec == st.sec {
		st.high = max(st.high, tr.Price)
		st.low = min(st.low, tr.Price)
		st.close = tr.Price
		st.vol += int64(tr.Size)
		st.count++
		st.pv += pv
		return
	}
	if st.count != 0 {
		cs.emit(st)
	}
	*st = barState{sec: sec, open: tr.Price, high: tr.Price, low: tr.Price, close: tr.Price, pv: pv, vol: int64(tr.Size), count: 1}
}

func centsStr(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// foldSink folds trades into bars as they arrive.
type foldSink struct {
	states []barState
	cs     checksum
}

func (f *foldSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	for i := range b.Trades {
		f.states[b.Trades[i].Sym].apply(&b.Trades[i], &f.cs)
	}
	return nil
}

func TestBenchModelMatchesWorkloadTable(t *testing.T) {
	spec, _ := component.Lookup("provider.synthetic")
	p, err := component.NewParams(spec, map[string]any{"model": "bench", "n": 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	f := &foldSink{states: make([]barState, 100)}
	g := &engine.Graph{
		Nodes: []*engine.Node{component.Node(spec, p, component.NodeOptions{ID: "src"}),
			{ID: "fold", Type: "sink.fold", Kind: engine.KindSink, Accepts: md.KindTrade, Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return f, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "fold"}},
	}
	j, err := engine.New(g, engine.Options{Job: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range f.states {
		if f.states[i].count != 0 {
			f.cs.emit(&f.states[i])
		}
	}
	c := f.cs
	got := fmt.Sprintf("%d %d %d %s %s %s %s %.6f", c.bars, c.trades, c.volume, centsStr(c.open), centsStr(c.high), centsStr(c.low), centsStr(c.close), c.vwap)
	want := "1000 1000000 50467372 149161.39 150658.90 147677.42 149113.28 149170.024994"
	if got != want {
		t.Fatalf("checksum\n got %s\nwant %s", got, want)
	}
}

func TestRandomModelReproducible(t *testing.T) {
	params := map[string]any{"symbols": []string{"AAPL", "MSFT", "NVDA"}, "seed": 7, "count": 5000, "batch_size": 333}
	a, b := &sink{keep: true}, &sink{keep: true}
	run(t, params, a)
	run(t, params, b)
	if len(a.trades) != 5000 || !reflect.DeepEqual(a.trades, b.trades) {
		t.Fatalf("runs differ: %d vs %d trades", len(a.trades), len(b.trades))
	}
	// The batch size does not change the records.
	params["batch_size"] = 1024
	c := &sink{keep: true}
	run(t, params, c)
	if !reflect.DeepEqual(a.trades, c.trades) {
		t.Fatal("batch size changed the records")
	}
	params["seed"] = 8
	d := &sink{keep: true}
	run(t, params, d)
	if reflect.DeepEqual(a.trades, d.trades) {
		t.Fatal("another seed gave the same records")
	}

	start := int64(1704205800) * 1e9
	seen := map[md.SymID]bool{}
	for i, tr := range a.trades {
		if tr.TS != start+int64(i)*1e6 || tr.Ingest != tr.TS {
			t.Fatalf("trade %d: ts %d ingest %d", i, tr.TS, tr.Ingest)
		}
		if tr.TradeID != int64(i+1) || tr.Seq != uint64(i+1) {
			t.Fatalf("trade %d: id %d seq %d", i, tr.TradeID, tr.Seq)
		}
		if tr.Price <= 0 || tr.Size < 1 || tr.Size > 100 || tr.Size != math.Trunc(tr.Size) || (tr.Side != md.SideBuy && tr.Side != md.SideSell) {
			t.Fatalf("trade %d: %+v", i, tr)
		}
		if tr.Price*100 != math.Round(tr.Price*100) && math.Abs(tr.Price*100-math.Round(tr.Price*100)) > 1e-9 {
			t.Fatalf("trade %d: price %v is not in cents", i, tr.Price)
		}
		seen[tr.Sym] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d symbols traded", len(seen))
	}
}

func TestRandomModelQuotes(t *testing.T) {
	s := &sink{keep: true}
	j := run(t, map[string]any{"kind": "quote", "count": 2000, "start": "2025-03-04T05:06:07Z", "step": "250us", "provider": "sim"}, s)
	if len(s.quotes) != 2000 || len(s.trades) != 0 {
		t.Fatalf("%d quotes %d trades", len(s.quotes), len(s.trades))
	}
	start, _ := md.ParseTime("2025-03-04T05:06:07Z")
	for i, q := range s.quotes {
		if q.TS != start+int64(i)*250_000 || q.Ingest != q.TS || q.Seq != uint64(i+1) {
			t.Fatalf("quote %d: %+v", i, q)
		}
		spread := math.Round((q.Ask - q.Bid) * 100)
		if q.Bid <= 0 || spread < 1 || spread > 5 || q.BidSize < 100 || q.AskSize > 1000 {
			t.Fatalf("quote %d: %+v", i, q)
		}
	}
	if in := j.Symbols().Get(s.quotes[0].Sym); in.Provider != "sim" || (in.Symbol != "AAPL" && in.Symbol != "MSFT") {
		t.Fatalf("instrument %+v", in)
	}
}

func TestCountStopsExactly(t *testing.T) {
	s := &sink{}
	j := run(t, map[string]any{"count": 2500, "batch_size": 1000}, s)
	if s.events.Load() != 2500 || s.batches.Load() != 3 {
		t.Fatalf("%d events in %d batches", s.events.Load(), s.batches.Load())
	}
	if ev, first := j.SourceTotals(); ev != 2500 || first == 0 {
		t.Fatalf("source totals %d %d", ev, first)
	}
}

func TestDurationStops(t *testing.T) {
	s := &sink{}
	start := time.Now()
	run(t, map[string]any{"duration": "300ms"}, s)
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("ran for %v", d)
	}
	if s.events.Load() == 0 {
		t.Fatal("no events")
	}
}

func TestPacedRate(t *testing.T) {
	s := &sink{keep: true}
	start := time.Now()
	run(t, map[string]any{"rate": 2000, "duration": "1s"}, s)
	elapsed := time.Since(start)
	n := s.events.Load()
	if n < 1800 || n > 2200 {
		t.Fatalf("%d events in 1s at 2000/s", n)
	}
	if elapsed < time.Second || elapsed > 5*time.Second {
		t.Fatalf("ran for %v", elapsed)
	}
	// Small batches of what is due, never waiting to fill.
	if b := s.batches.Load(); b < 100 {
		t.Fatalf("%d batches for %d events", b, n)
	}
	// Live-like: event time = ingest time = wall clock at emission.
	first, last := s.trades[0], s.trades[len(s.trades)-1]
	if first.TS != first.Ingest || first.TS < start.UnixNano() || last.TS > time.Now().UnixNano() || last.TS-first.TS < int64(800*time.Millisecond) {
		t.Fatalf("times: first %d last %d start %d", first.TS, last.TS, start.UnixNano())
	}
}

func TestPacedCount(t *testing.T) {
	s := &sink{}
	start := time.Now()
	run(t, map[string]any{"rate": 5000, "count": 1500}, s)
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("1500 events at 5000/s took %v", d)
	}
	if s.events.Load() != 1500 {
		t.Fatalf("%d events", s.events.Load())
	}
}

func sourceEvents(j *engine.Job) int64 { return j.NodeContexts("src")[0].Stats.EventsOut.Load() }

func TestFeedbackPausesAndResumes(t *testing.T) {
	for _, params := range []map[string]any{
		{"count": 10000},
		{"count": 3000, "rate": 20000},
	} {
		name := "unpaced"
		if params["rate"] != nil {
			name = "paced"
		}
		t.Run(name, func(t *testing.T) {
			fb := engine.NewFeedback(engine.DefaultFeedback())
			fb.Report("store", engine.LevelHard)
			s := &sink{}
			j := newJob(t, params, s, fb)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := j.Start(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if n := sourceEvents(j); n != 0 {
				t.Fatalf("paused source emitted %d events", n)
			}
			fb.Report("store", engine.LevelOK)
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			if s.events.Load() != int64(params["count"].(int)) {
				t.Fatalf("%d events after resuming", s.events.Load())
			}
		})
	}
}

func TestFeedbackPausesMidRun(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	s := &sink{}
	j := newJob(t, map[string]any{"rate": 5000}, s, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return sourceEvents(j) > 100 })
	fb.Report("store", engine.LevelHard)
	time.Sleep(100 * time.Millisecond) // let an in-flight batch land
	paused := sourceEvents(j)
	time.Sleep(300 * time.Millisecond)
	if n := sourceEvents(j); n != paused {
		t.Fatalf("emitted %d events while paused", n-paused)
	}
	fb.Report("store", engine.LevelOK)
	waitFor(t, func() bool { return sourceEvents(j) > paused+100 })
	j.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestFeedbackSoftHalvesRate(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	fb.Report("store", engine.LevelSoft)
	s := &sink{}
	j := newJob(t, map[string]any{"rate": 4000, "duration": "1s"}, s, fb)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.events.Load(); n < 1700 || n > 2300 {
		t.Fatalf("%d events in 1s at 4000/s scaled by 0.5", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGracefulStopOnCancel(t *testing.T) {
	for _, params := range []map[string]any{{}, {"rate": 100}, {"rate": 0.01}, {"model": "bench", "n": 1 << 40}} {
		t.Run(fmt.Sprint(params), func(t *testing.T) {
			s := &sink{}
			j := newJob(t, params, s, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- j.Run(ctx) }()
			time.Sleep(150 * time.Millisecond)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("source did not stop within 10s of cancel")
			}
			if ev, _ := j.SourceTotals(); s.events.Load() != ev {
				t.Fatalf("sink got %d of %d emitted events", s.events.Load(), ev)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	spec, _ := component.Lookup("provider.synthetic")
	cases := []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"model": "bench", "symbols": []string{"A"}}, "params.symbols: model bench names its symbols SYM000, SYM001, ...; set their number with symbol_count"},
		{map[string]any{"model": "bench", "symbol_count": 1001}, "params.symbol_count: 1001 is above the maximum 1000"},
		{map[string]any{"model": "bench", "symbol_count": "ten"}, `params.symbol_count: want an integer, got the string "ten"`},
		{map[string]any{"symbol_count": 5}, "params.symbol_count: applies to model bench only; model random takes symbol names in symbols"},
		{map[string]any{"symbols": []any{"A", []any{"B"}}}, "params.symbols: want a list of strings, got a list in the list"},
		{map[string]any{"symbols": []string{}}, "params.symbols: the list of symbols is empty"},
		{map[string]any{"symbols": []string{"A", "A"}}, `params.symbols: symbol "A" is listed twice`},
		{map[string]any{"model": "bench", "kind": "quote"}, "params.kind: model bench produces trades only"},
		{map[string]any{"model": "bench", "count": 5}, "params.count: does not apply to model bench; use n for the number of trades"},
		{map[string]any{"model": "bench", "step": "1s"}, "params.step: does not apply to model bench (its event times follow bench/WORKLOAD.md)"},
		{map[string]any{"n": 5}, "params.n: applies to model bench only; use count to stop model random after a number of events"},
		{map[string]any{"rate": 10, "start": "2024-01-01T00:00:00Z"}, "params.start: applies only with rate 0 (a paced source stamps records with the wall clock)"},
		{map[string]any{"rate": -1}, "params.rate: -1 is below the minimum 0"},
		{map[string]any{"kind": "bar"}, `params.kind: "bar" is not allowed; want one of trade, quote`},
	}
	for _, c := range cases {
		_, err := component.NewParams(spec, c.params)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.params, err, c.want)
		}
	}
	// Valid spellings.
	for _, params := range []map[string]any{
		{}, {"symbols": "AAPL"}, {"model": "bench"}, {"model": "bench", "symbol_count": 7, "n": 10, "rate": 1000},
		{"kind": "quote", "rate": 10, "duration": "1s"},
	} {
		if _, err := component.NewParams(spec, params); err != nil {
			t.Errorf("%v: %v", params, err)
		}
	}
	p, _ := component.NewParams(spec, map[string]any{"kind": "quote"})
	if k := spec.OutKind(p); k != md.KindQuote {
		t.Fatalf("out kind %v", k)
	}
	if !strings.Contains(spec.Summary, "bench") {
		t.Fatal("summary")
	}
}

// BenchmarkBenchModelGenerate measures generation alone: trades written
// straight into a batch (ns/op is per trade).
func BenchmarkBenchModelGenerate(b *testing.B) {
	ids := make([]md.SymID, 100)
	for i := range ids {
		ids[i] = md.SymID(i)
	}
	g := newBenchGen(ids, 42)
	pool := md.NewPool(md.DefaultBatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; left -= md.DefaultBatchSize {
		bt := pool.Get(md.KindTrade)
		g.fill(bt, min(left, md.DefaultBatchSize), 0)
		bt.Release()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtrades/s")
}

// BenchmarkBenchModelEngine runs the source in a job into a sink that only
// counts (ns/op is per trade, end to end through one edge).
func BenchmarkBenchModelEngine(b *testing.B) {
	s := &sink{}
	j := newJob(b, map[string]any{"model": "bench", "n": b.N}, s, nil)
	b.ReportAllocs()
	b.ResetTimer()
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if s.events.Load() != int64(b.N) {
		b.Fatalf("%d events", s.events.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtrades/s")
}

func TestPausedSourceKeepsItsEventClock(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	fb.Report("store", engine.LevelHard)
	s := &sink{keep: true}
	j := newJob(t, map[string]any{"count": 3000, "idle_timeout": "10ms"}, s, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start := int64(1704205800) * 1e9
	// Idle for 20 idle timeouts: the watermark may sit just before the first
	// record, never at the wall clock.
	if wm := j.NodeContexts("src")[0].Stats.Watermark.Load(); wm > start-1 {
		t.Fatalf("idle watermark moved to %d (first record at %d)", wm, start)
	}
	fb.Report("store", engine.LevelOK)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(s.trades) != 3000 || s.trades[2999].TS != start+2999*1e6 {
		t.Fatalf("%d trades", len(s.trades))
	}
}

func TestEventNow(t *testing.T) {
	spec, _ := component.Lookup("provider.synthetic")
	for _, c := range []struct {
		params map[string]any
		want   int64
	}{
		{map[string]any{"count": 10}, int64(1704205800)*1e9 + 9*1e6},
		{map[string]any{"model": "bench", "n": 10}, benchT0 + 9*benchStep},
	} {
		p, err := component.NewParams(spec, c.params)
		if err != nil {
			t.Fatal(err)
		}
		node := component.Node(spec, p, component.NodeOptions{ID: "src"})
		v, _ := node.NewSource(0)
		src := v.(*Source)
		node.NewSource = func(int) (engine.Source, error) { return src, nil }
		snk := &engine.Node{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return &sink{}, nil }}
		j, err := engine.New(&engine.Graph{Nodes: []*engine.Node{node, snk}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := src.EventNow(); got != c.want {
			t.Fatalf("%v: EventNow %d want %d", c.params, got, c.want)
		}
	}
	paced := &Source{cfg: config{model: modelRandom, rate: 10}}
	before := time.Now().UnixNano()
	if got := paced.EventNow(); got < before || got > time.Now().UnixNano() {
		t.Fatalf("paced EventNow %d is not the wall clock (%d)", got, before)
	}
}

func TestPacedHighRateEmitsSmallBatches(t *testing.T) {
	s := &sink{}
	run(t, map[string]any{"rate": 100_000, "duration": "1s"}, s)
	n, batches := s.events.Load(), s.batches.Load()
	if n < 90_000 || n > 110_000 {
		t.Fatalf("%d events in 1s at 100000/s", n)
	}
	// Emitting what is due every ~50-100µs gives batches of a few records;
	// allow for a loaded machine, but never batches that wait to fill.
	if avg := float64(n) / float64(batches); avg > 200 {
		t.Fatalf("%d events in %d batches: %.1f per batch", n, batches, avg)
	}
	t.Logf("%d events in %d batches (%.1f per batch, largest %d)", n, batches, float64(n)/float64(batches), s.maxLen.Load())
}

func TestDurationEndsAPause(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	fb.Report("store", engine.LevelHard)
	for _, params := range []map[string]any{{"duration": "200ms"}, {"duration": "200ms", "rate": 1000}} {
		s := &sink{}
		j := newJob(t, params, s, fb)
		start := time.Now()
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > 10*time.Second {
			t.Fatalf("%v: paused source ran %v", params, d)
		}
		if s.events.Load() != 0 {
			t.Fatalf("paused source emitted %d", s.events.Load())
		}
	}
}

// BenchmarkRandomModelGenerate measures the random model's trade
// generation (ns/op is per trade).
func BenchmarkRandomModelGenerate(b *testing.B) {
	g := newRandomGen([]md.SymID{0, 1, 2}, 42, 0, 1000)
	pool := md.NewPool(md.DefaultBatchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; left -= md.DefaultBatchSize {
		bt := pool.Get(md.KindTrade)
		g.fillTrades(bt, min(left, md.DefaultBatchSize), 0)
		bt.Release()
	}
}

// TestStepOutOfRange: event times never wrap. A step above a day is refused
// with the bound; count x step past the end of the range is a config error;
// an unbounded run ends at the last representable event time.
func TestStepOutOfRange(t *testing.T) {
	spec, _ := component.Lookup("provider.synthetic")
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"step": "1000000h"}, "params.step: 1000000h is above the maximum 24h0m0s"},
		{map[string]any{"step": "24h", "count": 100000}, "params.step: count 100000 x step 24h0m0s from start 2024-01-02T14:30:00Z runs past the last event time 2262-04-11T23:47:16.854775806Z (at most 87028 records fit)"},
	} {
		if _, err := component.NewParams(spec, c.params); err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.params, err, c.want)
		}
	}
	s := &sink{keep: true}
	run(t, map[string]any{"step": "24h", "start": "2262-04-01T00:00:00Z"}, s)
	if len(s.trades) != 11 {
		t.Fatalf("%d trades, want 11 (2262-04-01 to 2262-04-11)", len(s.trades))
	}
	for i, tr := range s.trades {
		if want := time.Date(2262, 4, 1+i, 0, 0, 0, 0, time.UTC).UnixNano(); tr.TS != want {
			t.Fatalf("trade %d at %s, want %s", i, md.FormatTime(tr.TS), md.FormatTime(want))
		}
	}
}

// TestPacedHighRateDoesNotSpin: a paced source at 50,000 events/s sleeps to
// the next due batch instead of spinning a core (it used 5.2 s of CPU per
// 5 s), and still delivers the rate.
func TestPacedHighRateDoesNotSpin(t *testing.T) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s := &sink{}
	c0, start := cpu(), time.Now()
	run(t, map[string]any{"rate": 50000, "duration": "2s"}, s)
	used, wall := cpu()-c0, time.Since(start)
	n := s.events.Load()
	if n < 90_000 || n > 110_000 {
		t.Fatalf("%d events in 2s at 50,000/s", n)
	}
	if used > wall/4 {
		t.Fatalf("%v of CPU over %v of wall time: the source busy-waits", used, wall)
	}
	t.Logf("%d events, %v CPU over %v wall, %d batches", n, used, wall, s.batches.Load())
}
