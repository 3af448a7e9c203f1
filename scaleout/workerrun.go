package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

// defaultCheckpointInterval is how often a worker checkpoints.
const defaultCheckpointInterval = time.Second

// RunWorker runs one worker of the job: it joins the job's membership,
// waits until opts.Workers members are live, then follows the rendezvous
// assignment among the live members: it holds its partitions through
// their leases and runs the keyed part of the graph over them, restored
// from each partition's checkpoint (mdp_ckpt_<job>), checkpointing them
// every opts.CheckpointInterval. When its set of partitions changes (a
// worker joined or left, or died and its leases expired) it suspends its
// job with a final checkpoint, releases the partitions it no longer
// targets, takes the new ones and starts its job again over the new set.
// A lease it loses, or cannot renew in time, stops the job at once
// without a checkpoint (it restarts over the partitions it still holds).
// It returns nil once every partition was read to the ingest's end
// markers. Cancelling ctx (SIGTERM) suspends: a final checkpoint of its
// partitions, the leases released, the membership left, and nil; the
// other workers take the partitions over from that checkpoint; cancelled
// before it joined, or while it joins or starts a job, it returns nil as
// well (what the failed step held is released). opts.Abort ends it
// without a checkpoint and returns engine.ErrAborted.
func RunWorker(ctx context.Context, doc *config.Document, opts WorkerOptions) (err error) {
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
	if opts.LeaseTTL != 0 && opts.LeaseTTL < 2*time.Second {
		return fmt.Errorf("lease TTL %s: use at least 2s (the membership bucket marks expiries for 1s)", opts.LeaseTTL)
	}
	t := opts.timing
	if t == (timing{}) {
		t = defaultTiming
		if opts.LeaseTTL > 0 {
			t = timing{memberTTL: opts.LeaseTTL, leaseTTL: opts.LeaseTTL, margin: opts.LeaseTTL / 6}
		}
	}
	log := logger(opts.Options, doc).With("role", "worker", "worker", id)
	joining := true
	defer func() {
		// A step of joining that failed once ctx was cancelled failed for
		// the cancellation (or no longer matters): the worker was asked
		// to stop before it held anything.
		if joining && err != nil && ctx.Err() != nil {
			log.Info("scale-out worker stopped while joining", "err", err)
			err = nil
		}
	}()
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
	stream, err := ensureStream(setup, js, n, so, false)
	if err != nil {
		return err
	}
	info, err := stream.Info(setup)
	if err != nil {
		return fmt.Errorf("stream %s: %w", n.stream, err)
	}
	mkv, lkv, err := openBuckets(setup, js, n, t)
	if err != nil {
		return err
	}
	ckv, err := openCheckpoints(setup, js, n)
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
			return workerStatus(ctx, js, n, so.Partitions, mem, lkv, ckv, info.Created.UnixNano())
		})
	}
	w := &worker{doc: doc, opts: opts, js: js, n: n, ckv: ckv, id: id, stream: info.Created.UnixNano(), log: log, mem: mem, t: t,
		interval: opts.CheckpointInterval, held: map[int]bool{}, done: map[int]bool{}, wake: make(chan struct{}, 1)}
	if w.interval <= 0 {
		w.interval = defaultCheckpointInterval
	}
	co := &coordinator{job: doc.Name, partitions: so.Partitions, id: id, t: t, mem: mem, leases: newLeases(lkv, id, t),
		h: w, log: log, expect: max(opts.Workers, 1), hold: make(chan time.Duration), abandon: opts.hooks.abandon}
	if co.abandon == nil {
		co.abandon = make(chan struct{})
	}
	if opts.Metrics != nil {
		rc := &retryCollector{job: doc.Name, worker: id, w: w}
		if err := opts.Metrics.Register(rc); err != nil {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.leaseTTL)
			defer cancel()
			return errors.Join(fmt.Errorf("register the retry series: %w", err), mem.leave(lctx))
		}
		defer opts.Metrics.Unregister(rc)
	}
	coCtx, stopCo := context.WithCancel(context.WithoutCancel(ctx))
	coord := &coordination{done: make(chan struct{})}
	go func() {
		coord.err = co.run(coCtx)
		close(coord.done)
	}()
	joining = false
	log.Info("scale-out worker joined", "nats", c.where, "stream", n.stream, "partitions", so.Partitions, "workers", opts.Workers)

	err = w.loop(ctx, opts.Abort, coord)
	switch {
	case errors.Is(err, errAllDone):
		err = nil
		log.Info("scale-out worker: every partition is read to its end")
	case ctx.Err() != nil && err == nil:
		log.Info("scale-out worker suspending: checkpointing its partitions and handing them over")
	default:
		w.jobMu.Lock()
		if w.cur != nil {
			w.endJob("abort")
		}
		w.jobMu.Unlock()
	}
	stopCo() // shutdown: suspends the job, releases the leases, leaves
	<-coord.done
	w.jobMu.Lock()
	if w.cur != nil {
		w.endJob(stopShutdown)
	}
	w.jobMu.Unlock()
	log.Info("scale-out worker ended", "read", w.read.Load())
	if errors.Is(err, errCoordinationEnded) {
		return err // it carries the coordinator's error
	}
	return errors.Join(err, coord.err)
}

// errAllDone ends a worker's loop when every partition is done.
var errAllDone = errors.New("every partition is done")

// errCoordinationEnded ends a worker's loop when its coordinator returned
// on its own (without the worker stopping it).
var errCoordinationEnded = errors.New("the worker's coordination ended")

// coordination is the coordinator's goroutine: done is closed once it
// returned, err is what it returned (read it after done).
type coordination struct {
	done chan struct{}
	err  error
}

// ended is the loop's error once the coordinator returned on its own.
func (c *coordination) ended() error {
	if c.err == nil {
		return errCoordinationEnded
	}
	return fmt.Errorf("%w: %w", errCoordinationEnded, c.err)
}

// worker is one worker's partition handler and job lifecycle.
type worker struct {
	doc      *config.Document
	opts     WorkerOptions
	js       jetstream.JetStream
	n        names
	ckv      jetstream.KeyValue
	id       string
	stream   int64 // the stream's creation time: pieces of another stream are ignored
	log      *slog.Logger
	mem      *membership
	t        timing
	interval time.Duration
	read     atomic.Int64

	// jobMu serializes starting and ending the job: the coordinator's
	// stop must not return while a job over the partition may still run.
	jobMu sync.Mutex
	cur   *jobRun

	// failures counts the job's consecutive transient failures; no job
	// starts before retryAt (jobMu held).
	failures int
	retryAt  time.Time

	mu   sync.Mutex
	held map[int]bool // partitions whose lease is held
	done map[int]bool // partitions known done (read to the end and drained)
	wake chan struct{}
}

// jobRun is the worker's job over one set of partitions.
type jobRun struct {
	job     *engine.Job
	set     []int
	store   *ckptStore
	r       *reader
	unreg   func()
	started time.Time
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// start is the coordinator's: the lease of p is held.
func (w *worker) start(p int, _ time.Time) {
	w.mu.Lock()
	w.held[p] = true
	w.mu.Unlock()
}

// stop is the coordinator's: the job must no longer read p when it
// returns. A partition moved away or a shutdown suspends the job (a final
// checkpoint, which the next owner restores); a lost or fenced lease
// aborts it at once, without a checkpoint.
func (w *worker) stop(p int, _ time.Time, reason string) {
	w.jobMu.Lock()
	w.mu.Lock()
	delete(w.held, p)
	w.mu.Unlock()
	if w.cur != nil && slices.Contains(w.cur.set, p) {
		if reason == stopLost || reason == stopFenced {
			w.log.Warn("partition lost: the job stops at once, without a checkpoint", "partition", p, "reason", reason)
		}
		w.endJob(reason)
	}
	w.jobMu.Unlock()
	w.signal()
}

// settled is the coordinator's: a round of starts and stops ended.
func (w *worker) settled() { w.signal() }

// endJob ends the current job (jobMu held): suspended with a final
// checkpoint, or aborted for a lost partition or an abort.
func (w *worker) endJob(reason string) {
	rj := w.cur
	w.cur = nil
	suspend := reason == stopMoved || reason == stopShutdown || reason == "rebalance"
	if suspend {
		ctx, cancel := context.WithTimeout(context.Background(), w.t.leaseTTL/2)
		id, err := rj.job.Suspend(ctx)
		cancel()
		if err != nil {
			w.log.Warn("suspend failed: the job is aborted; the partitions resume from their previous checkpoint", "partitions", rj.set, "err", err)
			rj.job.Abort()
		} else {
			w.log.Info("job suspended", "partitions", rj.set, "checkpoint", id, "reason", reason)
		}
	} else {
		rj.job.Abort()
	}
	<-rj.job.Done()
	w.finish(rj)
}

// finish accounts for an ended job.
func (w *worker) finish(rj *jobRun) {
	read, _ := rj.job.SourceTotals()
	w.read.Add(read)
	rj.unreg()
}

// loop reconciles the job with the held partitions until every
// partition is done, ctx ends (nil), abort closes, a job fails or the
// coordinator returns on its own (errCoordinationEnded).
func (w *worker) loop(ctx context.Context, abort <-chan struct{}, coord *coordination) error {
	tick := time.NewTicker(w.t.tick())
	defer tick.Stop()
	for {
		var jobDone <-chan struct{}
		w.jobMu.Lock()
		if w.cur != nil {
			jobDone = w.cur.job.Done()
		}
		w.jobMu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-abort:
			return fmt.Errorf("worker aborted: %w", engine.ErrAborted)
		case <-coord.done:
			return coord.ended()
		case <-w.wake:
		case <-jobDone:
		case <-tick.C:
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := w.reconcile(ctx); err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				// ctx ended while a job started (reading its
				// checkpoints): a stop, not a failure.
				return nil
			}
			return err
		}
	}
}

// reconcile makes the job read the held partitions that are not done.
func (w *worker) reconcile(ctx context.Context) error {
	w.jobMu.Lock()
	defer w.jobMu.Unlock()
	if rj := w.cur; rj != nil {
		select {
		case <-rj.job.Done():
			w.cur = nil
			w.finish(rj)
			err := rj.job.Err()
			if err == nil {
				for _, p := range rj.set {
					if !rj.r.ended[p] && !rj.r.restored[p].Ended {
						// The reader stopped without the end marker (its
						// connection closed): the partition is not done.
						err = fmt.Errorf("the reader stopped before the end marker of partition %d", p)
						break
					}
				}
			}
			switch {
			case err == nil:
				w.failures = 0
				// Not cut short by a stop: the partitions are done.
				mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.t.leaseTTL)
				err = rj.store.markDone(mctx)
				cancel()
				if err != nil {
					w.log.Warn("marking the partitions done", "partitions", rj.set, "err", err)
				} else {
					w.mu.Lock()
					for _, p := range rj.set {
						w.done[p] = true
					}
					w.mu.Unlock()
					w.log.Info("partitions read to their end", "partitions", rj.set)
				}
			case errors.Is(err, errCheckpointConflict):
				w.log.Warn("job stopped: a partition's checkpoint is another worker's; it restarts over the partitions still held", "err", err)
			case transient(err):
				if err := w.retryLater("the job failed", time.Since(rj.started), err); err != nil {
					return err
				}
			default:
				return fmt.Errorf("worker job: %w", err)
			}
		default:
		}
	}
	w.mu.Lock()
	var want []int
	for p := range w.held {
		if !w.done[p] {
			want = append(want, p)
		}
	}
	w.mu.Unlock()
	slices.Sort(want)
	if w.cur != nil && !slices.Equal(w.cur.set, want) {
		w.endJob("rebalance")
	}
	if w.cur == nil && len(want) > 0 && !time.Now().Before(w.retryAt) {
		if err := w.startJob(ctx, want); transient(err) {
			if err := w.retryLater("starting the job", 0, err); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	if w.cur == nil {
		actx, cancel := context.WithTimeout(ctx, w.t.leaseTTL)
		all, err := allDone(actx, w.ckv, w.stream, w.doc.Scaleout.Partitions)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Warn("reading the checkpoints", "err", err)
		}
		if all {
			return errAllDone
		}
	}
	return nil
}

// startJob starts the job over set, restored from the partitions'
// checkpoints (jobMu held). Partitions whose checkpoint says done are
// left out.
func (w *worker) startJob(ctx context.Context, set []int) error {
	so := w.doc.Scaleout
	if w.opts.hooks.beforeStart != nil {
		w.opts.hooks.beforeStart()
	}
	r := newReader(w.js, w.n, nil)
	fb := engine.NewFeedback(w.doc.Feedback)
	g, err := workerGraph(w.doc, r, so.Partitions)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, w.t.leaseTTL)
	pieces, revs, err := loadPieces(lctx, w.ckv, w.doc.Name, w.stream, so.Partitions, engine.GraphFingerprint(g), set)
	cancel()
	if err != nil {
		return err
	}
	var live []int
	for _, p := range set {
		if pc := pieces[p]; pc != nil && pc.Done {
			w.mu.Lock()
			w.done[p] = true
			w.mu.Unlock()
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return nil
	}
	r.partitions, r.progress, r.partitionCount = live, newProgress(live), so.Partitions
	cp, err := restoreOf(g, w.doc.Name, so.Source, pieces, live, so.Partitions)
	if err != nil {
		return err
	}
	store := &ckptStore{kv: w.ckv, job: w.doc.Name, worker: w.id, stream: w.stream, partitions: so.Partitions, source: so.Source, graph: g,
		parts: live, revs: map[int]uint64{}, last: map[int]*piece{}, started: time.Now()}
	for _, p := range live {
		store.revs[p] = revs[p]
		store.last[p] = pieces[p]
	}
	job, err := engine.New(g, engine.Options{Job: w.doc.Name, Fingerprint: w.doc.Fingerprint(), Logger: w.log, BatchSize: w.doc.BatchSize,
		Feedback: fb, Stdout: w.opts.Stdout,
		Checkpoint: &engine.CheckpointOptions{Interval: w.interval, Timeout: w.opts.checkpointTimeout, Store: store, TolerableFailures: 2, Restore: cp, OwnInstanceState: true}})
	if err != nil {
		return fmt.Errorf("build the worker of job %q: %w", w.doc.Name, err)
	}
	unreg := func() {}
	if w.opts.Metrics != nil {
		c := &lagCollector{job: w.doc.Name, r: r, log: w.log, store: store}
		if err := w.opts.Metrics.Register(c); err != nil {
			return fmt.Errorf("register the lag series: %w", err)
		}
		unreg = func() { w.opts.Metrics.Unregister(c) }
	}
	w.mem.reading.Store(r.progress)
	if err := job.Start(context.WithoutCancel(ctx)); err != nil {
		unreg()
		return fmt.Errorf("worker: %w", err)
	}
	if w.opts.Status != nil {
		w.opts.Status.WorkerJob(job, fb)
	}
	w.cur = &jobRun{job: job, set: live, store: store, r: r, unreg: unreg, started: time.Now()}
	w.log.Info("scale-out worker reads its partitions", "owned", live, "restored", len(pieces))
	return nil
}
