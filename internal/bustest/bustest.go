// Package bustest holds what the tests of the bus components share: jobs
// that publish records through a sink and read them back through a source,
// record generators that fill every field, and field-by-field comparison
// with symbols compared by name.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Unique is prefix and 12 random hex digits: a stream, queue or topic no
// other test (or session) uses.
func Unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Node builds a registered component's node.
func Node(t testing.TB, typ, id string, params map[string]any) *engine.Node {
	t.Helper()
	spec, ok := component.Lookup(typ)
	if !ok {
		t.Fatalf("%s not registered", typ)
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	return component.Node(spec, p, component.NodeOptions{ID: id})
}

// Publish runs src -> sink (type typ with params) to the end.
func Publish(t testing.TB, typ string, src *enginetest.Source, params map[string]any) *engine.Job {
	t.Helper()
	g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", src.Kind(), src), Node(t, typ, "pub", params)},
		Edges: []*engine.Edge{{From: "src", To: "pub"}}}
	j, err := engine.New(g, engine.Options{Job: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return j
}

// Sink collects records with their symbols' names and the instance that
// received them.
type Sink struct {
	mu     sync.Mutex
	syms   *md.SymbolTable
	Trades []md.Trade
	Bars   []md.Bar
	Names  []string
}

// Open implements engine.Opener.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.syms = nc.Symbols
	return nil
}

// Process implements engine.Processor.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range b.Trades {
		s.Trades = append(s.Trades, t)
		s.Names = append(s.Names, s.syms.Get(t.Sym).Symbol)
	}
	for _, r := range b.Bars {
		s.Bars = append(s.Bars, r)
		s.Names = append(s.Names, s.syms.Get(r.Sym).Symbol)
	}
	return nil
}

// Len is the number of records received.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Trades) + len(s.Bars)
}

// ReadOptions shape a Read.
type ReadOptions struct {
	// Sources, when set, are the source nodes (all feeding the one Sink)
	// instead of one node of typ with params.
	Sources []*engine.Node
	// During runs after the job started.
	During func()
	// Settle is how long to wait after want records arrived, to catch
	// extra ones (0: 200ms).
	Settle time.Duration
	// Timeout for want records (0: 30s).
	Timeout time.Duration
	// Until, when set, is what Read waits for instead of want records
	// (asked every 10ms): Distinct(n) for a bus that delivers some
	// records twice.
	Until func(*Sink) bool
}

// Distinct is a ReadOptions.Until that holds once trades of n distinct
// Seq have arrived.
func Distinct(n int) func(*Sink) bool {
	seen := map[uint64]bool{}
	next := 0
	return func(s *Sink) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for ; next < len(s.Trades); next++ {
			seen[s.Trades[next].Seq] = true
		}
		return len(seen) >= n
	}
}

// Dedup is s without the trades whose Seq came before (at least once
// delivery: a record arrives again whole), in arrival order; bySeq sorts
// them by Seq (a bus that keeps no order across reconnects).
func Dedup(s *Sink, bySeq bool) *Sink {
	seen := map[uint64]bool{}
	out := &Sink{}
	for i, tr := range s.Trades {
		if !seen[tr.Seq] {
			seen[tr.Seq] = true
			out.Trades = append(out.Trades, tr)
			out.Names = append(out.Names, s.Names[i])
		}
	}
	if bySeq {
		idx := make([]int, len(out.Trades))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return out.Trades[idx[a]].Seq < out.Trades[idx[b]].Seq })
		sorted := &Sink{Trades: make([]md.Trade, 0, len(idx)), Names: make([]string, 0, len(idx))}
		for _, k := range idx {
			sorted.Trades = append(sorted.Trades, out.Trades[k])
			sorted.Names = append(sorted.Names, out.Names[k])
		}
		out = sorted
	}
	return out
}

// Read runs source typ -> one Sink instance until want records arrived
// (then Settle longer) and stops the job.
func Read(t testing.TB, typ string, params map[string]any, kind md.Kind, want int, o ReadOptions) (*Sink, *engine.Job) {
	t.Helper()
	srcs := o.Sources
	if srcs == nil {
		srcs = []*engine.Node{Node(t, typ, "sub", params)}
	}
	r := Start(t, srcs, kind, engine.Options{Job: "sub"})
	if o.During != nil {
		o.During()
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	done := o.Until
	if done == nil {
		done = func(s *Sink) bool { return s.Len() >= want }
	}
	deadline := time.Now().Add(timeout)
	for !done(r.Sink) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	settle := o.Settle
	if settle == 0 {
		settle = 200 * time.Millisecond
	}
	time.Sleep(settle)
	r.Stop(t)
	return r.Sink, r.Job
}

// Trades returns n trades with every field set, over len(syms) symbols.
func Trades(n int, syms []string) []md.Trade {
	out := make([]md.Trade, n)
	for i := range out {
		out[i] = md.Trade{TS: 1_700_000_000_000_000_000 + int64(i)*1_000_003, Ingest: 1_700_000_000_500_000_000 + int64(i),
			Price: 100 + float64(i%997)/8, Size: float64(i%13) * 0.001, TradeID: int64(i) * 7, Seq: uint64(i) + 1,
			Side: md.Side(i % 3), Sym: md.SymID(i % len(syms))}
	}
	return out
}

// Bars returns n bars with every field set, over len(syms) symbols.
func Bars(n int, syms []string) []md.Bar {
	out := make([]md.Bar, n)
	for i := range out {
		out[i] = md.Bar{Start: int64(i) * 1e9, End: int64(i+1) * 1e9, Interval: 1e9, Open: 1 + float64(i), High: 2 + float64(i),
			Low: 0.5, Close: 1.5, Volume: 3.25, VWAP: 1.25, Trades: int64(i), Sym: md.SymID(i % len(syms)),
			Type: md.BarType(i % 4), Source: md.BarSource(i % 5), LabelEnd: i%2 == 0, Update: i%5 == 0, Partial: i%3 == 0}
	}
	return out
}

// CheckTrades checks s received want (records of an enginetest.Source
// whose symbol ids index syms) in order, field by field.
func CheckTrades(t testing.TB, s *Sink, want []md.Trade, syms []string) {
	t.Helper()
	if len(s.Trades) != len(want) {
		t.Fatalf("%d trades, want %d", len(s.Trades), len(want))
	}
	for i := range want {
		g, w := s.Trades[i], want[i]
		if s.Names[i] != syms[w.Sym] {
			t.Fatalf("trade %d: symbol %s, want %s", i, s.Names[i], syms[w.Sym])
		}
		g.Sym, w.Sym = 0, 0
		if g != w {
			t.Fatalf("trade %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// CheckBars is CheckTrades for bars.
func CheckBars(t testing.TB, s *Sink, want []md.Bar, syms []string) {
	t.Helper()
	if len(s.Bars) != len(want) {
		t.Fatalf("%d bars, want %d", len(s.Bars), len(want))
	}
	for i := range want {
		g, w := s.Bars[i], want[i]
		if s.Names[i] != syms[w.Sym] {
			t.Fatalf("bar %d: symbol %s, want %s", i, s.Names[i], syms[w.Sym])
		}
		g.Sym, w.Sym = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("bar %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// CheckPerSymbolOrder checks that s holds exactly want's trades and that
// each symbol's trades came in want's order (the order across symbols may
// differ).
func CheckPerSymbolOrder(t testing.TB, s *Sink, want []md.Trade, syms []string) {
	t.Helper()
	if len(s.Trades) != len(want) {
		t.Fatalf("%d trades, want %d", len(s.Trades), len(want))
	}
	per := map[string][]md.Trade{}
	for _, w := range want {
		per[syms[w.Sym]] = append(per[syms[w.Sym]], w)
	}
	next := map[string]int{}
	for i, g := range s.Trades {
		name := s.Names[i]
		k := next[name]
		if k >= len(per[name]) {
			t.Fatalf("trade %d: more %s trades than sent", i, name)
		}
		w := per[name][k]
		g.Sym, w.Sym = 0, 0
		if g != w {
			t.Fatalf("%s trade %d out of order or changed:\n got %+v\nwant %+v", name, k, g, w)
		}
		next[name] = k + 1
	}
}

// NodeStatus returns node id's status in j.
func NodeStatus(j *engine.Job, id string) engine.NodeStatus {
	for _, n := range j.Status().Nodes {
		if n.ID == id {
			return n
		}
	}
	return engine.NodeStatus{}
}
