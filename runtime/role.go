package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/scaleout/sostatus"
)

// scaleoutStatusTimeout bounds one measure of a scale-out status (bucket
// reads and one stream read per partition).
const scaleoutStatusTimeout = 5 * time.Second

// Role is the status of a scale-out role's run (mdp worker, or mdp run of
// a job with a scaleout section), whose engine job the scaleout package
// builds rather than Unified: the same Status and Health, with the
// job's scale-out section. It implements sostatus.StatusSink.
type Role struct {
	doc *config.Document
	red *Redactor

	mu       sync.Mutex
	job      *engine.Job
	feedback *engine.Feedback
	measure  func(context.Context) (sostatus.Status, error)
	// lastSO is the last scale-out status measured: once the role ended
	// (its NATS connection closed) it is what Status shows.
	lastSO    *sostatus.Status
	state     State
	err       error
	startedAt time.Time
	endedAt   time.Time

	health healthTracker
}

// NewRole returns the status of a role of doc's job, starting now.
func NewRole(doc *config.Document, red *Redactor) *Role {
	return &Role{doc: doc, red: red, state: StateStarting, startedAt: time.Now()}
}

// Name is the job's name.
func (r *Role) Name() string { return r.doc.Name }

// Document is the job's document.
func (r *Role) Document() *config.Document { return r.doc }

// Redactor masks the job's secrets.
func (r *Role) Redactor() *Redactor { return r.red }

// WorkerJob implements sostatus.StatusSink: the worker's job runs.
func (r *Role) WorkerJob(j *engine.Job, fb *engine.Feedback) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.job, r.feedback = j, fb
	if r.state == StateStarting {
		r.state = StateRunning
	}
}

// ScaleoutStatus implements sostatus.StatusSink.
func (r *Role) ScaleoutStatus(measure func(context.Context) (sostatus.Status, error)) {
	r.mu.Lock()
	r.measure = measure
	r.mu.Unlock()
}

// Finish records the role's end: stopped, or failed with err.
func (r *Role) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.endedAt, r.state = err, time.Now(), StateStopped
	if err != nil {
		r.state = StateFailed
	}
}

// Err is the role's error once it ended.
func (r *Role) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Status returns a snapshot: the worker's nodes once its job runs, and
// the job's scale-out status measured now (a failed measure is listed in
// Errors).
func (r *Role) Status() Status {
	r.mu.Lock()
	st := Status{Job: r.doc.Name, Mode: r.doc.Mode, State: r.state, Nodes: []NodeStatus{}, Edges: []EdgeStatus{}}
	job, fb, measure, jobErr, started, ended := r.job, r.feedback, r.measure, r.err, r.startedAt, r.endedAt
	r.mu.Unlock()
	now := time.Now()
	st.StartedAt = started.UTC().Format(time.RFC3339Nano)
	end := now
	if !ended.IsZero() {
		end = ended
		st.EndedAt = ended.UTC().Format(time.RFC3339Nano)
	}
	st.UptimeSeconds = end.Sub(started).Seconds()
	if job != nil {
		fillEngine(&st, job.Status(), fb, r.red, jobErr, now)
	} else if jobErr != nil {
		st.Errors = append(st.Errors, jobErr.Error())
	}
	if measure != nil && !ended.IsZero() {
		// The role's connection is closed: the last measure, as of its
		// measured_at.
		r.mu.Lock()
		st.Scaleout = r.lastSO
		r.mu.Unlock()
	} else if measure != nil {
		ctx, cancel := context.WithTimeout(context.Background(), scaleoutStatusTimeout)
		so, err := measure(ctx)
		cancel()
		if err != nil {
			st.Errors = append(st.Errors, "scale-out status: "+r.red.String(err.Error()))
		} else {
			st.Scaleout = &so
			r.mu.Lock()
			r.lastSO = &so
			r.mu.Unlock()
		}
	}
	return st
}

// Health judges the role now, as Unified.Health judges a job.
func (r *Role) Health() Health {
	r.mu.Lock()
	state, jobErr, job, fb := r.state, r.err, r.job, r.feedback
	r.mu.Unlock()
	var nodes []engine.NodeStatus
	if job != nil {
		nodes = job.Status().Nodes
	} else {
		fb = engine.NewFeedback(r.doc.Feedback)
	}
	return healthOf(r.doc.Name, state, jobErr, nodes, fb, &r.health, r.red)
}
