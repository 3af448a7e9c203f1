package window

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// TestResumeFromCheckpoint: tumbling, sliding and session windows resumed
// from any checkpoint, at the same or another parallelism, equal the
// uninterrupted run's, under each late policy: panes, sessions, kept
// windows for updates and every aggregation's state carry over.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 8))
	const ms = int64(time.Millisecond)
	ts := make([]md.Trade, 3000)
	at := int64(1_700_000_000) * int64(time.Second)
	for i := range ts {
		at += int64(r.IntN(30)) * ms
		if r.IntN(200) == 0 {
			at += 3 * int64(time.Second) // a quiet spell: sessions end
		}
		late := int64(r.IntN(40)) * ms
		if r.IntN(40) == 0 {
			late += 700 * ms // late beyond the tolerance
		}
		ts[i] = md.Trade{TS: at - late, Price: 100 + float64(r.IntN(300))/100, Size: float64(1 + r.IntN(9)), Sym: md.SymID(r.IntN(4))}
	}
	aggs := []string{"count", "sum(size)", "min(price)", "max(price)", "first(price)", "last(price)", "mean(price)", "stddev(price)", "vwap", "quantile(price, 0.9) as p90"}
	for _, tc := range []struct {
		name   string
		params map[string]any
		ports  []string
	}{
		{"tumbling update", map[string]any{"window": "tumbling", "size": "1s", "late_policy": "update", "allowed_lateness": "1s"}, nil},
		{"sliding side output", map[string]any{"window": "sliding", "size": "2s", "slide": "500ms", "late_policy": "side_output"}, []string{"late"}},
		{"sliding every record", map[string]any{"window": "sliding", "size": "1s", "slide": "250ms", "emit": "every_record"}, nil},
		{"session update", map[string]any{"window": "session", "gap": "1s", "late_policy": "update", "allowed_lateness": "2s"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.params["aggregations"] = aggs
			src := &enginetest.Source{Symbols: enginetest.Symbols(4), Trades: ts, BatchSize: 16}
			optest.Resume(t, optest.Job{Src: src, Type: Type, Params: tc.params, OOO: 50 * time.Millisecond, Parallelism: 2, Ports: tc.ports}, 2, 3)
		})
	}
}
