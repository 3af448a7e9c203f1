package bars

import (
	"context"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// decSource emits its trades one batch each, noting each size's decimal
// places with the job's symbol table as a real source does. With gate set
// it stops after the first split trades, closes ready and waits (quietly,
// so checkpoints go on) until gate is closed. Its position is the number of
// trades emitted.
type decSource struct {
	syms        []string
	trades      []md.Trade // Sym: index into syms
	dec         []int      // decimal places of each trade's size
	split       int
	gate, ready chan struct{}
	pos         int
}

func (s *decSource) Run(ctx context.Context, out *engine.Output) error {
	ids := make([]md.SymID, len(s.syms))
	for i, sym := range s.syms {
		ids[i] = out.Symbols().Intern("test", sym)
	}
	sd := md.NewSizeDecimals(out.Symbols())
	for s.pos < len(s.trades) {
		if s.gate != nil && s.pos == s.split {
			close(s.ready)
			for waiting := true; waiting; {
				select {
				case <-s.gate:
					waiting = false
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
					if err := out.Quiet(); err != nil {
						return err
					}
				}
			}
		}
		t := s.trades[s.pos]
		t.Sym = ids[t.Sym]
		sd.Note(t.Sym, s.dec[s.pos])
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, t)
		s.pos++
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *decSource) Position(int64) ([]byte, error) { return []byte(strconv.Itoa(s.pos)), nil }

func (s *decSource) Seek(ctx context.Context, pos []byte) error {
	n, err := strconv.Atoi(string(pos))
	s.pos = n
	return err
}

// lastStore keeps the checkpoints saved.
type lastStore struct {
	mu  sync.Mutex
	cps []*engine.Checkpoint
}

func (m *lastStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return 1, nil
}

// TestRestoredOpenBarRoundsVolumeLikeUninterrupted: a bar open at a
// checkpoint whose symbol sends nothing after the restore has, once it
// closes in the restored job, the same volume as in the uninterrupted run,
// bit for bit. Its sizes 0.1 + 0.2 + 0.001 sum to 0.30100000000000005 in
// floats; the bar gives the exact decimal sum 0.301 only when the symbol's
// size decimals are known, which after a restore only the checkpoint can
// tell (the engine keeps them in Checkpoint.SizeDecimals).
func TestRestoredOpenBarRoundsVolumeLikeUninterrupted(t *testing.T) {
	base := int64(1_700_000_000) * int64(time.Second)
	ms := int64(time.Millisecond)
	trades := []md.Trade{
		{TS: base + 100*ms, Price: 10, Size: 0.1, Sym: 0},
		{TS: base + 200*ms, Price: 11, Size: 0.2, Sym: 0},
		{TS: base + 300*ms, Price: 12, Size: 0.001, Sym: 0},
		// Only Y after the checkpoint: its watermark closes X's bar.
		{TS: base + 1500*ms, Price: 5, Size: 1, Sym: 1},
		{TS: base + 2500*ms, Price: 5, Size: 1, Sym: 1},
	}
	dec := []int{1, 1, 3, 0, 0}
	// The float sum, added in the bar's order (not a constant expression,
	// which Go would evaluate exactly).
	raw := 0.0
	for _, tr := range trades[:3] {
		raw += tr.Size
	}
	if raw == 0.301 {
		t.Fatalf("the sizes' float sum %v has no artefact; the test would prove nothing", raw)
	}
	spec, ok := component.Lookup(Type)
	if !ok {
		t.Fatalf("no component %s", Type)
	}
	params, err := component.NewParams(spec, map[string]any{"interval": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(src *decSource, store *lastStore, restore *engine.Checkpoint, during func(*engine.Job)) map[string]md.Bar {
		t.Helper()
		sink := &enginetest.Sink{}
		g := &engine.Graph{Nodes: []*engine.Node{
			enginetest.SourceNode("src", md.KindTrade, src),
			component.Node(spec, params, component.NodeOptions{ID: "bars"}),
			enginetest.SinkNode("sink", sink),
		}, Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}}}
		j, err := engine.New(g, engine.Options{Job: "sizedec", Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: store, Restore: restore}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := j.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if during != nil {
			during(j)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		got := map[string]md.Bar{}
		for _, b := range sink.Bars() {
			got[j.Symbols().Get(b.Sym).Symbol] = b
		}
		return got
	}

	store := &lastStore{}
	first := &decSource{syms: []string{"X", "Y"}, trades: trades, dec: dec, split: 3, gate: make(chan struct{}), ready: make(chan struct{})}
	whole := run(first, store, nil, func(j *engine.Job) {
		<-first.ready
		if _, err := j.Checkpoint(context.Background()); err != nil {
			t.Errorf("checkpoint: %v", err)
		}
		close(first.gate)
	})
	store.mu.Lock()
	if len(store.cps) != 1 {
		t.Fatalf("%d checkpoints saved, want 1", len(store.cps))
	}
	cp := store.cps[0]
	store.mu.Unlock()
	want, ok := whole["X"]
	if !ok || want.Volume != 0.301 {
		t.Fatalf("uninterrupted X bar %+v (present %v), want volume 0.301", want, ok)
	}
	if len(cp.SizeDecimals) != 1 || cp.SizeDecimals[0] != (engine.SymbolDecimals{Provider: "test", Symbol: "X", Decimals: 3}) {
		t.Fatalf("checkpoint size decimals %+v, want X's 3", cp.SizeDecimals)
	}

	resumed := run(&decSource{syms: []string{"X", "Y"}, trades: trades, dec: dec}, &lastStore{}, cp, nil)
	got, ok := resumed["X"]
	if !ok {
		t.Fatalf("the restored job closed no X bar: %+v", resumed)
	}
	if math.Float64bits(got.Volume) != math.Float64bits(want.Volume) || got.Trades != want.Trades || got.Open != want.Open || got.Close != want.Close {
		t.Fatalf("restored X bar volume %v count %d open %v close %v; uninterrupted %v %d %v %v",
			got.Volume, got.Trades, got.Open, got.Close, want.Volume, want.Trades, want.Open, want.Close)
	}

	// A checkpoint written before it carried size decimals still restores:
	// the bar is restored, its volume the float sum.
	old := *cp
	old.SizeDecimals = nil
	resumed = run(&decSource{syms: []string{"X", "Y"}, trades: trades, dec: dec}, &lastStore{}, &old, nil)
	if got, ok := resumed["X"]; !ok || got.Volume != raw || got.Trades != 3 {
		t.Fatalf("X bar restored from a checkpoint without size decimals: %+v (present %v)", got, ok)
	}
}
