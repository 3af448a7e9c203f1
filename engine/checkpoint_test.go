package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// seekSource emits n trades in batches of bs, pausing now and then so
// checkpoints fall between its batches; its position is its count.
type seekSource struct {
	n, bs, pos int
}

func (s *seekSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "S")
	for s.pos < s.n {
		b := out.NewBatch(md.KindTrade)
		for range min(s.bs, s.n-s.pos) {
			b.Trades = append(b.Trades, md.Trade{TS: int64(s.pos), Price: 1, Size: 1, Sym: sym})
			s.pos++
		}
		if err := out.Emit(b); err != nil {
			return err
		}
		if s.pos%(20*s.bs) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func (s *seekSource) Position(int64) ([]byte, error) { return []byte(strconv.Itoa(s.pos)), nil }

func (s *seekSource) Seek(ctx context.Context, pos []byte) error {
	var err error
	s.pos, err = strconv.Atoi(string(pos))
	return err
}

// countSink counts the records it receives, through fan-in; its state is
// the count.
type countSink struct{ n int }

func (c *countSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.n += b.Len()
	return nil
}

func (c *countSink) Snapshot(ctx context.Context) ([]byte, error) {
	return []byte(strconv.Itoa(c.n)), nil
}

func (c *countSink) Restore(ctx context.Context, states [][]byte) error {
	for _, s := range states {
		n, err := strconv.Atoi(string(s))
		if err != nil {
			return err
		}
		c.n += n
	}
	return nil
}

type memStore struct {
	mu  sync.Mutex
	cps []*engine.Checkpoint
}

func (m *memStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return 1, nil
}

func fanIn(a, b *seekSource, c *countSink) *engine.Graph {
	src := func(id string, s *seekSource) *engine.Node {
		return &engine.Node{ID: id, Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
			NewSource: func(int) (engine.Source, error) { return s, nil }}
	}
	return &engine.Graph{
		Nodes: []*engine.Node{src("a", a), src("b", b), {ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny,
			Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return c, nil }}},
		Edges: []*engine.Edge{{From: "a", To: "count"}, {From: "b", To: "count"}},
	}
}

func states(c *engine.Checkpoint) map[string]int {
	out := map[string]int{}
	for _, n := range c.Nodes {
		v, _ := strconv.Atoi(string(n.Instances[0].State))
		out[n.ID] = v
	}
	return out
}

// TestCheckpointAlignsAtFanIn: every checkpoint's count at the fan-in sink
// equals the records its two sources had emitted at their barriers (an
// input that delivered the barrier is blocked until the other does), and a
// job restored from a checkpoint counts every record exactly once.
func TestCheckpointAlignsAtFanIn(t *testing.T) {
	const na, nb = 200_000, 120_000
	store := &memStore{}
	a, b, c := &seekSource{n: na, bs: 64}, &seekSource{n: nb, bs: 17}, &countSink{}
	j, err := engine.New(fanIn(a, b, c), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: 5 * time.Millisecond, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.n != na+nb {
		t.Fatalf("counted %d, want %d", c.n, na+nb)
	}
	if len(store.cps) < 3 {
		t.Fatalf("%d checkpoints completed, want several", len(store.cps))
	}
	for _, cp := range store.cps {
		s := states(cp)
		if s["count"] != s["a"]+s["b"] {
			t.Errorf("checkpoint %d: the sink counted %d, the sources were at %d + %d", cp.ID, s["count"], s["a"], s["b"])
		}
	}
	if st := j.CheckpointStatus(); st.Completed != int64(len(store.cps)) || st.Last != store.cps[len(store.cps)-1].ID {
		t.Errorf("status %+v, %d checkpoints saved", st, len(store.cps))
	}
	series := map[string]bool{}
	for _, m := range j.Metrics().Series() {
		series[m.Node+" "+m.Name] = true
	}
	for _, want := range []string{"count mdp_checkpoint_alignment_seconds", "checkpoint mdp_checkpoint_completed_total",
		"checkpoint mdp_checkpoint_failed_total", "checkpoint mdp_checkpoint_last_id", "checkpoint mdp_checkpoint_last_duration_seconds",
		"checkpoint mdp_checkpoint_last_size_bytes", "checkpoint mdp_checkpoint_last_timestamp_seconds"} {
		if !series[want] {
			t.Errorf("no series %q", want)
		}
	}

	// Restore the middle checkpoint into a new job.
	cp := store.cps[len(store.cps)/2]
	a2, b2, c2 := &seekSource{n: na, bs: 64}, &seekSource{n: nb, bs: 17}, &countSink{}
	j2, err := engine.New(fanIn(a2, b2, c2), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}, Restore: cp}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c2.n != na+nb {
		t.Errorf("restored from checkpoint %d (%v): counted %d, want %d", cp.ID, states(cp), c2.n, na+nb)
	}
}

// TestCheckpointRefusesAnotherGraph: a checkpoint of another graph is
// refused by New unless AllowGraphChange.
func TestCheckpointRefusesAnotherGraph(t *testing.T) {
	g := fanIn(&seekSource{n: 1, bs: 1}, &seekSource{n: 1, bs: 1}, &countSink{})
	cp := &engine.Checkpoint{Format: engine.CheckpointFormat, ID: 4, Job: "other", Graph: "0123456789abcdef", Shape: []engine.GraphEntry{{ID: "x", Type: "provider.test"}}}
	_, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Second, Store: &memStore{}, Restore: cp}})
	want := `the checkpoint was taken from another graph: checkpoint 4 of job "other" has nodes x (provider.test), this job has a (provider.test), b (provider.test), count (sink.test)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if _, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Second, Store: &memStore{}, Restore: cp, AllowGraphChange: true}}); err != nil {
		t.Fatalf("AllowGraphChange: %v", err)
	}
}

// slowSink takes a while per batch, so its input queue stays full.
type slowSink struct{ countSink }

func (s *slowSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	time.Sleep(200 * time.Microsecond)
	return s.countSink.Process(ctx, b, out)
}

// TestCheckpointBarrierNotDroppedByDropNewest: a full drop_newest queue
// drops batches but never a barrier (it waits for room, like end of
// stream), so checkpoints still complete behind a slow consumer.
func TestCheckpointBarrierNotDroppedByDropNewest(t *testing.T) {
	store := &memStore{}
	src, sink := &seekSource{n: 400_000, bs: 64}, &slowSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "a", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			{ID: "slow", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return sink, nil }},
		},
		Edges: []*engine.Edge{{From: "a", To: "slow", Capacity: 1, Policy: engine.DropNewest}},
	}
	j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: 5 * time.Millisecond, Timeout: time.Hour, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(store.cps) < 3 {
		t.Fatalf("%d checkpoints completed behind a full drop_newest queue, want several", len(store.cps))
	}
}

type failStore struct{}

func (failStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	return 0, errors.New("disk full")
}

// TestCheckpointTolerableFailures: a checkpoint the store cannot save is
// counted and the job goes on while the failures in a row stay within
// tolerable_failures; past it the job fails with the cause.
func TestCheckpointTolerableFailures(t *testing.T) {
	run := func(tolerable int) (*engine.Job, error) {
		src := &seekSource{n: 100_000, bs: 64}
		g := &engine.Graph{
			Nodes: []*engine.Node{
				{ID: "a", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
					NewSource: func(int) (engine.Source, error) { return src, nil }},
				{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
					NewProcessor: func(int) (engine.Processor, error) { return &slowSink{}, nil }},
			},
			Edges: []*engine.Edge{{From: "a", To: "count"}},
		}
		j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: 2 * time.Millisecond, Store: failStore{}, TolerableFailures: tolerable}})
		if err != nil {
			t.Fatal(err)
		}
		return j, j.Run(context.Background())
	}
	j, err := run(-1)
	if err != nil {
		t.Fatalf("tolerable_failures -1: %v", err)
	}
	if st := j.CheckpointStatus(); st.Failed < 2 || st.Completed != 0 {
		t.Errorf("status %+v: want several failures counted, none completed", st)
	}
	_, err = run(1)
	if err == nil || !strings.Contains(err.Error(), "2 checkpoints in a row failed (tolerable_failures 1)") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("tolerable_failures 1: err = %v", err)
	}
}

// askSource records what Output.Checkpointing says in Run.
type askSource struct{ got bool }

func (s *askSource) Run(ctx context.Context, out *engine.Output) error {
	s.got = out.Checkpointing()
	return nil
}

func TestOutputCheckpointing(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := &askSource{got: !on}
		g := &engine.Graph{Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return s, nil }},
			{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return &countSink{}, nil }}},
			Edges: []*engine.Edge{{From: "src", To: "count"}}}
		opts := engine.Options{}
		if on {
			opts.Checkpoint = &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}}
		}
		j, err := engine.New(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.got != on {
			t.Fatalf("checkpoints %v: Checkpointing() = %v", on, s.got)
		}
	}
}

// quietSource emits one batch and then waits for data that never comes,
// calling Quiet between its polls.
type quietSource struct{ positions int }

func (s *quietSource) Run(ctx context.Context, out *engine.Output) error {
	b := out.NewBatch(md.KindTrade)
	b.Trades = append(b.Trades, md.Trade{TS: 1, Price: 1, Size: 1, Sym: out.Symbols().Intern("test", "S")})
	if err := out.Emit(b); err != nil {
		return err
	}
	for ctx.Err() == nil {
		time.Sleep(time.Millisecond)
		if err := out.Quiet(); err != nil {
			return err
		}
	}
	return nil
}

func (s *quietSource) Position(int64) ([]byte, error) { s.positions++; return []byte("1"), nil }

func (s *quietSource) Seek(ctx context.Context, pos []byte) error { return nil }

// TestQuietSourceJoinsCheckpoints: a seeking source with nothing to emit
// still takes part in checkpoints through Output.Quiet.
func TestQuietSourceJoinsCheckpoints(t *testing.T) {
	s := &quietSource{}
	g := &engine.Graph{Nodes: []*engine.Node{
		{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
			NewSource: func(int) (engine.Source, error) { return s, nil }},
		{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return &countSink{}, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "count"}}}
	store := &memStore{}
	j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: 5 * time.Millisecond, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := j.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	store.mu.Lock()
	n := len(store.cps)
	store.mu.Unlock()
	if n < 5 {
		t.Fatalf("%d checkpoints saved in 300ms at a 5ms interval by a quiet source", n)
	}
}

// liveSource emits n trades of symbol S from event time base, then, with
// hold, waits quietly for the job to stop; it cannot seek.
type liveSource struct {
	n    int
	base int64
	hold bool
}

func (s *liveSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "S")
	if s.n > 0 {
		b := out.NewBatch(md.KindTrade)
		for i := range s.n {
			b.Trades = append(b.Trades, md.Trade{TS: s.base + int64(i), Price: 1, Size: 1, Sym: sym})
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	for s.hold {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
			if err := out.Quiet(); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestRestoreLiveSourceMarksTheGap: a source that cannot seek resumes live
// after a restore, and every instrument's bars from the checkpoint's
// watermark to the restart are marked partial (Gapped), those after it not.
func TestRestoreLiveSourceMarksTheGap(t *testing.T) {
	graph := func(s *liveSource) *engine.Graph {
		return &engine.Graph{Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return s, nil }},
			{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return &countSink{}, nil }}},
			Edges: []*engine.Edge{{From: "src", To: "count"}}}
	}
	const base = int64(1_700_000_000) * 1e9
	store := &memStore{}
	first, err := engine.New(graph(&liveSource{n: 10, base: base, hold: true}), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for first.Symbols().Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := first.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	first.Abort()
	_ = first.Wait()
	if first.Symbols().Gapped(0, base, base+10) {
		t.Fatal("a run that restored nothing has a gap")
	}
	store.mu.Lock()
	cp := store.cps[len(store.cps)-1]
	store.mu.Unlock()

	second, err := engine.New(graph(&liveSource{}), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}, Restore: cp}})
	if err != nil {
		t.Fatal(err)
	}
	restart := time.Now().UnixNano()
	if err := second.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st := second.Symbols()
	id := st.Intern("test", "S")
	if !st.Gapped(id, base+9, base+10) || !st.Gapped(id, restart-int64(time.Second), restart) {
		t.Fatalf("no gap from the checkpoint to the restart")
	}
	if other := st.Intern("test", "T"); !st.Gapped(other, base+9, base+10) {
		t.Fatalf("an instrument first seen after the restore has no gap")
	}
	if later := time.Now().Add(time.Hour).UnixNano(); st.Gapped(id, later, later+int64(time.Second)) {
		t.Fatalf("a bar after the restart is marked partial")
	}
}

// tickSource emits a trade a millisecond until it is stopped (with a
// limit, until it has emitted that many); its position is its count.
type tickSource struct{ pos, limit int }

func (s *tickSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "S")
	for s.limit == 0 || s.pos < s.limit {
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, md.Trade{TS: int64(s.pos), Price: 1, Size: 1, Sym: sym})
		s.pos++
		if err := out.Emit(b); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (s *tickSource) Position(int64) ([]byte, error) { return []byte(strconv.Itoa(s.pos)), nil }

func (s *tickSource) Seek(ctx context.Context, pos []byte) error {
	var err error
	s.pos, err = strconv.Atoi(string(pos))
	return err
}

func tickGraph(src *tickSource, sink *commitSink) *engine.Graph {
	return &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "a", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
		Edges: []*engine.Edge{{From: "a", To: "count"}},
	}
}

// commitSink records the checkpoint calls a two-phase committing sink gets.
type commitSink struct {
	countSink
	mu       sync.Mutex
	calls    []string
	ck       bool
	restored int64
}

func (c *commitSink) Open(ctx context.Context, nc *engine.NodeContext) error {
	c.ck, c.restored = nc.Checkpointing, nc.RestoreID
	return nil
}

func (c *commitSink) log(s string) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
}

func (c *commitSink) Flush(ctx context.Context) error { c.log("flush"); return nil }

func (c *commitSink) PreCommit(ctx context.Context, id int64) error {
	c.log("precommit " + strconv.FormatInt(id, 10))
	return nil
}

func (c *commitSink) Snapshot(ctx context.Context) ([]byte, error) {
	c.log("snapshot")
	return c.countSink.Snapshot(ctx)
}

func (c *commitSink) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	c.log("complete " + strconv.FormatInt(id, 10))
	return nil
}

// TestCheckpointPreCommit: a PreCommitter sink gets, on each barrier,
// Flush, PreCommit with the checkpoint's id and Snapshot in that order,
// and the completion of that id before Job.Checkpoint returns; its
// NodeContext says checkpoints are on and which one is restored.
func TestCheckpointPreCommit(t *testing.T) {
	sink := &commitSink{}
	store := &memStore{}
	j, err := engine.New(tickGraph(&tickSource{}, sink), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for range 3 {
		id, err := j.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := strconv.FormatInt(id, 10)
		want = append(want, "flush", "precommit "+n, "snapshot", "complete "+n)
		sink.mu.Lock()
		got := strings.Join(sink.calls, ", ")
		sink.mu.Unlock()
		if got != strings.Join(want, ", ") {
			t.Fatalf("after checkpoint %d the sink got\n%s\nwant\n%s", id, got, strings.Join(want, ", "))
		}
	}
	j.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if !sink.ck || sink.restored != 0 {
		t.Errorf("NodeContext: Checkpointing %v, RestoreID %d; want true, 0", sink.ck, sink.restored)
	}

	cp := store.cps[len(store.cps)-1]
	sink2 := &commitSink{}
	j2, err := engine.New(tickGraph(&tickSource{limit: 1}, sink2), engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}, Restore: cp}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !sink2.ck || sink2.restored != cp.ID {
		t.Errorf("restored NodeContext: Checkpointing %v, RestoreID %d; want true, %d", sink2.ck, sink2.restored, cp.ID)
	}
}

// TestRestoreOwnInstanceState: with OwnInstanceState each instance of a
// node restores from its own index's state only (without it, from every
// instance's), and a checkpoint with another number of instances of the
// node is refused.
func TestRestoreOwnInstanceState(t *testing.T) {
	run := func(own bool, saved []string) ([]int, error) {
		sinks := make([]*countSink, 3)
		g := &engine.Graph{
			Nodes: []*engine.Node{
				{ID: "a", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
					NewSource: func(int) (engine.Source, error) { return &seekSource{n: 0, bs: 1}, nil }},
				{ID: "count", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Parallelism: 3, Ports: map[string]md.Kind{},
					NewProcessor: func(i int) (engine.Processor, error) { sinks[i] = &countSink{}; return sinks[i], nil }},
			},
			Edges: []*engine.Edge{{From: "a", To: "count"}},
		}
		ns := engine.NodeState{ID: "count", Type: "sink.test"}
		for _, s := range saved {
			ns.Instances = append(ns.Instances, engine.InstanceState{State: []byte(s), Complete: true})
		}
		cp := &engine.Checkpoint{Format: engine.CheckpointFormat, ID: 7, Graph: engine.GraphFingerprint(g), Nodes: []engine.NodeState{
			{ID: "a", Type: "provider.test", Instances: []engine.InstanceState{{State: []byte("0"), Resume: engine.ResumeSeek, Complete: true}}}, ns}}
		j, err := engine.New(g, engine.Options{Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}, Restore: cp, OwnInstanceState: own}})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Start(context.Background()); err != nil {
			return nil, err
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		return []int{sinks[0].n, sinks[1].n, sinks[2].n}, nil
	}
	got, err := run(true, []string{"1", "10", "100"})
	if err != nil || got[0] != 1 || got[1] != 10 || got[2] != 100 {
		t.Fatalf("own instance state: %v, %v; want [1 10 100]", got, err)
	}
	got, err = run(false, []string{"1", "10", "100"})
	if err != nil || got[0] != 111 || got[1] != 111 || got[2] != 111 {
		t.Fatalf("every instance's state: %v, %v; want [111 111 111]", got, err)
	}
	if _, err := run(true, []string{"1", "10"}); err == nil || !strings.Contains(err.Error(), "the checkpoint holds 2 instances of this node, the job runs 3") {
		t.Fatalf("2 saved instances for 3: %v", err)
	}
}
