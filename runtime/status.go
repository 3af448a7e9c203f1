package runtime

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/scaleout/sostatus"
)

// Status is a snapshot of the job, ready to serialise as JSON. Times are
// RFC 3339 UTC; secrets are redacted.
type Status struct {
	Job           string         `json:"job"`
	Mode          string         `json:"mode"`
	State         State          `json:"state"`
	StartedAt     string         `json:"started_at,omitempty"`
	EndedAt       string         `json:"ended_at,omitempty"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Nodes         []NodeStatus   `json:"nodes"`
	Edges         []EdgeStatus   `json:"edges"`
	Feedback      FeedbackStatus `json:"feedback"`
	// Checkpoint is the job's checkpoint state; nil when checkpoints are off.
	Checkpoint *engine.CheckpointStatus `json:"checkpoint,omitempty"`
	// Errors are the job's error and each node's most recent error.
	Errors []string `json:"errors,omitempty"`
	// Bottleneck names the source that limits the job's rate, when one does
	// (engine.Status.Bottleneck).
	Bottleneck string `json:"bottleneck,omitempty"`
	// Scaleout is, for a scaled-out job (mdp run or mdp worker of a job
	// with a scaleout section), its workers, the partitions each owns and
	// each partition's lag.
	Scaleout *sostatus.Status `json:"scaleout,omitempty"`
}

// NodeStatus is one logical node, summed over its instances.
type NodeStatus struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Kind      string `json:"kind"`
	Instances int    `json:"instances"`
	// State is created, running, done, failed or aborted.
	State          string  `json:"state"`
	EventsIn       int64   `json:"events_in"`
	EventsOut      int64   `json:"events_out"`
	BatchesIn      int64   `json:"batches_in"`
	BatchesOut     int64   `json:"batches_out"`
	BusySeconds    float64 `json:"busy_seconds"`
	BlockedSeconds float64 `json:"blocked_seconds"`
	// BusyFraction is the largest share of its running time an instance
	// spent working (engine.NodeStatus.BusyFraction).
	BusyFraction float64 `json:"busy_fraction"`
	// Watermark is the node's event-time watermark (RFC 3339), absent before
	// the first one and after the final one.
	Watermark string `json:"watermark,omitempty"`
	// WatermarkFinal is true once the final watermark (end of stream) passed.
	WatermarkFinal bool `json:"watermark_final,omitempty"`
	// WatermarkLagSeconds is wall clock minus Watermark.
	WatermarkLagSeconds float64          `json:"watermark_lag_seconds,omitempty"`
	QueueDepth          int              `json:"queue_depth"`
	QueueCapacity       int              `json:"queue_capacity"`
	Drops               map[string]int64 `json:"drops,omitempty"`
	Errors              map[string]int64 `json:"errors,omitempty"`
	LastError           string           `json:"last_error,omitempty"`
}

// EdgeStatus is one logical edge.
type EdgeStatus struct {
	Name           string  `json:"name"`
	Policy         string  `json:"policy"`
	Depth          int     `json:"depth"`
	Capacity       int     `json:"capacity"`
	Dropped        int64   `json:"dropped"`
	BlockedSeconds float64 `json:"blocked_seconds"`
}

// FeedbackStatus is the job's store-feedback state.
type FeedbackStatus struct {
	Enabled bool    `json:"enabled"`
	Level   string  `json:"level"` // ok, soft, hard
	Scale   float64 `json:"scale"`
	// Events counts level reports by level.
	Events map[string]int64 `json:"events"`
}

// Status returns a snapshot of the job.
func (u *Unified) Status() Status {
	u.mu.Lock()
	st := Status{Job: u.doc.Name, Mode: u.doc.Mode, State: u.state}
	started, ended, jobErr := u.startedAt, u.endedAt, u.err
	u.mu.Unlock()

	now := time.Now()
	if !started.IsZero() {
		st.StartedAt = started.UTC().Format(time.RFC3339Nano)
		end := now
		if !ended.IsZero() {
			end = ended
		}
		st.UptimeSeconds = end.Sub(started).Seconds()
	}
	if !ended.IsZero() {
		st.EndedAt = ended.UTC().Format(time.RFC3339Nano)
	}
	fillEngine(&st, u.job.Status(), u.feedback, u.red, jobErr, now)
	if u.job.Checkpointing() {
		cs := u.job.CheckpointStatus()
		st.Checkpoint = &cs
	}
	return st
}

// fillEngine fills st's nodes, edges, errors and feedback from an engine
// job's status.
func fillEngine(st *Status, es engine.Status, fb *engine.Feedback, red *Redactor, jobErr error, now time.Time) {
	st.Nodes = make([]NodeStatus, 0, len(es.Nodes))
	if jobErr != nil {
		st.Errors = append(st.Errors, jobErr.Error())
	}
	for _, n := range es.Nodes {
		ns := NodeStatus{
			ID: n.ID, Type: n.Type, Kind: n.Kind, Instances: n.Instances, State: n.State,
			EventsIn: n.EventsIn, EventsOut: n.EventsOut, BatchesIn: n.BatchesIn, BatchesOut: n.BatchesOut,
			BusySeconds: float64(n.BusyNs) / 1e9, BlockedSeconds: float64(n.BlockedNs) / 1e9, BusyFraction: n.BusyFraction,
			QueueDepth: n.QueueDepth, QueueCapacity: n.QueueCap, Drops: n.Drops, Errors: n.Errors,
			LastError: red.String(n.LastError),
		}
		switch n.Watermark {
		case md.MinTime:
		case md.MaxTime:
			ns.WatermarkFinal = true
		default:
			ns.Watermark = md.FormatTime(n.Watermark)
			ns.WatermarkLagSeconds = float64(now.UnixNano()-n.Watermark) / 1e9
		}
		// A node that saw the job abort because another failed may carry
		// that node's error; list each failure once.
		if ns.LastError != "" && (jobErr == nil || !strings.Contains(jobErr.Error(), ns.LastError)) {
			st.Errors = append(st.Errors, fmt.Sprintf("node %q: %s", n.ID, ns.LastError))
		}
		st.Nodes = append(st.Nodes, ns)
	}
	st.Bottleneck = es.Bottleneck
	st.Edges = make([]EdgeStatus, 0, len(es.Edges))
	for _, e := range es.Edges {
		st.Edges = append(st.Edges, EdgeStatus{Name: e.Name, Policy: e.Policy, Depth: e.Depth, Capacity: e.Capacity, Dropped: e.Dropped, BlockedSeconds: float64(e.BlockedNs) / 1e9})
	}
	ev := fb.Events()
	st.Feedback = FeedbackStatus{
		Enabled: fb.Config().Enable, Level: fb.Level().String(), Scale: fb.Scale(),
		Events: map[string]int64{"ok": ev[engine.LevelOK], "soft": ev[engine.LevelSoft], "hard": ev[engine.LevelHard]},
	}
}

// HealthStatus is a health verdict.
type HealthStatus string

// Health verdicts, from best to worst.
const (
	HealthOK       HealthStatus = "OK"
	HealthDegraded HealthStatus = "DEGRADED"
	HealthError    HealthStatus = "ERROR"
)

func (h HealthStatus) rank() int {
	switch h {
	case HealthDegraded:
		return 1
	case HealthError:
		return 2
	}
	return 0
}

// Health is the job's health: the worst verdict of its components.
type Health struct {
	Status     HealthStatus      `json:"status"`
	Job        string            `json:"job"`
	State      State             `json:"state"`
	Components []ComponentHealth `json:"components"`
}

// ComponentHealth is the verdict on one part of the job: the job itself,
// a node, or the store feedback loop.
type ComponentHealth struct {
	Name   string       `json:"name"`
	Kind   string       `json:"kind"` // job, source, operator, sink, feedback
	Status HealthStatus `json:"status"`
	Detail string       `json:"detail,omitempty"`
}

// degradedWindow is how long drops or counted errors keep a node DEGRADED
// after the last one, so one burst does not mark a job degraded forever.
const degradedWindow = time.Minute

// sinkQueueNearFull is the fill of a sink's input queues at which the sink
// is DEGRADED: the store is not keeping up.
const sinkQueueNearFull = 0.75

// healthTracker remembers when each node's drop and error totals last grew.
type healthTracker struct {
	mu    sync.Mutex
	nodes map[string]*nodeMark
}

type nodeMark struct {
	drops, errs     int64
	dropsAt, errsAt time.Time
}

func (t *healthTracker) observe(id string, drops, errs int64, now time.Time) (dropsAt, errsAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes == nil {
		t.nodes = map[string]*nodeMark{}
	}
	m := t.nodes[id]
	if m == nil {
		m = &nodeMark{}
		t.nodes[id] = m
	}
	if drops != m.drops {
		m.drops, m.dropsAt = drops, now
	}
	if errs != m.errs {
		m.errs, m.errsAt = errs, now
	}
	return m.dropsAt, m.errsAt
}

// Health judges the job now:
//   - ERROR: the job failed, or a node failed;
//   - DEGRADED: a node dropped records or counted errors within the last
//     degradedWindow, a sink's input queues are at least 75% full, or the
//     store feedback level is hard (sources paused);
//   - OK otherwise.
func (u *Unified) Health() Health {
	u.mu.Lock()
	state, jobErr := u.state, u.err
	u.mu.Unlock()
	return healthOf(u.doc.Name, state, jobErr, u.job.Status().Nodes, u.feedback, &u.health, u.red)
}

// healthOf judges a job from its state and its engine job's nodes.
func healthOf(name string, state State, jobErr error, nodes []engine.NodeStatus, fb *engine.Feedback, tracker *healthTracker, red *Redactor) Health {
	now := time.Now()
	h := Health{Status: HealthOK, Job: name, State: state}
	add := func(c ComponentHealth) {
		h.Components = append(h.Components, c)
		if c.Status.rank() > h.Status.rank() {
			h.Status = c.Status
		}
	}
	jc := ComponentHealth{Name: name, Kind: "job", Status: HealthOK, Detail: string(state)}
	if state == StateFailed {
		jc.Status = HealthError
		if jobErr != nil {
			jc.Detail = jobErr.Error()
		}
	}
	add(jc)
	for _, n := range nodes {
		c := ComponentHealth{Name: n.ID, Kind: n.Kind, Status: HealthOK}
		drops, errs := sum(n.Drops), sum(n.Errors)
		dropsAt, errsAt := tracker.observe(n.ID, drops, errs, now)
		var why []string
		switch {
		case n.State == "failed":
			c.Status = HealthError
			why = append(why, "failed: "+red.String(n.LastError))
		default:
			if drops > 0 && now.Sub(dropsAt) < degradedWindow {
				c.Status = HealthDegraded
				why = append(why, fmt.Sprintf("dropped %d records (%s)", drops, reasons(n.Drops)))
			}
			if errs > 0 && now.Sub(errsAt) < degradedWindow {
				c.Status = HealthDegraded
				why = append(why, fmt.Sprintf("%d errors (%s); last: %s", errs, reasons(n.Errors), red.String(n.LastError)))
			}
			if n.Kind == engine.KindSink.String() && n.QueueCap > 0 && float64(n.QueueDepth) >= sinkQueueNearFull*float64(n.QueueCap) {
				c.Status = HealthDegraded
				why = append(why, fmt.Sprintf("input queue near full: %d of %d batches", n.QueueDepth, n.QueueCap))
			}
		}
		c.Detail = strings.Join(why, "; ")
		add(c)
	}
	if fb.Config().Enable {
		c := ComponentHealth{Name: "feedback", Kind: "feedback", Status: HealthOK, Detail: "level " + fb.Level().String()}
		if fb.Level() == engine.LevelHard {
			c.Status = HealthDegraded
			c.Detail = "level hard: a store cannot keep up; sources run at scale " + fmt.Sprint(fb.Scale())
		}
		add(c)
	}
	return h
}

func sum(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

func reasons(m map[string]int64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
