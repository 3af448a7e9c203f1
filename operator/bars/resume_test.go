package bars

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// resumeTrades are n trades over syms symbols, a few ms apart with some
// disorder, so late updates and several open bars happen.
func resumeTrades(seed uint64, n, syms int) []md.Trade {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]md.Trade, n)
	ts := int64(1_700_000_000) * int64(time.Second)
	for i := range out {
		ts += int64(r.IntN(40)) * int64(time.Millisecond)
		out[i] = md.Trade{TS: ts - int64(r.IntN(120))*int64(time.Millisecond), Price: 100 + float64(r.IntN(200))/100, Size: float64(1 + r.IntN(9)), Sym: md.SymID(r.IntN(syms))}
	}
	return out
}

// TestResumeFromCheckpoint: bars resumed from any checkpoint, at the same
// or another parallelism, equal the uninterrupted run's.
func TestResumeFromCheckpoint(t *testing.T) {
	src := &enginetest.Source{Symbols: enginetest.Symbols(5), Trades: resumeTrades(3, 3000, 5), BatchSize: 16}
	optest.Resume(t, optest.Job{Src: src, Type: Type, OOO: 50 * time.Millisecond, Parallelism: 2, Ports: []string{"late"},
		Params: map[string]any{"interval": "1s", "late_policy": "update", "allowed_lateness": "100ms"}}, 2, 3)
}
