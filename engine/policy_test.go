package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// gateSink blocks in Process until its gate is opened.
type gateSink struct {
	enginetest.Sink
	gate    chan struct{}
	entered atomic.Int64
}

func (g *gateSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	g.entered.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Sink.Process(ctx, b, out)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBackpressureBlocksTheSource(t *testing.T) {
	s := &gateSink{gate: make(chan struct{})}
	src := gen(100*10, 10, 1)
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src), enginetest.SinkNode("sink", s)},
		Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: 4}},
	}
	g.Nodes[1].NewProcessor = func(int) (engine.Processor, error) { return s, nil }
	// The queue is what is under test: a chained sink would have none.
	j, err := engine.New(g, engine.Options{NoChaining: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sink to take a batch", func() bool { return s.entered.Load() == 1 })
	// The sink holds one batch, the queue holds 4, the source blocks on the 6th.
	waitFor(t, "queue to fill", func() bool { return j.Status().Edges[0].Depth == 4 })
	time.Sleep(50 * time.Millisecond)
	if got := j.Status().Nodes[0].EventsOut; got > 6*10 {
		t.Fatalf("source emitted %d records past a full queue", got)
	}
	close(s.gate)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(s.Trades()) != 1000 {
		t.Fatalf("sink got %d of 1000", len(s.Trades()))
	}
	if j.Status().Nodes[0].BlockedNs == 0 {
		t.Fatal("source blocked time not counted")
	}
}

func TestDropPoliciesCountEveryDrop(t *testing.T) {
	for _, pol := range []engine.Policy{engine.DropNewest, engine.DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			s := &gateSink{gate: make(chan struct{})}
			g := &engine.Graph{
				Nodes: []*engine.Node{srcNode("src", gen(1000, 10, 1)), enginetest.SinkNode("sink", nil)},
				Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: 3, Policy: pol}},
			}
			g.Nodes[1].NewProcessor = func(int) (engine.Processor, error) { return s, nil }
			j, err := engine.New(g, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The source never blocks on data: it emits everything while the sink
			// is stuck (only its end-of-stream mark waits for room).
			waitFor(t, "source to emit all", func() bool { return j.Status().Nodes[0].EventsOut == 1000 })
			close(s.gate)
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			st := j.Status()
			dropped := st.Edges[0].Dropped
			if dropped == 0 || st.Nodes[0].Drops["queue_full"] != dropped {
				t.Fatalf("dropped %d, node drops %v", dropped, st.Nodes[0].Drops)
			}
			if int64(len(s.Trades()))+dropped != 1000 {
				t.Fatalf("delivered %d + dropped %d != 1000", len(s.Trades()), dropped)
			}
			if pol == engine.DropOldest && s.Trades()[len(s.Trades())-1].TS != 999 {
				t.Fatalf("drop_oldest lost the newest record: last ts %d", s.Trades()[len(s.Trades())-1].TS)
			}
			if pol == engine.DropNewest && s.Trades()[0].TS != 0 {
				t.Fatalf("drop_newest lost the oldest record")
			}
		})
	}
}

// failOp fails on every batch whose first trade has an odd ts/10.
type failOp struct{}

func (failOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if (b.Trades[0].TS/10)%2 == 1 {
		return errors.New("odd batch")
	}
	b.Retain(1)
	return out.Emit(b)
}

func TestErrorPolicies(t *testing.T) {
	build := func(pol engine.ErrorPolicy, dl *enginetest.Sink) (*engine.Graph, *enginetest.Sink) {
		c := &enginetest.Sink{}
		g := &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", gen(100, 10, 1)),
				{ID: "op", Type: "operator.fail", Kind: engine.KindOperator, OnError: pol, Accepts: md.KindTrade,
					Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput}, NewProcessor: func(int) (engine.Processor, error) { return failOp{}, nil }},
				enginetest.SinkNode("sink", c)},
			Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
		}
		if dl != nil {
			g.Nodes = append(g.Nodes, enginetest.SinkNode("dl", dl))
			g.Edges = append(g.Edges, &engine.Edge{From: "op", FromPort: engine.PortDeadLetter, To: "dl"})
		}
		return g, c
	}
	t.Run("fail", func(t *testing.T) {
		g, _ := build(engine.OnErrorFail, nil)
		j, err := engine.New(g, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = j.Run(context.Background())
		var ne *engine.NodeError
		if !errors.As(err, &ne) || ne.Node != "op" || !strings.Contains(err.Error(), "odd batch") {
			t.Fatalf("want node error from op, got %v", err)
		}
		if st := j.Status(); st.Nodes[1].State != "failed" || st.Nodes[1].LastError != "odd batch" {
			t.Fatalf("status: %+v", st.Nodes[1])
		}
	})
	t.Run("skip", func(t *testing.T) {
		g, c := build(engine.OnErrorSkip, nil)
		j, _ := engine.New(g, engine.Options{})
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := j.Status().Nodes[1]
		if len(c.Trades()) != 50 || st.Errors["skipped"] != 5 || st.Drops["error"] != 50 {
			t.Fatalf("got %d trades, status %+v", len(c.Trades()), st)
		}
	})
	t.Run("dead_letter", func(t *testing.T) {
		dl := &enginetest.Sink{}
		g, c := build(engine.OnErrorDeadLetter, nil)
		g.Nodes = append(g.Nodes, &engine.Node{ID: "dl", Type: "sink.reason", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return dl, nil }})
		g.Edges = append(g.Edges, &engine.Edge{From: "op", FromPort: engine.PortDeadLetter, To: "dl"})
		j, err := engine.New(g, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(c.Trades()) != 50 || dl.Len() != 50 || dl.Reasons()[0] != "odd batch" {
			t.Fatalf("main %d, dead letters %d reasons %q", len(c.Trades()), dl.Len(), dl.Reasons())
		}
	})
	t.Run("dead_letter needs an edge", func(t *testing.T) {
		g, _ := build(engine.OnErrorDeadLetter, nil)
		errs := g.Validate()
		if len(errs) != 1 || errs[0].Msg != `node "op" has on_error: dead_letter but no edge from op.dead_letter` {
			t.Fatalf("got %v", errs)
		}
	})
}

func TestFanInWatermarkIsTheMinimum(t *testing.T) {
	w := &enginetest.Sink{}
	a := ts("A", 100, 200, 300)
	b := ts("B", 50)
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("a", a), srcNode("b", b), opNode("op", 1),
			{ID: "sink", Type: "sink.wm", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return w, nil }}},
		Edges: []*engine.Edge{{From: "a", To: "op"}, {From: "b", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watermark 50", func() bool { return w.LastWatermark() == 50 })
	time.Sleep(20 * time.Millisecond)
	if w.LastWatermark() != 50 {
		t.Fatalf("watermark %d passed the slower input", w.LastWatermark())
	}
	j.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if w.LastWatermark() != md.MaxTime {
		t.Fatalf("final watermark %d", w.LastWatermark())
	}
}

func TestIdleTimeoutAdvancesTheWatermark(t *testing.T) {
	w := &enginetest.Sink{}
	start := time.Now().UnixNano()
	src := ts("A", start)
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src),
			{ID: "sink", Type: "sink.wm", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return w, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	g.Nodes[0].IdleTimeout = 20 * time.Millisecond
	g.Nodes[0].MaxOutOfOrderness = 5 * time.Millisecond
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "idle advance", func() bool { return w.LastWatermark() > start })
	j.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
}

// endless emits until stopped and counts what it emitted.
type endless struct{ sent atomic.Int64 }

func (e *endless) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("t", "X")
	for i := int64(0); ; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := out.NewBatch(md.KindTrade)
		for k := 0; k < 16; k++ {
			b.Trades = append(b.Trades, md.Trade{TS: i*16 + int64(k), Sym: id, Price: 1, Size: 1})
		}
		if err := out.Emit(b); err != nil {
			return err
		}
		e.sent.Add(16)
	}
}

func TestStopDrainsEverything(t *testing.T) {
	src := &endless{}
	c := &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src), opNode("op", 2), enginetest.SinkNode("sink", c)},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "data to flow", func() bool { return src.sent.Load() > 10000 })
	cancel()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if int64(len(c.Trades())) != src.sent.Load() || !c.Closed() {
		t.Fatalf("sent %d, delivered %d, closed %v", src.sent.Load(), len(c.Trades()), c.Closed())
	}
}

func TestAbortReturnsErrAborted(t *testing.T) {
	s := &gateSink{gate: make(chan struct{})}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", &endless{}), enginetest.SinkNode("sink", nil)},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	g.Nodes[1].NewProcessor = func(int) (engine.Processor, error) { return s, nil }
	j, _ := engine.New(g, engine.Options{})
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sink stuck", func() bool { return s.entered.Load() > 0 })
	j.Stop() // cannot drain: the sink is stuck
	time.Sleep(10 * time.Millisecond)
	j.Abort()
	if err := j.Wait(); !errors.Is(err, engine.ErrAborted) {
		t.Fatalf("got %v", err)
	}
}

type failOpen struct{ enginetest.Sink }

func (f *failOpen) Open(ctx context.Context, nc *engine.NodeContext) error {
	return errors.New("connection refused")
}

func TestOpenFailureFailsBeforeDataFlows(t *testing.T) {
	src := &endless{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src), enginetest.SinkNode("sink", nil)},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	g.Nodes[1].NewProcessor = func(int) (engine.Processor, error) { return &failOpen{}, nil }
	j, _ := engine.New(g, engine.Options{})
	err := j.Start(context.Background())
	if err == nil || err.Error() != `node "sink": open: connection refused` {
		t.Fatalf("got %v", err)
	}
	if src.sent.Load() != 0 {
		t.Fatal("source ran although a sink could not open")
	}
}

func TestFanOutSharesEveryBatch(t *testing.T) {
	c1, c2 := &enginetest.Sink{}, &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(5000, 100, 4)), enginetest.SinkNode("s1", c1), enginetest.SinkNode("s2", c2)},
		Edges: []*engine.Edge{{From: "src", To: "s1"}, {From: "src", To: "s2"}},
	}
	j, _ := engine.New(g, engine.Options{})
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c1.Trades()) != 5000 || len(c2.Trades()) != 5000 {
		t.Fatalf("got %d and %d", len(c1.Trades()), len(c2.Trades()))
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	trade := map[string]md.Kind{engine.PortMain: md.KindTrade}
	bar := map[string]md.Kind{engine.PortMain: md.KindBar}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.x", Kind: engine.KindSource, Ports: trade},
			{ID: "src", Type: "provider.x", Kind: engine.KindSource, Ports: trade},
			{ID: "bars", Type: "operator.bars", Kind: engine.KindOperator, Accepts: md.KindTrade, Ports: bar},
			{ID: "tradesonly", Type: "operator.t", Kind: engine.KindOperator, Accepts: md.KindTrade, Ports: trade},
			{ID: "a", Type: "operator.a", Kind: engine.KindOperator, Accepts: md.KindAny, Ports: trade},
			{ID: "b", Type: "operator.b", Kind: engine.KindOperator, Accepts: md.KindAny, Ports: trade},
			{ID: "lonely", Type: "operator.l", Kind: engine.KindOperator, Accepts: md.KindAny, Ports: trade},
			{ID: "sink", Type: "sink.s", Kind: engine.KindSink, Accepts: md.KindAny},
		},
		Edges: []*engine.Edge{
			{From: "src", To: "bars"}, {From: "bars", To: "tradesonly"}, {From: "tradesonly", To: "sink"},
			{From: "ghost", To: "sink"}, {From: "sink", To: "bars"}, {From: "bars", FromPort: "nope", To: "sink"},
			{From: "tradesonly", To: "bars"},
		},
	}
	var msgs []string
	for _, e := range g.Validate() {
		msgs = append(msgs, e.Msg)
	}
	want := []string{
		`duplicate node id "src"`,
		`edge ghost -> sink: unknown node "ghost"`,
		`sink "sink" has an output (to "bars"); sinks have none`,
		`edge bars.nope -> sink: node "bars" (operator.bars) has no output port "nope"; its ports are: dead_letter`,
		`cycle: bars -> tradesonly -> bars`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	// Without the cycle: reachability and kinds.
	g.Nodes = append(g.Nodes[:1], g.Nodes[2:]...)
	g.Edges = []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "tradesonly"}, {From: "tradesonly", To: "sink"}, {From: "a", To: "b"}}
	msgs = nil
	for _, e := range g.Validate() {
		msgs = append(msgs, e.Msg)
	}
	want = []string{
		`node "a" is not connected to any source`,
		`node "b" is not connected to any source`,
		`node "lonely" is not connected to any source`,
		`edge bars -> tradesonly: "bars" (operator.bars) sends bar records but "tradesonly" (operator.t) takes trade`,
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

// ts is a source emitting one trade per event time, one batch each, then
// holding until the job stops.
func ts(sym string, times ...int64) *enginetest.Source {
	return &enginetest.Source{Symbols: []string{sym}, Trades: enginetest.TradesAt(times...), BatchSize: 1, Hold: true}
}

type orderedTS struct{ *enginetest.Source }

func (orderedTS) EventTimeOrdered() bool { return true }

func TestOrderedSourceWatermarkIsTheLastEventTime(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		w := &enginetest.Sink{}
		var src engine.Source = ts("A", 10, 20, 30)
		if ordered {
			src = orderedTS{ts("A", 10, 20, 30)}
		}
		g := &engine.Graph{
			Nodes: []*engine.Node{srcNode("src", src),
				{ID: "sink", Type: "sink.wm", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return w, nil }}},
			Edges: []*engine.Edge{{From: "src", To: "sink"}},
		}
		g.Nodes[0].MaxOutOfOrderness = 5
		j, err := engine.New(g, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "watermark 25", func() bool { return w.LastWatermark() == 25 })
		j.Stop()
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		if want := []int64{5, 15, 25, md.MaxTime}; fmt.Sprint(w.Watermarks()) != fmt.Sprint(want) {
			t.Fatalf("ordered=%v: watermarks %v, want %v", ordered, w.Watermarks(), want)
		}
	}
}
