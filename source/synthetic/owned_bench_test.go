package synthetic

import (
	"testing"

	"github.com/mdpio/mdp/md"
)

// BenchmarkBenchFill compares, in the same run, the one-instance generator
// (fill) with one of two instances (fillOwned): cpu-ns/pos is CPU time per
// position of the stream, whose trades the one instance emits all of and
// each of the two about half of. Two instances spend 2 x owned2 against
// serial for the same stream.
func BenchmarkBenchFill(b *testing.B) {
	ids := make([]md.SymID, 100)
	for i := range ids {
		ids[i] = md.SymID(i)
	}
	run := func(b *testing.B, owned bool) {
		g := newBenchGen(ids, 42)
		fill := g.fill
		if owned {
			g.own = new([benchMaxSymbolsPow2]uint8)
			for k := range ids {
				g.own[k] = uint8(k % 2)
			}
			fill = g.fillOwned
		}
		pool := md.NewPool(md.DefaultBatchSize)
		cpu0 := cpuTime()
		b.ResetTimer()
		for left := b.N; left > 0; left -= md.DefaultBatchSize {
			bt := pool.Get(md.KindTrade)
			fill(bt, min(left, md.DefaultBatchSize), 0)
			bt.Release()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/pos")
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("owned2", func(b *testing.B) { run(b, true) })
}

// BenchmarkOwnedPass1 is fillOwned's first pass alone (ownedPositions), the
// part every instance makes over the whole stream: cpu-ns/pos per position.
func BenchmarkOwnedPass1(b *testing.B) {
	g := newBenchGen(make([]md.SymID, 100), 42)
	own := new([benchMaxSymbolsPow2]uint8)
	for k := range 100 {
		own[k] = uint8(k % 2)
	}
	kept := make([]uint32, md.DefaultBatchSize)
	w := 0
	s0 := g.rng.s
	cpu0 := cpuTime()
	b.ResetTimer()
	for left := b.N; left > 0; left -= len(kept) {
		w += ownedPositions(kept, s0, g.smod, own)
		s0 += uint64(len(kept)) * splitmixGamma2
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/pos")
	if w == 0 {
		b.Fatal("no position kept")
	}
}
