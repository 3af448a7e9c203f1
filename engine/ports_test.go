package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// joinProbe records the input port and kind of every batch it receives and
// the watermarks it sees, and forwards every batch.
type joinProbe struct {
	mu     sync.Mutex
	byPort map[int][]md.Kind
	recs   map[int]int
	wms    []int64
}

func (j *joinProbe) ProcessPort(ctx context.Context, port int, b *md.Batch, out *engine.Output) error {
	j.mu.Lock()
	j.byPort[port] = append(j.byPort[port], b.Kind)
	j.recs[port] += b.Len()
	j.mu.Unlock()
	b.Retain(1)
	return out.Emit(b)
}

// Process is never called: the engine calls ProcessPort.
func (j *joinProbe) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return errors.New("Process called on a PortProcessor")
}

func (j *joinProbe) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	j.mu.Lock()
	j.wms = append(j.wms, wm)
	j.mu.Unlock()
	return nil
}

func (j *joinProbe) state() (recs map[int]int, last int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	recs = map[int]int{}
	for k, v := range j.recs {
		recs[k] = v
	}
	last = md.MinTime
	if len(j.wms) > 0 {
		last = j.wms[len(j.wms)-1]
	}
	return recs, last
}

// heldSource emits its records, then holds until release is closed.
type heldSource struct {
	enginetest.Source
	release chan struct{}
}

func (h *heldSource) Run(ctx context.Context, out *engine.Output) error {
	if err := h.Source.Run(ctx, out); err != nil {
		return err
	}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil
}

func joinNode(id string, newImpl func(int) (engine.Processor, error)) *engine.Node {
	return &engine.Node{ID: id, Type: "operator.test_join", Kind: engine.KindOperator, Parallelism: 2,
		Inputs:       []engine.Input{{Name: "left", Accepts: md.KindTrade}, {Name: "right", Accepts: md.KindQuote}},
		Ports:        map[string]md.Kind{engine.PortMain: engine.SameAsInput},
		NewProcessor: newImpl}
}

func quotes(n, syms int) []md.Quote {
	out := make([]md.Quote, n)
	for i := range out {
		out[i] = md.Quote{TS: int64(i), Bid: 1, Ask: 2, BidSize: 1, AskSize: 1, Sym: md.SymID(i % syms)}
	}
	return out
}

// TestInputPortsAndWatermarkMinimum: each batch reaches ProcessPort with the
// port its edge ends at, and the node's watermark is the minimum over its
// inputs: a finished left input does not move it past the held right one.
func TestInputPortsAndWatermarkMinimum(t *testing.T) {
	probes := []*joinProbe{{byPort: map[int][]md.Kind{}, recs: map[int]int{}}, {byPort: map[int][]md.Kind{}, recs: map[int]int{}}}
	syms := []string{"A", "B", "C", "D", "E", "F"}
	trades := &enginetest.Source{Symbols: syms, Trades: enginetest.Trades(1000, 6, 0), BatchSize: 50}
	held := &heldSource{Source: enginetest.Source{Symbols: syms, Quotes: quotes(500, 6), BatchSize: 50}, release: make(chan struct{})}
	sink := &enginetest.Sink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			enginetest.SourceNode("trades", md.KindTrade, trades),
			enginetest.SourceNode("quotes", md.KindQuote, held),
			joinNode("join", func(i int) (engine.Processor, error) { return probes[i], nil }),
			enginetest.SinkNode("sink", sink),
		},
		Edges: []*engine.Edge{
			{From: "trades", To: "join", ToPort: "left"},
			{From: "quotes", To: "join", ToPort: "right"},
			{From: "join", To: "sink"},
		},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Wait until both instances have all their records and the watermark
	// of the held quotes (their newest event time, 499).
	deadline := time.Now().Add(10 * time.Second)
	for {
		total := [2]int{}
		settled := true
		for _, p := range probes {
			recs, last := p.state()
			total[0] += recs[0]
			total[1] += recs[1]
			settled = settled && last == 499
		}
		if total == [2]int{1000, 500} && settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records per port %v; watermarks did not settle at 499", total)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the finished trades input must not move it on
	for i, p := range probes {
		if _, last := p.state(); last != 499 {
			t.Fatalf("instance %d watermark %d while the right input is held at 499", i, last)
		}
	}
	close(held.release)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, p := range probes {
		for port, kinds := range p.byPort {
			want := map[int]md.Kind{0: md.KindTrade, 1: md.KindQuote}[port]
			for _, k := range kinds {
				if k != want {
					t.Fatalf("instance %d: a %s batch arrived on port %d", i, k, port)
				}
			}
		}
		if _, last := p.state(); last != md.MaxTime {
			t.Fatalf("instance %d: final watermark %d", i, last)
		}
	}
	if len(sink.Trades()) != 1000 || len(sink.Quotes()) != 500 {
		t.Fatalf("sink got %d trades, %d quotes", len(sink.Trades()), len(sink.Quotes()))
	}
}

// TestInputPortValidation: kinds are checked per input port, and edges to
// input ports a node does not have are rejected, saying which it has.
func TestInputPortValidation(t *testing.T) {
	newJoin := func(int) (engine.Processor, error) { return &joinProbe{}, nil }
	for _, tc := range []struct {
		name  string
		edges []*engine.Edge
		want  string
	}{
		{"quotes into the trades port", []*engine.Edge{{From: "quotes", To: "join", ToPort: "left"}, {From: "join", To: "sink"}},
			`edge quotes -> join.left: "quotes" (provider.test) sends quote records but input "left" of "join" (operator.test_join) takes trade`},
		{"unknown input port", []*engine.Edge{{From: "trades", To: "join", ToPort: "middle"}, {From: "join", To: "sink"}},
			`edge trades -> join.middle: node "join" (operator.test_join) has no input port "middle"; its input ports are: left, right`},
		{"main input of a node with named inputs", []*engine.Edge{{From: "trades", To: "join"}, {From: "join", To: "sink"}},
			`edge trades -> join: node "join" (operator.test_join) has no input port "(main)"; its input ports are: left, right`},
		{"named port of a node with one input", []*engine.Edge{{From: "trades", To: "join", ToPort: "left"}, {From: "join", To: "sink", ToPort: "left"}},
			`edge join -> sink.left: node "sink" (sink.test) has no input port "left"; it has only its main input`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &engine.Graph{
				Nodes: []*engine.Node{
					enginetest.SourceNode("trades", md.KindTrade, &enginetest.Source{}),
					enginetest.SourceNode("quotes", md.KindQuote, &enginetest.Source{}),
					joinNode("join", newJoin),
					enginetest.SinkNode("sink", &enginetest.Sink{}),
				},
				Edges: tc.edges,
			}
			var msgs []string
			for _, e := range g.Validate() {
				msgs = append(msgs, e.Msg)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Fatalf("got:\n%s\nwant %q", strings.Join(msgs, "\n"), tc.want)
			}
		})
	}
}
