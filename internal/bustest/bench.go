package bustest

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit/storetest"

	// The benchmarks' downstream nodes.
	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/sink/null"
)

// PerMsg is the trades in one bus message in the bus benchmarks.
const PerMsg = 64

// BenchSymbols is the number of symbols the benchmark trades cycle over.
const BenchSymbols = 100

// BenchTrades returns n trades and their symbols' names: runs of PerMsg
// trades of one symbol, cycling over BenchSymbols symbols, so that a sink
// keying or routing by symbol sends each batch of PerMsg as one message,
// as the raw loops do.
func BenchTrades(n int) ([]md.Trade, []string) {
	syms := enginetest.Symbols(BenchSymbols)
	tr := make([]md.Trade, n)
	for i := range tr {
		tr[i] = md.Trade{TS: 1_700_000_000_000_000_000 + int64(i)*1_000_000, Price: 100 + float64(i%100)/100, Size: 1,
			TradeID: int64(i), Seq: uint64(i + 1), Sym: md.SymID(i / PerMsg % BenchSymbols)}
	}
	return tr, syms
}

// BenchFrames are the pre-encoded messages the raw loops send: message i
// is BenchFrames.Frame(i), the mdp frame of BenchTrades' i-th run of
// PerMsg trades, with its symbol's name as Key(i).
type BenchFrames struct {
	frames [][]byte
	syms   []string
}

// NewBenchFrames encodes one frame per symbol.
func NewBenchFrames() *BenchFrames {
	tr, syms := BenchTrades(PerMsg * BenchSymbols)
	st := md.NewSymbolTable()
	for _, s := range syms {
		st.Intern("bench", s)
	}
	f := &BenchFrames{syms: syms}
	b := md.NewBatch(md.KindTrade)
	for i := range BenchSymbols {
		b.Trades = tr[i*PerMsg : (i+1)*PerMsg]
		frame, err := new(busfmt.Encoder).AppendFrame(nil, b, st.Snapshot())
		if err != nil {
			panic(err)
		}
		f.frames = append(f.frames, frame)
	}
	return f
}

// Frame is message i.
func (f *BenchFrames) Frame(i int) []byte { return f.frames[i%len(f.frames)] }

// Key is the symbol of message i.
func (f *BenchFrames) Key(i int) string { return f.syms[i%len(f.syms)] }

// RawDecoder decodes frames as a source does (busfmt into the job's kind
// of batch, symbols interned), into one reused batch: the raw loops'
// "decode" variant, so that the source's cost can be told from the
// frame decoding's.
type RawDecoder struct {
	dec     *busfmt.Decoder
	b       *md.Batch
	Records int
}

// NewRawDecoder returns a decoder for trade frames.
func NewRawDecoder() *RawDecoder {
	return &RawDecoder{dec: busfmt.NewDecoder(md.NewSymbolTable()), b: md.NewBatch(md.KindTrade)}
}

// Decode decodes one frame, failing b on a malformed one.
func (d *RawDecoder) Decode(b testing.TB, frame []byte) {
	d.b.Trades = d.b.Trades[:0]
	if err := d.dec.Decode(frame, d.b); err != nil {
		b.Fatal(err)
	}
	d.Records += len(d.b.Trades)
}

// Clock is the start of a measurement: the wall clock and the process's
// CPU time (user+system, every goroutine of the process: the component's
// or the raw loop's and the client library's; the broker's only for
// in-process kfake). CPU per message is steadier than a rate on a shared
// machine, where the rate measures the scheduler's share as much as the
// code.
type Clock struct {
	wall time.Time
	cpu  time.Duration
	vcsw int64 // voluntary context switches
}

// StartClock starts a measurement.
func StartClock() Clock {
	return Clock{wall: time.Now(), cpu: storetest.CPUTime(), vcsw: voluntarySwitches()}
}

// Rates collects the msgs/s and CPU per message of a benchmark's
// sub-benchmarks, so that the parent can log each one's ratio to its
// anchor measured in the same run.
type Rates struct {
	mu  sync.Mutex
	m   map[string]float64
	cpu map[string]float64 // CPU ns per message
}

// Report reports n messages (and n*PerMsg trades) since start on b,
// their rate, the process's CPU ns and voluntary context switches per
// message, and keeps the rate and CPU under
// b's sub-benchmark name (the part after the parent's "/").
func (r *Rates) Report(b *testing.B, n int, start Clock) {
	el := time.Since(start.wall).Seconds()
	cpu := float64(storetest.CPUTime()-start.cpu) / float64(n)
	rate := float64(n) / el
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rate*PerMsg, "trades/s")
	b.ReportMetric(cpu, "cpu-ns/msg")
	// Threads blocking per message: the wake-ups that, on an idle
	// machine, are latency.
	b.ReportMetric(float64(voluntarySwitches()-start.vcsw)/float64(n), "vcsw/msg")
	name := b.Name()
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if j := strings.LastIndexByte(name, '-'); j > 0 && strings.Trim(name[j+1:], "0123456789") == "" {
		name = name[:j] // the -GOMAXPROCS suffix
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m, r.cpu = map[string]float64{}, map[string]float64{}
	}
	r.m[name], r.cpu[name] = rate, cpu
}

// Log logs, for each measured name with a prefix p of anchors (e.g.
// "sink/" -> "sink/raw"), its ratio to the anchor of its prefix, by rate
// and by CPU per message (the anchor's CPU over the name's, so that above
// 1 is better for both): the same-run figures the README quotes.
func (r *Rates) Log(b *testing.B, anchors map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for p, a := range anchors {
			if strings.HasPrefix(n, p) && n != a && r.m[a] > 0 {
				cr := 0.0
				if r.cpu[n] > 0 {
					cr = r.cpu[a] / r.cpu[n]
				}
				b.Logf("ratio %s / %s = %.2f (%.0f / %.0f msgs/s); cpu %.2f (%.0f / %.0f cpu-ns/msg)",
					n, a, r.m[n]/r.m[a], r.m[n], r.m[a], cr, r.cpu[n], r.cpu[a])
			}
		}
	}
}

// BenchSink runs a job, a slice source of n*PerMsg BenchTrades in
// batches of PerMsg -> sink typ with params, to the end (the sink's
// acknowledgements awaited), and reports n messages over its time.
func BenchSink(b *testing.B, r *Rates, typ string, params map[string]any, n int) {
	tr, syms := BenchTrades(n * PerMsg)
	src := &enginetest.Source{Symbols: syms, Trades: tr, BatchSize: PerMsg}
	g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src), Node(b, typ, "pub", params)},
		Edges: []*engine.Edge{{From: "src", To: "pub"}}}
	j, err := engine.New(g, engine.Options{Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := StartClock()
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	r.Report(b, n, start)
}

// BenchSource runs src -> [operator.bars 1s when bars] -> sink.null until
// src has handed on n*PerMsg trades, and reports the messages handed on
// after the clock started over that time. started, when not nil, is
// called once the job started and before the clock does (a live source's
// publisher starts there; a source whose broker holds all n messages
// already can wait there for the first ones, so that the clock measures
// the steady state without connecting and creating groups, as a raw loop
// on a connected client does: what it had handed on by then is not
// counted).
func BenchSource(b *testing.B, r *Rates, src *engine.Node, n int, bars bool, started func(j *engine.Job)) {
	nodes := []*engine.Node{src}
	last := src.ID
	var edges []*engine.Edge
	if bars {
		nodes = append(nodes, Node(b, "operator.bars", "bars", map[string]any{"interval": "1s"}))
		edges = append(edges, &engine.Edge{From: last, To: "bars"})
		last = "bars"
	}
	nodes = append(nodes, Node(b, "sink.null", "null", map[string]any{}))
	edges = append(edges, &engine.Edge{From: last, To: "null"})
	j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: edges}, engine.Options{Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want := int64(n) * PerMsg
	b.ResetTimer()
	start := StartClock()
	if err := j.Start(ctx); err != nil {
		b.Fatal(err)
	}
	var base, baseBatches int64
	if started != nil {
		started(j)
		b.ResetTimer()
		start = StartClock()
		st := NodeStatus(j, src.ID)
		base, baseBatches = st.EventsOut, st.BatchesOut
	}
	for NodeStatus(j, src.ID).EventsOut < want {
		if time.Since(start.wall) > 5*time.Minute {
			b.Fatalf("%s handed on %d of %d trades in 5 minutes", src.ID, NodeStatus(j, src.ID).EventsOut, want)
		}
		time.Sleep(time.Millisecond)
	}
	r.Report(b, int((want-base)/PerMsg), start)
	// Messages per batch the source emitted: each batch is a hand-off to
	// the next node, so small batches cost wake-ups per message.
	if st := NodeStatus(j, src.ID); st.BatchesOut > baseBatches {
		b.ReportMetric(float64(st.EventsOut-base)/PerMsg/float64(st.BatchesOut-baseBatches), "msgs/batch")
	}
	cancel()
	_ = j.Wait()
}

// Window keeps at most n operations in flight for a raw loop, settling
// the oldest first: the max_pending the bus sinks keep.
type Window[T any] struct {
	n      int
	settle func(T)
	q      []T
}

// NewWindow returns a window of n calling settle on each operation.
func NewWindow[T any](n int, settle func(T)) *Window[T] {
	return &Window[T]{n: n, settle: settle}
}

// Add adds x, settling the oldest while n are in flight.
func (w *Window[T]) Add(x T) {
	w.q = append(w.q, x)
	for len(w.q) >= w.n {
		w.settle(w.q[0])
		w.q = w.q[1:]
	}
}

// Drain settles every operation left.
func (w *Window[T]) Drain() {
	for len(w.q) > 0 {
		w.settle(w.q[0])
		w.q = w.q[1:]
	}
}
