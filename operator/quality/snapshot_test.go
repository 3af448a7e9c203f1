package quality_test

import (
	"math/rand/v2"
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/quality"
)

// TestResumeFromCheckpoint: each symbol's last sequence number carries
// over a restore, so a record repeating or going back in sequence right
// after it is still caught, at the same or another parallelism.
func TestResumeFromCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 3))
	seq := make([]uint64, 4)
	qs := make([]md.Quote, 3000)
	for i := range qs {
		s := r.IntN(len(seq))
		if r.IntN(5) > 0 {
			seq[s]++
		}
		qs[i] = md.Quote{TS: int64(1e12 + i*1e6), Bid: 10, Ask: 10.5, BidSize: 1, AskSize: 1, Seq: seq[s] - uint64(r.IntN(2)), Sym: md.SymID(s)}
	}
	optest.Resume(t, optest.Job{Src: &enginetest.Source{Symbols: enginetest.Symbols(4), Quotes: qs, BatchSize: 16},
		Type: quality.Type, Params: map[string]any{}, Parallelism: 2, Ports: []string{"dead_letter"}}, 2, 3)
}
