package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
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
	// Workers is how many workers the job runs: the worker waits until
	// that many are live, then takes its share of the partitions, once.
	Workers int
	// timing overrides defaultTiming (tests).
	timing timing
}

// errEmbedded refuses a separate role for a job whose server is embedded.
func errEmbedded(role string) error {
	return fmt.Errorf("mdp %s needs scaleout.nats to be the URL of a NATS server the processes share, not embedded", role)
}

// RunIngest runs the job's source as ingest only, publishing into the
// job's stream on the NATS server of scaleout.nats. The stream must be
// empty: workers read it from its start, so an earlier run's messages
// would be read again. Cancelling ctx stops the source; the ingest then
// publishes its end markers and returns.
func RunIngest(ctx context.Context, doc *config.Document, opts Options) error {
	so := doc.Scaleout
	if so == nil {
		return fmt.Errorf("job %q has no scaleout section", doc.Name)
	}
	if so.Embedded() {
		return errEmbedded("ingest")
	}
	log := logger(opts, doc).With("role", "ingest")
	c, err := connect(so, log)
	if err != nil {
		return err
	}
	defer c.close()
	n := namesOf(doc.Name)
	pub := newPublisher(nil, n, so.Partitions)
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
	if msgs := info.State.Msgs; msgs > 0 {
		return fmt.Errorf("stream %s holds %d messages of an earlier run: workers read the stream from its start (there are no per-partition checkpoints yet), so delete it first (nats stream rm %s)", n.stream, msgs, n.stream)
	}
	// The next sequence is the run's epoch: its message ids never match an
	// earlier run's, whose ids the duplicate window may still hold.
	pub.epoch = info.State.LastSeq + 1
	ingest, err := ingestJob(doc, pub, log, opts.Stdout)
	if err != nil {
		return err
	}
	log.Info("scale-out ingest", "nats", c.where, "stream", n.stream, "partitions", so.Partitions)
	if err := ingest.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	err = waitOne(ctx, doc.ShutdownTimeout, opts.Abort, ingest)
	published, _ := ingest.SourceTotals()
	log.Info("scale-out ingest ended", "published", published)
	return err
}

// RunWorker runs one worker of the job: it joins the job's membership,
// waits until opts.Workers members are live, takes the partitions the
// rendezvous assignment gives it through their leases and runs the keyed
// part of the graph over those partitions only, until the ingest's end
// markers. The assignment is fixed for the run: a worker that loses a
// lease (or cannot renew it in time) stops at once with an error, and a
// worker that dies leaves its partitions unread. Cancelling ctx (a
// signal) aborts the graph without flushing open bars, releases the
// leases and leaves: it returns engine.ErrAborted.
func RunWorker(ctx context.Context, doc *config.Document, opts WorkerOptions) error {
	so := doc.Scaleout
	if so == nil {
		return fmt.Errorf("job %q has no scaleout section", doc.Name)
	}
	if so.Embedded() {
		return errEmbedded("worker")
	}
	id := opts.ID
	if id == "" {
		id = DefaultWorkerID()
	}
	workers := max(opts.Workers, 1)
	t := opts.timing
	if t == (timing{}) {
		t = defaultTiming
	}
	log := logger(opts.Options, doc).With("role", "worker", "worker", id)
	c, err := connect(so, log)
	if err != nil {
		return err
	}
	defer c.close()
	n := namesOf(doc.Name)
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := ensureStream(setup, js, n, so, false); err != nil {
		return err
	}
	mkv, lkv, err := openBuckets(setup, js, n, t)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	mem, err := join(setup, mkv, MemberInfo{ID: id, Host: host, PID: os.Getpid(), Started: time.Now().UTC()})
	if err != nil {
		return err
	}
	if opts.Status != nil {
		opts.Status.ScaleoutStatus(func(ctx context.Context) (Status, error) {
			return workerStatus(ctx, js, n, so.Partitions, mem, lkv)
		})
	}
	h := &workerHandler{ready: make(chan struct{}), fenced: make(chan struct{})}
	co := &coordinator{job: doc.Name, partitions: so.Partitions, id: id, t: t, mem: mem, leases: newLeases(lkv, id, t),
		h: h, log: log, fixed: true, expect: workers, hold: make(chan time.Duration), abandon: make(chan struct{})}
	h.co = co
	coCtx, stopCo := context.WithCancel(context.WithoutCancel(ctx))
	coDone := make(chan error, 1)
	go func() { coDone <- co.run(coCtx) }()
	log.Info("scale-out worker joined", "nats", c.where, "stream", n.stream, "partitions", so.Partitions, "workers", workers)

	// Wait for the whole share.
	select {
	case <-h.ready:
	case <-ctx.Done():
		stopCo()
		return errors.Join(<-coDone, fmt.Errorf("stopped before its partitions were assigned: %w", engine.ErrAborted))
	case err := <-coDone:
		stopCo()
		return fmt.Errorf("coordination: %w", err)
	}
	parts := h.partitions()
	log.Info("scale-out worker owns its partitions", "owned", parts)
	r := newReader(js, n, parts)
	mem.reading.Store(r.progress)
	if opts.Metrics != nil {
		c := &lagCollector{job: doc.Name, r: r, log: log}
		if err := opts.Metrics.Register(c); err != nil {
			stopCo()
			return errors.Join(fmt.Errorf("register the lag series: %w", err), <-coDone)
		}
		defer opts.Metrics.Unregister(c)
	}
	fb := engine.NewFeedback(doc.Feedback)
	worker, err := workerJob(doc, r, fb, log, opts.Stdout)
	if err == nil {
		err = worker.Start(context.WithoutCancel(ctx))
	}
	if err != nil {
		stopCo()
		return errors.Join(err, <-coDone)
	}
	if opts.Status != nil {
		opts.Status.WorkerJob(worker, fb)
	}
	h.setJob(worker)
	select {
	case <-worker.Done():
		err = worker.Err()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	case <-ctx.Done():
		worker.Abort()
		<-worker.Done()
		err = fmt.Errorf("worker stopped: %w", engine.ErrAborted)
	case <-opts.Abort:
		worker.Abort()
		<-worker.Done()
		err = fmt.Errorf("worker aborted: %w", engine.ErrAborted)
	case <-h.fenced:
		<-worker.Done()
		err = errFixedLost
	}
	stopCo()
	coErr := <-coDone
	read, _ := worker.SourceTotals()
	log.Info("scale-out worker ended", "read", read, "owned", parts)
	return errors.Join(err, coErr)
}

// workerHandler is a worker's partitionHandler with a fixed assignment:
// it reports ready once the worker holds its whole share, and a stop
// (other than the final shutdown) aborts the graph at once.
type workerHandler struct {
	co     *coordinator
	mu     sync.Mutex
	held   []int
	job    *engine.Job
	ready  chan struct{}
	fenced chan struct{}
	once   sync.Once
	fence  sync.Once
}

func (h *workerHandler) start(p int, _ time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, p)
	if h.co.target != nil && len(h.held) == len(owned(h.co.target, h.co.id)) {
		h.once.Do(func() { close(h.ready) })
	}
}

func (h *workerHandler) stop(p int, _ time.Time, reason string) {
	h.mu.Lock()
	job := h.job
	h.held = slices.DeleteFunc(h.held, func(x int) bool { return x == p })
	h.mu.Unlock()
	if reason == stopShutdown {
		return
	}
	h.co.log.Error("partition stopped: the worker ends (its assignment is fixed)", "partition", p, "reason", reason)
	if job != nil {
		job.Abort()
		<-job.Done()
	}
	h.fence.Do(func() { close(h.fenced) })
}

func (h *workerHandler) partitions() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := slices.Clone(h.held)
	slices.Sort(ps)
	return ps
}

func (h *workerHandler) setJob(j *engine.Job) {
	h.mu.Lock()
	h.job = j
	h.mu.Unlock()
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
