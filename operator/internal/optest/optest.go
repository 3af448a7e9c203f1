// Package optest runs one registered operator through the real engine, for
// the operators' tests: records from an enginetest.Source go into the
// operator, built from its component spec and params with a given
// parallelism, and what reaches each wired output port is collected.
package optest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Collector is a sink that keeps every record it receives, derived ones
// with their schema and values.
type Collector struct {
	mu      sync.Mutex
	Trades  []md.Trade
	Quotes  []md.Quote
	Bars    []md.Bar
	Derived []md.Derived
	Values  [][]md.Value
	Schema  *md.Schema
	Reasons []string
}

// Process implements engine.Processor.
func (c *Collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Trades = append(c.Trades, b.Trades...)
	c.Quotes = append(c.Quotes, b.Quotes...)
	c.Bars = append(c.Bars, b.Bars...)
	for i := range b.Derived {
		c.Derived = append(c.Derived, b.Derived[i])
		c.Values = append(c.Values, append([]md.Value(nil), b.Row(i)...))
		c.Schema = b.Schema
	}
	if b.Reason != "" {
		c.Reasons = append(c.Reasons, b.Reason)
	}
	return nil
}

// Result is what one run produced.
type Result struct {
	Ports  map[string]*Collector // by output port ("" is the main one)
	Drops  map[string]int64      // the operator's drops, over its instances
	Counts map[string]int64      // the operator's counters, over its instances
	Syms   *md.SymbolTable
}

// Job is one run: Src feeds the operator of type Type with Params and
// Parallelism; Ports are the output ports to collect besides the main one.
type Job struct {
	Src         *enginetest.Source
	Type        string
	Params      map[string]any
	Parallelism int
	Ports       []string
	// OOO is the source's max_out_of_orderness.
	OOO time.Duration
	// Inputs, for Resume, feed named input ports instead of Src.
	Inputs Inputs
	// Upstream, when set, runs between the source and the operator (one
	// instance), so the operator takes its output: derived records of
	// the schema it declares, say.
	Upstream *Stage
}

// Stage is one more operator in a Job.
type Stage struct {
	Type   string
	Params map[string]any
}

// Run runs j and fails t on any error.
func Run(t testing.TB, j Job) Result {
	t.Helper()
	res, err := Try(t, j)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Try runs j and returns the error building or running it gave.
func Try(t testing.TB, j Job) (Result, error) {
	t.Helper()
	g, _, _, res := build(t, j)
	job, err := engine.New(g, engine.Options{Job: "optest", Symbols: res.Syms})
	if err != nil {
		return res, fmt.Errorf("build: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		return res, fmt.Errorf("run: %w", err)
	}
	for _, nc := range job.NodeContexts("op") {
		for k, v := range nc.Stats.Drops() {
			res.Drops[k] += v
		}
		for k, v := range nc.Stats.Counters() {
			res.Counts[k] += v
		}
	}
	return res, nil
}

// Check builds j's graph without running it, validates it and runs the
// operator's component.Spec.CheckInputs against what reaches it: the
// errors a job file gets when it is loaded.
func Check(t testing.TB, j Job) []*component.FieldError {
	t.Helper()
	g, spec, p, _ := build(t, j)
	if errs := g.Validate(); len(errs) > 0 {
		t.Fatalf("graph: %v", errs[0])
	}
	return component.CheckInputs(spec, p, g.Nodes[len(g.Nodes)-1])
}

func params(t testing.TB, typ string, m map[string]any) (*component.Spec, *component.Params) {
	t.Helper()
	spec, ok := component.Lookup(typ)
	if !ok {
		t.Fatalf("no component %s", typ)
	}
	p, err := component.NewParams(spec, m)
	if err != nil {
		t.Fatalf("params of %s: %v", typ, err)
	}
	return spec, p
}

// build makes j's graph; the operator is its last node.
func build(t testing.TB, j Job) (*engine.Graph, *component.Spec, *component.Params, Result) {
	t.Helper()
	spec, p := params(t, j.Type, j.Params)
	src := enginetest.SourceNode("src", j.Src.Kind(), j.Src)
	src.MaxOutOfOrderness = j.OOO
	res := Result{Ports: map[string]*Collector{}, Drops: map[string]int64{}, Counts: map[string]int64{}, Syms: md.NewSymbolTable()}
	g := &engine.Graph{Nodes: []*engine.Node{src}}
	from := "src"
	if j.Upstream != nil {
		us, up := params(t, j.Upstream.Type, j.Upstream.Params)
		g.Nodes = append(g.Nodes, component.Node(us, up, component.NodeOptions{ID: "up"}))
		g.Edges = append(g.Edges, &engine.Edge{From: "src", To: "up"})
		from = "up"
	}
	g.Edges = append(g.Edges, &engine.Edge{From: from, To: "op"})
	for _, port := range append([]string{engine.PortMain}, j.Ports...) {
		c := &Collector{}
		res.Ports[port] = c
		id := "sink_" + port
		if port == "" {
			id = "sink_main"
		}
		g.Nodes = append(g.Nodes, enginetest.SinkNode(id, c))
		g.Edges = append(g.Edges, &engine.Edge{From: "op", FromPort: port, To: id})
	}
	g.Nodes = append(g.Nodes, component.Node(spec, p, component.NodeOptions{ID: "op", Parallelism: j.Parallelism}))
	return g, spec, p, res
}

// Params decodes params for type typ and returns the error (nil if valid).
func Params(typ string, params map[string]any) error {
	spec, ok := component.Lookup(typ)
	if !ok {
		panic("no component " + typ)
	}
	_, err := component.NewParams(spec, params)
	return err
}

// ReportPerRecord reports ns/record (wall) and cpu-ns/record (process CPU
// since cpu0, steadier on a loaded machine) for b.N rounds of perRound
// records; call it at the end of a benchmark with cpu0 = CPUTime() taken
// after ResetTimer.
func ReportPerRecord(b *testing.B, perRound int, cpu0 time.Duration) {
	n := float64(b.N * perRound)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64((CPUTime()-cpu0).Nanoseconds())/n, "cpu-ns/record")
}
