package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// slowSource emits a few trades with a pause before each batch: a source
// slower than everything downstream.
type slowSource struct{ pause time.Duration }

func (s *slowSource) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("test", "A")
	id2 := out.Symbols().Intern("test", "B")
	for i := range 20 {
		time.Sleep(s.pause)
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, md.Trade{TS: int64(i), Sym: id, Price: 1, Size: 1}, md.Trade{TS: int64(i), Sym: id2, Price: 1, Size: 1})
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

// sleepySink spends a while on every batch: a sink slower than its source.
type sleepySink struct{ pause time.Duration }

func (s *sleepySink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	time.Sleep(s.pause)
	return nil
}

// TestBottleneckNamesASlowSource: a source that never waits on its output
// while its parallel consumer idles is named in the status, with the advice
// that parallelism downstream does not help; a job held back by its sink
// names no source.
func TestBottleneckNamesASlowSource(t *testing.T) {
	defer engine.SetSourceBoundAfter(50 * time.Millisecond)()
	sink := enginetest.SinkNode("sink", &sleepySink{})
	sink.Parallelism = 2
	g := &engine.Graph{
		Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, &slowSource{pause: 5 * time.Millisecond}), sink},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := j.Status()
	if !strings.HasPrefix(st.Bottleneck, "source src limits the job's rate") || !strings.Contains(st.Bottleneck, "(sink 0%)") ||
		!strings.HasSuffix(st.Bottleneck, "more parallelism downstream cannot speed this job up") {
		t.Fatalf("bottleneck %q", st.Bottleneck)
	}
	if f := st.Nodes[0].BusyFraction; f < 0.95 {
		t.Fatalf("source busy fraction %.2f, want about 1", f)
	}

	// The sink is the slow part: its one-slot queue fills and the source
	// waits on it most of the time.
	g = &engine.Graph{
		Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, &slowSource{}), enginetest.SinkNode("sink", &sleepySink{pause: 5 * time.Millisecond})},
		Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: 1}},
	}
	if j, err = engine.New(g, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = j.Status()
	if st.Bottleneck != "" {
		t.Fatalf("a sink-bound job names a bottleneck: %q", st.Bottleneck)
	}
	if f := st.Nodes[1].BusyFraction; f < 0.6 {
		t.Fatalf("sink busy fraction %.2f, want most of its time", f)
	}
}

// TestBottleneckWaitsForARunLongEnough: a job shorter than the hint's
// minimum run names no bottleneck, however busy its source.
func TestBottleneckWaitsForARunLongEnough(t *testing.T) {
	defer engine.SetSourceBoundAfter(time.Hour)()
	g := &engine.Graph{
		Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, &slowSource{pause: time.Millisecond}), enginetest.SinkNode("sink", &sleepySink{})},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := j.Status(); st.Bottleneck != "" || st.Nodes[0].BusyFraction < 0.95 {
		t.Fatalf("bottleneck %q, source busy %.2f", st.Bottleneck, st.Nodes[0].BusyFraction)
	}
}
