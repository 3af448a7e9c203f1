package scaleout

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

// WorkerOptions configure one worker process of a scaled-out job.
type WorkerOptions struct {
	Options
	// ID names the worker in the membership bucket; empty means
	// DefaultWorkerID.
	ID string
	// Workers is how many workers must be live before the first
	// assignment (0 or 1: none to wait for); after it, every join and
	// leave rebalances the partitions.
	Workers int
	// LeaseTTL is how long a worker's membership and partition leases
	// live without a renewal (0: 6s); a dead worker's partitions move
	// after it. Workers renew every LeaseTTL/3 and stop a partition
	// LeaseTTL/6 before its lease could expire.
	LeaseTTL time.Duration
	// CheckpointInterval is how often the worker checkpoints its
	// partitions (0: 1s).
	CheckpointInterval time.Duration
	// timing overrides LeaseTTL (tests).
	timing timing
	// checkpointTimeout overrides the engine's checkpoint timeout (tests;
	// 0: ten intervals, at least 10 s).
	checkpointTimeout time.Duration
	// hooks are the tests' points of entry (zero in production).
	hooks workerHooks
}

// workerHooks let tests act at chosen moments of a worker's life.
type workerHooks struct {
	// beforeStart, when set, runs as the worker starts a job, before it
	// reads the partitions' checkpoints.
	beforeStart func()
	// abandon, when set, is the coordinator's abandon channel: closing it
	// ends the coordinator on its own, like a kill -9 of its goroutine.
	abandon chan struct{}
}

// errEmbedded refuses a separate role for a job whose server is embedded.
func errEmbedded(role string) error {
	return fmt.Errorf("mdp %s needs scaleout.nats to be the URL of a NATS server the processes share, not embedded", role)
}

// RunIngest runs the job's source as ingest only, publishing into the
// job's stream on the NATS server of scaleout.nats. The stream must be
// empty unless opts.Reread: the ingest reads its input from the start, and
// only workers that drop what they have read (by record number) make a
// second reading of the same input harmless. Cancelling ctx stops the source; the ingest then
// publishes its end markers and returns. opts.Status, when set, is given
// the ingest's engine job (the source and the publisher) and the job's
// scale-out status as the ingest sees it (the workers and leases in the
// job's buckets, once a worker made them; each partition's lag as its
// worker last reported it); opts.Metrics is not used: the ingest has no
// series of its own beyond its process's.
func RunIngest(ctx context.Context, doc *config.Document, opts Options) error {
	so := doc.Scaleout
	if so == nil {
		return fmt.Errorf("job %q has no scaleout section", doc.Name)
	}
	if so.Embedded() {
		return errEmbedded("ingest")
	}
	if opts.Reread {
		if err := doc.ScaleoutRereadable(); err != nil {
			return fmt.Errorf("job %q: --reread: %w", doc.Name, err)
		}
	}
	log := logger(opts, doc).With("role", "ingest")
	c, err := connect(so, log)
	if err != nil {
		return err
	}
	defer c.close()
	n := namesOf(doc.Name)
	pub := newPublisher(nil, n, so.Partitions)
	pub.configure(so)
	js, err := publishingJS(c.nc, pub)
	if err != nil {
		return err
	}
	pub.js = js
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := ensureStream(setup, js, n, so, false)
	if err != nil {
		return err
	}
	info, err := stream.Info(setup)
	if err != nil {
		return fmt.Errorf("stream %s: %w", n.stream, err)
	}
	if msgs := info.State.Msgs; msgs > 0 && !opts.Reread {
		return fmt.Errorf("stream %s holds %d messages of an earlier run: an ingest starts from its input's beginning, so either read the same input again after them "+
			"(mdp ingest --reread: workers drop the records they have read) or delete the stream first (nats stream rm %s)", n.stream, msgs, n.stream)
	} else if msgs > 0 {
		log.Info("scale-out ingest re-reads its input after an earlier run's messages", "stream", n.stream, "messages", msgs)
	}
	// The next sequence is the run's epoch: its message ids never match an
	// earlier run's, whose ids the duplicate window may still hold. A
	// re-read numbers its records from 0 again, as the earlier run did.
	pub.epoch = info.State.LastSeq + 1
	ingest, err := ingestJob(doc, pub, log, opts.Stdout)
	if err != nil {
		return err
	}
	if opts.Status != nil {
		opts.Status.ScaleoutStatus(func(ctx context.Context) (Status, error) {
			return ingestStatus(ctx, js, n, so.Partitions)
		})
	}
	log.Info("scale-out ingest", "nats", c.where, "stream", n.stream, "partitions", so.Partitions)
	if err := ingest.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if opts.Status != nil {
		// The ingest has no store, so no feedback: a fresh one of the
		// job's settings stays at its first level.
		opts.Status.WorkerJob(ingest, engine.NewFeedback(doc.Feedback))
	}
	err = waitOne(ctx, doc.ShutdownTimeout, opts.Abort, ingest)
	published, _ := ingest.SourceTotals()
	log.Info("scale-out ingest ended", "published", published)
	return err
}

// ingestStatus measures the job's status from its ingest, which is no
// member: the workers, leases and checkpoints of the job's buckets (which
// the workers create; an error until one has), each partition's lag from
// its worker's last heartbeat.
func ingestStatus(ctx context.Context, js jetstream.JetStream, n names, partitions int) (Status, error) {
	mkv, err := js.KeyValue(ctx, n.bucket("members"))
	if err != nil {
		return Status{}, fmt.Errorf("membership bucket %s (no worker has joined yet?): %w", n.bucket("members"), err)
	}
	lkv, err := js.KeyValue(ctx, n.bucket("leases"))
	if err != nil {
		return Status{}, fmt.Errorf("lease bucket %s: %w", n.bucket("leases"), err)
	}
	// The checkpoints, once a worker has made the bucket; pieces of
	// another incarnation of the stream are told apart by its creation.
	ckv, err := js.KeyValue(ctx, n.bucket("ckpt"))
	if err != nil {
		ckv = nil
	}
	var created int64
	if st, err := js.Stream(ctx, n.stream); err == nil {
		created = st.CachedInfo().Created.UnixNano()
	}
	return workerStatus(ctx, js, n, partitions, &membership{kv: mkv}, lkv, ckv, created)
}

// logger is the run's logger with the job's name.
func logger(opts Options, doc *config.Document) *slog.Logger {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return log.With("job", doc.Name)
}

// publishingJS is a JetStream context whose failed asynchronous publishes
// fail the publisher.
func publishingJS(nc *nats.Conn, pub *publisher) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			pub.failed(fmt.Errorf("publish to %s: %w", m.Subject, err))
		}))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// waitOne runs one job to its end: ctx's end stops its source and bounds
// the drain by timeout; abort aborts it.
func waitOne(ctx context.Context, timeout time.Duration, abort <-chan struct{}, j *engine.Job) error {
	var deadline <-chan time.Time
	stopCtx := ctx.Done()
	for {
		select {
		case <-stopCtx:
			stopCtx = nil
			j.Stop()
			deadline = time.After(timeout)
		case <-deadline:
			j.Abort()
			<-j.Done()
			return fmt.Errorf("stop took longer than shutdown_timeout %s: %w", timeout, engine.ErrAborted)
		case <-abort:
			abort = nil
			j.Abort()
		case <-j.Done():
			return j.Err()
		}
	}
}
