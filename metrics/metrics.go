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
//	and every series a component registered through its node context
//	(engine.NodeContext.Metrics): the store sinks' mdp_sink_rows_written_total,
//	mdp_sink_writes_total, mdp_sink_rows_failed_total, mdp_sink_writes_failed_total,
//	mdp_sink_retries_total, mdp_sink_rows_changed_total,
//	mdp_sink_rows_dead_lettered_total, mdp_sink_breaker_opens_total,
//	mdp_sink_breaker_open, mdp_sink_queue_rows, mdp_sink_queue_capacity_rows,
//	mdp_sink_level, mdp_sink_write_latency_seconds (histogram) and
//	pipeline_feedback_queue_depth{job,source} are registered by storekit
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
	// Series are the series the job's components registered through their
	// node contexts (engine.Job.Metrics), exported labelled job, node and
	// type with the instances of a node combined.
	Series []*engine.Metric
}

type entry struct {
	name string
	src  Source
}

// Source is a job the collector reads on every scrape.
type Source interface {
	MetricsSnapshot() Snapshot
}

// Collector is a prometheus.Collector over a changing set of jobs.
type Collector struct {
	mode string
	now  func() time.Time

	mu    sync.Mutex
	jobs  []entry
	descs map[string]*prometheus.Desc // component series, by name and labels
}

// NewCollector returns a collector whose runtime_up series carries mode (the
// mode of the process: classic, dag, or server for a job server). One
// collector may report any number of jobs: a job server shares one across
// its jobs (runtime.Options.Metrics) and serves it on one listener, and
// runtime_jobs_running{mode} then counts every running job it holds.
func NewCollector(mode string, jobs ...Source) *Collector {
	c := &Collector{mode: mode, now: time.Now, descs: map[string]*prometheus.Desc{}}
	for _, j := range jobs {
		c.Add(j)
	}
	return c
}

// Add starts reporting a job. A job of the same name already reported is
// replaced (a restarted job reports as the new run).
func (c *Collector) Add(s Source) {
	name := s.MetricsSnapshot().Job
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.jobs {
		if e.name == name {
			c.jobs[i].src = s
			return
		}
	}
	c.jobs = append(c.jobs, entry{name: name, src: s})
}

// Remove stops reporting a job.
func (c *Collector) Remove(s Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.jobs {
		if e.src == s {
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

	descScale    = prometheus.NewDesc("pipeline_rate_scale_factor", "Factor the job's sources apply to their rate (store feedback).", fbLabels, nil)
	descBPState  = prometheus.NewDesc("pipeline_backpressure_state", "Store feedback level: 0 ok, 1 soft, 2 hard.", fbLabels, nil)
	descFBEvents = prometheus.NewDesc("feedback_events_processed_total", "Store level reports received by the job's feedback hub, by level.", append(fbLabels[:2:2], "level"), nil)
)

var allDescs = []*prometheus.Desc{
	descUp, descJobsRunning, descJobState,
	descEventsIn, descEventsOut, descBatchesIn, descBatchesOut, descDrops, descErrors, descBusy, descBlocked,
	descQueueDepth, descQueueCap, descWMLag, descInstances, descNodeFailed, descCounters,
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
	jobs := make([]Source, len(c.jobs))
	for i, e := range c.jobs {
		jobs[i] = e.src
	}
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
		c.collectSeries(ch, s)
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
		if n.Kind == engine.KindSource.String() {
			providers = append(providers, providerName(n.Type))
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

// providerName is the provider label of a source type: provider.synthetic
// gives synthetic.
func providerName(typ string) string { return strings.TrimPrefix(typ, "provider.") }

// splitEdge splits an engine edge name "from.port -> to" into its ends.
func splitEdge(name string) (from, to string) {
	from, to, _ = strings.Cut(name, " -> ")
	return from, to
}

// collectSeries reports the series the job's components registered, one
// per name and node: counters and histograms summed over the node's
// instances, gauges summed or (MaxAcrossInstances) the largest.
func (c *Collector) collectSeries(ch chan<- prometheus.Metric, s Snapshot) {
	type group struct {
		first *engine.Metric
		value float64
		hist  engine.HistogramSnapshot
	}
	var order []string
	groups := map[string]*group{}
	for _, m := range s.Series {
		key := m.Name + "\x00" + m.Node
		g := groups[key]
		if g == nil {
			g = &group{first: m}
			if m.Kind == engine.HistogramMetric {
				g.hist = m.Histogram.Snapshot()
			} else {
				g.value = m.Value()
			}
			groups[key] = g
			order = append(order, key)
			continue
		}
		switch {
		case m.Kind == engine.HistogramMetric:
			h := m.Histogram.Snapshot()
			if len(h.Cumulative) != len(g.hist.Cumulative) {
				continue // instances must agree on the buckets
			}
			for i := range h.Cumulative {
				g.hist.Cumulative[i] += h.Cumulative[i]
			}
			g.hist.Count += h.Count
			g.hist.Sum += h.Sum
		case m.Max:
			g.value = max(g.value, m.Value())
		default:
			g.value += m.Value()
		}
	}
	for _, key := range order {
		g := groups[key]
		m := g.first
		names, values := []string{"job", "node", "type"}, []string{s.Job, m.Node, m.Type}
		if m.NodeLabel != "" {
			names, values = []string{"job", m.NodeLabel}, []string{s.Job, m.Node}
		}
		d := c.desc(m.Name, m.Help, names)
		switch m.Kind {
		case engine.CounterMetric:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, g.value, values...)
		case engine.GaugeMetric:
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, g.value, values...)
		case engine.HistogramMetric:
			buckets := make(map[float64]uint64, len(g.hist.Bounds))
			for i, b := range g.hist.Bounds {
				buckets[b] = g.hist.Cumulative[i]
			}
			ch <- prometheus.MustNewConstHistogram(d, g.hist.Count, g.hist.Sum, buckets, values...)
		}
	}
}

// desc returns the descriptor of a component series, made once per name
// and label names.
func (c *Collector) desc(name, help string, labels []string) *prometheus.Desc {
	key := name + "\x00" + strings.Join(labels, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.descs[key]
	if d == nil {
		d = prometheus.NewDesc(name, help, labels, nil)
		c.descs[key] = d
	}
	return d
}
