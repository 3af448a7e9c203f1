package resample

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// TestResumeFromCheckpoint: coarse bars resumed from any checkpoint, at
// the same or another parallelism, equal the uninterrupted run's: open
// coarse bars with their fine bars, corrections and late bars included.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 7))
	const sec = int64(time.Second)
	var bars []md.Bar
	at := int64(1_700_000_000) * sec
	for len(bars) < 3000 {
		at += sec
		for sym := range 4 {
			if r.IntN(3) == 0 {
				continue
			}
			start := at - int64(r.IntN(3))*sec // a little out of order; some repeat a start: corrections
			if r.IntN(50) == 0 {
				start -= 200 * sec // late
			}
			o := 100 + float64(r.IntN(100))/100
			bars = append(bars, md.Bar{Start: start, End: start + sec, Interval: sec, Open: o, High: o + 0.5, Low: o - 0.5, Close: o + 0.1,
				Volume: float64(1 + r.IntN(9)), VWAP: o + 0.05, Trades: int64(1 + r.IntN(5)), Sym: md.SymID(sym)})
		}
	}
	src := &enginetest.Source{Symbols: enginetest.Symbols(4), Bars: bars, BatchSize: 16}
	optest.Resume(t, optest.Job{Src: src, Type: Type, OOO: 3 * time.Second, Parallelism: 2, Ports: []string{"late"},
		Params: map[string]any{"interval": "1m", "late_policy": "side_output"}}, 2, 3)
}
