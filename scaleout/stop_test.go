package scaleout

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
)

// runWorkerBounded runs RunWorker and returns its error, failing the test
// if it has not returned within limit.
func runWorkerBounded(t *testing.T, ctx context.Context, doc *config.Document, opts WorkerOptions, limit time.Duration, act func()) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- RunWorker(ctx, doc, opts) }()
	if act != nil {
		act()
	}
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("RunWorker did not return within %s", limit)
		return nil
	}
}

// noKeys fails the test if the job's bucket of kind holds a key.
func noKeys(t *testing.T, ctx context.Context, js jetstream.JetStream, job, kind string) {
	t.Helper()
	kv, err := js.KeyValue(ctx, namesOf(job).bucket(kind))
	if err != nil {
		t.Fatalf("bucket %s: %v", kind, err)
	}
	keys, err := kv.Keys(ctx)
	if !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatalf("bucket %s: keys %v, err %v; want none", kind, keys, err)
	}
}

// A worker whose context is cancelled (SIGTERM) before it joined, or just
// as it starts its job (before it read the partitions' checkpoints),
// returns nil, not "context canceled", and holds nothing afterwards: no
// member key, no lease.
func TestWorkerStopWhileJoiningOrStarting(t *testing.T) {
	srv := loopbackServer(t)
	_, js := testJS(t, srv)
	doc := synthJob(t, 10, "")
	doc.Name = "so-stop"
	doc.Scaleout.NATS, doc.Scaleout.Partitions = srv.ClientURL(), 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pre, stopPre := context.WithCancel(ctx)
	stopPre()
	if err := runWorkerBounded(t, pre, doc, WorkerOptions{ID: "w0", timing: testTiming}, 20*time.Second, nil); err != nil {
		t.Fatalf("cancelled before joining: %v, want nil", err)
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var starts sync.WaitGroup
	starts.Add(1)
	var once sync.Once
	opts := WorkerOptions{ID: "w1", timing: testTiming, hooks: workerHooks{beforeStart: func() {
		once.Do(func() {
			stop()
			starts.Done()
		})
	}}}
	if err := runWorkerBounded(t, wctx, doc, opts, 20*time.Second, nil); err != nil {
		t.Fatalf("cancelled as its job starts: %v, want nil", err)
	}
	starts.Wait() // the hook ran: the stop came as the job started
	noKeys(t, ctx, js, doc.Name, "members")
	noKeys(t, ctx, js, doc.Name, "leases")
}

// If the coordinator's goroutine returns on its own, the worker's loop
// ends with errCoordinationEnded and RunWorker returns it (before, it
// waited for the coordinator's result a second time: forever).
func TestWorkerCoordinatorEndsOnItsOwn(t *testing.T) {
	srv := loopbackServer(t)
	doc := synthJob(t, 10, "")
	doc.Name = "so-coend"
	doc.Scaleout.NATS, doc.Scaleout.Partitions = srv.ClientURL(), 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	abandon := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	opts := WorkerOptions{ID: "w0", timing: testTiming, hooks: workerHooks{abandon: abandon,
		beforeStart: func() { once.Do(func() { close(started) }) }}}
	err := runWorkerBounded(t, ctx, doc, opts, 20*time.Second, func() {
		select {
		case <-started: // the coordinator runs and gave the worker its partitions
		case <-time.After(20 * time.Second):
			t.Error("the worker never started a job")
		}
		close(abandon)
	})
	if !errors.Is(err, errCoordinationEnded) || err.Error() != "the worker's coordination ended" {
		t.Fatalf("RunWorker: %v, want %v", err, errCoordinationEnded)
	}
}
