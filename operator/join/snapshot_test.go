package join

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// TestResumeFromCheckpoint: asof and interval joins resumed from any
// checkpoint (aligned across the two inputs), at the same or another
// parallelism, equal the uninterrupted run's: waiting left records and
// the right records they may pair with carry over, across providers.
func TestResumeFromCheckpoint(t *testing.T) {
	syms := enginetest.Symbols(5)
	ts, qs := streams(19, 4000, len(syms), 60*ms)
	for _, params := range []map[string]any{
		{"kind": "asof", "max_staleness": "50ms"},
		{"kind": "interval", "right": "quote", "lower": "-40ms", "upper": "80ms"},
	} {
		t.Run(params["kind"].(string), func(t *testing.T) {
			optest.Resume(t, optest.Job{Type: Type, Params: params, OOO: 60 * time.Millisecond, Parallelism: 2,
				Inputs: optest.Inputs{
					"left":  {Provider: "a", Symbols: syms, Trades: ts, BatchSize: 8},
					"right": {Provider: "b", Symbols: syms, Quotes: qs, BatchSize: 8},
				}}, 2, 3)
		})
	}
}
