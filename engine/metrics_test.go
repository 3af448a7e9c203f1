package engine

import (
	"strings"
	"testing"
)

func TestNodeMetrics(t *testing.T) {
	set := &MetricSet{}
	a, b := set.For("n", "sink.x", 0), set.For("n", "sink.x", 1)
	a.Counter("c_total", "c").Add(3)
	b.Counter("c_total", "c").Inc()
	g := a.Gauge("g", "g", MaxAcrossInstances())
	g.Set(2.5)
	h := b.Histogram("h_seconds", "h", []float64{1, 0.1}) // bounds sorted on registration
	for _, v := range []float64{0.05, 0.1, 0.5, 7} {
		h.Observe(v)
	}
	series := set.Series()
	if len(series) != 4 || series[0].Instance != 0 || series[1].Instance != 1 || !series[2].Max || series[2].Value() != 2.5 {
		t.Fatalf("series %+v", series)
	}
	hs := h.Snapshot()
	if hs.Bounds[0] != 0.1 || hs.Cumulative[0] != 2 || hs.Cumulative[1] != 3 || hs.Count != 4 || hs.Sum != 7.65 {
		t.Fatalf("histogram %+v", hs)
	}
	// Outside a job the handles work and nothing is registered.
	var none *NodeMetrics
	c := none.Counter("x_total", "x")
	c.Add(2)
	if c.Load() != 2 || (*NodeContext)(nil).Metrics() != nil {
		t.Fatal("nil NodeMetrics")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `metric name "bad-name" is not a Prometheus name`) {
			t.Fatalf("got %v", r)
		}
	}()
	a.Gauge("bad-name", "x")
}
