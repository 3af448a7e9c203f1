package scaleout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/retry"
)

// restartBackoff is the wait between a worker's attempts to start its job
// again after a transient failure (the project's one backoff rule, full
// jitter), and restartAttempts bounds the consecutive failed attempts:
// the windows sum to about 37 s, so the worker rides out a NATS server's
// or PostgreSQL's restart and gives up on an outage that lasts.
var restartBackoff = retry.Backoff{Base: 250 * time.Millisecond, Max: 5 * time.Second}

const restartAttempts = 10

// restartHealthy is how long a job must have run for its failure to count
// as the first of a new series of attempts.
const restartHealthy = 10 * time.Second

// errRetriesExhausted ends a worker whose job failed restartAttempts times
// in a row with transient errors.
var errRetriesExhausted = errors.New("the worker's job failed too often in a row")

// transient reports whether err is the kind of failure a restart of the
// worker's job can get past: NATS (or its JetStream) not reachable or not
// answering in time, a network error, PostgreSQL's connection refused or
// lost, or one of its errors of classes 08 (connection), 53 (insufficient
// resources) and 57 (operator intervention: a restart), checkpoints timing
// out (a sink that cannot write holds the barriers up). A retention
// overrun, a checkpoint of another graph, a malformed message or a
// misconfigured job is not transient.
func transient(err error) bool {
	if err == nil || errors.Is(err, ErrRetentionOverrun) || errors.Is(err, errCheckpointConflict) {
		return false
	}
	for _, t := range []error{
		nats.ErrConnectionClosed, nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrNoServers,
		nats.ErrTimeout, nats.ErrNoResponders, nats.ErrStaleConnection, jetstream.ErrNoHeartbeat,
		context.DeadlineExceeded, io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE,
	} {
		if errors.Is(err, t) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// Checkpoints that time out in a row: a sink that cannot write (a
	// locked table, a database that stalls) holds the barriers up. The
	// job starts again from the checkpoints, the leases kept.
	var te *engine.CheckpointTimeoutError
	if errors.As(err, &te) {
		return true
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.Code == 503 { // JetStream temporarily unavailable
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "08", "53", "57":
			return true
		}
	}
	return false
}

// descWorkerRetries counts a worker's restarts after transient failures.
var descWorkerRetries = prometheus.NewDesc("mdp_scaleout_worker_retries_total",
	"Times a worker in this process started its job again after a transient failure (NATS or PostgreSQL not reachable) since it started.", []string{"job", "worker"}, nil)

// WorkerDescs describes every series of a scaled-out worker (the metrics
// reference lists them): the lag series and the retries.
func WorkerDescs() []*prometheus.Desc { return append(LagDescs(), descWorkerRetries) }

// retryCollector exports a worker's retry count.
type retryCollector struct {
	job, worker string
	w           *worker
}

// Describe implements prometheus.Collector.
func (c *retryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWorkerRetries }

// Collect implements prometheus.Collector.
func (c *retryCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWorkerRetries, prometheus.CounterValue, float64(c.w.mem.retries.Load()), c.job, c.worker)
}

// retryLater accounts for a transient failure of the worker's job (jobMu
// held): it logs it, counts it, and schedules the next attempt after the
// backoff; after restartAttempts failures in a row it returns the error
// that ends the worker. ran is how long the failed job had run (0: it did
// not start).
func (w *worker) retryLater(what string, ran time.Duration, err error) error {
	if ran >= restartHealthy {
		w.failures = 0
	}
	w.failures++
	if w.failures >= restartAttempts {
		w.log.Error("scale-out worker: retries exhausted", "what", what, "attempts", w.failures, "err", err)
		return fmt.Errorf("%w (%d attempts): %s: %w", errRetriesExhausted, w.failures, what, err)
	}
	d := restartBackoff.Delay(w.failures)
	w.retryAt = time.Now().Add(d)
	w.mem.retries.Add(1)
	w.log.Warn("scale-out worker: transient failure; its job starts again after a backoff", "what", what, "attempt", w.failures,
		"max_attempts", restartAttempts, "in", d, "err", err)
	time.AfterFunc(d, w.signal)
	return nil
}
