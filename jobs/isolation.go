package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// Isolation modes: where a Manager runs its jobs.
const (
	// IsolationInProcess runs every job as a runtime.Unified in the
	// manager's own process (the default): one Go scheduler for the jobs
	// and the API, the dashboard's taps available, no process per job.
	IsolationInProcess = "inprocess"
	// IsolationProcess runs every job as a child process (`mdp run` of the
	// job file), so jobs that saturate every core do not hold the API's
	// scheduler: the manager answers from its own state and the child's
	// latest polled status.
	IsolationProcess = "process"
)

// Scheduling policies of child processes (Options.Sched), Linux's
// sched(7) policies for normal (non-real-time) threads.
const (
	// SchedNormal is SCHED_OTHER, the default: the children share the
	// CPU with the server's threads by niceness.
	SchedNormal = "normal"
	// SchedBatch is SCHED_BATCH: as normal, but the scheduler treats the
	// children as CPU-bound and does not let a waking child preempt a
	// running thread, which favours the server's short requests a little.
	SchedBatch = "batch"
	// SchedIdle is SCHED_IDLE: the children run only on CPU time no
	// normal thread wants (a weight below niceness 19's), so the server's
	// threads, and any other normal process, run first when the jobs
	// saturate the machine. Jobs then only get what is left over.
	SchedIdle = "idle"
)

// run is one run of a job, wherever it runs: a *runtime.Unified in this
// process, or a *childRun (a child process). The manager's logic —
// registry, restart policy, backoff, stop, replace, delete, status — is the
// same for both; only what a run is differs.
type run interface {
	// Start starts the run and returns once data flows, or with the error
	// that kept it from starting (the run has then ended).
	Start(ctx context.Context) error
	// Stop drains the run gracefully; Abort ends it at once.
	Stop()
	Abort()
	// Done is closed once the run has ended; Err is then how.
	Done() <-chan struct{}
	Err() error
	State() runtime.State
	// Status and Health are the run's figures: live in process, the
	// latest snapshot polled from a child.
	Status() runtime.Status
	Health() runtime.Health
	Redactor() *runtime.Redactor
}

// observer is a run whose figures are a snapshot taken at some moment (a
// child's polled status).
type observer interface {
	observedAt() time.Time
}

// launch is what a launcher needs to build one run of a job.
type launch struct {
	name   string
	doc    *config.Document
	def    []byte // the job file as submitted
	opts   runtime.Options
	ring   *logRing
	stdout *stdoutWriter
	// changed reports that the run's observed state changed without the
	// manager having asked (a child's polled state).
	changed func()
}

// launcher builds runs: the difference between the isolation modes.
type launcher interface {
	newRun(l launch) (run, error)
	// release forgets a deleted job's last run (its metrics).
	release(r run)
}

// inProcess runs jobs as runtime.Unified in this process, reporting into
// the manager's shared collector.
type inProcess struct{ m *Manager }

func (p inProcess) newRun(l launch) (run, error) {
	if l.doc.Scaleout != nil {
		// Registered by a server with isolation process.
		return nil, errScaleoutInProcess(l.name)
	}
	u, err := runtime.New(l.doc, l.opts)
	if err != nil {
		return nil, err
	}
	if p.m.opts.OnRun != nil {
		p.m.opts.OnRun(l.name, u)
	}
	return u, nil
}

func (p inProcess) release(r run) {
	if u, ok := r.(*runtime.Unified); ok {
		p.m.coll.Remove(u)
	}
}

// newLauncher returns the launcher of the isolation mode.
func newLauncher(m *Manager) (launcher, error) {
	switch m.opts.Isolation {
	case "", IsolationInProcess:
		if m.opts.Nice != 0 || (m.opts.Sched != "" && m.opts.Sched != SchedNormal) || len(m.opts.CPUs) > 0 {
			return nil, fmt.Errorf("a child niceness, scheduling policy or CPU set needs isolation %s (jobs in process share the server's threads): %w", IsolationProcess, ErrInvalid)
		}
		return inProcess{m}, nil
	case IsolationProcess:
		return newProcessLauncher(m)
	}
	return nil, fmt.Errorf("isolation %q: want %s or %s: %w", m.opts.Isolation, IsolationInProcess, IsolationProcess, ErrInvalid)
}
