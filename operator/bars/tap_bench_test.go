package bars

import (
	"context"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// BenchmarkBarsEngineTap is BenchmarkBarsEngine (parallelism 1) run three
// ways in turn within each iteration, so load on the machine hits them
// alike: "idle" with no tap listener (what every job pays: one atomic load
// per batch), "bars" with a listener draining the bars node's output (the
// dashboard's recorder, on from each run's start under mdp serve), and
// "source" with one draining the source's trades (a candles page on a raw
// feed). It reports each way's wall and CPU ns per trade and their ratios
// to idle.
func BenchmarkBarsEngineTap(b *testing.B) {
	const n = 1_000_000
	syms := md.NewSymbolTable()
	batches := workload(n, 100, 42, syms, 1024)
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"interval": "1s"})
	if err != nil {
		b.Fatal(err)
	}
	variants := []string{"", "bars", "src"}
	var wall, cpu [3]time.Duration
	b.ResetTimer()
	for range b.N {
		for vi, tapped := range variants {
			start, c0 := time.Now(), cpuTime()
			sink := &countSink{}
			g := &engine.Graph{
				Nodes: []*engine.Node{srcNode(batches, 0), component.Node(spec, p, component.NodeOptions{ID: "bars"}),
					{ID: "sink", Type: "sink.count", Kind: engine.KindSink, Accepts: md.KindBar, Ports: map[string]md.Kind{},
						NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
				Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}},
			}
			j, err := engine.New(g, engine.Options{Job: "bench", Symbols: syms})
			if err != nil {
				b.Fatal(err)
			}
			var got int64
			drained := make(chan struct{})
			if tapped != "" {
				tap, err := j.Tap(tapped, engine.PortMain, 256)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					defer close(drained)
					for {
						select {
						case x := <-tap.Batches():
							got += int64(x.Len())
							x.Release()
						case <-j.Done():
							tap.Close()
							return
						}
					}
				}()
			} else {
				close(drained)
			}
			if err := j.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			<-drained
			wall[vi] += time.Since(start)
			cpu[vi] += cpuTime() - c0
			if sink.cs.Trades != n || (tapped != "" && got == 0) {
				b.Fatalf("trades %d, tap saw %d", sink.cs.Trades, got)
			}
		}
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / n }
	for vi, name := range []string{"idle", "bars", "source"} {
		b.ReportMetric(per(wall[vi]), name+"-ns/trade")
		b.ReportMetric(per(cpu[vi]), name+"-cpu-ns/trade")
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "bars/idle-wall")
	b.ReportMetric(float64(wall[2])/float64(wall[0]), "source/idle-wall")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "bars/idle-cpu")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "source/idle-cpu")
}
