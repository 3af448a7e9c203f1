package buffer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// tradeSource emits n trades (ts = i) in batches of bs, then waits on
// hold (if set) before finishing.
type tradeSource struct {
	n, bs int
	hold  <-chan struct{}
}

func (s *tradeSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("sim", "AAA")
	for i := 0; i < s.n; i += s.bs {
		b := out.NewBatch(md.KindTrade)
		for k := i; k < min(i+s.bs, s.n); k++ {
			b.Trades = append(b.Trades, md.Trade{TS: int64(k), Price: float64(k), Size: 1, Sym: sym})
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
		}
	}
	return nil
}

// collector records batch sizes, trades, arrival times and watermarks; if
// gate is set, its first Process waits for it.
type collector struct {
	mu      sync.Mutex
	sizes   []int
	trades  []md.Trade
	arrived []time.Time
	lastWM  int64
	late    int // records that arrived behind a watermark already seen
	gate    chan struct{}
	first   sync.Once
	onData  func()
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if c.gate != nil {
		c.first.Do(func() { <-c.gate })
	}
	c.mu.Lock()
	c.sizes = append(c.sizes, b.Len())
	c.arrived = append(c.arrived, time.Now())
	for _, t := range b.Trades {
		if t.TS < c.lastWM {
			c.late++
		}
	}
	c.trades = append(c.trades, b.Trades...)
	c.mu.Unlock()
	if c.onData != nil {
		c.onData()
	}
	return nil
}

func (c *collector) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	c.mu.Lock()
	c.lastWM = wm
	c.mu.Unlock()
	return nil
}

func build(t *testing.T, src engine.Source, params map[string]any, c *collector, sinkCap int) *engine.Job {
	t.Helper()
	spec, ok := component.Lookup("operator.buffer")
	if !ok {
		t.Fatal("operator.buffer not registered")
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			component.Node(spec, p, component.NodeOptions{ID: "buf"}),
			{ID: "sink", Type: "sink.collect", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return c, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "buf", Capacity: 1024}, {From: "buf", To: "sink", Capacity: sinkCap}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func checkOrder(t *testing.T, trades []md.Trade, n int) {
	t.Helper()
	if len(trades) != n {
		t.Fatalf("got %d trades, want %d", len(trades), n)
	}
	for i, tr := range trades {
		if tr.TS != int64(i) {
			t.Fatalf("trade %d has ts %d", i, tr.TS)
		}
	}
}

func TestEmitsAtMaxRowsAndFlushesAtEnd(t *testing.T) {
	c := &collector{}
	j := build(t, &tradeSource{n: 2500, bs: 100}, map[string]any{"max_rows": 1000, "flush_interval": "1h"}, c, 64)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.sizes) != 3 || c.sizes[0] != 1000 || c.sizes[1] != 1000 || c.sizes[2] != 500 {
		t.Fatalf("batch sizes %v, want [1000 1000 500]", c.sizes)
	}
	checkOrder(t, c.trades, 2500)
	if c.late != 0 {
		t.Fatalf("%d records arrived behind the forwarded watermark", c.late)
	}
}

func TestEmitsAtMaxBytes(t *testing.T) {
	c := &collector{}
	j := build(t, &tradeSource{n: 95, bs: 7}, map[string]any{"max_rows": 1000, "max_bytes": 10 * tradeBytes, "flush_interval": "1h"}, c, 64)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 5}
	if len(c.sizes) != len(want) {
		t.Fatalf("batch sizes %v, want %v", c.sizes, want)
	}
	for i := range want {
		if c.sizes[i] != want[i] {
			t.Fatalf("batch sizes %v, want %v", c.sizes, want)
		}
	}
	checkOrder(t, c.trades, 95)
}

func TestBigBatchPassesThroughWhole(t *testing.T) {
	c := &collector{}
	j := build(t, &tradeSource{n: 3000, bs: 1500}, map[string]any{"max_rows": 1000}, c, 64)
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.sizes) != 2 || c.sizes[0] != 1500 || c.sizes[1] != 1500 {
		t.Fatalf("batch sizes %v", c.sizes)
	}
	checkOrder(t, c.trades, 3000)
}

func TestLoneRecordIsEmittedWithinFlushInterval(t *testing.T) {
	hold := make(chan struct{})
	var once sync.Once
	c := &collector{onData: func() { once.Do(func() { close(hold) }) }}
	const interval = 200 * time.Millisecond
	j := build(t, &tradeSource{n: 1, bs: 1, hold: hold}, map[string]any{"max_rows": 1000, "flush_interval": interval.String()}, c, 64)
	start := time.Now()
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The source stays open until the record arrives: only the timer can
	// have emitted it.
	select {
	case <-hold:
	case <-time.After(30 * time.Second):
		t.Fatal("the lone record was not emitted")
	}
	waited := time.Since(start)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(c.sizes) != 1 || c.sizes[0] != 1 {
		t.Fatalf("batch sizes %v", c.sizes)
	}
	// It waited for the interval (it was gathered, not passed on at once).
	if waited < interval/2 {
		t.Fatalf("emitted after %v, before the flush interval %v", waited, interval)
	}
	t.Logf("lone record emitted after %v (flush_interval %v)", waited, interval)
}

func runDrop(t *testing.T, policy string) (*collector, map[string]int64) {
	t.Helper()
	gate := make(chan struct{})
	c := &collector{gate: gate}
	// 1000 trades in batches of 10; the sink stalls on its first batch, so
	// the buffer may hold at most 50 rows and must drop the rest.
	j := build(t, &tradeSource{n: 1000, bs: 10}, map[string]any{"max_rows": 10, "max_pending_rows": 50, "drop_policy": policy, "flush_interval": "1h"}, c, 1)
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	buf := j.NodeContexts("buf")[0].Stats
	deadline := time.Now().Add(30 * time.Second)
	for buf.EventsIn.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("the buffer took only %d of 1000 rows: it blocked its input", buf.EventsIn.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	return c, buf.Drops()
}

func TestDropNewestNeverBlocksAndCountsDrops(t *testing.T) {
	c, drops := runDrop(t, "drop_newest")
	d := drops["buffer_full_newest"]
	if d == 0 || int64(len(c.trades))+d != 1000 || len(drops) != 1 {
		t.Fatalf("received %d, drops %v", len(c.trades), drops)
	}
	// The oldest rows survive, in order.
	for i := 1; i < len(c.trades); i++ {
		if c.trades[i].TS <= c.trades[i-1].TS {
			t.Fatal("order broken")
		}
	}
	if c.trades[0].TS != 0 {
		t.Fatalf("first row kept is %d, want 0", c.trades[0].TS)
	}
}

func TestDropOldestNeverBlocksAndCountsDrops(t *testing.T) {
	c, drops := runDrop(t, "drop_oldest")
	d := drops["buffer_full_oldest"]
	if d == 0 || int64(len(c.trades))+d != 1000 || len(drops) != 1 {
		t.Fatalf("received %d, drops %v", len(c.trades), drops)
	}
	// The newest rows survive.
	if last := c.trades[len(c.trades)-1].TS; last != 999 {
		t.Fatalf("last row kept is %d, want 999", last)
	}
	if held := len(c.trades); held > 50+20 { // at most 50 held + what was sent before the stall
		t.Fatalf("%d rows delivered; the buffer held more than max_pending_rows", held)
	}
}

func TestBlockPolicyDeliversEverything(t *testing.T) {
	gate := make(chan struct{})
	c := &collector{gate: gate}
	j := build(t, &tradeSource{n: 1000, bs: 10}, map[string]any{"max_rows": 10, "flush_interval": "1h"}, c, 1)
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if in := j.NodeContexts("buf")[0].Stats.EventsIn.Load(); in >= 1000 {
		t.Fatalf("block policy took all input (%d) while the sink stalled", in)
	}
	close(gate)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, c.trades, 1000)
	if d := j.NodeContexts("buf")[0].Stats.Drops(); len(d) != 0 {
		t.Fatalf("drops %v", d)
	}
}

func TestValidateMaxPendingRows(t *testing.T) {
	spec, _ := component.Lookup("operator.buffer")
	_, err := component.NewParams(spec, map[string]any{"max_rows": 100, "max_pending_rows": 50, "drop_policy": "drop_oldest"})
	if err == nil || err.Error() != "params.max_pending_rows: max_pending_rows (50) must be at least max_rows (100)" {
		t.Fatalf("err = %v", err)
	}
}
