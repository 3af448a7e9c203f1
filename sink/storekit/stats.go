package storekit

import (
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/engine"
)

// latencyBuckets are the upper bounds, in seconds, of the write latency
// histogram (Prometheus-style, cumulative on export).
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Stats are one sink instance's counters, updated once per write (never per
// row) and readable at any time. The sink registers them at Open through its
// node context (engine.NodeContext.Metrics), which is how the mdp_sink_*
// series reach /metrics; it also puts the *Stats in its node's
// engine.NodeStats.Extra, for tests and programs that inspect a job.
type Stats struct {
	RowsWritten    *engine.Counter // rows in successful writes
	BatchesWritten *engine.Counter // successful writes
	RowsFailed     *engine.Counter // rows in failed write attempts
	BatchesFailed  *engine.Counter // failed write attempts
	Retries        *engine.Counter // attempts after the first
	// RowsChanged counts rows the store really inserted or modified, for
	// Writers that can tell (an upsert of an unchanged row changes nothing).
	RowsChanged *engine.Counter
	// RowsDeadLettered and BatchesDeadLettered count what went to the
	// dead-letter file (a batch is one dead-letter event, of one or more rows).
	RowsDeadLettered    *engine.Counter
	BatchesDeadLettered *engine.Counter
	BreakerOpens        *engine.Counter // times the circuit breaker opened
	BreakerOpen         atomic.Bool     // the breaker is open now
	QueueRows           atomic.Int64    // rows accepted and not yet written
	QueueCapacity       atomic.Int64    // queue_size
	Level               atomic.Int32    // engine.Level last reported

	latency *engine.Histogram
}

// newStats registers the sink's series through m (nil: unregistered
// handles, for a sink not yet opened in a job).
func newStats(m *engine.NodeMetrics) *Stats {
	s := &Stats{
		RowsWritten:         m.Counter("mdp_sink_rows_written_total", "Rows in successful store writes."),
		BatchesWritten:      m.Counter("mdp_sink_writes_total", "Successful store writes."),
		RowsFailed:          m.Counter("mdp_sink_rows_failed_total", "Rows in failed write attempts."),
		BatchesFailed:       m.Counter("mdp_sink_writes_failed_total", "Failed write attempts."),
		Retries:             m.Counter("mdp_sink_retries_total", "Write attempts after the first."),
		RowsChanged:         m.Counter("mdp_sink_rows_changed_total", "Rows the store really inserted or modified."),
		RowsDeadLettered:    m.Counter("mdp_sink_rows_dead_lettered_total", "Rows sent to the dead-letter output."),
		BatchesDeadLettered: &engine.Counter{},
		BreakerOpens:        m.Counter("mdp_sink_breaker_opens_total", "Times the circuit breaker opened."),
		latency:             m.Histogram("mdp_sink_write_latency_seconds", "Store write latency.", latencyBuckets[:]),
	}
	m.GaugeFunc("mdp_sink_breaker_open", "1 while the circuit breaker is open.", func() float64 {
		if s.BreakerOpen.Load() {
			return 1
		}
		return 0
	}, engine.MaxAcrossInstances())
	queue := func() float64 { return float64(s.QueueRows.Load()) }
	m.GaugeFunc("mdp_sink_queue_rows", "Rows accepted and not yet written.", queue)
	m.GaugeFunc("pipeline_feedback_queue_depth", "Rows waiting in a store sink's write queue, the figure its feedback level is computed from; source is the sink node.",
		queue, engine.NodeLabel("source"))
	m.GaugeFunc("mdp_sink_queue_capacity_rows", "Capacity in rows of the sink's write queue.", func() float64 { return float64(s.QueueCapacity.Load()) })
	m.GaugeFunc("mdp_sink_level", "Queue level the sink reports: 0 ok, 1 soft, 2 hard (worst instance).",
		func() float64 { return float64(s.Level.Load()) }, engine.MaxAcrossInstances())
	return s
}

// observe adds one write latency.
func (s *Stats) observe(d time.Duration) { s.latency.Observe(d.Seconds()) }

// Latency returns the write latency histogram.
func (s *Stats) Latency() engine.HistogramSnapshot { return s.latency.Snapshot() }
