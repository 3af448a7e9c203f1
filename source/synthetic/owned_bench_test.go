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
			g.ownBits = ownBits(g.own)
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
// part every instance makes over the whole stream, beside its scalar loop
// (ownedPositionsFrom from position 0) in the same run: cpu-ns/pos per
// position. On a CPU without AVX-512 the two are the same loop.
func BenchmarkOwnedPass1(b *testing.B) {
	g := newBenchGen(make([]md.SymID, 100), 42)
	own := new([benchMaxSymbolsPow2]uint8)
	for k := range 100 {
		own[k] = uint8(k % 2)
	}
	bits := ownBits(own)
	run := func(b *testing.B, pass func(kept []uint32, s0 uint64) int) {
		kept := make([]uint32, md.DefaultBatchSize)
		w := 0
		s0 := g.rng.s
		cpu0 := cpuTime()
		b.ResetTimer()
		for left := b.N; left > 0; left -= len(kept) {
			w += pass(kept, s0)
			s0 += uint64(len(kept)) * splitmixGamma2
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/pos")
		if w == 0 {
			b.Fatal("no position kept")
		}
	}
	b.Run("scalar", func(b *testing.B) {
		run(b, func(kept []uint32, s0 uint64) int { return ownedPositionsFrom(kept, 0, 0, s0, g.smod, own) })
	})
	b.Run("vector", func(b *testing.B) {
		run(b, func(kept []uint32, s0 uint64) int { return ownedPositions(kept, s0, g.smod, own, bits) })
	})
}

// TestOwnedPositionsVectorMatchesScalar checks ownedPositions (the vector
// loop where the CPU has one, then the scalar rest) against the scalar loop
// alone: the same positions kept, packed with the same symbols, for
// symbol counts from 1 to the most, ownership sets of every density,
// lengths that are and are not multiples of 8, and states across 2^64.
func TestOwnedPositionsVectorMatchesScalar(t *testing.T) {
	rng := splitmix64{7}
	for _, nsym := range []int{1, 2, 3, 7, 64, 100, 101, 255, 256, 333, 512, 999, 1000} {
		for _, density := range []uint64{0, 1, 3, 5, 8} { // owned with probability density/8
			own := new([benchMaxSymbolsPow2]uint8)
			for k := range nsym {
				if rng.next()%8 < density {
					own[k] = 1
				}
			}
			bits := ownBits(own)
			mod := newSmallmod(uint64(nsym))
			for _, n := range []int{0, 5, 8, 9, 64, 1023, 1024, 4099} {
				s0 := rng.next()
				want := make([]uint32, n)
				got := make([]uint32, n)
				ww := ownedPositionsFrom(want, 0, 0, s0, mod, own)
				gw := ownedPositions(got, s0, mod, own, bits)
				if gw != ww {
					t.Fatalf("%d symbols, density %d/8, %d positions from %#x: kept %d, scalar %d", nsym, density, n, s0, gw, ww)
				}
				for i := range ww {
					if got[i] != want[i] {
						t.Fatalf("%d symbols, density %d/8, %d positions from %#x: kept[%d] = %#x, scalar %#x", nsym, density, n, s0, i, got[i], want[i])
					}
				}
			}
		}
	}
	t.Logf("vector loop used: %v", hasPass1AVX512)
}

// BenchmarkRandomFill is BenchmarkBenchFill for the default model's trades
// (20 symbols): one instance against one of two (two passes), cpu-ns/pos
// per stream position.
func BenchmarkRandomFill(b *testing.B) {
	ids := make([]md.SymID, 20)
	for i := range ids {
		ids[i] = md.SymID(i)
	}
	run := func(b *testing.B, owned bool) {
		g := newRandomGen(ids, 1, 0, 10_000)
		if owned {
			own := make([]bool, len(ids))
			for k := range own {
				own[k] = k%2 == 0
			}
			g.ownSymbols(own)
		}
		pool := md.NewPool(md.DefaultBatchSize)
		cpu0 := cpuTime()
		b.ResetTimer()
		for left := b.N; left > 0; left -= md.DefaultBatchSize {
			bt := pool.Get(md.KindTrade)
			g.fillTrades(bt, min(left, md.DefaultBatchSize), 0)
			bt.Release()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/pos")
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("owned2", func(b *testing.B) { run(b, true) })
}
