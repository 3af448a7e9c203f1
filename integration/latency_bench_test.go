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

// clockSource emits n trades at rate per second on an absolute schedule,
// stamping event and ingest time with the wall clock at emission, like a live
// feed. It records when each batch left, with its event time, so a benchmark
// can tell when the watermark passed a given time.
type clockSource struct {
	n    int
	rate float64
	sent []int64 // event time (= emission time) of each batch
}

func (c *clockSource) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("bench", "X")
	start := time.Now()
	emitted := 0
	for emitted < c.n {
		due := min(int(time.Since(start).Seconds()*c.rate)+1, c.n)
		if due <= emitted {
			next := start.Add(time.Duration(float64(emitted) / c.rate * float64(time.Second)))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			continue
		}
		b := out.NewBatch(md.KindTrade)
		now := time.Now().UnixNano()
		for ; emitted < due; emitted++ {
			b.Trades = append(b.Trades, md.Trade{TS: now, Ingest: now, Sym: id, Price: 100, Size: 1})
		}
		c.sent = append(c.sent, now)
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

// barArrivals records when each bar reached the sink.
type barArrivals struct {
	mu  sync.Mutex
	end []int64
	at  []int64
}

func (s *barArrivals) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	now := time.Now().UnixNano()
	s.mu.Lock()
	for i := range b.Bars {
		s.end = append(s.end, b.Bars[i].End)
		s.at = append(s.at, now)
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
// (event time = wall clock at emission) into 10 ms bars through
// operator.bars and reports how long after the watermark passed a bar's end
// the bar reached the sink: from the emission of the first batch whose event
// time reached the bar's end (with max_out_of_orderness 0 that batch carries
// the watermark past it) to the bar's arrival. Each iteration is one second
// of stream (100 bars).
func BenchmarkBarLatencyAfterWatermark(b *testing.B) {
	src := &clockSource{n: 100_000 * b.N, rate: 100_000}
	sink := &barArrivals{}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.clock", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			mustNode(b, "operator.bars", "bars", map[string]any{"interval": "10ms"}),
			{ID: "sink", Type: "sink.arrivals", Kind: engine.KindSink, Accepts: md.KindBar,
				NewProcessor: func(int) (engine.Processor, error) { return sink, nil }},
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
	var lat []int64
	for i, end := range sink.end {
		k := sort.Search(len(src.sent), func(k int) bool { return src.sent[k] >= end })
		if k == len(src.sent) {
			continue // closed by the end of the stream, not by the watermark
		}
		lat = append(lat, sink.at[i]-src.sent[k])
	}
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50_us")
	b.ReportMetric(q(0.99), "p99_us")
	b.ReportMetric(q(1), "max_us")
	b.ReportMetric(float64(len(lat))/float64(b.N), "bars/op")
}
