package bustest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Store is an engine.CheckpointStore in memory. With Hold set, Save keeps
// the checkpoint and then does not return until the job ends, so no
// listener hears that it completed: the moment of a crash between saving
// a checkpoint and acknowledging what it covers.
type Store struct {
	Hold atomic.Bool
	mu   sync.Mutex
	all  []*engine.Checkpoint
}

// Save implements engine.CheckpointStore.
func (m *Store) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	m.all = append(m.all, c)
	m.mu.Unlock()
	if m.Hold.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 1, nil
}

// Len is the number of checkpoints saved.
func (m *Store) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.all)
}

// Last is the checkpoint saved last (nil: none).
func (m *Store) Last() *engine.Checkpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.all) == 0 {
		return nil
	}
	return m.all[len(m.all)-1]
}

// WaitSaved waits until at least n checkpoints are saved (at most
// timeout) and fails the test otherwise.
func (m *Store) WaitSaved(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for m.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d checkpoints saved within %s, want %d", m.Len(), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Running is a started job whose sources feed one Sink.
type Running struct {
	Sink   *Sink
	Job    *engine.Job
	cancel context.CancelFunc
}

// Start builds srcs -> one Sink of kind with opts and starts it; the job is
// aborted when the test ends, if it still runs.
func Start(t testing.TB, srcs []*engine.Node, kind md.Kind, opts engine.Options) *Running {
	t.Helper()
	s := &Sink{}
	sn := &engine.Node{ID: "got", Type: "sink.test", Kind: engine.KindSink, Accepts: kind, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
	g := &engine.Graph{Nodes: append(append([]*engine.Node{}, srcs...), sn)}
	for _, n := range srcs {
		g.Edges = append(g.Edges, &engine.Edge{From: n.ID, To: "got"})
	}
	j, err := engine.New(g, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := j.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-j.Done():
		default:
			j.Abort()
		}
		cancel()
		<-j.Done()
	})
	return &Running{Sink: s, Job: j, cancel: cancel}
}

// WaitLen waits until the sink holds at least n records (at most timeout)
// and fails the test otherwise.
func (r *Running) WaitLen(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.Sink.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records within %s, want %d", r.Sink.Len(), timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops the job gracefully and fails the test if it ends with an
// error.
func (r *Running) Stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err := r.Job.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Crash ends the job without draining (Abort), the way a kill ends a
// process: nothing after the moment is flushed or acknowledged.
func (r *Running) Crash() {
	r.Job.Abort()
	r.cancel()
	_ = r.Job.Wait()
}
