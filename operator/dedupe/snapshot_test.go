package dedupe_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/dedupe"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// dupTrades are n trades over syms symbols whose trade ids repeat within
// and beyond a ttl of a second, a little out of order.
func dupTrades(seed uint64, n, syms int) []md.Trade {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]md.Trade, n)
	ts := 100 * s
	for i := range out {
		ts += int64(r.IntN(20)) * int64(time.Millisecond)
		out[i] = md.Trade{TS: ts - int64(r.IntN(50))*int64(time.Millisecond), TradeID: int64(1 + r.IntN(60)), Price: 1, Size: 1, Sym: md.SymID(r.IntN(syms))}
	}
	return out
}

// TestResumeFromCheckpoint: the keys remembered at a checkpoint carry
// over, so a resumed deduplicator drops exactly what an uninterrupted one
// drops, at the same or another parallelism.
func TestResumeFromCheckpoint(t *testing.T) {
	src := &enginetest.Source{Symbols: enginetest.Symbols(4), Trades: dupTrades(5, 3000, 4), BatchSize: 16}
	optest.Resume(t, optest.Job{Src: src, Type: dedupe.Type, OOO: 100 * time.Millisecond, Parallelism: 2,
		Params: map[string]any{"ttl": "1s"}}, 2, 3, 1)
}

// TestResumeFromCheckpointWithEvictions: at one instance, the order keys
// are evicted in survives a restore too.
func TestResumeFromCheckpointWithEvictions(t *testing.T) {
	src := &enginetest.Source{Symbols: enginetest.Symbols(4), Trades: dupTrades(6, 3000, 4), BatchSize: 16}
	optest.Resume(t, optest.Job{Src: src, Type: dedupe.Type, OOO: 100 * time.Millisecond, Parallelism: 1,
		Params: map[string]any{"ttl": "1s", "max_keys": 50}})
}
