package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// recorder logs the node methods the engine calls, as "Method node#instance".
type recorder struct {
	mu sync.Mutex
	ev []string
}

func (r *recorder) add(ev string) {
	r.mu.Lock()
	r.ev = append(r.ev, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ev)
}

// probe is a node that records every call and misbehaves on demand: fault
// maps a method to "error", "panic" or "block" (wait for the job's end).
type probe struct {
	rec     *recorder
	id      string
	fault   map[string]string
	blocked chan struct{} // closed when a "block" fault starts waiting
	once    sync.Once
}

func (p *probe) hit(ctx context.Context, method string) error {
	if method != "Process" && method != "OnWatermark" && method != "OnTimer" {
		p.rec.add(method + " " + p.id)
	}
	switch p.fault[method] {
	case "error":
		return fmt.Errorf("%s failed", method)
	case "panic":
		panic(method + " exploded")
	case "block":
		p.once.Do(func() { close(p.blocked) })
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (p *probe) Open(ctx context.Context, nc *engine.NodeContext) error { return p.hit(ctx, "Open") }
func (p *probe) Cleanup(ctx context.Context) error                      { return p.hit(ctx, "Cleanup") }
func (p *probe) Close(ctx context.Context, out *engine.Output) error    { return p.hit(ctx, "Close") }
func (p *probe) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	return p.hit(ctx, "OnWatermark")
}

func (p *probe) TimerInterval() time.Duration {
	if p.fault["OnTimer"] != "" {
		return time.Millisecond
	}
	return 0
}

func (p *probe) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	return p.hit(ctx, "OnTimer")
}

func (p *probe) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := p.hit(ctx, "Process"); err != nil {
		return err
	}
	b.Retain(1)
	return out.Emit(b)
}

type probeSource struct{ probe }

func (p *probeSource) Run(ctx context.Context, out *engine.Output) error {
	if err := p.hit(ctx, "Run"); err != nil {
		return err
	}
	src := &enginetest.Source{Symbols: []string{"A", "B", "C", "D"}, Trades: enginetest.Trades(400, 4, 1000), BatchSize: 16}
	return src.Run(ctx, out)
}

// lifecycleGraph is src → op (2 instances) → sink, declared sink first so
// that declaration order and topological order differ.
func lifecycleGraph(rec *recorder, faults map[string]map[string]string, blocked chan struct{}) *engine.Graph {
	mk := func(id string, i int) probe {
		name := fmt.Sprintf("%s#%d", id, i)
		return probe{rec: rec, id: name, fault: faults[name], blocked: blocked}
	}
	return &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "sink", Type: "sink.probe", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(i int) (engine.Processor, error) { p := mk("sink", i); return &p, nil }},
			{ID: "op", Type: "operator.probe", Kind: engine.KindOperator, Parallelism: 2, Accepts: md.KindAny,
				Ports:        map[string]md.Kind{engine.PortMain: engine.SameAsInput},
				NewProcessor: func(i int) (engine.Processor, error) { p := mk("op", i); return &p, nil }},
			{ID: "src", Type: "provider.probe", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(i int) (engine.Source, error) {
					if faults["src#0"]["New"] == "panic" {
						panic("New exploded")
					}
					return &probeSource{mk("src", i)}, nil
				}},
		},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}
}

// TestCleanupOnEveryWayOut checks that Cleanup runs exactly once for every
// instance that was opened and never for one that was not, however the job
// ends, and that a panic in any node method fails the job naming the node.
func TestCleanupOnEveryWayOut(t *testing.T) {
	all := []string{"sink#0", "op#0", "op#1", "src#0"}
	both := func(method, fault string) map[string]map[string]string {
		return map[string]map[string]string{"op#0": {method: fault}, "op#1": {method: fault}}
	}
	one := func(inst, method, fault string) map[string]map[string]string {
		return map[string]map[string]string{inst: {method: fault}}
	}
	cases := []struct {
		name    string
		faults  map[string]map[string]string
		abort   bool // abort once a "block" fault waits
		wantErr string
		opened  []string // each gets exactly one Cleanup; the others none
		closed  []string // Close must have run (before Cleanup)
	}{
		{name: "finish", opened: all, closed: all},
		{name: "node fails", faults: both("Process", "error"), wantErr: `node "op": Process failed`, opened: all},
		{name: "source fails", faults: one("src#0", "Run", "error"), wantErr: `node "src": Run failed`, opened: all},
		{name: "abort", faults: one("sink#0", "Process", "block"), abort: true, wantErr: engine.ErrAborted.Error(), opened: all},
		{name: "open fails", faults: one("op#1", "Open", "error"), wantErr: `node "op": open: Open failed`, opened: []string{"sink#0", "op#0"}},
		{name: "first open fails", faults: one("sink#0", "Open", "error"), wantErr: `node "sink": open: Open failed`},
		{name: "cleanup fails", faults: one("sink#0", "Cleanup", "error"), wantErr: `node "sink": cleanup: Cleanup failed`, opened: all, closed: all},
		// A panic in any node method is that node's error.
		{name: "panic in New", faults: one("src#0", "New", "panic"), wantErr: `node "src": New panicked: New exploded`},
		{name: "panic in Open", faults: one("op#1", "Open", "panic"), wantErr: `node "op": Open panicked: Open exploded`, opened: []string{"sink#0", "op#0"}},
		{name: "panic in Run", faults: one("src#0", "Run", "panic"), wantErr: `node "src": Run panicked: Run exploded`, opened: all},
		{name: "panic in Process", faults: both("Process", "panic"), wantErr: `node "op": Process panicked: Process exploded`, opened: all},
		{name: "panic in OnWatermark", faults: one("sink#0", "OnWatermark", "panic"), wantErr: `node "sink": OnWatermark panicked: OnWatermark exploded`, opened: all},
		{name: "panic in OnTimer", faults: map[string]map[string]string{"sink#0": {"OnTimer": "panic"}, "src#0": {"Run": "block"}}, wantErr: `node "sink": OnTimer panicked: OnTimer exploded`, opened: all},
		{name: "panic in Close", faults: one("sink#0", "Close", "panic"), wantErr: `node "sink": Close panicked: Close exploded`, opened: all},
		{name: "panic in Cleanup", faults: one("op#0", "Cleanup", "panic"), wantErr: `node "op": Cleanup panicked: Cleanup exploded`, opened: all},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			blocked := make(chan struct{})
			logs := &enginetest.SyncBuffer{}
			j, err := engine.New(lifecycleGraph(rec, tc.faults, blocked), engine.Options{Job: "t", Logger: enginetest.Logger(logs)})
			if err == nil {
				if err = j.Start(context.Background()); err == nil {
					if tc.abort {
						<-blocked
						j.Abort()
					}
					err = j.Wait()
				} else {
					<-j.Done()
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("job failed: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("job error %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr != "" && tc.wantErr != engine.ErrAborted.Error() {
				var ne *engine.NodeError
				if !errors.As(err, &ne) {
					t.Fatalf("error %T is not a NodeError", err)
				}
			}
			ev := rec.events()
			for _, inst := range all {
				want := 0
				if slices.Contains(tc.opened, inst) {
					want = 1
				}
				if n := count(ev, "Cleanup "+inst); n != want {
					t.Errorf("Cleanup %s called %d times, want %d; calls: %v", inst, n, want, ev)
				}
				ci := slices.Index(ev, "Close "+inst)
				if ci < 0 && slices.Contains(tc.closed, inst) {
					t.Errorf("Close %s not called: %v", inst, ev)
				}
				if ci >= 0 && !slices.Contains(tc.opened, inst) {
					t.Errorf("Close %s called on an instance that was not opened: %v", inst, ev)
				}
				if ci >= 0 && slices.Index(ev, "Cleanup "+inst) < ci {
					t.Errorf("Cleanup %s before its Close: %v", inst, ev)
				}
			}
			if strings.Contains(tc.name, "panic") && tc.name != "panic in New" && !strings.Contains(logs.String(), "goroutine ") {
				t.Errorf("the panic's stack was not logged:\n%s", logs.String())
			}
		})
	}
}

func count(ev []string, s string) int {
	n := 0
	for _, e := range ev {
		if e == s {
			n++
		}
	}
	return n
}

// TestOpenOrderIsReverseTopological: consumers open before their producers
// (sinks first), whatever the declaration order.
func TestOpenOrderIsReverseTopological(t *testing.T) {
	rec := &recorder{}
	j, err := engine.New(lifecycleGraph(rec, nil, nil), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var opens []string
	for _, e := range rec.events() {
		if strings.HasPrefix(e, "Open ") {
			opens = append(opens, strings.TrimPrefix(e, "Open "))
		}
	}
	if want := []string{"sink#0", "op#0", "op#1", "src#0"}; !slices.Equal(opens, want) {
		t.Fatalf("open order %v, want %v", opens, want)
	}
}

// clockPanics is a quiet live source whose event clock panics.
type clockPanics struct{ enginetest.Source }

func (*clockPanics) EventNow() int64 { panic("clock exploded") }

// TestPanicInEventNowFailsTheSource: the idle watermark advance calls the
// source's EventNow on its own goroutine; a panic there fails the source.
func TestPanicInEventNowFailsTheSource(t *testing.T) {
	src := &clockPanics{enginetest.Source{Hold: true}}
	n := enginetest.SourceNode("src", md.KindTrade, src)
	n.IdleTimeout = time.Millisecond
	g := &engine.Graph{Nodes: []*engine.Node{n, enginetest.SinkNode("sink", &enginetest.Sink{})}, Edges: []*engine.Edge{{From: "src", To: "sink"}}}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err == nil || err.Error() != `node "src": EventNow panicked: clock exploded` {
		t.Fatalf("job error %v", err)
	}
}
