package options_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/options"
)

// TestResumeFromCheckpoint: the contracts' last trade, quote and volume
// and the underlying's price carry over a restore.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 4))
	syms := []string{"XYZ", "XYZ   240119C00050000", "XYZ   240119P00050000", "ABC", "ABC   240216C00020000"}
	t0 := time.Date(2023, 11, 1, 15, 0, 0, 0, time.UTC).UnixNano()
	var ts []md.Trade
	var qs []md.Quote
	for i := range 1500 {
		at := t0 + int64(i)*int64(time.Second)
		s := r.IntN(len(syms))
		switch s {
		case 0, 3:
			px := 49 + float64(r.IntN(200))/100
			if s == 3 {
				px -= 30
			}
			ts = append(ts, md.Trade{TS: at, Price: px, Size: 1, Sym: md.SymID(s)})
			qs = append(qs, md.Quote{TS: at, Bid: px - 0.01, Ask: px + 0.01, BidSize: 1, AskSize: 1, Sym: md.SymID(s)})
		default:
			px := 1.5 + float64(r.IntN(100))/100
			ts = append(ts, md.Trade{TS: at, Price: px, Size: float64(1 + r.IntN(5)), Sym: md.SymID(s)})
			qs = append(qs, md.Quote{TS: at, Bid: px - 0.05, Ask: px + 0.05, BidSize: 1, AskSize: 1, Sym: md.SymID(s)})
		}
	}
	optest.Resume(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: ts, Quotes: qs, BatchSize: 16},
		Type: options.Type, Params: map[string]any{"rate": 0.05}, Parallelism: 1}, 1, 3)
	// Checkpointed at 3 instances, each holding the chains its partition
	// key gives it, resumed at 1 and 2.
	optest.Resume(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: ts, Quotes: qs, BatchSize: 16},
		Type: options.Type, Params: map[string]any{"rate": 0.05}, Parallelism: 3}, 1, 2)
}
