package bars

import (
	"context"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// BenchmarkBarsEngineTap is BenchmarkBarsEngine (parallelism 1) with the
// engine's taps: "idle" with no listener (the cost every job pays: one
// atomic load per batch), "bars" with a listener draining the bars node's
// output as the dashboard's recorder does, "source" with one draining the
// source's trades. Compare the variants' trades/s within one run.
func BenchmarkBarsEngineTap(b *testing.B) {
	const n = 1_000_000
	for _, variant := range []struct{ name, node string }{{"idle", ""}, {"bars", "bars"}, {"source", "src"}} {
		b.Run(variant.name, func(b *testing.B) {
			syms := md.NewSymbolTable()
			batches := workload(n, 100, 42, syms, 1024)
			spec, _ := component.Lookup(Type)
			p, err := component.NewParams(spec, map[string]any{"interval": "1s"})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime()
			for range b.N {
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
				if variant.node != "" {
					tap, err := j.Tap(variant.node, engine.PortMain, 256)
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
				if sink.cs.Trades != n {
					b.Fatalf("trades %d", sink.cs.Trades)
				}
				if variant.node != "" && got == 0 {
					b.Fatal("the tap saw nothing")
				}
			}
			reportPerTrade(b, time.Since(start), cpuTime()-cpu, n)
		})
	}
}
