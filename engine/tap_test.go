package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

func tapGraph(n int) (*engine.Graph, *enginetest.Sink) {
	c := &enginetest.Sink{}
	return &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", gen(n, 100, 3)), opNode("op", 2), enginetest.SinkNode("sink", c)},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
	}, c
}

// A listener that keeps up sees every record the node emits, from every
// instance, and nothing is skipped.
func TestTapSeesEverythingANodeEmits(t *testing.T) {
	g, c := tapGraph(10000)
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range j.TapPorts() {
		names = append(names, p.Name()+":"+p.Kind.String())
	}
	if got, want := strings.Join(names, " "), "op:trade op.dead_letter:trade sink.dead_letter:trade src:trade"; got != want {
		t.Fatalf("tap ports %q, want %q", got, want)
	}
	tap, err := j.Tap("op", "", engine.MaxTapBuffer)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []md.Trade
	for len(tap.Batches()) > 0 {
		b := <-tap.Batches()
		got = append(got, b.Trades...)
		b.Release()
	}
	if len(got) != 10000 || tap.Skipped() != 0 {
		t.Fatalf("tap got %d trades, skipped %d; want 10000, 0", len(got), tap.Skipped())
	}
	seen := map[int64]bool{}
	for _, tr := range got {
		seen[tr.TS] = true
	}
	if len(seen) != 10000 || len(c.Trades()) != 10000 {
		t.Fatalf("tap saw %d distinct trades, sink %d", len(seen), len(c.Trades()))
	}
}

// A listener that never reads costs the job nothing but the batches it
// misses: the job runs to its end, every record reaches the sink, and what
// the tap did not take is counted.
func TestTapNeverBlocksTheJob(t *testing.T) {
	g, c := tapGraph(20000)
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	tap, err := j.Tap("src", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.Trades()) != 20000 {
		t.Fatalf("sink got %d trades", len(c.Trades()))
	}
	held := 0
	if len(tap.Batches()) == 1 {
		b := <-tap.Batches()
		held = b.Len()
		b.Release()
	}
	if held != 100 || tap.Skipped() != 20000-100 {
		t.Fatalf("tap held %d, skipped %d; want 100 and %d", held, tap.Skipped(), 20000-100)
	}
	tap.Close()
	tap.Close() // idempotent
}

// After Close a listener gets nothing more; another listener is unaffected.
func TestTapCloseDetaches(t *testing.T) {
	g, _ := tapGraph(5000)
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := j.Tap("op", "", engine.MaxTapBuffer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := j.Tap("op", "", engine.MaxTapBuffer)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(a.Batches()) != 0 {
		t.Fatalf("closed tap got %d batches", len(a.Batches()))
	}
	n := 0
	for len(b.Batches()) > 0 {
		x := <-b.Batches()
		n += x.Len()
		x.Release()
	}
	if n != 5000 {
		t.Fatalf("open tap got %d records, want 5000", n)
	}
	b.Close()
}

func TestTapRefusesUnknownPortsAndBadBuffers(t *testing.T) {
	g, _ := tapGraph(10)
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Tap("op", "late", 8); err == nil || !strings.Contains(err.Error(), `no output port "op.late"`) || !strings.Contains(err.Error(), "op.dead_letter") {
		t.Fatalf("unknown port: %v", err)
	}
	if _, err := j.Tap("nope", "", 8); err == nil {
		t.Fatal("unknown node: no error")
	}
	for _, n := range []int{0, engine.MaxTapBuffer + 1} {
		if _, err := j.Tap("op", "", n); err == nil || !strings.Contains(err.Error(), "want 1..4096") {
			t.Fatalf("buffer %d: %v", n, err)
		}
	}
}
