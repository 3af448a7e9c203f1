// Package runtime is the unified runtime: one facade over one job, whatever
// its mode. It loads a job (from a file, from bytes, or from the environment
// alone), builds the engine graph, serves metrics when the job asks for
// them, and gives a program the job's lifecycle — Start, Run, Stop, Abort,
// Wait — with its State, a JSON-serialisable Status and a Health verdict.
//
// Embedding mdp in another Go program takes a few lines:
//
//	u, err := runtime.NewFromBytes("job.yaml", jobYAML, runtime.Options{})
//	if err != nil { … }
//	err = u.Run(ctx) // cancel ctx for a graceful stop
//	st := u.Status()
//
// Stop is graceful: sources stop, queues drain, open bars flush and sinks
// close. If that takes longer than the job's shutdown_timeout the job is
// aborted and Wait returns an error matching engine.ErrAborted.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mdpio/mdp/checkpoint"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/metrics"
)

// State is where a job is in its lifecycle.
type State string

// Job states. A job moves created → starting → running → stopping → stopped,
// or to failed from any of starting, running and stopping. A job that ends
// by itself (every source finished) goes from running to stopped.
const (
	StateCreated  State = "created"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
)

// Options configure how a job is loaded and run.
type Options struct {
	// LoadOptions are the overrides (--mode, --job, --set) and the
	// environment the job file is loaded with.
	config.LoadOptions
	// Logger receives the runtime's and the job's logs; nil discards them.
	// Secrets are redacted before the logger sees a record.
	Logger *slog.Logger
	// Progress is how the job's sources report progress (a replay's bar);
	// the zero value draws no bar and leaves each source's param in charge
	// of progress log records.
	Progress engine.ProgressOptions
	// Metrics, when set, is a collector shared with other jobs (a job
	// server's): the job reports into it from Start on, and its own
	// metrics.enable listener is not started — whoever owns the collector
	// serves it (metrics.NewRegistry, metrics.Serve). The job stays in the
	// collector after it ends, so its final state and counts stay visible,
	// until the owner removes it or adds a job of the same name. Nil: the
	// job serves its own collector when the job file enables metrics.
	Metrics *metrics.Collector
	// Stdout is the job's standard output (sink.stdout, sink.checksum); nil
	// means os.Stdout.
	Stdout io.Writer
	// API, when set and the job serves its own metrics listener, returns a
	// handler for every other path on that listener (`mdp run` serves the
	// read-only job API and the dashboard there: package server). It is
	// called before the job starts.
	API func(u *Unified) http.Handler
	// Resume restores the latest complete checkpoint of the job's
	// checkpoint store (mdp run --resume; a job server's start). With none
	// in the store the job starts from the beginning.
	Resume bool
	// From restores one checkpoint: an id in the job's store or a file
	// path (mdp run --from).
	From string
	// AllowGraphChange restores a checkpoint taken from another graph,
	// mapping state by node id (mdp run --allow-graph-change).
	AllowGraphChange bool
	// Drain makes a graceful stop drain even when the job would suspend (an
	// unbounded job with checkpoints on): mdp run --drain.
	Drain bool
}

// Unified runs one job. Its methods are safe for concurrent use.
type Unified struct {
	doc      *config.Document
	job      *engine.Job
	feedback *engine.Feedback
	red      *Redactor
	log      *slog.Logger
	shared   *metrics.Collector
	api      func(u *Unified) http.Handler
	drain    bool

	mu        sync.Mutex
	state     State
	err       error
	startedAt time.Time
	endedAt   time.Time
	timer     *time.Timer
	timedOut  bool
	done      chan struct{}
	srv       *metrics.Server

	health healthTracker
}

// NewFromFile loads the job file at path and builds the job. A problem with
// the job is returned as config.Errors (every problem, one per line).
func NewFromFile(path string, opts Options) (*Unified, error) {
	doc, err := config.LoadFile(path, opts.LoadOptions)
	if err != nil {
		return nil, err
	}
	return New(doc, opts)
}

// NewFromBytes loads a job from YAML or JSON; name is used in error
// positions.
func NewFromBytes(name string, data []byte, opts Options) (*Unified, error) {
	doc, err := config.LoadBytes(name, data, opts.LoadOptions)
	if err != nil {
		return nil, err
	}
	return New(doc, opts)
}

// NewFromEnv loads a job from the environment alone: MDP_UNIFIED_MODE, the
// job as JSON in MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON, and the
// MDP_METRICS_* and MDP_FB_* settings, plus the flags in opts.
func NewFromEnv(opts Options) (*Unified, error) {
	doc, err := config.LoadBytes("environment", nil, opts.LoadOptions)
	if err != nil {
		return nil, err
	}
	return New(doc, opts)
}

// New builds the job of a loaded document: the engine graph and every node
// instance. Nothing is opened or connected until Start. An error here is a
// problem with the job (config.Errors for the graph), never a runtime
// failure.
func New(doc *config.Document, opts Options) (*Unified, error) {
	if doc == nil {
		return nil, errors.New("runtime: nil document")
	}
	if doc.Scaleout != nil {
		// Package scaleout runs such a job (mdp run); running it here
		// would silently drop the scale-out.
		return nil, fmt.Errorf("job %q has a scaleout section: run it with mdp run, not in one runtime", doc.Name)
	}
	red := NewRedactor(doc)
	base := opts.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	log := slog.New(red.Handler(base.Handler())).With("job", doc.Name)
	g, err := doc.Graph()
	if err != nil {
		return nil, red.RedactError(err)
	}
	fb := engine.NewFeedback(doc.Feedback)
	ck, err := checkpointOptions(doc, opts, log)
	if err != nil {
		return nil, red.RedactError(err)
	}
	job, err := engine.New(g, engine.Options{Job: doc.Name, Fingerprint: doc.Fingerprint(), Logger: log, BatchSize: doc.BatchSize, Feedback: fb, Progress: opts.Progress, Stdout: opts.Stdout, Checkpoint: ck})
	if err != nil {
		if errors.Is(err, engine.ErrGraphChanged) {
			return nil, red.RedactError(fmt.Errorf("job %q: %w; run with --allow-graph-change to restore its state by node id", doc.Name, err))
		}
		return nil, red.RedactError(fmt.Errorf("build job %q: %w", doc.Name, err))
	}
	return &Unified{doc: doc, job: job, feedback: fb, red: red, log: log, shared: opts.Metrics, api: opts.API, drain: opts.Drain, state: StateCreated, done: make(chan struct{})}, nil
}

// checkpointOptions opens the job's checkpoint store and reads the
// checkpoint to resume from, if asked.
func checkpointOptions(doc *config.Document, opts Options, log *slog.Logger) (*engine.CheckpointOptions, error) {
	c := doc.Checkpoint
	if c == nil {
		if opts.Resume || opts.From != "" {
			return nil, fmt.Errorf("job %q: --resume and --from need a checkpoint section in the job", doc.Name)
		}
		return nil, nil
	}
	store, err := checkpoint.Open(c.Store, c.Keep, log)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", doc.Name, err)
	}
	co := &engine.CheckpointOptions{Interval: c.Interval, Store: store, TolerableFailures: c.TolerableFailures, AllowGraphChange: opts.AllowGraphChange}
	ctx := context.Background()
	switch {
	case opts.From != "":
		cp, err := checkpoint.Resolve(ctx, store, opts.From)
		if err != nil {
			return nil, fmt.Errorf("job %q: checkpoint %s: %w", doc.Name, opts.From, err)
		}
		co.Restore = cp
	case opts.Resume:
		cp, err := store.Latest(ctx)
		switch {
		case errors.Is(err, checkpoint.ErrNone):
			log.Info("no checkpoint to resume from: starting from the beginning", "store", store.Path())
		case err != nil:
			return nil, fmt.Errorf("job %q: %w", doc.Name, err)
		default:
			co.Restore = cp
		}
	}
	return co, nil
}

// Name is the job's name.
func (u *Unified) Name() string { return u.doc.Name }

// Mode is the job's mode: classic or dag.
func (u *Unified) Mode() string { return u.doc.Mode }

// Document is the loaded job. Callers must not modify it.
func (u *Unified) Document() *config.Document { return u.doc }

// Job is the engine job, for programs that inspect nodes directly.
func (u *Unified) Job() *engine.Job { return u.job }

// Feedback is the job's store-feedback hub.
func (u *Unified) Feedback() *engine.Feedback { return u.feedback }

// Redactor masks the job's secrets in text.
func (u *Unified) Redactor() *Redactor { return u.red }

// State is the job's current state.
func (u *Unified) State() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state
}

// MetricsAddr is the address the metrics server listens on, "" when metrics
// are disabled or the server is not running.
func (u *Unified) MetricsAddr() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.srv == nil {
		return ""
	}
	return u.srv.Addr()
}

// Start opens every node and starts the job, and returns once data flows
// (or with the error that stopped it from starting, after which the state
// is failed). The metrics server, when enabled, is listening before any
// node opens. Cancelling ctx stops the job gracefully, like Stop.
func (u *Unified) Start(ctx context.Context) error {
	u.mu.Lock()
	if u.state != StateCreated {
		st := u.state
		u.mu.Unlock()
		return fmt.Errorf("start job %q: the job is %s; a job runs once", u.doc.Name, st)
	}
	u.state = StateStarting
	u.startedAt = time.Now()
	u.mu.Unlock()

	if u.shared != nil {
		u.shared.Add(u)
	} else if u.doc.Metrics.Enable {
		srv, err := u.serveMetrics()
		if err != nil {
			u.finish(err)
			return err
		}
		u.mu.Lock()
		u.srv = srv
		u.mu.Unlock()
	}
	u.log.Info("job starting", "mode", u.doc.Mode, "nodes", len(u.doc.Nodes), "edges", len(u.doc.Edges))
	// ctx interrupts the start (a store still being opened); once the job
	// runs, its cancellation goes through Stop (stopOnCancel below), which
	// suspends rather than drains a job that suspends.
	jobCtx, cancelJob := context.WithCancel(context.WithoutCancel(ctx))
	detach := context.AfterFunc(ctx, cancelJob)
	err := u.job.Start(jobCtx)
	detach()
	go func() {
		<-u.job.Done()
		cancelJob()
	}()
	if err != nil {
		err = u.red.RedactError(fmt.Errorf("start job %q: %w", u.doc.Name, err))
		u.finish(err)
		return err
	}
	u.mu.Lock()
	if u.state == StateStarting {
		u.state = StateRunning
	}
	u.mu.Unlock()
	u.log.Info("job running")
	go u.stopOnCancel(ctx, u.job.Done())
	go func() {
		<-u.job.Done()
		u.finish(u.job.Err())
	}()
	return nil
}

// Run starts the job (unless it was started already) and blocks until it
// ends. Cancelling ctx stops the job gracefully: sources stop, everything
// in flight drains, sinks close; after the job's shutdown timeout it is
// aborted. Run returns the job's error: nil when it drained, an error
// matching engine.ErrAborted when it was aborted, or the node failure.
func (u *Unified) Run(ctx context.Context) error {
	if u.State() == StateCreated {
		if err := u.Start(ctx); err != nil {
			return err
		}
	} else {
		go u.stopOnCancel(ctx, u.done)
	}
	return u.Wait()
}

// stopOnCancel stops the job gracefully when ctx is cancelled before done
// is closed.
func (u *Unified) stopOnCancel(ctx context.Context, done <-chan struct{}) {
	select {
	case <-ctx.Done():
		u.Stop()
	case <-done:
	}
}

// Stop begins a graceful stop and returns at once; Wait blocks until the
// job has drained. If draining takes longer than the job's shutdown
// timeout, the job is aborted. Stop on a job that was never started marks
// it stopped; on a finished job it does nothing.
func (u *Unified) Stop() {
	u.mu.Lock()
	switch u.state {
	case StateCreated:
		u.state = StateStopped
		u.endedAt = time.Now()
		close(u.done)
		u.mu.Unlock()
		return
	case StateStarting, StateRunning:
		u.state = StateStopping
		if d := u.doc.ShutdownTimeout; d > 0 {
			u.timer = time.AfterFunc(d, u.shutdownTimeout)
		}
	default:
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	if u.job.Checkpointing() && u.job.Unbounded() && !u.drain {
		u.log.Info("job stopping: suspending after a final checkpoint", "shutdown_timeout", u.doc.ShutdownTimeout.String())
		go u.suspend()
		return
	}
	u.log.Info("job stopping: draining", "shutdown_timeout", u.doc.ShutdownTimeout.String())
	u.job.Stop()
}

// suspend takes the final checkpoint and ends the job without draining;
// if the checkpoint fails, the job drains instead.
func (u *Unified) suspend() {
	id, err := u.job.Suspend(context.Background())
	if err != nil {
		u.log.Error("suspend failed: draining instead (open bars will be flushed)", "err", err)
		u.job.Stop()
		return
	}
	u.log.Info("job suspended: resume with mdp run --resume", "checkpoint", id)
}

func (u *Unified) shutdownTimeout() {
	u.mu.Lock()
	u.timedOut = true
	u.mu.Unlock()
	u.log.Error("shutdown timeout: aborting the job", "shutdown_timeout", u.doc.ShutdownTimeout.String())
	u.job.Abort()
}

// Abort ends the job at once without draining. Wait then returns an error
// matching engine.ErrAborted.
func (u *Unified) Abort() {
	u.mu.Lock()
	switch u.state {
	case StateCreated:
		u.state = StateFailed
		u.err = engine.ErrAborted
		u.endedAt = time.Now()
		close(u.done)
		u.mu.Unlock()
		return
	case StateStarting, StateRunning:
		u.state = StateStopping
	case StateStopping:
	default:
		u.mu.Unlock()
		return
	}
	u.mu.Unlock()
	u.log.Warn("job aborting")
	u.job.Abort()
}

// Wait blocks until the job has ended and returns its error.
func (u *Unified) Wait() error {
	<-u.done
	return u.Err()
}

// Done is closed when the job has ended.
func (u *Unified) Done() <-chan struct{} { return u.done }

// Err is the job's error once it has ended: nil after a clean finish or a
// drained stop.
func (u *Unified) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// TimedOut reports whether the job was aborted because a graceful stop
// outlasted the shutdown timeout.
func (u *Unified) TimedOut() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.timedOut
}

// finish records the end of the job, stops the metrics server and
// releases Wait.
func (u *Unified) finish(err error) {
	if err != nil {
		err = u.red.RedactError(err)
	}
	u.mu.Lock()
	if u.timer != nil {
		u.timer.Stop()
	}
	srv := u.srv
	u.srv = nil
	u.err = err
	u.endedAt = time.Now()
	startFailed := u.state == StateStarting && err != nil
	if err != nil {
		u.state = StateFailed
	} else {
		u.state = StateStopped
	}
	u.mu.Unlock()

	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := srv.Shutdown(ctx); serr != nil {
			u.log.Warn("metrics server shutdown", "err", serr)
		}
		cancel()
	}
	// One record ends the job: a start failure with its error, any other
	// end with the job's summary.
	sum := u.Summary()
	switch {
	case startFailed:
		// The engine has logged a node's failure to open, with its error
		// (and stack); say which node without repeating it.
		if ne := (*engine.NodeError)(nil); errors.As(err, &ne) {
			u.log.Error("job failed to start", "node", ne.Node)
		} else {
			u.log.Error("job failed to start", "err", err)
		}
	case errors.Is(err, engine.ErrAborted):
		u.log.Error("job aborted", sum.logAttrs()...)
	case err != nil:
		u.log.Error("job failed", append([]any{"err", err}, sum.logAttrs()...)...)
	default:
		u.log.Info("job finished", sum.logAttrs()...)
	}
	close(u.done)
}

func (u *Unified) serveMetrics() (*metrics.Server, error) {
	c := metrics.NewCollector(u.doc.Mode, u)
	var api http.Handler
	if u.api != nil {
		api = u.api(u)
	}
	srv, err := metrics.Serve(metrics.ServerOptions{
		Listen:   u.doc.Metrics.Listen,
		Gatherer: metrics.NewRegistry(c),
		Ready: func() (bool, any) {
			h := u.Health()
			return u.State() == StateRunning && h.Status != HealthError && u.job.Ready(), h
		},
		API:    api,
		Logger: u.log,
	})
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", u.doc.Name, err)
	}
	return srv, nil
}

// MetricsSnapshot implements metrics.Source.
func (u *Unified) MetricsSnapshot() metrics.Snapshot {
	st := u.job.Status()
	return metrics.Snapshot{
		Job: u.doc.Name, Mode: u.doc.Mode, State: string(u.State()), Nodes: st.Nodes, Edges: st.Edges,
		Feedback: u.feedback, Series: u.job.Metrics().Series(),
	}
}
