package keyed_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

type fired struct {
	at  int64
	sym md.SymID
}

func drain(t *keyed.Timers, now int64) []fired {
	var out []fired
	for at, keys, ok := t.Pop(now); ok; at, keys, ok = t.Pop(now) {
		for _, k := range keys {
			out = append(out, fired{at, k})
		}
	}
	return out
}

func TestTimersFireInTimeOrderThenSymIDOnceEach(t *testing.T) {
	var tm keyed.Timers
	// Set out of order, with ties at 20 in reverse SymID order and a repeat.
	for _, f := range []fired{{30, 1}, {10, 2}, {20, 5}, {20, 3}, {20, 4}, {20, 3}, {15, 0}, {40, 9}} {
		tm.Set(f.at, f.sym)
	}
	if tm.Len() != 8 {
		t.Fatalf("Len = %d, want 8 registrations", tm.Len())
	}
	if at, ok := tm.Next(); !ok || at != 10 {
		t.Fatalf("Next = %d %v, want 10", at, ok)
	}
	if at, ok := tm.Last(); !ok || at != 40 {
		t.Fatalf("Last = %d %v, want 40", at, ok)
	}
	if got := drain(&tm, 9); got != nil {
		t.Fatalf("watermark 9 fired %v", got)
	}
	if got, want := drain(&tm, 10), []fired{{10, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("watermark 10 (at the timer's time) fired %v, want %v", got, want)
	}
	if got, want := drain(&tm, 29), []fired{{15, 0}, {20, 3}, {20, 4}, {20, 5}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("watermark 29 fired %v, want %v", got, want)
	}
	tm.Set(35, 7) // set between pending timers
	tm.Set(35, 2)
	if got, want := drain(&tm, md.MaxTime), []fired{{30, 1}, {35, 2}, {35, 7}, {40, 9}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("final watermark fired %v, want %v", got, want)
	}
	if tm.Len() != 0 {
		t.Fatalf("Len = %d after everything fired", tm.Len())
	}
	if _, ok := tm.Next(); ok {
		t.Fatal("Next reports a timer after everything fired")
	}
}

func TestTimersSetWhileFiringFireInTheSameAdvance(t *testing.T) {
	var tm keyed.Timers
	tm.Set(10, 1)
	var got []fired
	for at, keys, ok := tm.Pop(25); ok; at, keys, ok = tm.Pop(25) {
		for _, k := range keys {
			got = append(got, fired{at, k})
			if at < 30 {
				tm.Set(at+10, k) // a repeating timer
			}
		}
	}
	if want := []fired{{10, 1}, {20, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if at, ok := tm.Next(); !ok || at != 30 {
		t.Fatalf("pending %d %v, want 30", at, ok)
	}
}

func TestTimersAllocateNothingInSteadyState(t *testing.T) {
	var tm keyed.Timers
	for i := range int64(200) {
		tm.Set(i, md.SymID(i%7))
	}
	drain(&tm, md.MaxTime)
	now := int64(1000)
	allocs := testing.AllocsPerRun(100, func() {
		for s := range md.SymID(50) {
			tm.Set(now, s)
		}
		now++
		tm.Pop(now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per set-and-fire round, want 0", allocs)
	}
}

// State survives a trip through its stable keys into another symbol table
// that gave the same instruments other SymIDs.
func TestStateIsAddressedBySymbolTextAcrossSymbolTables(t *testing.T) {
	t1 := md.NewSymbolTable()
	a1 := t1.Intern("binance", "BTCUSDT")
	b1 := t1.Intern("binance", "ETHUSDT")
	c1 := t1.Intern("coinbase", "BTCUSDT") // same text, other provider: another key
	s1 := keyed.NewState[float64](t1)
	*s1.Get(a1) = 1.5
	*s1.Get(b1) = 2.5
	*s1.Get(c1) = 3.5
	if s1.Len() != 3 {
		t.Fatalf("Len = %d", s1.Len())
	}

	type entry struct {
		k keyed.Key
		v float64
	}
	var snap []entry
	s1.Range(func(sym md.SymID, k keyed.Key, v *float64) bool {
		snap = append(snap, entry{k, *v})
		return true
	})
	want := []entry{{keyed.Key{"binance", "BTCUSDT"}, 1.5}, {keyed.Key{"binance", "ETHUSDT"}, 2.5}, {keyed.Key{"coinbase", "BTCUSDT"}, 3.5}}
	if !reflect.DeepEqual(snap, want) {
		t.Fatalf("snapshot %v, want %v", snap, want)
	}

	// Another process: other symbols first, the same ones in another order.
	t2 := md.NewSymbolTable()
	t2.Intern("kraken", "XBTUSD")
	t2.Intern("binance", "ETHUSDT")
	t2.Intern("coinbase", "BTCUSDT")
	s2 := keyed.NewState[float64](t2)
	for _, e := range snap {
		s2.Restore(e.k, e.v)
	}
	for _, e := range want {
		id, ok := t2.Lookup(e.k.Provider, e.k.Symbol)
		if !ok {
			t.Fatalf("%v was not interned into the new table", e.k)
		}
		v, ok := s2.Lookup(id)
		if !ok || *v != e.v {
			t.Fatalf("%v (SymID %d here) = %v %v, want %v", e.k, id, v, ok, e.v)
		}
		if s2.Key(id) != e.k {
			t.Fatalf("Key(%d) = %v, want %v", id, s2.Key(id), e.k)
		}
	}
	if ida, _ := t2.Lookup("binance", "BTCUSDT"); ida == a1 {
		t.Fatalf("test is vacuous: BTCUSDT has SymID %d in both tables", ida)
	}
	if s2.Has(0) { // kraken XBTUSD never had state
		t.Fatal("a key without state is present after restore")
	}
	s2.Delete(1)
	if s2.Has(1) || s2.Len() != 2 || s2.Slice()[1] != 0 {
		t.Fatalf("after Delete: has %v len %d value %v", s2.Has(1), s2.Len(), s2.Slice()[1])
	}
}

// The hot path reads the dense slice directly: no allocation, no map.
func TestStateDenseFastPath(t *testing.T) {
	tab := md.NewSymbolTable()
	for i := range 100 {
		tab.Intern("p", fmt.Sprintf("S%03d", i))
	}
	s := keyed.NewState[int64](tab)
	if len(s.Slice()) < 100 {
		t.Fatalf("dense slice has %d entries for 100 interned symbols", len(s.Slice()))
	}
	for i := range md.SymID(100) {
		s.Get(i)
	}
	allocs := testing.AllocsPerRun(100, func() {
		v := s.Slice()
		for i := range md.SymID(100) {
			v[i]++
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations on the dense path", allocs)
	}
	// A symbol interned later: Get grows the slice.
	late := tab.Intern("p", "LATE")
	*s.Get(late) = 7
	if v, ok := s.Lookup(late); !ok || *v != 7 || s.Slice()[late] != 7 {
		t.Fatalf("late symbol: %v %v", v, ok)
	}
}

// Timers snapshot through stable keys too.
func TestTimersSnapshotAndRestoreByKey(t *testing.T) {
	t1 := md.NewSymbolTable()
	x := t1.Intern("p", "X")
	y := t1.Intern("p", "Y")
	var tm keyed.Timers
	tm.Set(20, y)
	tm.Set(10, x)
	tm.Set(20, x)
	tm.Set(20, y)
	type entry struct {
		at int64
		k  keyed.Key
	}
	var snap []entry
	tm.Range(func(at int64, sym md.SymID) bool {
		snap = append(snap, entry{at, keyed.KeyOf(t1, sym)})
		return true
	})
	want := []entry{{10, keyed.Key{"p", "X"}}, {20, keyed.Key{"p", "X"}}, {20, keyed.Key{"p", "Y"}}}
	if !reflect.DeepEqual(snap, want) {
		t.Fatalf("snapshot %v, want %v", snap, want)
	}
	t2 := md.NewSymbolTable()
	y2 := t2.Intern("p", "Y")
	x2 := t2.Intern("p", "X")
	var tm2 keyed.Timers
	for _, e := range snap {
		tm2.Set(e.at, t2.Intern(e.k.Provider, e.k.Symbol))
	}
	if got, want := drain(&tm2, 20), []fired{{10, x2}, {20, y2}, {20, x2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("restored timers fired %v, want %v (time, then SymID of the new table)", got, want)
	}
}

// --- through the engine ---

// sliceSource emits its batches, each after an optional hook.
type sliceSource struct {
	batches [][]md.Trade
	syms    []string
	before  func(i int) // called before batch i (i > 0)
}

func (s *sliceSource) Run(ctx context.Context, out *engine.Output) error {
	for _, name := range s.syms {
		out.Symbols().Intern("t", name)
	}
	for i, ts := range s.batches {
		if i > 0 && s.before != nil {
			s.before(i)
		}
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, ts...)
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

// expiry counts trades per key and, a fixed event time after each key's
// first trade, reports the count through an event-time timer.
type expiry struct {
	after  int64
	count  *keyed.State[int]
	timers keyed.Timers
	log    *[]string
}

func (e *expiry) Open(ctx context.Context, nc *engine.NodeContext) error {
	e.count = keyed.NewState[int](nc.Symbols)
	return nil
}

func (e *expiry) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	for _, tr := range b.Trades {
		if !e.count.Has(tr.Sym) {
			e.timers.Set(tr.TS+e.after, tr.Sym)
		}
		*e.count.Get(tr.Sym)++
	}
	return nil
}

func (e *expiry) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	for at, keys, ok := e.timers.Pop(wm); ok; at, keys, ok = e.timers.Pop(wm) {
		for _, sym := range keys {
			c, _ := e.count.Lookup(sym)
			*e.log = append(*e.log, fmt.Sprintf("wm=%d at=%d %s n=%d", wm, at, e.count.Key(sym).Symbol, *c))
			e.count.Delete(sym)
		}
	}
	return nil
}

type nullSink struct{}

func (nullSink) Process(context.Context, *md.Batch, *engine.Output) error { return nil }

func run(t *testing.T, src engine.Source, op engine.Processor, sink engine.Processor) {
	t.Helper()
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			{ID: "op", Type: "operator.test", Kind: engine.KindOperator, Accepts: md.KindTrade,
				Ports: map[string]md.Kind{engine.PortMain: md.KindTrade}, NewProcessor: func(int) (engine.Processor, error) { return op, nil }},
			{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return sink, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "keyed"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEventTimersFireInOrderAsTheWatermarkAdvances(t *testing.T) {
	tr := func(sym md.SymID, ts int64) md.Trade { return md.Trade{Sym: sym, TS: ts, Price: 1, Size: 1} }
	const A, B, C = 0, 1, 2
	src := &sliceSource{syms: []string{"A", "B", "C"}, batches: [][]md.Trade{
		{tr(C, 100), tr(A, 100), tr(B, 105)}, // timers at 110 (C, A) and 115 (B)
		{tr(A, 108), tr(C, 109)},             // watermark 109: nothing due
		{tr(B, 112)},                         // 112: C and A fire, in SymID order
		{tr(A, 200)},                         // 200: B fires; A's new timer at 210
	}}
	var log []string
	run(t, src, &expiry{after: 10, log: &log}, nullSink{})
	want := []string{
		"wm=112 at=110 A n=2",
		"wm=112 at=110 C n=2",
		"wm=200 at=115 B n=2",
		fmt.Sprintf("wm=%d at=210 A n=1", md.MaxTime), // the final watermark fires the rest
	}
	if !slices.Equal(log, want) {
		t.Fatalf("timers fired\n%q\nwant\n%q", log, want)
	}
}

// conflate keeps each key's newest trade and sends it after a processing-time
// delay: the engine's TimerHandler tick drives the keyed processing-time
// timers.
type conflate struct {
	delay  time.Duration
	last   *keyed.State[md.Trade]
	timers keyed.Timers
}

func (c *conflate) Open(ctx context.Context, nc *engine.NodeContext) error {
	c.last = keyed.NewState[md.Trade](nc.Symbols)
	return nil
}

func (c *conflate) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	now := time.Now().UnixNano()
	for _, tr := range b.Trades {
		if !c.last.Has(tr.Sym) {
			c.timers.Set(now+c.delay.Nanoseconds(), tr.Sym)
		}
		*c.last.Get(tr.Sym) = tr
	}
	return nil
}

func (c *conflate) TimerInterval() time.Duration { return time.Millisecond }

func (c *conflate) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	return c.send(now.UnixNano(), out)
}

func (c *conflate) Close(ctx context.Context, out *engine.Output) error {
	return c.send(md.MaxTime, out)
}

func (c *conflate) send(now int64, out *engine.Output) error {
	var b *md.Batch
	for _, keys, ok := c.timers.Pop(now); ok; _, keys, ok = c.timers.Pop(now) {
		for _, sym := range keys {
			if b == nil {
				b = out.NewBatch(md.KindTrade)
			}
			v, _ := c.last.Lookup(sym)
			b.Trades = append(b.Trades, *v)
			c.last.Delete(sym)
		}
	}
	if b == nil {
		return nil
	}
	return out.Emit(b)
}

type chanSink struct {
	mu  sync.Mutex
	got [][]md.Trade
	ch  chan struct{}
}

func (s *chanSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	s.got = append(s.got, slices.Clone(b.Trades))
	s.mu.Unlock()
	s.ch <- struct{}{}
	return nil
}

func TestProcessingTimeTimersFireOnTheEngineTick(t *testing.T) {
	tr := func(sym md.SymID, ts int64, p float64) md.Trade { return md.Trade{Sym: sym, TS: ts, Price: p, Size: 1} }
	sink := &chanSink{ch: make(chan struct{}, 4)}
	src := &sliceSource{syms: []string{"A", "B"},
		batches: [][]md.Trade{
			{tr(0, 1, 10), tr(1, 2, 20), tr(0, 3, 11), tr(0, 4, 12)},
			{tr(1, 5, 21)},
		},
		// The second batch waits until the first one's conflated trades
		// arrived: only a processing-time timer can have sent them.
		before: func(int) {
			select {
			case <-sink.ch:
			case <-time.After(10 * time.Second):
				t.Error("no processing-time timer fired within 10s")
			}
		},
	}
	start := time.Now()
	run(t, src, &conflate{delay: 20 * time.Millisecond}, sink)
	want := [][]md.Trade{{tr(0, 4, 12), tr(1, 2, 20)}, {tr(1, 5, 21)}}
	if !reflect.DeepEqual(sink.got, want) {
		t.Fatalf("sent %v, want %v", sink.got, want)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("the first timer fired before its processing time: the run took %v", d)
	}
}

// Owner routes a key to the instance the engine sends its records to, so a
// restore with another parallelism gives every key to the right instance.
func TestOwnerMatchesTheEnginePartitioning(t *testing.T) {
	tab := md.NewSymbolTable()
	for _, p := range []int{1, 2, 3, 4} {
		for i := range 50 {
			k := keyed.Key{Provider: "p", Symbol: fmt.Sprintf("SYM%03d", i)}
			in := tab.Get(tab.Intern(k.Provider, k.Symbol))
			if got, want := k.Owner(p), md.Split(in.Hash, md.SplitInstances, p); got != want || got < 0 || got >= p {
				t.Fatalf("%v with %d instances: Owner %d, engine instance %d", k, p, got, want)
			}
		}
	}
}
