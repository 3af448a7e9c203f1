package integration

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// barLatencySink records, per bar, the wall-clock delay between the bar's end
// and its arrival. The source stamps event time with the wall clock, so a
// bar's end is the moment from which the watermark may pass it.
type barLatencySink struct {
	mu  sync.Mutex
	lat []int64
}

func (s *barLatencySink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	now := time.Now().UnixNano()
	s.mu.Lock()
	for i := range b.Bars {
		s.lat = append(s.lat, now-b.Bars[i].End)
	}
	s.mu.Unlock()
	return nil
}

func mustNode(b *testing.B, typ, id string, params map[string]any) *engine.Node {
	spec, ok := component.Lookup(typ)
	if !ok {
		b.Fatalf("%s not registered", typ)
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		b.Fatal(err)
	}
	return component.Node(spec, p, component.NodeOptions{ID: id})
}

// BenchmarkBarLatencyAfterWatermark streams 100,000 trades per second
// (event time = wall clock) into 10 ms bars and reports how long after a
// bar's end it reaches the sink. The figure includes the wait for the first
// trade past the end (10 µs on average at this rate), which is what moves
// the watermark. Each iteration is one second of stream (100 bars).
func BenchmarkBarLatencyAfterWatermark(b *testing.B) {
	sink := &barLatencySink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			mustNode(b, "provider.synthetic", "src", map[string]any{"symbols": []string{"X"}, "rate": 100000, "count": 100000 * b.N}),
			mustNode(b, "operator.bars", "bars", map[string]any{"interval": "10ms"}),
			{ID: "sink", Type: "sink.latency", Kind: engine.KindSink, Accepts: md.KindBar,
				New: func(int) (any, error) { return sink, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// The last bar closes at end of stream, not by the watermark: leave it out.
	lat := sink.lat[:len(sink.lat)-1]
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50_us")
	b.ReportMetric(q(0.99), "p99_us")
	b.ReportMetric(float64(len(lat))/float64(b.N), "bars/op")
}
