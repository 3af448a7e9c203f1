package engine_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// chainedTo maps each node of a status to the node it is chained to.
func chainedTo(st engine.Status) map[string]string {
	out := map[string]string{}
	for _, n := range st.Nodes {
		out[n.ID] = n.ChainedTo
	}
	return out
}

// timerOp passes batches through and, on every timer tick, emits one trade
// at event time 1000+ticks (so the sink can tell them apart).
type timerOp struct {
	ticks atomic.Int64
}

func (o *timerOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

func (o *timerOp) TimerInterval() time.Duration { return 5 * time.Millisecond }

func (o *timerOp) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	n := o.ticks.Add(1)
	b := out.NewBatch(md.KindTrade)
	b.Trades = append(b.Trades, md.Trade{TS: 1000 + n, Price: 1, Size: 1, Sym: out.Symbols().Intern("test", "T")})
	return out.Emit(b)
}

func TestChainingWiresOnlyOneToOneEdges(t *testing.T) {
	sink := func(id string) *engine.Node { return enginetest.SinkNode(id, &enginetest.Sink{}) }
	noChain := opNode("op", 1)
	noChain.NoChain = true
	timers := &engine.Node{ID: "op", Type: "operator.timer", Kind: engine.KindOperator, Accepts: md.KindAny,
		Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput}, NewProcessor: func(int) (engine.Processor, error) { return &timerOp{}, nil }}
	cases := []struct {
		name string
		g    *engine.Graph
		opts engine.Options
		want map[string]string
	}{
		{"linear", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), opNode("op", 1), sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}}},
			engine.Options{}, map[string]string{"src": "", "op": "src", "sink": "op"}},
		{"job switch off", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), opNode("op", 1), sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}}},
			engine.Options{NoChaining: true}, map[string]string{"src": "", "op": "", "sink": ""}},
		{"node switch off", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), noChain, sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}}},
			engine.Options{}, map[string]string{"src": "", "op": "", "sink": ""}},
		{"fan-out", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), sink("a"), sink("b")},
			Edges: []*engine.Edge{{From: "src", To: "a"}, {From: "src", To: "b"}}},
			engine.Options{}, map[string]string{"src": "", "a": "", "b": ""}},
		{"fan-in", &engine.Graph{
			Nodes: []*engine.Node{srcNode("a", gen(10, 5, 1)), srcNode("b", gen(10, 5, 1)), sink("sink")},
			Edges: []*engine.Edge{{From: "a", To: "sink"}, {From: "b", To: "sink"}}},
			engine.Options{}, map[string]string{"a": "", "b": "", "sink": ""}},
		{"parallel", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 3)), opNode("op", 2), sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}}},
			engine.Options{}, map[string]string{"src": "", "op": "", "sink": ""}},
		{"drop policy", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "sink", Policy: engine.DropNewest}}},
			engine.Options{}, map[string]string{"src": "", "sink": ""}},
		{"timers", &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(10, 5, 1)), timers, sink("sink")},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}}},
			engine.Options{}, map[string]string{"src": "", "op": "", "sink": "op"}},
	}
	for _, c := range cases {
		j, err := engine.New(c.g, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := chainedTo(j.Status()); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: chained %v, want %v", c.name, got, c.want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := j.Run(ctx); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		cancel()
	}
}

// holdOp holds the watermark it forwards 5 ns behind its input and emits,
// on every watermark, one trade stamped with it: its output depends on
// when watermarks arrive relative to batches.
type holdOp struct{}

func (holdOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

func (holdOp) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm == md.MaxTime {
		return nil
	}
	b := out.NewBatch(md.KindTrade)
	b.Trades = append(b.Trades, md.Trade{TS: wm, Price: 2, Size: 2, Sym: out.Symbols().Intern("test", "WM")})
	return out.Emit(b)
}

func (holdOp) OutputWatermark(wm int64) int64 { return wm - 5 }

// TestChainedAndUnchainedRunsAgree: the same job with chaining on, off for
// the job and off for one node delivers the same records and the same
// watermarks to its sink, and the same counts in its status.
func TestChainedAndUnchainedRunsAgree(t *testing.T) {
	type result struct {
		trades []md.Trade
		wms    []int64
		counts [][2]int64
	}
	run := func(opts engine.Options, noChainOp bool) result {
		c := &enginetest.Sink{}
		src := gen(5000, 37, 5)
		// Out of order by up to 3, some beyond: watermarks cut batches.
		for i := range src.Trades {
			src.Trades[i].TS += int64((i * 7) % 11)
		}
		op := &engine.Node{ID: "op", Type: "operator.hold", Kind: engine.KindOperator, Accepts: md.KindAny, NoChain: noChainOp,
			Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput}, NewProcessor: func(int) (engine.Processor, error) { return holdOp{}, nil }}
		s := srcNode("src", src)
		s.MaxOutOfOrderness = 3
		g := &engine.Graph{
			Nodes: []*engine.Node{s, op, opNode("pass", 1), enginetest.SinkNode("sink", c)},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "pass"}, {From: "pass", To: "sink"}},
		}
		j, err := engine.New(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := j.Run(ctx); err != nil {
			t.Fatal(err)
		}
		r := result{trades: c.Trades(), wms: c.Watermarks()}
		for _, n := range j.Status().Nodes {
			r.counts = append(r.counts, [2]int64{n.EventsIn, n.EventsOut})
		}
		return r
	}
	want := run(engine.Options{NoChaining: true}, false)
	if len(want.trades) <= 5000 || len(want.wms) < 10 {
		t.Fatalf("unchained run: %d trades, %d watermarks", len(want.trades), len(want.wms))
	}
	for _, v := range []struct {
		name    string
		opts    engine.Options
		noChain bool
	}{{"chained", engine.Options{}, false}, {"op not chained", engine.Options{}, true}} {
		got := run(v.opts, v.noChain)
		if !reflect.DeepEqual(got.trades, want.trades) {
			t.Errorf("%s: %d trades differ from the unchained run's %d", v.name, len(got.trades), len(want.trades))
		}
		if !reflect.DeepEqual(got.wms, want.wms) {
			t.Errorf("%s: watermarks %v, unchained %v", v.name, got.wms, want.wms)
		}
		if !reflect.DeepEqual(got.counts, want.counts) {
			t.Errorf("%s: counts %v, unchained %v", v.name, got.counts, want.counts)
		}
	}
}

// cleanSink counts its Cleanup calls and fails (panics or errs) on its
// third batch.
type cleanSink struct {
	panics  bool
	n       int
	cleaned atomic.Int64
}

func (s *cleanSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.n++
	if s.n == 3 {
		if s.panics {
			panic("sink exploded")
		}
		return errors.New("sink refused")
	}
	return nil
}

func (s *cleanSink) Cleanup(ctx context.Context) error {
	s.cleaned.Add(1)
	return nil
}

// cleanSource is a source with a Cleanup count.
type cleanSource struct {
	enginetest.Source
	cleaned atomic.Int64
}

func (s *cleanSource) Cleanup(ctx context.Context) error {
	s.cleaned.Add(1)
	return nil
}

// TestChainedNodeFailsInItsOwnName: a chained sink that panics or errs
// fails the job as itself (the method named), its source stops as
// aborted, and both get their Cleanup once; under on_error skip the error
// is counted and the job goes on.
func TestChainedNodeFailsInItsOwnName(t *testing.T) {
	for _, v := range []struct {
		name   string
		panics bool
		policy engine.ErrorPolicy
	}{{"panic", true, engine.OnErrorFail}, {"error", false, engine.OnErrorFail}, {"skip", false, engine.OnErrorSkip}} {
		src := &cleanSource{Source: *gen(1000, 10, 1)}
		sink := &cleanSink{panics: v.panics}
		sn := enginetest.SinkNode("sink", nil)
		sn.OnError = v.policy
		sn.NewProcessor = func(int) (engine.Processor, error) { return sink, nil }
		g := &engine.Graph{Nodes: []*engine.Node{srcNode("src", src), sn}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}
		j, err := engine.New(g, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = j.Run(ctx)
		cancel()
		st := j.Status()
		if st.Nodes[1].ChainedTo != "src" {
			t.Fatalf("%s: sink not chained: %+v", v.name, st.Nodes[1])
		}
		if src.cleaned.Load() != 1 || sink.cleaned.Load() != 1 {
			t.Errorf("%s: cleanups src %d sink %d, want 1 each", v.name, src.cleaned.Load(), sink.cleaned.Load())
		}
		if v.policy == engine.OnErrorSkip {
			if err != nil || st.Nodes[1].Drops["error"] != 10 || st.Nodes[1].EventsIn != 1000 || st.Nodes[1].State != "done" {
				t.Errorf("%s: err %v, sink %+v", v.name, err, st.Nodes[1])
			}
			continue
		}
		var ne *engine.NodeError
		if !errors.As(err, &ne) || ne.Node != "sink" {
			t.Fatalf("%s: job error %v, want the sink's", v.name, err)
		}
		var pe *engine.PanicError
		if v.panics != errors.As(err, &pe) || (v.panics && pe.Op != "Process") {
			t.Errorf("%s: job error %v", v.name, err)
		}
		if st.Nodes[0].State != "aborted" || st.Nodes[1].State != "failed" {
			t.Errorf("%s: states src %s sink %s, want aborted and failed", v.name, st.Nodes[0].State, st.Nodes[1].State)
		}
	}
}

// TestTimersRunBehindABlockedSource: a node with processing-time timers is
// not chained, so its timers fire while its source waits for data that does
// not come; the sink chained behind it receives what the timers emit; and
// a chained node behind an idle source still sees its idle watermark.
func TestTimersRunBehindABlockedSource(t *testing.T) {
	op := &timerOp{}
	c := &enginetest.Sink{}
	src := &enginetest.Source{Symbols: enginetest.Symbols(1), Trades: enginetest.Trades(10, 1, 0), Hold: true}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src),
			{ID: "op", Type: "operator.timer", Kind: engine.KindOperator, Accepts: md.KindAny,
				Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput}, NewProcessor: func(int) (engine.Processor, error) { return op, nil }},
			enginetest.SinkNode("sink", c)},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := chainedTo(j.Status()); got["op"] != "" || got["sink"] != "op" {
		t.Fatalf("chained %v", got)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source to emit everything", func() bool { return src.Emitted() == 10 })
	waitFor(t, "three timer ticks behind the blocked source", func() bool { return op.ticks.Load() >= 3 })
	j.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	ticks := int(op.ticks.Load())
	trades := c.Trades()
	if len(trades) != 10+ticks || trades[10].TS != 1001 {
		t.Fatalf("sink got %d trades after %d ticks", len(trades), ticks)
	}

	// An idle source's watermark advance runs the chained sink too.
	c2 := &enginetest.Sink{}
	idle := srcNode("src", &enginetest.Source{Symbols: enginetest.Symbols(1), Trades: enginetest.Trades(10, 1, 0), Hold: true})
	idle.IdleTimeout = 10 * time.Millisecond
	j2, err := engine.New(&engine.Graph{Nodes: []*engine.Node{idle, enginetest.SinkNode("sink", c2)},
		Edges: []*engine.Edge{{From: "src", To: "sink"}}}, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := chainedTo(j2.Status()); got["sink"] != "src" {
		t.Fatalf("chained %v", got)
	}
	if err := j2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle watermark to reach the chained sink", func() bool {
		return j2.Status().Nodes[1].Watermark > time.Now().Add(-time.Hour).UnixNano()
	})
	j2.Stop()
	if err := j2.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestChainedBusyIsTheNodesOwn: the time a source spends running its slow
// chained sink counts as the sink's busy time, not the source's, so the
// status does not call the source the bottleneck.
func TestChainedBusyIsTheNodesOwn(t *testing.T) {
	defer engine.SetSourceBoundAfter(50 * time.Millisecond)()
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(200, 10, 1)), enginetest.SinkNode("sink", &sleepySink{pause: 5 * time.Millisecond})},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	g.Nodes[1].NewProcessor = func(int) (engine.Processor, error) { return &sleepySink{pause: 5 * time.Millisecond}, nil }
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := j.Status()
	src, sink := st.Nodes[0], st.Nodes[1]
	if sink.ChainedTo != "src" || src.ChainedNs < 20*int64(5*time.Millisecond) || sink.BusyNs < 20*int64(5*time.Millisecond) {
		t.Fatalf("source %+v\nsink %+v", src, sink)
	}
	if src.BusyFraction > 0.5 || sink.BusyFraction < 0.5 || st.Bottleneck != "" {
		t.Fatalf("busy: source %.2f sink %.2f; bottleneck %q", src.BusyFraction, sink.BusyFraction, st.Bottleneck)
	}
}

// TestChainedSinkSnapshotsInCheckpoints: a sink chained to its source
// still aligns, snapshots and acknowledges every checkpoint barrier: the
// last checkpoint of a finished job holds the sink's full count.
func TestChainedSinkSnapshotsInCheckpoints(t *testing.T) {
	s, c := &seekSource{n: 20000, bs: 50}, &countSink{}
	g := &engine.Graph{Nodes: []*engine.Node{
		{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
			NewSource: func(int) (engine.Source, error) { return s, nil }},
		{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return c, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "count"}}}
	store := &memStore{}
	j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Millisecond, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if got := chainedTo(j.Status()); got["count"] != "src" {
		t.Fatalf("chained %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.cps) == 0 {
		t.Fatal("no checkpoint saved")
	}
	for _, cp := range store.cps {
		// The sink counted exactly what the source had emitted at the barrier.
		if st := states(cp); st["src"] != st["count"] {
			t.Fatalf("checkpoint %d: source at %d, sink counted %d", cp.ID, st["src"], st["count"])
		}
	}
}
