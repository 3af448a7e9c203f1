package bars

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// The bars workload of docs/bench/WORKLOAD.md, bit for bit.

const (
	wlT0   = int64(1704205800) * 1_000_000_000 // 2024-01-02T14:30:00Z
	wlStep = int64(10_000)                     // one trade every 10us
)

type splitmix64 struct{ s uint64 }

func (r *splitmix64) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// workload generates n trades over the symbols SYM000.. interned in syms
// (so SYMk has id k in a fresh table), in batches of bs.
func workload(n, symbols int, seed uint64, syms *md.SymbolTable, bs int) []*md.Batch {
	ids := make([]md.SymID, symbols)
	for i := range ids {
		ids[i] = syms.Intern("bench", fmt.Sprintf("SYM%03d", i))
	}
	cents := make([]int64, symbols)
	for i := range cents {
		cents[i] = 10000 + 100*int64(i)
	}
	rng := splitmix64{seed}
	var out []*md.Batch
	var b *md.Batch
	for i := range n {
		if b == nil || len(b.Trades) == bs {
			b = md.NewBatch(md.KindTrade)
			b.Trades = make([]md.Trade, 0, bs)
			out = append(out, b)
		}
		sym := int(rng.next() % uint64(symbols))
		r2 := rng.next()
		cents[sym] = max(1, cents[sym]+int64(r2%21)-10)
		b.Trades = append(b.Trades, md.Trade{
			Sym: ids[sym], TS: wlT0 + int64(i)*wlStep,
			Price: float64(cents[sym]) / 100.0, Size: float64(1 + (r2>>32)%100),
		})
	}
	return out
}

// checksum is WORKLOAD.md's checksum over bars.
type checksum struct {
	Bars, Trades, Volume       int64
	OpenC, HighC, LowC, CloseC int64
	VWAP                       float64
}

func cents(p float64) int64 { return int64(math.Round(p * 100)) }

func (c *checksum) add(bs []md.Bar) {
	for i := range bs {
		b := &bs[i]
		c.Bars++
		c.Trades += b.Trades
		c.Volume += int64(b.Volume)
		c.OpenC += cents(b.Open)
		c.HighC += cents(b.High)
		c.LowC += cents(b.Low)
		c.CloseC += cents(b.Close)
		c.VWAP += b.VWAP
	}
}

func (c *checksum) check(t testing.TB) {
	t.Helper()
	// WORKLOAD.md, N = 1,000,000, as printed by the limit program.
	want := checksum{Bars: 1000, Trades: 1000000, Volume: 50467372, OpenC: 14916139, HighC: 15065890, LowC: 14767742, CloseC: 14911328}
	got := *c
	got.VWAP = 0
	if got != want {
		t.Fatalf("checksum %+v, want %+v", got, want)
	}
	if d := math.Abs(c.VWAP-149170.024994) / 149170.024994; d > 1e-9 {
		t.Fatalf("vwap_sum %.6f, want 149170.024994 (relative difference %g)", c.VWAP, d)
	}
}

// runDirect drives a Bars through Process and OnWatermark the way a node
// instance does, with a watermark after each batch as a source with
// max_out_of_orderness 0 sends, and folds every emitted bar into cs.
func runDirect(tb testing.TB, syms *md.SymbolTable, batches []*md.Batch, cs *checksum, keep *[]md.Bar) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"interval": "1s"})
	if err != nil {
		tb.Fatal(err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		tb.Fatal(err)
	}
	op := impl.(*Bars)
	to := enginetest.NewOutput(&engine.NodeContext{Symbols: syms}, 0, engine.PortLate)
	ctx := context.Background()
	if err := op.Open(ctx, to.NC); err != nil {
		tb.Fatal(err)
	}
	collect := func() {
		for _, b := range to.Drain(engine.PortMain) {
			cs.add(b.Bars)
			if keep != nil {
				*keep = append(*keep, b.Bars...)
			}
			b.Release()
		}
	}
	for _, b := range batches {
		if err := op.Process(ctx, b, to.Output); err != nil {
			tb.Fatal(err)
		}
		if err := op.OnWatermark(ctx, b.Trades[len(b.Trades)-1].TS, to.Output); err != nil {
			tb.Fatal(err)
		}
		collect()
	}
	if err := op.OnWatermark(ctx, md.MaxTime, to.Output); err != nil {
		tb.Fatal(err)
	}
	collect()
	if d := to.NC.Stats.Drops(); len(d) != 0 {
		tb.Fatalf("drops %v", d)
	}
}

func TestWorkloadChecksumMatchesTheLimitProgram(t *testing.T) {
	syms := md.NewSymbolTable()
	batches := workload(1_000_000, 100, 42, syms, 1024)
	if tr := batches[0].Trades[:3]; tr[0].Sym != 13 || tr[0].Price != 113.09 || tr[0].Size != 8 ||
		tr[1].Sym != 58 || tr[1].Price != 157.99 || tr[1].Size != 72 || tr[2].Sym != 50 || tr[2].Price != 150.08 || tr[2].Size != 95 {
		t.Fatalf("generator: first trades %+v", tr)
	}
	var cs checksum
	var all []md.Bar
	runDirect(t, syms, batches, &cs, &all)
	cs.check(t)
	for i := 1; i < len(all); i++ {
		a, b := &all[i-1], &all[i]
		if b.Start < a.Start || (b.Start == a.Start && b.Sym <= a.Sym) {
			t.Fatalf("bars %d and %d out of (start, symbol) order", i-1, i)
		}
	}
}

func BenchmarkBars(b *testing.B) {
	const n = 1_000_000
	syms := md.NewSymbolTable()
	batches := workload(n, 100, 42, syms, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for range b.N {
		var cs checksum
		runDirect(b, syms, batches, &cs, nil)
		if cs.Trades != n {
			b.Fatalf("trades %d", cs.Trades)
		}
	}
	reportPerTrade(b, time.Since(start), cpuTime()-cpu, n)
}

// reportPerTrade reports wall ns per trade, the trades per second it means,
// and CPU ns per trade (all goroutines, GC included).
func reportPerTrade(b *testing.B, wall, cpu time.Duration, n int) {
	b.StopTimer()
	perTrade := float64(wall.Nanoseconds()) / float64(b.N) / float64(n)
	b.ReportMetric(perTrade, "ns/trade")
	b.ReportMetric(1e3/perTrade, "Mtrades/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/trade")
}

// --- through the real engine ---

// sliceSource emits prepared batches; the engine derives the watermark.
type sliceSource struct{ batches []*md.Batch }

func (s *sliceSource) Run(ctx context.Context, out *engine.Output) error {
	for _, in := range s.batches {
		b := out.NewBatch(in.Kind)
		b.Trades = append(b.Trades, in.Trades...)
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

type barSink struct {
	mu     sync.Mutex
	bars   []md.Bar
	trades []md.Trade
	reason []string
}

func (s *barSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bars = append(s.bars, b.Bars...)
	s.trades = append(s.trades, b.Trades...)
	s.reason = append(s.reason, b.Reason)
	return nil
}

func sinkNode(id string, s *barSink) *engine.Node {
	return &engine.Node{ID: id, Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
}

func srcNode(batches []*md.Batch, ooo time.Duration) *engine.Node {
	return &engine.Node{ID: "src", Type: "provider.test", Kind: engine.KindSource, MaxOutOfOrderness: ooo,
		Ports:     map[string]md.Kind{engine.PortMain: md.KindTrade},
		NewSource: func(int) (engine.Source, error) { return &sliceSource{batches: batches}, nil }}
}

func barsNode(t *testing.T, params map[string]any, parallelism int) *engine.Node {
	t.Helper()
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	return component.Node(spec, p, component.NodeOptions{ID: "bars", Parallelism: parallelism})
}

func runEngine(t *testing.T, batches []*md.Batch, syms *md.SymbolTable, parallelism int) []md.Bar {
	t.Helper()
	sink := &barSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode(batches, 0), barsNode(t, map[string]any{"interval": "1s"}, parallelism), sinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "bars-test", Symbols: syms})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return sink.bars
}

func sortBars(bs []md.Bar) {
	slices.SortFunc(bs, func(a, b md.Bar) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Sym, b.Sym)
	})
}

func TestEngineRunParallelismTwoEqualsOne(t *testing.T) {
	syms := md.NewSymbolTable()
	batches := workload(1_000_000, 100, 42, syms, 1024)
	one := runEngine(t, batches, syms, 1)
	two := runEngine(t, batches, syms, 2)
	var cs checksum
	cs.add(one)
	cs.check(t)
	sortBars(two)
	if !slices.IsSortedFunc(one, func(a, b md.Bar) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Sym, b.Sym)
	}) {
		t.Fatal("parallelism 1 did not emit bars in (start, symbol) order")
	}
	if !reflect.DeepEqual(one, two) {
		t.Fatalf("parallelism 2 gave different bars (%d vs %d)", len(two), len(one))
	}
	var direct []md.Bar
	var dcs checksum
	runDirect(t, syms, batches, &dcs, &direct)
	if !reflect.DeepEqual(one, direct) {
		t.Fatal("the engine run differs from the direct run")
	}
}

func TestEngineRunSendsLateRecordsToTheLatePort(t *testing.T) {
	syms := md.NewSymbolTable()
	a := syms.Intern("test", "A")
	mk := func(ts ...md.Trade) *md.Batch {
		b := md.NewBatch(md.KindTrade)
		b.Trades = ts
		return b
	}
	// The first batch moves the watermark to t0+1.5s (max_out_of_orderness
	// 0), which closes bar 0; t0+0.7s then is late. t0+1.2s is not, and
	// opens bar 1, whose close is the t0+1.5s trade.
	batches := []*md.Batch{
		mk(tr(a, t0+500*ms, 10, 1), tr(a, t0+1500*ms, 11, 1)),
		mk(tr(a, t0+700*ms, 9, 1), tr(a, t0+1200*ms, 12, 2)),
	}
	main, late := &barSink{}, &barSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			srcNode(batches, 0),
			barsNode(t, map[string]any{"interval": "1s", "late_policy": "side_output", "label": "close"}, 1),
			sinkNode("sink", main), sinkNode("late_sink", late),
		},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}, {From: "bars", FromPort: engine.PortLate, To: "late_sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "late-test", Symbols: syms})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	b0 := bar(a, t0, sec, 10, 10, 10, 10, 1, 10, 1)
	b1 := bar(a, t0+sec, sec, 12, 12, 11, 11, 3, (11+24)/3.0, 2)
	b0.LabelEnd, b1.LabelEnd = true, true
	if !reflect.DeepEqual(main.bars, []md.Bar{b0, b1}) {
		t.Fatalf("bars %s", fmtBars(main.bars))
	}
	if !reflect.DeepEqual(late.trades, []md.Trade{tr(a, t0+700*ms, 9, 1)}) || !reflect.DeepEqual(late.reason, []string{"late"}) {
		t.Fatalf("late sink got %+v reasons %q", late.trades, late.reason)
	}
}

// BenchmarkBarsEngine runs the same workload through a real job: a source
// copying the prepared trades into pooled batches, operator.bars and a sink
// that counts bars, with the engine's queues and watermarks in between.
func BenchmarkBarsEngine(b *testing.B) {
	const n = 1_000_000
	for _, par := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallelism%d", par), func(b *testing.B) {
			syms := md.NewSymbolTable()
			batches := workload(n, 100, 42, syms, 1024)
			spec, _ := component.Lookup(Type)
			p, err := component.NewParams(spec, map[string]any{"interval": "1s"})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for range b.N {
				sink := &countSink{}
				g := &engine.Graph{
					Nodes: []*engine.Node{srcNode(batches, 0), component.Node(spec, p, component.NodeOptions{ID: "bars", Parallelism: par}),
						{ID: "sink", Type: "sink.count", Kind: engine.KindSink, Accepts: md.KindBar, Ports: map[string]md.Kind{},
							NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
					Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}},
				}
				j, err := engine.New(g, engine.Options{Job: "bench", Symbols: syms})
				if err != nil {
					b.Fatal(err)
				}
				if err := j.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				if sink.cs.Trades != n {
					b.Fatalf("trades %d", sink.cs.Trades)
				}
			}
			reportPerTrade(b, time.Since(start), cpuTime()-cpu, n)
		})
	}
}

type countSink struct{ cs checksum }

func (s *countSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.cs.add(b.Bars)
	return nil
}
