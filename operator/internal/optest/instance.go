package optest

import (
	"context"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Instance is one instance of a registered operator driven directly, on
// the test's goroutine, as a node instance drives it (Process,
// ProcessPort, OnWatermark), without the engine's queues: for hand-written
// inputs and for benchmarks. What it emits is kept per port until Drain.
type Instance struct {
	T    testing.TB
	Impl any // what the spec built: the operator's own type
	Out  *enginetest.Output

	ports []string
}

// NewInstance builds instance 0 of 1 of the operator typ with params, its
// output having the main port and ports, interns symbols (provider "test")
// in that order so that the first is md.SymID 0, and opens it.
func NewInstance(t testing.TB, typ string, params map[string]any, symbols []string, ports ...string) *Instance {
	t.Helper()
	spec, ok := component.Lookup(typ)
	if !ok {
		t.Fatalf("%s is not registered", typ)
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatalf("new %s: %v", typ, err)
	}
	in := &Instance{T: t, Impl: impl, Out: enginetest.NewOutput(nil, 0, ports...), ports: append([]string{engine.PortMain}, ports...)}
	for _, s := range symbols {
		in.Out.NC.Symbols.Intern("test", s)
	}
	if o, ok := impl.(engine.Opener); ok {
		if err := o.Open(context.Background(), in.Out.NC); err != nil {
			t.Fatalf("open %s: %v", typ, err)
		}
	}
	return in
}

// Process hands b to the instance's main input and fails the test on an
// error.
func (in *Instance) Process(b *md.Batch) {
	in.T.Helper()
	if err := in.Impl.(engine.Processor).Process(context.Background(), b, in.Out.Output); err != nil {
		in.T.Fatal(err)
	}
}

// ProcessPort hands b to input port (engine.PortProcessor's numbering).
func (in *Instance) ProcessPort(port int, b *md.Batch) {
	in.T.Helper()
	if err := in.Impl.(engine.PortProcessor).ProcessPort(context.Background(), port, b, in.Out.Output); err != nil {
		in.T.Fatal(err)
	}
}

// Watermark passes watermark wm to the instance (engine.WatermarkHandler).
func (in *Instance) Watermark(wm int64) {
	in.T.Helper()
	if err := in.Impl.(engine.WatermarkHandler).OnWatermark(context.Background(), wm, in.Out.Output); err != nil {
		in.T.Fatal(err)
	}
}

// Drain returns the batches emitted on port since the last Drain; the
// caller releases them.
func (in *Instance) Drain(port string) []*md.Batch { return in.Out.Drain(port) }

// Bench measures an operator's steady state: b.N rounds of round(i), each
// feeding the instance perRound records (and any watermark) through in;
// it reports allocations and ns and CPU ns per record
// (ReportPerRecord). warm rounds run first, untimed, so that state, pools
// and timer lists have reached their steady size. Emitted batches are
// released every 16 rounds (the pool keeps them for reuse): draining
// allocates the slice it returns, which is the harness's cost, not the
// operator's, and draining every round would show as one allocation per
// round (an operator emitting on several ports, as hash_partition does,
// still shows about one per round: a slice per port per drain, growing).
func Bench(b *testing.B, in *Instance, perRound, warm int, round func(i int)) {
	release := func() {
		for _, port := range in.ports {
			for _, o := range in.Drain(port) {
				o.Release()
			}
		}
	}
	for i := range warm {
		round(i)
		if i%16 == 15 {
			release()
		}
	}
	release()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := CPUTime()
	for i := range b.N {
		round(warm + i)
		if i%16 == 15 {
			release()
		}
	}
	b.StopTimer()
	release()
	ReportPerRecord(b, perRound, cpu0)
}

// Trades hands the trades ts, as one batch, to the instance's main input.
func (in *Instance) Trades(ts ...md.Trade) {
	in.T.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	in.Process(b)
}

// Row is a derived record: its symbol, event time and values, integers
// converted to float64.
type Row struct {
	Sym md.SymID
	TS  int64
	V   []float64
}

// Rows returns the derived records of bs, in order, and releases bs.
func Rows(bs []*md.Batch) []Row {
	var out []Row
	for _, b := range bs {
		for i, d := range b.Derived {
			r := Row{Sym: d.Sym, TS: d.TS}
			for j, x := range b.Row(i) {
				if b.Schema.Field(j).Type == md.Int {
					r.V = append(r.V, float64(x.Int()))
				} else {
					r.V = append(r.V, x.Float())
				}
			}
			out = append(out, r)
		}
		b.Release()
	}
	return out
}

// Rows returns the derived records c received, as Rows, in arrival order.
func (c *Collector) Rows() []Row {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Row, len(c.Derived))
	for i, d := range c.Derived {
		r := Row{Sym: d.Sym, TS: d.TS, V: make([]float64, len(c.Values[i]))}
		for j, x := range c.Values[i] {
			if c.Schema.Field(j).Type == md.Int {
				r.V[j] = float64(x.Int())
			} else {
				r.V[j] = x.Float()
			}
		}
		out[i] = r
	}
	return out
}
