package storekit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

// TestParallelSinkUsesEveryWorker runs SYM000..SYM099 into a store sink with
// parallelism P and workers W: the engine's split across instances and the
// sink's split across workers must be independent, so every one of the P×W
// writers gets symbols. (With the same hash modulo at both levels, 2×2 gave
// [[50 0] [0 50]].)
func TestParallelSinkUsesEveryWorker(t *testing.T) {
	for _, pw := range [][2]int{{2, 2}, {4, 2}, {3, 4}} {
		p, w := pw[0], pw[1]
		t.Run(fmt.Sprintf("%dx%d", p, w), func(t *testing.T) {
			mems := make([]*memWriter, p)
			for i := range mems {
				mems[i] = newMem()
			}
			src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(100*5, 100), BatchSize: 64}
			g := &engine.Graph{
				Nodes: []*engine.Node{
					{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindBar},
						NewSource: func(int) (engine.Source, error) { return src, nil }},
					{ID: "store", Type: "sink.mem", Kind: engine.KindSink, Accepts: md.KindAny, Parallelism: p, Ports: map[string]md.Kind{},
						NewProcessor: func(i int) (engine.Processor, error) { return storekit.New(mems[i], storekit.Config{Workers: w}), nil }},
				},
				Edges: []*engine.Edge{{From: "src", To: "store"}},
			}
			j, err := engine.New(g, engine.Options{Job: "t"})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			syms := j.Symbols().Snapshot()
			matrix := make([][]int, p)
			total := 0
			for i, m := range mems {
				matrix[i] = make([]int, w)
				seen := map[md.SymID]bool{}
				for k := 0; k < w; k++ {
					for _, b := range m.bars[k] {
						if !seen[b.Sym] {
							seen[b.Sym] = true
							matrix[i][k]++
						}
						if got := md.Split(syms[b.Sym].Hash, md.SplitInstances, p); got != i {
							t.Fatalf("%s reached instance %d, want %d", syms[b.Sym].Symbol, i, got)
						}
					}
					total += len(m.bars[k])
				}
			}
			if total != 500 {
				t.Fatalf("wrote %d bars, want 500", total)
			}
			for i := range matrix {
				for k := range matrix[i] {
					if matrix[i][k] == 0 {
						t.Fatalf("instance %d never used worker %d; symbols per instance × worker: %v", i, k, matrix)
					}
				}
			}
			t.Logf("symbols per instance × worker: %v", matrix)
		})
	}
}
