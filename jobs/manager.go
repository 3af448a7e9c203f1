// Package jobs is mdp's job manager: it runs any number of jobs in one
// process, each its own runtime.Unified reporting into one shared metrics
// collector (so one /metrics serves them all and runtime_jobs_running
// counts across jobs), and keeps a registry of the jobs — the job file as
// submitted, desired and observed state, last error, times and restart
// count — in a SQLite file, so a restarted process knows every job and
// restarts those its policy says to.
//
// A job's desired state is running or stopped. When a job with desired
// state running ends, its restart policy (the job file's restart key)
// decides: always restarts it, on-failure restarts it when it failed,
// never leaves it as it ended. Restarts wait an exponential backoff with
// full jitter (package retry), and are counted in the job's status.
//
// `mdp serve` (package server) puts an HTTP API over a Manager; a Go
// program can use one directly:
//
//	m, err := jobs.New(ctx, jobs.Options{State: "mdp-state.db"})
//	st, err := m.Submit("bars.yaml", data, true)
//	…
//	err = m.Close(ctx) // drains every job
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/retry"
	"github.com/mdpio/mdp/runtime"
)

// Desired states.
const (
	DesiredRunning = "running"
	DesiredStopped = "stopped"
)

// StateBackoff is the observed state of a job waiting to be restarted.
const StateBackoff = "backoff"

// Errors the manager's methods wrap; the API maps them to status codes.
var (
	// ErrNotFound: no job has that name (404).
	ErrNotFound = errors.New("no such job")
	// ErrExists: a job of that name is registered already (409).
	ErrExists = errors.New("job exists")
	// ErrConflict: the job's state does not allow the operation (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is not valid apart from the job file (400).
	ErrInvalid = errors.New("invalid")
	// ErrClosed: the manager is shutting down (503).
	ErrClosed = errors.New("job manager closed")
)

// Options configure a Manager.
type Options struct {
	// State is the registry's SQLite file; "" means DefaultState.
	State string
	// Registry holds the component types jobs may use; nil means
	// component.Default().
	Registry *component.Registry
	// Logger receives the manager's logs and every job's (with job=NAME);
	// nil discards them. Each job's records also go to its log ring.
	Logger *slog.Logger
	// Backoff is the wait between automatic restarts; the zero value means
	// DefaultBackoff.
	Backoff retry.Backoff
	// ResetAfter: a run that lasted at least this long resets the backoff
	// to its first step; 0 means one minute.
	ResetAfter time.Duration
	// LogRecords bounds each job's ring of recent log records; 0 means
	// DefaultLogRecords.
	LogRecords int
	// Env looks up environment variables for ${VAR} in job files; nil
	// means the process environment.
	Env func(string) (string, bool)
	// Prepare, when set, is called before each run of a job is built, with
	// the job's loaded document and the runtime options it will run with,
	// and whether the run is an automatic restart. It may change the
	// options. A job with a checkpoint section has Resume set: every run
	// continues from its latest complete checkpoint.
	Prepare func(doc *config.Document, opts *runtime.Options, restart bool)
	// OnChange, when set, is called (on its own goroutine, never blocking a
	// job) with the name of a job whose state changed or that was deleted.
	OnChange func(name string)
	// OnRun, when set, is called with each new run of a job once it is
	// built and before it starts (on the goroutine starting it, with the
	// job locked: it must not call the Manager), so a caller can attach to the engine job (the
	// dashboard's taps) before any record flows.
	OnRun func(name string, u *runtime.Unified)
	// Isolation is where jobs run: IsolationInProcess ("" too), each a
	// runtime.Unified in this process, or IsolationProcess, each a child
	// process running Command's `run` on the job file. OnRun and Run see
	// only in-process runs; Env and Registry do not reach a child, which
	// reads its environment and knows the components of its binary.
	Isolation string
	// Command is the mdp binary (and arguments before `run`) a child
	// process runs; nil means this executable.
	Command []string
	// PollInterval is how often the status of a child process is read
	// (what GET /jobs/{name} answers from); 0 means one second.
	PollInterval time.Duration
	// Nice, when above 0, lowers the scheduling priority of every child
	// process to that niceness (Linux), so the API process comes first
	// when the jobs saturate the machine.
	Nice int
	// Sched is the Linux scheduling policy of every child process:
	// SchedNormal ("" too), SchedBatch or SchedIdle. A child runs under it
	// (and at Nice) from its first instruction, every thread of it: both
	// are set on the one thread that forks the children, which they
	// inherit. Outside Linux anything but the default is refused.
	Sched string
	// CPUs, when not empty, is the set of CPUs every child process may
	// run on (Linux sched_setaffinity, inherited like Sched): keeping one
	// CPU free of jobs keeps the API's replies from waiting for a busy
	// CPU. Each must be one the server itself may run on.
	CPUs []int
}

// Defaults.
const (
	DefaultState      = "mdp-state.db"
	DefaultLogRecords = 1000
)

// DefaultBackoff is the restart backoff: full jitter over a window that
// starts at one second and doubles up to one minute.
var DefaultBackoff = retry.Backoff{Base: time.Second, Max: time.Minute}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Manager runs and keeps jobs. Its methods are safe for concurrent use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	store *store
	coll  *metrics.Collector
	reg   *prometheus.Registry
	ctx   context.Context // cancelled by Close after every job drained
	stop  context.CancelFunc

	launch launcher

	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
	wg     sync.WaitGroup // watchers
	change chan string
}

// job is one registered job.
type job struct {
	op sync.Mutex // serialises start, stop, replace and delete

	mu       sync.Mutex
	row      row
	doc      *config.Document // the loaded definition
	red      *runtime.Redactor
	u        run         // the current or last run; nil before the first
	gen      int         // run generation, so a stale watcher or timer does nothing
	attempt  int         // consecutive automatic restarts, for the backoff
	timer    *time.Timer // pending restart
	nextAt   time.Time   // when the pending restart fires
	ring     *logRing
	rate     rateSample
	fp       string           // doc's fingerprint, computed once per doc
	fpDoc    *config.Document // the doc fp belongs to
	deleted  bool
	stopping bool // stopped through the API or by Close: no restart
}

// rateSample remembers the source event count at two moments, for events/s.
type rateSample struct {
	prevT, curT time.Time
	prevN, curN int64
}

// New opens (or creates) the registry at opts.State and restarts the jobs
// it holds whose desired state is running: a job that was running when the
// process ended without stopping it (a crash, kill -9) ran its course
// abnormally, so it is restarted under restart policies always and
// on-failure, counted as a restart, and left failed under never. A job
// the previous process stopped on its way out starts again.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.State == "" {
		opts.State = DefaultState
	}
	if opts.Backoff.Base <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.ResetAfter <= 0 {
		opts.ResetAfter = time.Minute
	}
	if opts.LogRecords <= 0 {
		opts.LogRecords = DefaultLogRecords
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(ctx, opts.State)
	if err != nil {
		return nil, err
	}
	rows, err := st.all(ctx)
	if err != nil {
		_ = st.close()
		return nil, err
	}
	coll := metrics.NewCollector("server")
	mctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts: opts, log: log, store: st, coll: coll, reg: metrics.NewRegistry(coll),
		ctx: mctx, stop: cancel, jobs: map[string]*job{}, change: make(chan string, 256),
	}
	if m.launch, err = newLauncher(m); err != nil {
		cancel()
		_ = st.close()
		return nil, err
	}
	go m.notify()
	var restart []*job
	for _, r := range rows {
		j := &job{row: r, ring: newLogRing(opts.LogRecords)}
		doc, err := m.load(r.Filename, r.Definition, r.Name)
		if err != nil {
			// The definition no longer loads (a component gone, a variable
			// unset): keep the job, failed, so it can be replaced.
			j.row.Observed = string(runtime.StateFailed)
			j.row.LastError = runtime.Redact(err.Error())
			j.row.Desired = DesiredStopped
			_ = m.store.save(j.row)
			log.Error("registered job does not load", "job", r.Name, "err", j.row.LastError)
		} else {
			j.doc, j.red = doc, runtime.NewRedactor(doc)
		}
		m.jobs[r.Name] = j
		if j.doc != nil && r.Desired == DesiredRunning {
			restart = append(restart, j)
		}
	}
	for _, j := range restart {
		interrupted := j.row.Observed != string(runtime.StateStopped) && j.row.Observed != string(runtime.StateCreated)
		switch {
		case !interrupted:
			m.startLogged(j, false)
		case j.doc.Restart == config.RestartNever:
			j.mu.Lock()
			j.row.Observed = string(runtime.StateFailed)
			j.row.LastError = "the server ended while the job ran (restart: never)"
			j.row.Desired = DesiredStopped
			j.row.Stopped = time.Now()
			_ = m.store.save(j.row)
			j.mu.Unlock()
			log.Warn("job was running when the server ended; restart policy never leaves it failed", "job", j.row.Name)
		default:
			j.mu.Lock()
			j.row.Restarts++
			j.mu.Unlock()
			log.Info("job was running when the server ended: restarting it", "job", j.row.Name, "restart", j.doc.Restart)
			m.startLogged(j, true)
		}
	}
	return m, nil
}

func (m *Manager) startLogged(j *job, restart bool) {
	j.op.Lock()
	defer j.op.Unlock()
	if err := m.startLocked(j, restart); err != nil {
		m.log.Error("job start failed", "job", j.row.Name, "err", err)
	}
}

// Isolation is where the manager runs its jobs: IsolationInProcess or
// IsolationProcess.
func (m *Manager) Isolation() string {
	if _, ok := m.launch.(*processLauncher); ok {
		return IsolationProcess
	}
	return IsolationInProcess
}

// Collector is the metrics collector every job reports into.
func (m *Manager) Collector() *metrics.Collector { return m.coll }

// Gatherer is what /metrics serves: the Prometheus registry holding the
// collector and the Go and process collectors, and with IsolationProcess
// every child's job metrics merged into it.
func (m *Manager) Gatherer() prometheus.Gatherer {
	if _, ok := m.launch.(*processLauncher); ok {
		return childGatherer{m}
	}
	return m.reg
}

// load loads a job file with the name forced (when given).
func (m *Manager) load(filename string, data []byte, name string) (*config.Document, error) {
	doc, err := config.LoadBytes(filename, data, config.LoadOptions{Job: name, Registry: m.opts.Registry, Env: m.opts.Env})
	if err != nil {
		return nil, err
	}
	if _, err := doc.Graph(); err != nil {
		return nil, err
	}
	return doc, nil
}

// runnable refuses a job this manager's isolation cannot run: a job with
// a scaleout section runs as a child process (`mdp run` of it runs its
// ingest and worker), not in the server's process.
func (m *Manager) runnable(doc *config.Document) error {
	if doc.Scaleout != nil && m.Isolation() == IsolationInProcess {
		return errScaleoutInProcess(doc.Name)
	}
	return nil
}

func errScaleoutInProcess(name string) error {
	return fmt.Errorf("job %q has a scaleout section: a job server runs scaled-out jobs only with --isolation process (each job its own mdp run), not in its process: %w", name, ErrInvalid)
}

// Validate loads and checks a job file without registering it. The error
// is config.Errors for a problem with the job.
func (m *Manager) Validate(filename string, data []byte) (*config.Document, error) {
	return m.load(filename, data, "")
}

func (m *Manager) get(name string) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	j := m.jobs[name]
	if j == nil {
		return nil, fmt.Errorf("job %q: %w", name, ErrNotFound)
	}
	return j, nil
}

// Submit registers a job file (YAML or JSON); filename names it in error
// positions and, when the file has no name key and name is "", gives the
// job its name. With start the job starts at once. A problem with the job
// file is returned as config.Errors; a name taken already wraps ErrExists.
func (m *Manager) Submit(filename string, data []byte, name string, start bool) (JobStatus, error) {
	if name != "" && !nameRE.MatchString(name) {
		return JobStatus{}, fmt.Errorf("job name %q: want letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit): %w", name, ErrInvalid)
	}
	doc, err := m.load(filename, data, name)
	if err != nil {
		return JobStatus{}, err
	}
	if !nameRE.MatchString(doc.Name) {
		return JobStatus{}, fmt.Errorf("job name %q: want letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit): %w", doc.Name, ErrInvalid)
	}
	if err := m.runnable(doc); err != nil {
		return JobStatus{}, err
	}
	now := time.Now()
	j := &job{
		row: row{Name: doc.Name, Filename: filename, Definition: slices.Clone(data), Desired: DesiredStopped,
			Observed: string(runtime.StateCreated), Created: now},
		doc: doc, red: runtime.NewRedactor(doc), ring: newLogRing(m.opts.LogRecords),
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return JobStatus{}, ErrClosed
	}
	if m.jobs[doc.Name] != nil {
		m.mu.Unlock()
		return JobStatus{}, fmt.Errorf("a job named %q is registered already (replace it with PUT /api/v1/jobs/%s): %w", doc.Name, doc.Name, ErrExists)
	}
	m.jobs[doc.Name] = j
	m.mu.Unlock()
	j.op.Lock()
	defer j.op.Unlock()
	if err := m.store.save(j.row); err != nil {
		m.mu.Lock()
		delete(m.jobs, doc.Name)
		m.mu.Unlock()
		return JobStatus{}, err
	}
	m.log.Info("job registered", "job", doc.Name, "mode", doc.Mode, "restart", doc.Restart)
	m.changed(doc.Name)
	if start {
		if err := m.startLocked(j, false); err != nil {
			return m.status(j, true), err
		}
	}
	return m.status(j, true), nil
}

// Start starts a registered job that is not running. A start failure (a
// store that cannot be opened) is returned and leaves the job failed.
func (m *Manager) Start(name string) (JobStatus, error) {
	j, err := m.get(name)
	if err != nil {
		return JobStatus{}, err
	}
	j.op.Lock()
	defer j.op.Unlock()
	if err := m.startLocked(j, false); err != nil {
		return m.status(j, true), err
	}
	return m.status(j, true), nil
}

// startLocked starts a new run of j; j.op is held.
func (m *Manager) startLocked(j *job, restart bool) error {
	j.mu.Lock()
	if j.deleted {
		j.mu.Unlock()
		return fmt.Errorf("job %q: %w", j.row.Name, ErrNotFound)
	}
	if j.doc == nil {
		j.mu.Unlock()
		return fmt.Errorf("job %q does not load; replace its definition: %w", j.row.Name, ErrConflict)
	}
	if j.u != nil {
		switch j.u.State() {
		case runtime.StateStarting, runtime.StateRunning, runtime.StateStopping:
			st := j.u.State()
			j.mu.Unlock()
			return fmt.Errorf("job %q is %s already: %w", j.row.Name, st, ErrConflict)
		}
	}
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
		j.nextAt = time.Time{}
	}
	if !restart {
		j.attempt = 0
	}
	doc, err := m.load(j.row.Filename, j.row.Definition, j.row.Name)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	stdout := &stdoutWriter{ring: j.ring, red: runtime.NewRedactor(doc)}
	ropts := runtime.Options{
		LoadOptions: config.LoadOptions{Registry: m.opts.Registry},
		Logger:      slog.New(&ringHandler{next: m.log.Handler(), ring: j.ring}),
		Metrics:     m.coll,
		Stdout:      stdout,
		Resume:      resumeOnStart(doc),
	}
	if m.opts.Prepare != nil {
		m.opts.Prepare(doc, &ropts, restart)
	}
	name := j.row.Name
	u, err := m.launch.newRun(launch{name: name, doc: doc, def: j.row.Definition, opts: ropts, ring: j.ring, stdout: stdout,
		changed: func() { m.changed(name) }})
	if err != nil {
		j.mu.Unlock()
		return err
	}
	j.gen++
	gen := j.gen
	j.u = u
	j.doc = doc
	j.red = u.Redactor()
	j.stopping = false
	j.rate = rateSample{}
	j.row.Desired = DesiredRunning
	j.row.Observed = string(runtime.StateStarting)
	j.row.Started = time.Now()
	j.row.Stopped = time.Time{}
	j.row.LastError = ""
	saveErr := m.store.save(j.row)
	j.mu.Unlock()
	if saveErr != nil {
		m.log.Error("job registry", "err", saveErr)
	}
	m.changed(j.row.Name)

	m.wg.Add(1)
	go m.watch(j, u, gen, stdout)
	if err := u.Start(m.ctx); err != nil {
		// watch records the failure and applies the restart policy.
		<-u.Done()
		return err
	}
	j.mu.Lock()
	if j.gen == gen && j.u.State() == runtime.StateRunning {
		j.row.Observed = string(runtime.StateRunning)
		_ = m.store.save(j.row)
	}
	j.mu.Unlock()
	m.changed(j.row.Name)
	return nil
}

// watch waits for one run to end, records how it ended and applies the
// restart policy.
func (m *Manager) watch(j *job, u run, gen int, stdout *stdoutWriter) {
	defer m.wg.Done()
	<-u.Done()
	stdout.flush()
	err := u.Err()
	j.mu.Lock()
	if j.gen != gen || j.deleted {
		j.mu.Unlock()
		return
	}
	now := time.Now()
	j.row.Stopped = now
	j.row.Observed = string(u.State())
	if err != nil {
		j.row.LastError = j.red.Error(err)
	}
	ran := now.Sub(j.row.Started)
	restart := false
	if !j.stopping {
		switch j.doc.Restart {
		case config.RestartAlways:
			restart = true
		case config.RestartOnFailure:
			restart = err != nil
		}
		if !restart {
			j.row.Desired = DesiredStopped
		}
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if restart && !closed {
		if ran >= m.opts.ResetAfter {
			j.attempt = 0
		}
		j.attempt++
		d := m.opts.Backoff.Delay(j.attempt)
		j.row.Observed = StateBackoff
		j.nextAt = now.Add(d)
		j.timer = time.AfterFunc(d, func() { m.restart(j, gen) })
		m.log.Warn("job ended: restarting after backoff", "job", j.row.Name, "restart", j.doc.Restart,
			"attempt", j.attempt, "backoff", d.String(), "err", j.row.LastError)
	}
	if err := m.store.save(j.row); err != nil {
		m.log.Error("job registry", "err", err)
	}
	j.mu.Unlock()
	m.changed(j.row.Name)
}

// restart runs when a backoff timer fires.
func (m *Manager) restart(j *job, gen int) {
	j.op.Lock()
	defer j.op.Unlock()
	j.mu.Lock()
	stale := j.gen != gen || j.deleted || j.stopping || j.timer == nil
	if !stale {
		j.timer = nil
		j.nextAt = time.Time{}
		j.row.Restarts++
	}
	j.mu.Unlock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if stale || closed {
		return
	}
	if err := m.startLocked(j, true); err != nil {
		m.log.Error("job restart failed", "job", j.row.Name, "err", err)
	}
}

// Stop stops a job gracefully and waits until it has drained: sources
// stop, queues drain, open bars flush, sinks close. A job waiting to be
// restarted is not restarted. Its desired state becomes stopped.
func (m *Manager) Stop(ctx context.Context, name string) (JobStatus, error) {
	j, err := m.get(name)
	if err != nil {
		return JobStatus{}, err
	}
	j.op.Lock()
	defer j.op.Unlock()
	if err := m.stopLocked(ctx, j, DesiredStopped); err != nil {
		return m.status(j, true), err
	}
	return m.status(j, true), nil
}

// stopLocked drains the current run (if any) and sets the desired state;
// j.op is held.
func (m *Manager) stopLocked(ctx context.Context, j *job, desired string) error {
	j.mu.Lock()
	j.stopping = true
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
		j.nextAt = time.Time{}
		j.row.Observed = string(runtime.StateStopped)
	}
	j.row.Desired = desired
	u := j.u
	_ = m.store.save(j.row)
	j.mu.Unlock()
	if u != nil {
		u.Stop()
		m.changed(j.row.Name)
		select {
		case <-u.Done():
		case <-ctx.Done():
			return fmt.Errorf("stop job %q: still draining: %w", j.row.Name, ctx.Err())
		}
	}
	j.mu.Lock()
	if u != nil && j.u == u {
		j.row.Observed = string(u.State())
		if j.row.Stopped.IsZero() {
			j.row.Stopped = time.Now()
		}
	}
	j.row.Desired = desired
	err := m.store.save(j.row)
	j.mu.Unlock()
	m.changed(j.row.Name)
	return err
}

// Replace replaces a job's definition. A running job is drained and
// started again with the new one; a job that is not running stays so.
func (m *Manager) Replace(ctx context.Context, name, filename string, data []byte) (JobStatus, error) {
	j, err := m.get(name)
	if err != nil {
		return JobStatus{}, err
	}
	doc, err := m.load(filename, data, name)
	if err != nil {
		return JobStatus{}, err
	}
	if err := m.runnable(doc); err != nil {
		return JobStatus{}, err
	}
	j.op.Lock()
	defer j.op.Unlock()
	j.mu.Lock()
	wasRunning := j.row.Desired == DesiredRunning
	j.mu.Unlock()
	if wasRunning {
		if err := m.stopLocked(ctx, j, DesiredStopped); err != nil {
			return m.status(j, true), err
		}
	}
	j.mu.Lock()
	j.row.Filename, j.row.Definition = filename, slices.Clone(data)
	j.doc, j.red = doc, runtime.NewRedactor(doc)
	err = m.store.save(j.row)
	j.mu.Unlock()
	if err != nil {
		return m.status(j, true), err
	}
	m.log.Info("job replaced", "job", name, "restarting", wasRunning)
	m.changed(name)
	if wasRunning {
		if err := m.startLocked(j, false); err != nil {
			return m.status(j, true), err
		}
	}
	return m.status(j, true), nil
}

// Delete removes a job from the registry. A job that is running (or
// waiting to restart) is refused unless force, which aborts it first.
func (m *Manager) Delete(name string, force bool) error {
	j, err := m.get(name)
	if err != nil {
		return err
	}
	j.op.Lock()
	defer j.op.Unlock()
	j.mu.Lock()
	u := j.u
	active := j.timer != nil
	if u != nil {
		switch u.State() {
		case runtime.StateStarting, runtime.StateRunning, runtime.StateStopping:
			active = true
		}
	}
	if active && !force {
		j.mu.Unlock()
		return fmt.Errorf("job %q is running; stop it first, or delete with ?force=true to abort it: %w", name, ErrConflict)
	}
	j.deleted = true
	j.stopping = true
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.mu.Unlock()
	if u != nil {
		u.Abort()
		<-u.Done()
		m.launch.release(u)
	}
	m.mu.Lock()
	delete(m.jobs, name)
	m.mu.Unlock()
	j.ring.close()
	if err := m.store.delete(name); err != nil {
		return err
	}
	m.log.Info("job deleted", "job", name, "forced", force && active)
	m.changed(name)
	return nil
}

// Names lists the registered jobs, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.jobs))
	for n := range m.jobs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// List returns every job's status without per-node detail, sorted by name.
func (m *Manager) List() []JobStatus {
	names := m.Names()
	out := make([]JobStatus, 0, len(names))
	for _, n := range names {
		if st, err := m.Status(n, false); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// Status returns one job's status; detail adds the runtime status of its
// current or last run (per-node figures, edges, feedback).
func (m *Manager) Status(name string, detail bool) (JobStatus, error) {
	j, err := m.get(name)
	if err != nil {
		return JobStatus{}, err
	}
	return m.status(j, detail), nil
}

// Logs returns at most tail of the job's newest log records with a
// sequence number above since (tail <= 0: all the ring holds).
func (m *Manager) Logs(name string, tail int, since int64) ([]LogRecord, error) {
	j, err := m.get(name)
	if err != nil {
		return nil, err
	}
	return j.ring.tail(tail, since), nil
}

// Run returns the job's current or last run, nil before its first (or
// for an unknown job, or a job that runs as a child process).
func (m *Manager) Run(name string) *runtime.Unified {
	j, err := m.get(name)
	if err != nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	u, _ := j.u.(*runtime.Unified)
	return u
}

// FollowLogs returns the job's log records with a sequence number above
// since and a channel closed when the next record arrives (or the job is
// deleted, after which FollowLogs wraps ErrNotFound). Records overwritten
// in the ring before they were asked for show as a gap in the sequence.
func (m *Manager) FollowLogs(name string, since int64) ([]LogRecord, <-chan struct{}, error) {
	j, err := m.get(name)
	if err != nil {
		return nil, nil, err
	}
	recs, wake, ok := j.ring.follow(since)
	if !ok {
		return recs, nil, fmt.Errorf("job %q: %w (deleted)", name, ErrNotFound)
	}
	return recs, wake, nil
}

// Definition returns the job file as submitted with its secrets masked,
// and the name it was submitted under.
func (m *Manager) Definition(name string) (filename, text string, err error) {
	j, err := m.get(name)
	if err != nil {
		return "", "", err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	red := j.red
	return j.row.Filename, red.String(string(j.row.Definition)), nil
}

// changed reports a state change to OnChange without blocking.
func (m *Manager) changed(name string) {
	if m.opts.OnChange == nil {
		return
	}
	select {
	case m.change <- name:
	default: // the notifier is behind; the periodic push carries the state
	}
}

func (m *Manager) notify() {
	for {
		select {
		case name := <-m.change:
			if m.opts.OnChange != nil {
				m.opts.OnChange(name)
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// Close stops every job gracefully (their desired state is kept, so the
// next process starts them again), waits until they drained or ctx ends
// (then aborts them), and closes the registry.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	all := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		all = append(all, j)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, j := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.op.Lock()
			defer j.op.Unlock()
			j.mu.Lock()
			desired := j.row.Desired
			j.mu.Unlock()
			if err := m.stopLocked(ctx, j, desired); err != nil {
				j.mu.Lock()
				u := j.u
				j.mu.Unlock()
				u.Abort()
				<-u.Done()
			}
		}()
	}
	wg.Wait()
	m.wg.Wait()
	m.stop()
	if p, ok := m.launch.(*processLauncher); ok {
		p.stop()
	}
	return m.store.close()
}

// Apply registers a job file the way a directory of job files declares
// it (`mdp serve --jobs DIR`): a new job is registered and started; a job
// registered already with the same file is left as it is (the registry
// and its policy decide whether it runs); one whose file changed is
// replaced (a running job drained and started again).
func (m *Manager) Apply(ctx context.Context, filename string, data []byte) (JobStatus, error) {
	doc, err := m.load(filename, data, "")
	if err != nil {
		return JobStatus{}, err
	}
	j, err := m.get(doc.Name)
	if errors.Is(err, ErrNotFound) {
		return m.Submit(filename, data, "", true)
	}
	if err != nil {
		return JobStatus{}, err
	}
	j.mu.Lock()
	same := string(j.row.Definition) == string(data)
	j.mu.Unlock()
	if same {
		return m.status(j, false), nil
	}
	return m.Replace(ctx, doc.Name, filename, data)
}

// resumeOnStart reports whether a run of doc continues from its latest
// checkpoints: every run of a job with a checkpoint section does, whether
// it was stopped (mdp stop), killed with the server or restarted after a
// failure; with none saved yet it starts from the beginning. A scaled-out
// job too: its child mdp run gets --resume, which keeps the stream,
// restores the partitions' checkpoints and re-reads the input (the worker
// dropping what it had read); a stop suspends it (a final checkpoint, no
// end markers), so the next start continues where it stopped, and a run
// that had read everything has nothing left to do. A scaled-out job whose
// source cannot be read again to the same records (a live feed, a paced
// generator: config.Document.ScaleoutRereadable) cannot be resumed that
// way (mdp run refuses --resume): each of its runs starts afresh.
func resumeOnStart(doc *config.Document) bool {
	return doc.Checkpoint != nil && (doc.Scaleout == nil || doc.ScaleoutRereadable() == nil)
}
