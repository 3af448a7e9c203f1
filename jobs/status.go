package jobs

import (
	"sync"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/runtime"
)

// JobStatus is a job as the registry and its current run see it, ready to
// serialise as JSON. Times are RFC 3339 UTC; secrets are masked.
type JobStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode,omitempty"`
	// Desired is running or stopped: what the job should be doing.
	Desired string `json:"desired"`
	// State is what it is doing: created, starting, running, stopping,
	// stopped, failed, or backoff (waiting to be restarted).
	State string `json:"state"`
	// Restart is the job's restart policy: always, on-failure or never.
	Restart string `json:"restart,omitempty"`
	// Restarts counts automatic restarts.
	Restarts      int     `json:"restarts"`
	NextRestartAt string  `json:"next_restart_at,omitempty"`
	LastError     string  `json:"last_error,omitempty"`
	CreatedAt     string  `json:"created_at"`
	StartedAt     string  `json:"started_at,omitempty"`
	StoppedAt     string  `json:"stopped_at,omitempty"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Fingerprint   string  `json:"fingerprint,omitempty"`
	// EventsIn is what the job's sources emitted; EventsOut what its sinks
	// received. EventsPerSecond is the sources' rate over the last second
	// or so (since start for a run younger than that).
	EventsIn        int64   `json:"events_in"`
	EventsOut       int64   `json:"events_out"`
	EventsPerSecond float64 `json:"events_per_second"`
	// WatermarkLagSeconds is the largest watermark lag of the job's nodes
	// (wall clock minus watermark), 0 when no node has one.
	WatermarkLagSeconds float64 `json:"watermark_lag_seconds"`
	// Errors counts the records the job's nodes dropped and the errors they
	// counted, every reason together.
	Errors        int64  `json:"errors"`
	FeedbackLevel string `json:"feedback_level,omitempty"`
	// Health is OK, DEGRADED or ERROR while a run exists.
	Health string `json:"health,omitempty"`
	// ObservedAt is when the run's figures were read, for a job running
	// as a child process (isolation process): its status is polled every
	// poll interval, so they are at most that old (plus the child's
	// answer time). Absent for a job in process, whose figures are live.
	ObservedAt string `json:"observed_at,omitempty"`
	// Runtime is the current or last run's full status (GET /jobs/{name}
	// only): per-node events, batches, drops and errors by reason,
	// watermarks, queue depths, backpressure, edges, feedback.
	Runtime *runtime.Status `json:"runtime,omitempty"`
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// status builds j's status.
func (m *Manager) status(j *job, detail bool) JobStatus {
	j.mu.Lock()
	r := j.row
	u := j.u
	doc := j.doc
	nextAt := j.nextAt
	if doc != nil && j.fpDoc != doc {
		// A fingerprint hashes the whole job: once per definition, not
		// once per status.
		j.fp, j.fpDoc = doc.Fingerprint(), doc
	}
	fp := j.fp
	j.mu.Unlock()
	st := JobStatus{
		Name: r.Name, Desired: r.Desired, State: r.Observed, Restarts: r.Restarts, LastError: r.LastError,
		CreatedAt: fmtTime(r.Created), StartedAt: fmtTime(r.Started), StoppedAt: fmtTime(r.Stopped),
		NextRestartAt: fmtTime(nextAt),
	}
	if doc != nil {
		st.Mode, st.Restart, st.Fingerprint = doc.Mode, doc.Restart, fp
	}
	if u == nil {
		return st
	}
	fillRun(&st, u, &j.mu, &j.rate, r.Observed == StateBackoff, detail)
	return st
}

// statusRun is what a status asks of a run: a run of the manager (in
// process or a child), or the runtime.Role of a scale-out process.
type statusRun interface {
	Status() runtime.Status
	Health() runtime.Health
	Err() error
	Redactor() *runtime.Redactor
}

// fillRun fills st from a run's runtime status; mu guards rate.
func fillRun(st *JobStatus, u statusRun, mu *sync.Mutex, rate *rateSample, backoff, detail bool) {
	rs := u.Status()
	// A run made but not started yet is the row's "starting": the manager
	// creates the next run, then starts it, and a status read between the
	// two said "created" for a job that had run (and restarted) already.
	if !backoff && rs.State != runtime.StateCreated {
		st.State = string(rs.State)
	}
	if err := u.Err(); err != nil && st.LastError == "" {
		// The run has just ended and the manager is still recording it.
		st.LastError = u.Redactor().Error(err)
	}
	st.UptimeSeconds = rs.UptimeSeconds
	if st.State == string(runtime.StateStopped) || st.State == StateBackoff || st.State == string(runtime.StateFailed) {
		st.UptimeSeconds = 0
	}
	var maxLag float64
	for _, n := range rs.Nodes {
		switch n.Kind {
		case engine.KindSource.String():
			st.EventsIn += n.EventsOut
		case engine.KindSink.String():
			st.EventsOut += n.EventsIn
		}
		maxLag = max(maxLag, n.WatermarkLagSeconds)
		for _, v := range n.Drops {
			st.Errors += v
		}
		for _, v := range n.Errors {
			st.Errors += v
		}
	}
	st.WatermarkLagSeconds = maxLag
	st.FeedbackLevel = rs.Feedback.Level
	st.Health = string(u.Health().Status)
	st.EventsPerSecond = eventsPerSecond(mu, rate, st.EventsIn, rs.UptimeSeconds, st.State == string(runtime.StateRunning))
	if o, ok := u.(observer); ok {
		st.ObservedAt = fmtTime(o.observedAt())
	}
	if detail {
		st.Runtime = &rs
	}
}

// eventsPerSecond samples the source count and returns the rate over the
// last interval of at least a second (the average since start before that).
func eventsPerSecond(mu *sync.Mutex, s *rateSample, n int64, uptime float64, running bool) float64 {
	if !running {
		return 0
	}
	now := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if s.curT.IsZero() {
		s.curT, s.curN = now, n
	} else if now.Sub(s.curT) >= time.Second {
		s.prevT, s.prevN = s.curT, s.curN
		s.curT, s.curN = now, n
	}
	if !s.prevT.IsZero() {
		if dt := now.Sub(s.prevT).Seconds(); dt > 0 {
			return float64(n-s.prevN) / dt
		}
	}
	if uptime > 0 {
		return float64(n) / uptime
	}
	return 0
}
