package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// loggedDrops are the drop reasons the engine logs for the node that counts
// them, with what the log line says. Records are lost there with no other
// trace in the log (a malformed row is logged by its source with file and
// line, an edge's drops by its policy's own count).
var loggedDrops = map[string]string{
	"late":     "late records dropped: their window had closed when they arrived",
	"too_late": "late records dropped: later than allowed_lateness",
}

// dropLogEvery is how often a drop reason that keeps occurring is logged
// again, as one summary of the drops since its last line.
const dropLogEvery = 10 * time.Second

// dropLog is the rate limit of one logged drop reason.
type dropLog struct {
	last     time.Time
	unlogged int64
}

// NodeStats are one node instance's counters. The engine updates them once
// per batch; metrics and status read them at any time.
type NodeStats struct {
	EventsIn   atomic.Int64
	EventsOut  atomic.Int64
	BatchesIn  atomic.Int64
	BatchesOut atomic.Int64
	BusyNs     atomic.Int64 // time spent inside the node's callbacks
	BlockedNs  atomic.Int64 // time spent waiting on full output queues
	// ChainedNs is the time the instance's sends spent running the
	// instances chained behind it (engine operator chaining): the
	// downstream's work, counted as theirs, neither busy nor blocked here.
	ChainedNs atomic.Int64
	// Watermark is the node's input watermark (for sources, the watermark
	// it emits); md.MinTime until the first one.
	Watermark atomic.Int64
	// WatermarkAt is the wall-clock time (ns) the watermark last advanced.
	WatermarkAt atomic.Int64
	// FirstEventAt is the wall-clock time (ns) the node saw its first record.
	FirstEventAt atomic.Int64
	// StartedAt and EndedAt are the wall-clock times (ns) the instance's
	// goroutine began and stopped running (0 before).
	StartedAt atomic.Int64
	EndedAt   atomic.Int64
	// Extra holds statistics particular to a component, such as a store
	// sink's *storekit.Stats, for tests and programs that inspect a job. It
	// is set once, in Open. Metrics do not read it: components register
	// their series through NodeContext.Metrics.
	Extra atomic.Value

	log      *slog.Logger // logs loggedDrops; nil logs nothing
	mu       sync.Mutex
	dropLogs map[string]*dropLog
	drops    map[string]int64
	errs     map[string]int64
	counters map[string]int64
	lastEr   string
}

func newNodeStats() *NodeStats {
	s := &NodeStats{drops: map[string]int64{}, errs: map[string]int64{}, counters: map[string]int64{}}
	s.Watermark.Store(minTime)
	return s
}

const minTime = -1 << 63

// Drop counts n records dropped for reason (a short snake_case word such as
// "late", "queue_full", "malformed"). Late drops are also logged, rate
// limited: the first at once, then one summary of the drops since at most
// every 10 s, and what is left when the node ends (FlushDropLog).
func (s *NodeStats) Drop(reason string, n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.drops[reason] += n
	msg, logged := loggedDrops[reason]
	var line int64 // drops to log now
	var total int64
	first := false
	if logged && s.log != nil {
		if s.dropLogs == nil {
			s.dropLogs = map[string]*dropLog{}
		}
		dl := s.dropLogs[reason]
		now := time.Now()
		switch {
		case dl == nil:
			s.dropLogs[reason] = &dropLog{last: now}
			line, first = n, true
		case now.Sub(dl.last) >= dropLogEvery:
			line = dl.unlogged + n
			dl.unlogged, dl.last = 0, now
		default:
			dl.unlogged += n
		}
		total = s.drops[reason]
	}
	s.mu.Unlock()
	if line > 0 {
		s.log.Warn(msg, "reason", reason, "count", line, "total", total, "first", first)
	}
}

// FlushDropLog logs the drops counted since the last logged line of each
// reason; the engine calls it when the node ends.
func (s *NodeStats) FlushDropLog() {
	if s.log == nil {
		return
	}
	type pending struct {
		reason       string
		count, total int64
	}
	var out []pending
	s.mu.Lock()
	for r, dl := range s.dropLogs {
		if dl.unlogged > 0 {
			out = append(out, pending{r, dl.unlogged, s.drops[r]})
			dl.unlogged = 0
		}
	}
	s.mu.Unlock()
	for _, p := range out {
		s.log.Warn(loggedDrops[p.reason], "reason", p.reason, "count", p.count, "total", p.total, "first", false)
	}
}

// Error counts one error with a short reason and remembers its message.
func (s *NodeStats) Error(reason, msg string) {
	s.mu.Lock()
	s.errs[reason]++
	s.lastEr = msg
	s.mu.Unlock()
}

// Count adds n to a named event counter (a short snake_case word such as
// "reconnects" or "sequence_gaps") for things that are neither drops nor
// errors. Like Drop, call it per batch or per rare event, not per record.
func (s *NodeStats) Count(name string, n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.counters[name] += n
	s.mu.Unlock()
}

// Counters returns a copy of the named event counters.
func (s *NodeStats) Counters() map[string]int64 { return s.copyMap(s.counters) }

// Drops returns a copy of the drop counters by reason.
func (s *NodeStats) Drops() map[string]int64 { return s.copyMap(s.drops) }

// Errors returns a copy of the error counters by reason.
func (s *NodeStats) Errors() map[string]int64 { return s.copyMap(s.errs) }

// LastError is the message of the most recent counted error.
func (s *NodeStats) LastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastEr
}

func (s *NodeStats) copyMap(m map[string]int64) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// NodeStatus is a snapshot of one logical node, summed over its instances.
type NodeStatus struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Kind       string `json:"kind"`
	Instances  int    `json:"instances"`
	State      string `json:"state"` // running, done, failed
	EventsIn   int64  `json:"events_in"`
	EventsOut  int64  `json:"events_out"`
	BatchesIn  int64  `json:"batches_in"`
	BatchesOut int64  `json:"batches_out"`
	BusyNs     int64  `json:"busy_ns"`
	BlockedNs  int64  `json:"blocked_ns"`
	// ChainedNs is the time the node's sends spent running the node
	// chained behind it (NodeStats.ChainedNs).
	ChainedNs int64 `json:"chained_ns,omitempty"`
	// ChainedTo is the node in whose goroutine this one runs, called
	// directly instead of through a queue (operator chaining); empty
	// when the node runs in goroutines of its own.
	ChainedTo string `json:"chained_to,omitempty"`
	// BusyFraction is the largest share of its running time any instance
	// spent working: in its callbacks for an operator or a sink, outside
	// waits on full output queues for a source (whose pauses for pacing or
	// for a live feed count as working: the source sets the pace). Time
	// spent running a chained downstream node counts for that node only.
	BusyFraction float64          `json:"busy_fraction"`
	Watermark    int64            `json:"watermark"` // min over instances; md.MinTime when none yet
	WatermarkAt  int64            `json:"watermark_at,omitempty"`
	QueueDepth   int              `json:"queue_depth"` // batches waiting in the node's input queues
	QueueCap     int              `json:"queue_capacity"`
	Drops        map[string]int64 `json:"drops,omitempty"`
	Errors       map[string]int64 `json:"errors,omitempty"`
	Counters     map[string]int64 `json:"counters,omitempty"` // named event counters (NodeStats.Count)
	LastError    string           `json:"last_error,omitempty"`
}

// EdgeStatus is a snapshot of one logical edge.
type EdgeStatus struct {
	Name      string `json:"name"`
	Policy    string `json:"policy"`
	Depth     int    `json:"depth"`
	Capacity  int    `json:"capacity"`
	Dropped   int64  `json:"dropped"` // records dropped by a drop policy
	BlockedNs int64  `json:"blocked_ns"`
}
