package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// batchSource emits the given batches of trade timestamps over symbols
// S0..S(syms-1), round robin.
type batchSource struct {
	batches [][]int64
	syms    int
}

func (s *batchSource) Run(ctx context.Context, out *engine.Output) error {
	ids := make([]md.SymID, s.syms)
	for i := range ids {
		ids[i] = out.Symbols().Intern("t", fmt.Sprintf("S%d", i))
	}
	k := 0
	for _, tss := range s.batches {
		b := out.NewBatch(md.KindTrade)
		for _, ts := range tss {
			b.Trades = append(b.Trades, md.Trade{TS: ts, Sym: ids[k%s.syms], Price: 1, Size: 1})
			k++
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

// seenSink records, per batch, its timestamps and the watermark its
// instance had seen before it.
type seenSink struct {
	mu  sync.Mutex
	wm  map[*engine.Output]int64
	got []string
}

func (s *seenSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	wm, ok := s.wm[out]
	if !ok {
		wm = md.MinTime
	}
	var ts []int64
	for _, t := range b.Trades {
		ts = append(ts, t.TS)
	}
	s.got = append(s.got, fmt.Sprintf("%v after wm %d", ts, wm))
	return nil
}

func (s *seenSink) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	s.mu.Lock()
	s.wm[out] = wm
	s.mu.Unlock()
	return nil
}

// A source batch is cut before each record behind the running watermark, so
// receivers see the watermark of exactly the records before it; every
// receiver of a fan-out sees the same, and end of stream follows.
func TestSourceBatchIsCutBeforeARecordBehindTheWatermark(t *testing.T) {
	sink, sink2 := &seenSink{wm: map[*engine.Output]int64{}}, &seenSink{wm: map[*engine.Output]int64{}}
	src := &batchSource{syms: 1, batches: [][]int64{
		{10, 50, 30, 60, 20}, // ooo 5: running watermark 5, 45 | 45, 55 | 55
		{58, 70},             // 58 is not behind 55: not cut
		{40},                 // behind 65 at the start of a batch: no cut needed
		{80, 81, 82},         // in order: one batch
	}}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src),
			{ID: "sink", Type: "sink.seen", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return sink, nil }},
			{ID: "sink2", Type: "sink.seen", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return sink2, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "sink"}, {From: "src", To: "sink2"}}, // fan-out
	}
	g.Nodes[0].MaxOutOfOrderness = 5
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("[10 50] after wm %d", md.MinTime),
		"[30 60] after wm 45",
		"[20] after wm 55",
		"[58 70] after wm 55",
		"[40] after wm 65",
		"[80 81 82] after wm 65",
	}
	for i, s := range []*seenSink{sink, sink2} {
		if fmt.Sprint(s.got) != fmt.Sprint(want) {
			t.Fatalf("sink %d got\n%q\nwant\n%q", i+1, s.got, want)
		}
		if len(s.wm) != 1 {
			t.Fatalf("sink %d: %d instances saw watermarks", i+1, len(s.wm))
		}
		for _, w := range s.wm {
			if w != md.MaxTime {
				t.Fatalf("sink %d: last watermark %d, want the final one", i+1, w)
			}
		}
	}
	if st := j.Status(); st.Nodes[0].EventsOut != 11 || st.Nodes[1].EventsIn != 11 || st.Nodes[2].EventsIn != 11 {
		t.Fatalf("events out %d in %d and %d, want 11", st.Nodes[0].EventsOut, st.Nodes[1].EventsIn, st.Nodes[2].EventsIn)
	}
}

// With a parallel receiver, every instance sees the watermark before a record
// behind it, also when the records before it all went to another instance.
func TestCutWatermarkReachesEveryInstance(t *testing.T) {
	sink := &seenSink{wm: map[*engine.Output]int64{}}
	// Two symbols round robin: S0 gets 300, S1 200 (behind it); the batch
	// is cut between them and S1's instance gets only the watermark.
	src := &batchSource{syms: 2, batches: [][]int64{{300, 200}}}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", src),
			{ID: "sink", Type: "sink.seen", Kind: engine.KindSink, Parallelism: 2, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	if md.Split(md.HashSymbol("S0"), md.SplitInstances, 2) == md.Split(md.HashSymbol("S1"), md.SplitInstances, 2) {
		t.Fatal("test needs S0 and S1 on different instances")
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	slices.Sort(sink.got)
	if want := []string{"[200] after wm 300", fmt.Sprintf("[300] after wm %d", md.MinTime)}; !slices.Equal(sink.got, want) {
		t.Fatalf("got %q, want %q", sink.got, want)
	}
}
