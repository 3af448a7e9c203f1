package engine_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// splitSource is a parallel source as Node.ParallelSource describes one:
// every instance walks the whole stream (n trades over syms symbols, trade
// i at event time i, in chunks of bs) and emits the trades of the symbols
// md.Split gives it, each chunk with EmitUpTo the chunk's last event time.
type splitSource struct {
	n, syms, bs int
	inst, insts int
}

func (s *splitSource) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.inst, s.insts = nc.Instance, nc.Instances
	return nil
}

func (s *splitSource) Run(ctx context.Context, out *engine.Output) error {
	st := out.Symbols()
	ids := make([]md.SymID, s.syms)
	own := make([]bool, s.syms)
	for k := range ids {
		ids[k] = st.Intern("test", fmt.Sprintf("S%02d", k))
		own[k] = md.Split(st.Snapshot()[ids[k]].Hash, md.SplitInstances, s.insts) == s.inst
	}
	for i := 0; i < s.n; i += s.bs {
		b := out.NewBatch(md.KindTrade)
		end := min(i+s.bs, s.n)
		for k := i; k < end; k++ {
			if own[k%s.syms] {
				b.Trades = append(b.Trades, md.Trade{TS: int64(k), Seq: uint64(k), Sym: ids[k%s.syms], Price: 1, Size: 1})
			}
		}
		if err := out.EmitUpTo(b, int64(end-1)); err != nil {
			return err
		}
	}
	return nil
}

func (s *splitSource) EventTimeOrdered() bool { return true }

func splitSourceNode(id string, par, n, syms, bs int) *engine.Node {
	return &engine.Node{ID: id, Type: "provider.split", Kind: engine.KindSource, Parallelism: par, ParallelSource: true,
		Ports:     map[string]md.Kind{engine.PortMain: md.KindTrade},
		NewSource: func(int) (engine.Source, error) { return &splitSource{n: n, syms: syms, bs: bs}, nil }}
}

// wmOp passes batches through and keeps, per instance, every input
// watermark it saw.
type wmOp struct {
	mu  sync.Mutex
	wms map[int][]int64
}

type wmOpInstance struct {
	op   *wmOp
	inst int
}

func (o *wmOpInstance) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

func (o *wmOpInstance) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	o.op.mu.Lock()
	defer o.op.mu.Unlock()
	o.op.wms[o.inst] = append(o.op.wms[o.inst], wm)
	return nil
}

// lastBeforeFinal is the watermark each instance saw last before the final
// one.
func (o *wmOp) lastBeforeFinal() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []int64
	for i := range len(o.wms) {
		w := o.wms[i]
		if len(w) < 2 || w[len(w)-1] != md.MaxTime {
			return nil
		}
		out = append(out, w[len(w)-2])
	}
	return out
}

func (o *wmOp) node(par int) *engine.Node {
	o.wms = map[int][]int64{}
	return &engine.Node{ID: "op", Type: "operator.wm", Kind: engine.KindOperator, Parallelism: par, Accepts: md.KindAny,
		Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput},
		NewProcessor: func(i int) (engine.Processor, error) {
			return &wmOpInstance{op: o, inst: i}, nil
		}}
}

// TestForwardEdgeChainsEachInstancePair: a splitting source at parallelism
// N feeding a node at N is a forward edge: instance i runs chained behind
// source instance i; at another parallelism, or with chaining off, the
// edge partitions through queues as before. A splitting source with no
// parallelism set runs as many instances as the node it feeds; an explicit
// parallelism 1 is kept.
func TestForwardEdgeChainsEachInstancePair(t *testing.T) {
	for _, c := range []struct {
		name    string
		src, op int // parallelism set; 0: unset
		opts    engine.Options
		chainTo string
		srcRuns int // source instances
	}{
		{"forward", 2, 2, engine.Options{}, "src", 2},
		{"forward of three", 3, 3, engine.Options{}, "src", 3},
		{"other parallelism", 2, 3, engine.Options{}, "", 2},
		{"chaining off", 2, 2, engine.Options{NoChaining: true}, "", 2},
		{"source unset", 0, 2, engine.Options{}, "src", 2},
		{"source unset, one receiver", 0, 1, engine.Options{}, "src", 1},
		{"source at 1", 1, 2, engine.Options{}, "", 1},
	} {
		op := &wmOp{}
		sink := &enginetest.Sink{}
		g := &engine.Graph{
			Nodes: []*engine.Node{splitSourceNode("src", c.src, 1000, 7, 50), op.node(c.op), enginetest.SinkNode("sink", sink)},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
		}
		j, err := engine.New(g, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sinkTo := "" // a sink behind one op instance is chained to it
		if c.op == 1 {
			sinkTo = "op"
		}
		if got, want := chainedTo(j.Status()), map[string]string{"src": "", "op": c.chainTo, "sink": sinkTo}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: chained %v, want %v", c.name, got, want)
		}
		if n := len(j.NodeContexts("src")); n != c.srcRuns {
			t.Errorf("%s: %d source instances, want %d", c.name, n, c.srcRuns)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := j.Run(ctx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cancel()
		if n := len(sink.Trades()); n != 1000 {
			t.Errorf("%s: the sink got %d trades, want 1000", c.name, n)
		}
	}
}

// TestForwardEdgeKeepsTheSerialStream: through a forward edge, chained or
// not, every symbol's trades arrive in stream order, exactly those of the
// one-instance run, and every instance of the receiver sees the serial
// source's last watermark before the final one (EmitUpTo), even an
// instance whose symbols ended earlier in the stream; the sink behind the
// N instances ends on the same watermark.
func TestForwardEdgeKeepsTheSerialStream(t *testing.T) {
	const n, syms = 5003, 5
	run := func(par int, opts engine.Options) ([]md.Trade, []int64, int64) {
		op := &wmOp{}
		sink := &enginetest.Sink{}
		g := &engine.Graph{
			Nodes: []*engine.Node{splitSourceNode("src", par, n, syms, 64), op.node(par), enginetest.SinkNode("sink", sink)},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
		}
		j, err := engine.New(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		wms := sink.Watermarks()
		if len(wms) < 2 {
			t.Fatalf("parallelism %d: the sink saw watermarks %v", par, wms)
		}
		return sink.Trades(), op.lastBeforeFinal(), wms[len(wms)-2]
	}
	want, wantLast, wantSink := run(1, engine.Options{})
	if len(want) != n || !slices.Equal(wantLast, []int64{n - 1}) || wantSink != n-1 {
		t.Fatalf("serial run: %d trades, last watermarks %v, sink %d", len(want), wantLast, wantSink)
	}
	bySym := func(rs []md.Trade) map[md.SymID][]md.Trade {
		m := map[md.SymID][]md.Trade{}
		for _, r := range rs {
			m[r.Sym] = append(m[r.Sym], r)
		}
		return m
	}
	for _, par := range []int{2, 3} {
		for _, opts := range []engine.Options{{}, {NoChaining: true}} {
			got, last, sinkLast := run(par, opts)
			if !reflect.DeepEqual(bySym(got), bySym(want)) {
				t.Fatalf("parallelism %d (chaining off: %v): the trades per symbol differ from the serial run", par, opts.NoChaining)
			}
			if len(last) != par || slices.ContainsFunc(last, func(w int64) bool { return w != n-1 }) || sinkLast != n-1 {
				t.Fatalf("parallelism %d (chaining off: %v): last watermarks before the final one %v (sink %d), want %d on every instance",
					par, opts.NoChaining, last, sinkLast, n-1)
			}
		}
	}
}

// TestInstancesHaveTheirOwnPools: every node instance allocates batches
// from a pool of its own, so instances on different cores never take one
// free list's lock; the job's output is unchanged.
func TestInstancesHaveTheirOwnPools(t *testing.T) {
	op := &wmOp{}
	sink := &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{splitSourceNode("src", 2, 1000, 7, 50), op.node(3), enginetest.SinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[*md.Pool]string{}
	for _, id := range []string{"src", "op", "sink"} {
		for i, nc := range j.NodeContexts(id) {
			name := fmt.Sprintf("%s[%d]", id, i)
			if nc.Pool == nil {
				t.Fatalf("%s has no pool", name)
			}
			if prev, ok := owner[nc.Pool]; ok {
				t.Errorf("%s shares its pool with %s", name, prev)
			}
			owner[nc.Pool] = name
		}
	}
	if len(owner) != 6 {
		t.Errorf("%d pools for 6 instances", len(owner))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.Trades()); n != 1000 {
		t.Errorf("the sink got %d trades, want 1000", n)
	}
}
