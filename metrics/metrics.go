// Package metrics exposes running mdp jobs to Prometheus. A Collector reads
// each job's engine figures when it is scraped: the engine keeps its counters
// per batch in atomics, so nothing is updated per event and an idle scrape
// costs nothing on the hot path. A Server serves /metrics, /healthz and
// /readyz for one prometheus.Registry; nothing here is global, so a process
// may run many jobs and many servers side by side.
//
// Series (labels job, node, type unless noted):
//
//	runtime_up{mode}, runtime_jobs_running{mode}, mdp_job_state{job,mode,state}
//	mdp_node_events_in_total, mdp_node_events_out_total
//	mdp_node_batches_in_total, mdp_node_batches_out_total
//	mdp_node_dropped_total{reason}, mdp_node_errors_total{reason}, mdp_node_counter_total{counter}
//	mdp_node_busy_seconds_total, mdp_node_backpressure_blocked_seconds_total
//	mdp_node_queue_depth, mdp_node_queue_capacity, mdp_node_watermark_lag_seconds
//	mdp_node_instances, mdp_node_failed
//	mdp_edge_queue_depth, mdp_edge_queue_capacity, mdp_edge_dropped_total,
//	mdp_edge_blocked_seconds_total (labels job, edge, from, to, policy)
//	mdp_sink_rows_written_total, mdp_sink_writes_total, mdp_sink_rows_failed_total,
//	mdp_sink_writes_failed_total, mdp_sink_retries_total, mdp_sink_rows_changed_total,
//	mdp_sink_rows_dead_lettered_total, mdp_sink_breaker_opens_total, mdp_sink_breaker_open,
//	mdp_sink_queue_rows, mdp_sink_queue_capacity_rows, mdp_sink_level,
//	mdp_sink_write_latency_seconds (histogram) — for store sinks
//	pipeline_rate_scale_factor{job,provider}, pipeline_backpressure_state{job,provider}
//	(0 ok, 1 soft, 2 hard), feedback_events_processed_total{job,provider,level}
package metrics

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

// Snapshot is one job's figures at scrape time.
type Snapshot struct {
	Job   string
	Mode  string // classic or dag
	State string // created, starting, running, stopping, stopped, failed
	Nodes []engine.NodeStatus
	Edges []engine.EdgeStatus
	// Feedback is the job's store-feedback hub; nil when the job has none.
	Feedback *engine.Feedback
	// Extras holds, by node id, the NodeStats.Extra value of each instance
	// that set one (a store sink's *storekit.Stats).
	Extras map[string][]any
}

// ExtrasOf collects the NodeStats.Extra values of every node of job, for
// Snapshot.Extras.
func ExtrasOf(job *engine.Job, nodes []engine.NodeStatus) map[string][]any {
	var out map[string][]any
	for _, n := range nodes {
		for _, nc := range job.NodeContexts(n.ID) {
			if v := nc.Stats.Extra.Load(); v != nil {
				if out == nil {
					out = map[string][]any{}
				}
				out[n.ID] = append(out[n.ID], v)
			}
		}
	}
	return out
}

// Source is a job the collector reads on every scrape.
type Source interface {
	MetricsSnapshot() Snapshot
}

// Collector is a prometheus.Collector over a changing set of jobs.
type Collector struct {
	mode string
	now  func() time.Time

	mu   sync.Mutex
	jobs []Source
}

// NewCollector returns a collector whose runtime_up series carries mode (the
// mode of the process: classic, dag, or server for a job server).
func NewCollector(mode string, jobs ...Source) *Collector {
	return &Collector{mode: mode, now: time.Now, jobs: append([]Source(nil), jobs...)}
}

// Add starts reporting a job.
func (c *Collector) Add(s Source) {
	c.mu.Lock()
	c.jobs = append(c.jobs, s)
	c.mu.Unlock()
}

// Remove stops reporting a job.
func (c *Collector) Remove(s Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, j := range c.jobs {
		if j == s {
			c.jobs = append(c.jobs[:i], c.jobs[i+1:]...)
			return
		}
	}
}

var (
	nodeLabels = []string{"job", "node", "type"}
	edgeLabels = []string{"job", "edge", "from", "to", "policy"}
	fbLabels   = []string{"job", "provider"}

	descUp          = prometheus.NewDesc("runtime_up", "1 while the mdp runtime process is up.", []string{"mode"}, nil)
	descJobsRunning = prometheus.NewDesc("runtime_jobs_running", "Jobs in state running, by mode.", []string{"mode"}, nil)
	descJobState    = prometheus.NewDesc("mdp_job_state", "1 for the job's current state (created, starting, running, stopping, stopped, failed).", []string{"job", "mode", "state"}, nil)

	descEventsIn    = prometheus.NewDesc("mdp_node_events_in_total", "Records the node received.", nodeLabels, nil)
	descEventsOut   = prometheus.NewDesc("mdp_node_events_out_total", "Records the node emitted.", nodeLabels, nil)
	descBatchesIn   = prometheus.NewDesc("mdp_node_batches_in_total", "Batches the node received.", nodeLabels, nil)
	descBatchesOut  = prometheus.NewDesc("mdp_node_batches_out_total", "Batches the node emitted.", nodeLabels, nil)
	descDrops       = prometheus.NewDesc("mdp_node_dropped_total", "Records the node dropped, by reason.", append(nodeLabels[:3:3], "reason"), nil)
	descCounters    = prometheus.NewDesc("mdp_node_counter_total", "Named event counters of a node (reconnects, sequence gaps, ...).", append(nodeLabels[:3:3], "counter"), nil)
	descErrors      = prometheus.NewDesc("mdp_node_errors_total", "Errors the node counted, by reason.", append(nodeLabels[:3:3], "reason"), nil)
	descBusy        = prometheus.NewDesc("mdp_node_busy_seconds_total", "Time spent inside the node's callbacks.", nodeLabels, nil)
	descBlocked     = prometheus.NewDesc("mdp_node_backpressure_blocked_seconds_total", "Time the node waited on full output queues.", nodeLabels, nil)
	descQueueDepth  = prometheus.NewDesc("mdp_node_queue_depth", "Batches waiting in the node's input queues.", nodeLabels, nil)
	descQueueCap    = prometheus.NewDesc("mdp_node_queue_capacity", "Capacity in batches of the node's input queues.", nodeLabels, nil)
	descWMLag       = prometheus.NewDesc("mdp_node_watermark_lag_seconds", "Wall clock minus the node's watermark (absent before the first and after the final watermark).", nodeLabels, nil)
	descInstances   = prometheus.NewDesc("mdp_node_instances", "Instances the node runs (its parallelism).", nodeLabels, nil)
	descNodeFailed  = prometheus.NewDesc("mdp_node_failed", "1 when the node failed.", nodeLabels, nil)
	descEdgeDepth   = prometheus.NewDesc("mdp_edge_queue_depth", "Batches queued on the edge.", edgeLabels, nil)
	descEdgeCap     = prometheus.NewDesc("mdp_edge_queue_capacity", "Capacity in batches of the edge.", edgeLabels, nil)
	descEdgeDropped = prometheus.NewDesc("mdp_edge_dropped_total", "Records dropped by the edge's drop policy.", edgeLabels, nil)
	descEdgeBlocked = prometheus.NewDesc("mdp_edge_blocked_seconds_total", "Time senders waited on the full edge.", edgeLabels, nil)

	descRowsWritten    = prometheus.NewDesc("mdp_sink_rows_written_total", "Rows in successful store writes.", nodeLabels, nil)
	descBatchesWritten = prometheus.NewDesc("mdp_sink_writes_total", "Successful store writes.", nodeLabels, nil)
	descRowsFailed     = prometheus.NewDesc("mdp_sink_rows_failed_total", "Rows in failed write attempts.", nodeLabels, nil)
	descBatchesFailed  = prometheus.NewDesc("mdp_sink_writes_failed_total", "Failed write attempts.", nodeLabels, nil)
	descRetries        = prometheus.NewDesc("mdp_sink_retries_total", "Write attempts after the first.", nodeLabels, nil)
	descRowsChanged    = prometheus.NewDesc("mdp_sink_rows_changed_total", "Rows the store really inserted or modified.", nodeLabels, nil)
	descRowsDL         = prometheus.NewDesc("mdp_sink_rows_dead_lettered_total", "Rows sent to the dead-letter output.", nodeLabels, nil)
	descBreakerOpens   = prometheus.NewDesc("mdp_sink_breaker_opens_total", "Times the circuit breaker opened.", nodeLabels, nil)
	descBreakerOpen    = prometheus.NewDesc("mdp_sink_breaker_open", "1 while the circuit breaker is open.", nodeLabels, nil)
	descSinkQueueRows  = prometheus.NewDesc("mdp_sink_queue_rows", "Rows accepted and not yet written.", nodeLabels, nil)
	descSinkQueueCap   = prometheus.NewDesc("mdp_sink_queue_capacity_rows", "Capacity in rows of the sink's write queue.", nodeLabels, nil)
	descSinkLevel      = prometheus.NewDesc("mdp_sink_level", "Queue level the sink reports: 0 ok, 1 soft, 2 hard (worst instance).", nodeLabels, nil)
	descWriteLatency   = prometheus.NewDesc("mdp_sink_write_latency_seconds", "Store write latency.", nodeLabels, nil)

	descScale    = prometheus.NewDesc("pipeline_rate_scale_factor", "Factor the job's sources apply to their rate (store feedback).", fbLabels, nil)
	descBPState  = prometheus.NewDesc("pipeline_backpressure_state", "Store feedback level: 0 ok, 1 soft, 2 hard.", fbLabels, nil)
	descFBQueue  = prometheus.NewDesc("pipeline_feedback_queue_depth", "Rows waiting in a store sink's write queue, the figure its feedback level is computed from; source is the sink node.", []string{"job", "source"}, nil)
	descFBEvents = prometheus.NewDesc("feedback_events_processed_total", "Store level reports received by the job's feedback hub, by level.", append(fbLabels[:2:2], "level"), nil)
)

var allDescs = []*prometheus.Desc{
	descUp, descJobsRunning, descJobState,
	descEventsIn, descEventsOut, descBatchesIn, descBatchesOut, descDrops, descErrors, descBusy, descBlocked,
	descQueueDepth, descQueueCap, descWMLag, descInstances, descNodeFailed, descCounters,
	descRowsWritten, descBatchesWritten, descRowsFailed, descBatchesFailed, descRetries, descRowsChanged, descRowsDL,
	descFBQueue, descBreakerOpens, descBreakerOpen, descSinkQueueRows, descSinkQueueCap, descSinkLevel, descWriteLatency,
	descEdgeDepth, descEdgeCap, descEdgeDropped, descEdgeBlocked,
	descScale, descBPState, descFBEvents,
}

// Describe sends every descriptor the collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads every job's figures. Jobs with a name already reported in
// this scrape are skipped: Prometheus rejects duplicate series, and one bad
// job must not hide every other.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	jobs := append([]Source(nil), c.jobs...)
	c.mu.Unlock()

	now := c.now().UnixNano()
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, c.mode)
	running := map[string]int{"classic": 0, "dag": 0}
	seen := map[string]bool{}
	for _, j := range jobs {
		s := j.MetricsSnapshot()
		if seen[s.Job] {
			continue
		}
		seen[s.Job] = true
		if s.State == "running" {
			running[s.Mode]++
		} else if _, ok := running[s.Mode]; !ok {
			running[s.Mode] = 0
		}
		collectJob(ch, s, now)
	}
	for mode, n := range running {
		ch <- prometheus.MustNewConstMetric(descJobsRunning, prometheus.GaugeValue, float64(n), mode)
	}
}

func collectJob(ch chan<- prometheus.Metric, s Snapshot, now int64) {
	ch <- prometheus.MustNewConstMetric(descJobState, prometheus.GaugeValue, 1, s.Job, s.Mode, s.State)
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var providers []string
	for _, n := range s.Nodes {
		l := []string{s.Job, n.ID, n.Type}
		counter(descEventsIn, float64(n.EventsIn), l...)
		counter(descEventsOut, float64(n.EventsOut), l...)
		counter(descBatchesIn, float64(n.BatchesIn), l...)
		counter(descBatchesOut, float64(n.BatchesOut), l...)
		counter(descBusy, float64(n.BusyNs)/1e9, l...)
		counter(descBlocked, float64(n.BlockedNs)/1e9, l...)
		gauge(descQueueDepth, float64(n.QueueDepth), l...)
		gauge(descQueueCap, float64(n.QueueCap), l...)
		gauge(descInstances, float64(n.Instances), l...)
		failed := 0.0
		if n.State == "failed" {
			failed = 1
		}
		gauge(descNodeFailed, failed, l...)
		if n.Watermark != md.MinTime && n.Watermark != md.MaxTime {
			gauge(descWMLag, float64(now-n.Watermark)/1e9, l...)
		}
		for _, r := range slices.Sorted(maps.Keys(n.Drops)) {
			counter(descDrops, float64(n.Drops[r]), s.Job, n.ID, n.Type, r)
		}
		for _, r := range slices.Sorted(maps.Keys(n.Errors)) {
			counter(descErrors, float64(n.Errors[r]), s.Job, n.ID, n.Type, r)
		}
		for _, r := range slices.Sorted(maps.Keys(n.Counters)) {
			counter(descCounters, float64(n.Counters[r]), s.Job, n.ID, n.Type, r)
		}
		collectStore(ch, s.Extras[n.ID], l)
		if n.Kind == engine.KindSource.String() {
			providers = append(providers, ProviderName(n.Type))
		}
	}
	for _, e := range s.Edges {
		from, to := splitEdge(e.Name)
		l := []string{s.Job, e.Name, from, to, e.Policy}
		gauge(descEdgeDepth, float64(e.Depth), l...)
		gauge(descEdgeCap, float64(e.Capacity), l...)
		counter(descEdgeDropped, float64(e.Dropped), l...)
		counter(descEdgeBlocked, float64(e.BlockedNs)/1e9, l...)
	}
	if s.Feedback == nil {
		return
	}
	sort.Strings(providers)
	scale := s.Feedback.Scale()
	level := s.Feedback.Level()
	events := s.Feedback.Events()
	for i, p := range providers {
		if i > 0 && providers[i-1] == p {
			continue // two sources of one provider share the job's feedback
		}
		gauge(descScale, scale, s.Job, p)
		gauge(descBPState, float64(level), s.Job, p)
		for lv, n := range events {
			counter(descFBEvents, float64(n), s.Job, p, engine.Level(lv).String())
		}
	}
}

// ProviderName is the provider label of a source type: provider.synthetic
// gives synthetic.
func ProviderName(typ string) string { return strings.TrimPrefix(typ, "provider.") }

// splitEdge splits an engine edge name "from.port -> to" into its ends.
func splitEdge(name string) (from, to string) {
	from, to, _ = strings.Cut(name, " -> ")
	return from, to
}

// collectStore reports the store statistics of a sink's instances, summed.
func collectStore(ch chan<- prometheus.Metric, extras []any, l []string) {
	var stats []*storekit.Stats
	for _, e := range extras {
		if st, ok := e.(*storekit.Stats); ok {
			stats = append(stats, st)
		}
	}
	if len(stats) == 0 {
		return
	}
	var rowsW, batchesW, rowsF, batchesF, retries, changed, dl, opens, qRows, qCap int64
	var open, level float64
	var hist storekit.Histogram
	for i, st := range stats {
		rowsW += st.RowsWritten.Load()
		batchesW += st.BatchesWritten.Load()
		rowsF += st.RowsFailed.Load()
		batchesF += st.BatchesFailed.Load()
		retries += st.Retries.Load()
		changed += st.RowsChanged.Load()
		dl += st.RowsDeadLettered.Load()
		opens += st.BreakerOpens.Load()
		qRows += st.QueueRows.Load()
		qCap += st.QueueCapacity.Load()
		if st.BreakerOpen.Load() {
			open = 1
		}
		level = max(level, float64(st.Level.Load()))
		h := st.Latency()
		if i == 0 {
			hist = h
			continue
		}
		for b := range hist.Cumulative {
			hist.Cumulative[b] += h.Cumulative[b]
		}
		hist.Count += h.Count
		hist.SumSeconds += h.SumSeconds
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v int64
	}{
		{descRowsWritten, rowsW}, {descBatchesWritten, batchesW}, {descRowsFailed, rowsF}, {descBatchesFailed, batchesF},
		{descRetries, retries}, {descRowsChanged, changed}, {descRowsDL, dl}, {descBreakerOpens, opens},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), l...)
	}
	ch <- prometheus.MustNewConstMetric(descBreakerOpen, prometheus.GaugeValue, open, l...)
	ch <- prometheus.MustNewConstMetric(descSinkQueueRows, prometheus.GaugeValue, float64(qRows), l...)
	ch <- prometheus.MustNewConstMetric(descFBQueue, prometheus.GaugeValue, float64(qRows), l[0], l[1])
	ch <- prometheus.MustNewConstMetric(descSinkQueueCap, prometheus.GaugeValue, float64(qCap), l...)
	ch <- prometheus.MustNewConstMetric(descSinkLevel, prometheus.GaugeValue, level, l...)
	buckets := make(map[float64]uint64, len(hist.Bounds))
	for i, b := range hist.Bounds {
		buckets[b] = hist.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(descWriteLatency, hist.Count, hist.SumSeconds, buckets, l...)
}
