package features

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// TestResumeFromCheckpoint: every feature resumed from any checkpoint, at
// the same or another parallelism, equals the uninterrupted run's.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 6))
	ts := make([]md.Trade, 3000)
	at := int64(1_700_000_000) * int64(time.Second)
	for i := range ts {
		at += int64(r.IntN(50)) * int64(time.Millisecond)
		ts[i] = md.Trade{TS: at - int64(r.IntN(20))*int64(time.Millisecond), Price: 100 + float64(r.IntN(300))/100, Size: 1, Sym: md.SymID(r.IntN(4))}
	}
	src := &enginetest.Source{Symbols: enginetest.Symbols(4), Trades: ts, BatchSize: 16}
	optest.Resume(t, optest.Job{Src: src, Type: Type, OOO: 30 * time.Millisecond, Parallelism: 2,
		Params: map[string]any{"features": []string{"sma(20)", "ema(12)", "stddev(10)", "return", "log_return", "zscore(15)", "rsi(14)", "realized_vol(8)"}}}, 2, 3)
}
