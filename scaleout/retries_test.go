package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/engine"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("node \"bars\": bad config"), false},
		{fmt.Errorf("read: %w", nats.ErrTimeout), true},
		{fmt.Errorf("save: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read stream: %w", nats.ErrConnectionReconnecting), true},
		{fmt.Errorf("x: %w", &jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}), true},
		{fmt.Errorf("x: %w", &jetstream.APIError{Code: 400, Description: "bad request"}), false},
		{fmt.Errorf("open: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}), true},
		{fmt.Errorf("open: %w", &pgconn.PgError{Code: "08006"}), true},
		{fmt.Errorf("write: %w", &pgconn.PgError{Code: "42P01", Message: "relation does not exist"}), false},
		{&RetentionError{Stream: "s", Partition: 1, Needed: 5, First: 9}, false},
		{fmt.Errorf("partition 3: %w", errCheckpointConflict), false},
		{fmt.Errorf("3 checkpoints in a row failed (tolerable_failures 2): %w", &engine.CheckpointTimeoutError{ID: 4, Timeout: 10 * time.Second}), true},
		// A retention overrun found while the connection also failed is
		// not retried: the messages are gone.
		{errors.Join(nats.ErrTimeout, &RetentionError{Stream: "s"}), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRetryLaterIsBounded: restartAttempts transient failures in a row end
// the worker with errRetriesExhausted; each earlier one is counted and
// delays the next start by at most the backoff's step; a failure of a job
// that ran restartHealthy starts a new series.
func TestRetryLaterIsBounded(t *testing.T) {
	w := &worker{log: slog.New(slog.DiscardHandler), mem: &membership{}, wake: make(chan struct{}, 1)}
	cause := fmt.Errorf("read: %w", nats.ErrTimeout)
	for i := 1; i < restartAttempts; i++ {
		before := time.Now()
		if err := w.retryLater("the job failed", time.Second, cause); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if d := w.retryAt.Sub(before); d < 0 || d > restartBackoff.Step(i)+time.Second {
			t.Fatalf("attempt %d: next start in %s, step %s", i, d, restartBackoff.Step(i))
		}
	}
	if got := w.mem.retries.Load(); got != restartAttempts-1 {
		t.Fatalf("%d retries counted, want %d", got, restartAttempts-1)
	}
	err := w.retryLater("the job failed", time.Second, cause)
	if !errors.Is(err, errRetriesExhausted) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("attempt %d: %v, want errRetriesExhausted wrapping the cause", restartAttempts, err)
	}
	w.failures = restartAttempts - 1
	if err := w.retryLater("the job failed", restartHealthy, cause); err != nil || w.failures != 1 {
		t.Fatalf("after a healthy run: %v, failures %d", err, w.failures)
	}
}

// TestRetryCollector: the series counts the worker's retries, labelled
// with the job and the worker.
func TestRetryCollector(t *testing.T) {
	w := &worker{mem: &membership{}}
	w.mem.retries.Store(3)
	reg := prometheus.NewRegistry()
	if err := reg.Register(&retryCollector{job: "j", worker: "w0", w: w}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s %s %v %v", mf.GetName(), mf.GetType(), labels, m.GetCounter().GetValue()))
		}
	}
	if want := "mdp_scaleout_worker_retries_total COUNTER [job=j worker=w0] 3"; len(got) != 1 || got[0] != want {
		t.Fatalf("gathered %q, want %q", got, want)
	}
}
