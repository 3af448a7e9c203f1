//go:build !amd64

package synthetic

// hasPass1AVX512 is false where there is no vector version of
// ownedPositions' loop (see pass1_amd64.go).
const hasPass1AVX512 = false

// ownedPositionsVector covers no position where there is no vector
// version of ownedPositions' loop.
func ownedPositionsVector([]uint32, uint64, smallmod, *[16]uint64) (done, w int) { return 0, 0 }
