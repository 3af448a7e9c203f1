package storekit

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the write latency
// histogram (Prometheus-style, cumulative on export).
var LatencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Stats are one sink instance's counters, updated once per write (never per
// row) and readable at any time. The sink puts a *Stats in its node's
// engine.NodeStats.Extra; metrics read it from there.
type Stats struct {
	RowsWritten    atomic.Int64 // rows in successful writes
	BatchesWritten atomic.Int64 // successful writes
	RowsFailed     atomic.Int64 // rows in failed write attempts
	BatchesFailed  atomic.Int64 // failed write attempts
	Retries        atomic.Int64 // attempts after the first
	// RowsChanged counts rows the store really inserted or modified, for
	// Writers that can tell (an upsert of an unchanged row changes nothing).
	RowsChanged atomic.Int64
	// RowsDeadLettered and BatchesDeadLettered count what went to the
	// dead-letter file (a batch is one dead-letter event, of one or more rows).
	RowsDeadLettered    atomic.Int64
	BatchesDeadLettered atomic.Int64
	BreakerOpens        atomic.Int64 // times the circuit breaker opened
	BreakerOpen         atomic.Bool  // the breaker is open now
	QueueRows           atomic.Int64 // rows accepted and not yet written
	QueueCapacity       atomic.Int64 // queue_size
	Level               atomic.Int32 // engine.Level last reported

	latency [len(LatencyBuckets) + 1]atomic.Int64 // last bucket: +Inf
	latSum  atomic.Int64                          // ns
}

// observe adds one write latency.
func (s *Stats) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && sec > LatencyBuckets[i] {
		i++
	}
	s.latency[i].Add(1)
	s.latSum.Add(d.Nanoseconds())
}

// Histogram is a snapshot of the write latency histogram.
type Histogram struct {
	// Bounds are the bucket upper bounds in seconds (LatencyBuckets).
	Bounds []float64
	// Cumulative[i] counts writes that took at most Bounds[i] seconds;
	// Count includes the +Inf bucket.
	Cumulative []uint64
	Count      uint64
	SumSeconds float64
}

// Latency returns the write latency histogram.
func (s *Stats) Latency() Histogram {
	h := Histogram{Bounds: LatencyBuckets[:], Cumulative: make([]uint64, len(LatencyBuckets))}
	var c uint64
	for i := range LatencyBuckets {
		c += uint64(s.latency[i].Load())
		h.Cumulative[i] = c
	}
	h.Count = c + uint64(s.latency[len(LatencyBuckets)].Load())
	h.SumSeconds = float64(s.latSum.Load()) / 1e9
	return h
}
