package synthetic

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	_ "github.com/mdpio/mdp/operator/bars"
)

// collector keeps every batch it gets, from any number of instances.
type collector struct {
	mu     sync.Mutex
	trades []md.Trade
	quotes []md.Quote
	bars   []md.Bar
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trades = append(c.trades, b.Trades...)
	c.quotes = append(c.quotes, b.Quotes...)
	c.bars = append(c.bars, b.Bars...)
	return nil
}

// runParallel runs provider.synthetic at parallelism p, optionally through
// operator.bars (1s) at parallelism p, into a collector.
func runParallel(t *testing.T, params map[string]any, p int, bars bool) *collector {
	t.Helper()
	node := func(typ, id string, params map[string]any) *engine.Node {
		spec, ok := component.Lookup(typ)
		if !ok {
			t.Fatalf("%s is not registered", typ)
		}
		ps, err := component.NewParams(spec, params)
		if err != nil {
			t.Fatal(err)
		}
		return component.Node(spec, ps, component.NodeOptions{ID: id, Parallelism: p})
	}
	c := &collector{}
	g := &engine.Graph{Nodes: []*engine.Node{node("provider.synthetic", "src", params),
		{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return c, nil }}}}
	if bars {
		g.Nodes = append(g.Nodes, node("operator.bars", "bars", map[string]any{"interval": "1s"}))
		g.Edges = []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}}
	} else {
		g.Edges = []*engine.Edge{{From: "src", To: "sink"}}
	}
	j, err := engine.New(g, engine.Options{Job: "parallel"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(j.NodeContexts("src")); n != p {
		t.Fatalf("%d source instances, want %d", n, p)
	}
	return c
}

// names returns n distinct symbol names.
func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("N%04d", i)
	}
	return s
}

// TestParallelSourceEmitsTheSerialStream: with parallelism N the instances
// split the symbols and together emit exactly the records of the
// one-instance source (ordered by sequence, identical), for every model and
// kind, paced or not.
func TestParallelSourceEmitsTheSerialStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
	}{
		{"bench", map[string]any{"model": "bench", "n": 30_000, "symbol_count": 20, "batch_size": 700}},
		{"bench most symbols", map[string]any{"model": "bench", "n": 50_000, "symbol_count": benchMaxSymbols, "batch_size": 4096}},
		{"bench one symbol", map[string]any{"model": "bench", "n": 5000, "symbol_count": 1, "batch_size": 100}},
		{"bench paced", map[string]any{"model": "bench", "n": 3000, "symbol_count": 7, "rate": 100_000}},
		{"random trades", map[string]any{"count": 20_000, "symbols": []string{"A", "B", "C", "D", "E", "F", "G"}, "seed": 7}},
		{"random quotes", map[string]any{"count": 20_000, "kind": "quote", "symbols": []string{"A", "B", "C", "D", "E"}}},
		{"paced", map[string]any{"count": 3000, "rate": 100_000, "symbols": []string{"A", "B", "C", "D"}}},
		{"random quotes odd batches", map[string]any{"count": 20_011, "kind": "quote", "symbols": names(20), "batch_size": 333, "seed": 3}},
		{"random most symbols", map[string]any{"count": 30_000, "symbols": names(benchMaxSymbols)}},
		{"random more symbols than the two passes take", map[string]any{"count": 30_000, "symbols": names(benchMaxSymbols + 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := runParallel(t, tc.params, 1, false)
			for _, p := range []int{2, 3} {
				got := runParallel(t, tc.params, p, false)
				slices.SortFunc(got.trades, func(a, b md.Trade) int { return int(a.Seq) - int(b.Seq) })
				slices.SortFunc(got.quotes, func(a, b md.Quote) int { return int(a.Seq) - int(b.Seq) })
				switch tc.name {
				case "paced": // ingest (and event) time is the wall clock at emission
					for _, rs := range [][]md.Trade{want.trades, got.trades} {
						for i := range rs {
							rs[i].TS, rs[i].Ingest = 0, 0
						}
					}
				case "bench paced": // ingest time is the wall clock at emission
					for i := range got.trades {
						if got.trades[i].Ingest < time.Now().Add(-time.Hour).UnixNano() {
							t.Fatalf("trade %d: ingest %d is not the wall clock", i, got.trades[i].Ingest)
						}
					}
					for _, rs := range [][]md.Trade{want.trades, got.trades} {
						for i := range rs {
							rs[i].Ingest = 0
						}
					}
				}
				if len(got.trades)+len(got.quotes) == 0 || !slices.Equal(got.trades, want.trades) || !slices.Equal(got.quotes, want.quotes) {
					t.Fatalf("parallelism %d: %d trades and %d quotes differ from the serial %d and %d",
						p, len(got.trades), len(got.quotes), len(want.trades), len(want.quotes))
				}
			}
		})
	}
}

// TestParallelSourceBarsEqualSerial: the bench workload at parallelism 2
// and 3 (source and bars) builds exactly the serial bars.
func TestParallelSourceBarsEqualSerial(t *testing.T) {
	params := map[string]any{"model": "bench", "n": 300_000, "symbol_count": 30}
	byKey := func(a, b md.Bar) int {
		if a.Sym != b.Sym {
			return int(a.Sym) - int(b.Sym)
		}
		return int(a.Start - b.Start)
	}
	want := runParallel(t, params, 1, true).bars
	slices.SortFunc(want, byKey)
	if len(want) != 30*3 {
		t.Fatalf("serial run built %d bars, want 90", len(want))
	}
	for _, p := range []int{2, 3} {
		got := runParallel(t, params, p, true).bars
		slices.SortFunc(got, byKey)
		if !slices.Equal(got, want) {
			t.Fatalf("parallelism %d: %d bars differ from the serial %d", p, len(got), len(want))
		}
	}
}

// nopStore is a checkpoint store that keeps nothing.
type nopStore struct{}

func (nopStore) Save(context.Context, *engine.Checkpoint) (int64, error) { return 0, nil }

// TestParallelSourceRefusesCheckpoints: several instances of a splitting
// source do not yet resume exactly, so a job that sets the source's
// parallelism above 1 and takes checkpoints is refused at build.
func TestParallelSourceRefusesCheckpoints(t *testing.T) {
	spec, _ := component.Lookup("provider.synthetic")
	ps, err := component.NewParams(spec, map[string]any{"model": "bench", "n": 1000})
	if err != nil {
		t.Fatal(err)
	}
	src := component.Node(spec, ps, component.NodeOptions{ID: "src", Parallelism: 2})
	c := &collector{}
	g := &engine.Graph{Nodes: []*engine.Node{src, {ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return c, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "sink"}}}
	_, err = engine.New(g, engine.Options{Job: "parallel", Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: nopStore{}}})
	want := `node "src": a provider.synthetic source at parallelism 2 cannot take checkpoints yet; set its parallelism to 1 (the nodes after it keep theirs)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestSourceParallelismNeedsASplittingSource: a source that does not split
// its input keeps refusing parallelism.
func TestSourceParallelismNeedsASplittingSource(t *testing.T) {
	src := &engine.Node{ID: "src", Type: "provider.test", Kind: engine.KindSource, Parallelism: 2, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
		NewSource: func(int) (engine.Source, error) { return &Source{}, nil }}
	sink := &engine.Node{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return &collector{}, nil }}
	_, err := engine.New(&engine.Graph{Nodes: []*engine.Node{src, sink}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}, engine.Options{})
	want := `invalid graph: node "src": provider.test runs as one instance; parallelism applies to operators, sinks and the sources that split their input (provider.synthetic)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
