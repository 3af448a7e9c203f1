package engine

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
)

// Components declare their own metrics through their node context, as
// Benthos plugins do through Metrics(): nc.Metrics().Counter(name, help)
// returns a handle the component updates (once per batch or per write,
// never per record: an update is one atomic operation). The handle belongs
// to the job, the node and the instance that registered it; the job's
// MetricSet lists every registered series, and package metrics exports them
// at scrape time labelled job, node and type, the instances of a node
// combined (counters and histograms summed, gauges summed or, when
// registered with MaxAcrossInstances, the largest).

// Counter is a monotonic count. The zero value is ready to use (unregistered).
type Counter struct{ v atomic.Int64 }

// Add adds n (n >= 0).
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the count.
func (c *Counter) Load() int64 { return c.v.Load() }

// Gauge is a value that goes up and down. The zero value reads 0.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the value.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Load returns the value.
func (g *Gauge) Load() float64 { return math.Float64frombits(g.bits.Load()) }

// Histogram counts observations into buckets with fixed upper bounds.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1: the last is +Inf
	sumNs  atomic.Int64    // sum of observations, in billionths
}

// newHistogram returns an unregistered histogram with these upper bounds
// (sorted ascending).
func newHistogram(bounds []float64) *Histogram {
	b := append([]float64(nil), bounds...)
	sort.Float64s(b)
	return &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b)+1)}
}

// Observe adds one observation v (in the histogram's unit, seconds for a
// latency).
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i].Add(1)
	h.sumNs.Add(int64(v * 1e9))
}

// HistogramSnapshot is a histogram read at one moment.
type HistogramSnapshot struct {
	Bounds []float64
	// Cumulative[i] counts observations at most Bounds[i]; Count includes
	// the +Inf bucket.
	Cumulative []uint64
	Count      uint64
	Sum        float64
}

// Snapshot reads the histogram.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i].Load()
		s.Cumulative[i] = c
	}
	s.Count = c + h.counts[len(h.bounds)].Load()
	s.Sum = float64(h.sumNs.Load()) / 1e9
	return s
}

// MetricKind says what a registered series is.
type MetricKind uint8

// Metric kinds.
const (
	CounterMetric MetricKind = iota + 1
	GaugeMetric
	HistogramMetric
)

// Metric is one series a node instance registered.
type Metric struct {
	Name, Help string
	Kind       MetricKind
	Node, Type string
	Instance   int
	// Max: combine the instances' gauges by taking the largest, not the sum.
	Max bool
	// NodeLabel, when set, names the label that carries the node id, and
	// the series has no type label (pipeline_feedback_queue_depth{source}).
	NodeLabel string

	Counter   *Counter
	Gauge     *Gauge
	GaugeFunc func() float64 // a gauge read at scrape time
	Histogram *Histogram
}

// Value reads a counter or gauge.
func (m *Metric) Value() float64 {
	switch {
	case m.Counter != nil:
		return float64(m.Counter.Load())
	case m.Gauge != nil:
		return m.Gauge.Load()
	case m.GaugeFunc != nil:
		return m.GaugeFunc()
	}
	return 0
}

// MetricSet holds the series a job's components registered. A job owns one;
// nothing in it is process-global.
type MetricSet struct {
	mu     sync.Mutex
	series []*Metric
}

// Series returns the registered series in registration order.
func (s *MetricSet) Series() []*Metric {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Metric(nil), s.series...)
}

func (s *MetricSet) add(m *Metric) {
	s.mu.Lock()
	s.series = append(s.series, m)
	s.mu.Unlock()
}

// NodeMetrics registers series for one node instance. A nil *NodeMetrics
// (a component built outside a job) returns working, unregistered handles.
type NodeMetrics struct {
	set       *MetricSet
	node, typ string
	instance  int
}

// For returns the registrar of one node instance, for components built
// outside engine.New (tests, tools); inside a job use NodeContext.Metrics.
func (s *MetricSet) For(node, typ string, instance int) *NodeMetrics {
	return &NodeMetrics{set: s, node: node, typ: typ, instance: instance}
}

// MetricOption changes how a series is registered.
type MetricOption func(*Metric)

// MaxAcrossInstances makes the exported gauge the largest of the node's
// instances instead of their sum (a level, a 0/1 state).
func MaxAcrossInstances() MetricOption { return func(m *Metric) { m.Max = true } }

// NodeLabel exports the series with the node id under label name and no
// type label.
func NodeLabel(name string) MetricOption { return func(m *Metric) { m.NodeLabel = name } }

func (m *NodeMetrics) register(s *Metric, opts []MetricOption) {
	if !validMetricName(s.Name) {
		// A programming error in the component: Open's panic becomes the
		// node's error, so the job fails to start naming the node.
		panic(fmt.Sprintf("metric name %q is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)", s.Name))
	}
	if m == nil || m.set == nil {
		return
	}
	s.Node, s.Type, s.Instance = m.node, m.typ, m.instance
	for _, o := range opts {
		o(s)
	}
	m.set.add(s)
}

func validMetricName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		letter := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Counter registers a counter and returns its handle.
func (m *NodeMetrics) Counter(name, help string, opts ...MetricOption) *Counter {
	c := &Counter{}
	m.register(&Metric{Name: name, Help: help, Kind: CounterMetric, Counter: c}, opts)
	return c
}

// Gauge registers a gauge and returns its handle.
func (m *NodeMetrics) Gauge(name, help string, opts ...MetricOption) *Gauge {
	g := &Gauge{}
	m.register(&Metric{Name: name, Help: help, Kind: GaugeMetric, Gauge: g}, opts)
	return g
}

// GaugeFunc registers a gauge whose value f returns when metrics are read
// (f must be safe to call from another goroutine: read atomics).
func (m *NodeMetrics) GaugeFunc(name, help string, f func() float64, opts ...MetricOption) {
	m.register(&Metric{Name: name, Help: help, Kind: GaugeMetric, GaugeFunc: f}, opts)
}

// Histogram registers a histogram with these bucket upper bounds and
// returns its handle.
func (m *NodeMetrics) Histogram(name, help string, bounds []float64, opts ...MetricOption) *Histogram {
	h := newHistogram(bounds)
	m.register(&Metric{Name: name, Help: help, Kind: HistogramMetric, Histogram: h}, opts)
	return h
}
