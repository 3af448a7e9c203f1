package throttle_test

import (
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/throttle"
)

// resumeTrades: symbols 0-2 trade all along, symbol 3 only in the first
// tenth of the stream, so its bucket and pending record live on only in
// the checkpoint.
func resumeTrades(n int) []md.Trade {
	out := make([]md.Trade, n)
	for i := range out {
		sym := md.SymID(i % 3)
		if i < n/10 && i%4 == 3 {
			sym = 3
		}
		out[i] = md.Trade{TS: int64(1e12 + i*1e6), Price: 100 + float64(i), Size: 1, Sym: sym}
	}
	return out
}

// TestResumeFromCheckpoint: buckets and conflated pending records carry
// over a restore. The rate is so low that no token frees during the test,
// so what passes depends on the buckets only, not on the wall clock.
func TestResumeFromCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		par    []int
	}{
		{"drop per symbol", map[string]any{"rate": 1e-6, "burst": 40}, []int{2, 3}},
		{"conflate per symbol", map[string]any{"rate": 1e-6, "burst": 40, "mode": "conflate"}, []int{2, 3}},
		{"drop global", map[string]any{"rate": 1e-6, "burst": 500, "per": "global"}, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &enginetest.Source{Symbols: enginetest.Symbols(4), Trades: resumeTrades(3000), BatchSize: 16}
			optest.Resume(t, optest.Job{Src: src, Type: throttle.Type, Params: tc.params, Parallelism: tc.par[0]}, tc.par...)
		})
	}
}
