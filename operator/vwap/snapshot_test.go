package vwap

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// TestResumeFromCheckpoint: session and rolling VWAP resumed from any
// checkpoint, at the same or another parallelism, equal the uninterrupted
// run's: waiting records, sums, sessions and windows carry over.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 5))
	ts := make([]md.Trade, 3000)
	at := t0
	for i := range ts {
		at += int64(r.IntN(60)) * sec // crosses several session boundaries
		ts[i] = md.Trade{TS: at - int64(r.IntN(30))*sec, Price: 100 + float64(r.IntN(300))/100, Size: float64(1 + r.IntN(20)), Sym: md.SymID(r.IntN(5))}
	}
	for _, params := range []map[string]any{{"mode": "session", "session_start": "8h"}, {"mode": "rolling", "window": "5m"}} {
		t.Run(params["mode"].(string), func(t *testing.T) {
			src := &enginetest.Source{Symbols: enginetest.Symbols(5), Trades: ts, BatchSize: 16}
			optest.Resume(t, optest.Job{Src: src, Type: Type, Params: params, OOO: 40 * time.Second, Parallelism: 2}, 2, 3)
		})
	}
}
