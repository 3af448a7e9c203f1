package engine_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// pacedSource emits n trades at rate per second, scheduled against absolute
// time, each stamped with its emission time as ingest time.
type pacedSource struct {
	n    int
	rate float64
}

func (p *pacedSource) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("bench", "X")
	start := time.Now()
	sent := 0
	for sent < p.n {
		due := min(int(time.Since(start).Seconds()*p.rate), p.n)
		if due > sent {
			b := out.NewBatch(md.KindTrade)
			now := time.Now().UnixNano()
			for ; sent < due; sent++ {
				b.Trades = append(b.Trades, md.Trade{TS: now, Ingest: now, Sym: id, Price: 1, Size: 1})
			}
			if err := out.Emit(b); err != nil {
				return err
			}
			continue
		}
		next := start.Add(time.Duration(float64(sent+1) / p.rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	return nil
}

// latencySink records now - ingest for every trade.
type latencySink struct{ lat []int64 }

func (l *latencySink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	now := time.Now().UnixNano()
	for i := range b.Trades {
		l.lat = append(l.lat, now-b.Trades[i].Ingest)
	}
	return nil
}

// BenchmarkPacedLatency streams 100,000 trades per second from a source
// through one operator to a sink and reports the p50 and p99 latency from
// ingest (emission by the source) to the sink. Each iteration is one second
// of stream.
func BenchmarkPacedLatency(b *testing.B) {
	const rate = 100_000
	sink := &latencySink{lat: make([]int64, 0, rate*b.N)}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode("src", &pacedSource{n: rate * b.N, rate: rate}), opNode("op", 1),
			{ID: "sink", Type: "sink.latency", Kind: engine.KindSink, Accepts: md.KindAny, NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "sink"}},
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
	lat := sink.lat
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50_us")
	b.ReportMetric(q(0.99), "p99_us")
	b.ReportMetric(q(0.999), "p999_us")
	b.ReportMetric(float64(len(lat))/float64(b.N), "trades/op")
}
