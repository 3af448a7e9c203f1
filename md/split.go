package md

import "math/bits"

// SplitLevel names one level of partitioning by symbol. Records are split at
// several levels in a row (the engine splits a stream across the instances of
// a parallel node, then a store sink instance splits its share across its
// worker goroutines); each level must spread symbols independently of the
// levels above it, or the second level sees only the symbols the first one
// routed to it and uses a fraction of its targets.
type SplitLevel uint64

// Split levels.
const (
	// SplitInstances chooses the instance of a parallel node (the engine).
	SplitInstances SplitLevel = iota
	// SplitWorkers chooses the worker goroutine inside one node instance
	// (a store sink's writers).
	SplitWorkers
)

// Split returns which of n targets (0..n-1) the symbol with partitioning hash
// h (Instrument.Hash) goes to at level l. The result depends only on the
// symbol text, n and l, so it is the same in every run and process. At
// level 0 the hash is used as is; every deeper level first re-mixes it with
// a level-specific seed, so the choices at two levels are independent: with
// P instances of W workers each, every instance uses all W workers.
//
// Split allocates nothing and costs a few nanoseconds (a multiply-high range
// reduction instead of a division); n must be at least 1.
func Split(h uint64, l SplitLevel, n int) int {
	if l != SplitInstances {
		h = remix(h ^ uint64(l)*0x9e3779b97f4a7c15)
	}
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

// remix is the SplitMix64 finalizer: a bijection on 64 bits in which every
// input bit affects every output bit.
func remix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
