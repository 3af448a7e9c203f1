package synthetic

import "golang.org/x/sys/cpu"

// pass1State is ownedPass1AVX512's input: the splitmix64 state before the
// symbol draw of each of eight consecutive positions, those positions, and
// the ownership set as 1024 bits (bit k: symbol k is owned).
type pass1State struct {
	x   [8]uint64
	j   [8]uint64
	own [16]uint64
}

// ownedPass1AVX512 is ownedPositions over n positions, n a multiple of 8,
// eight at a time in AVX-512 registers (pass1_amd64.s).
//
//go:noescape
func ownedPass1AVX512(kept *uint32, n int, st *pass1State, r, c, d uint64) int

// hasPass1AVX512 reports whether this CPU runs ownedPass1AVX512: AVX-512
// F (the registers, compress, two-table permute), DQ (64-bit lane
// multiplication), VL (256-bit compress) and POPCNT.
var hasPass1AVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasPOPCNT

// ownedPositionsVector runs ownedPositions' loop over the first multiple of
// 8 of len(kept) positions with AVX-512 where the CPU has it, and returns
// how many positions it covered and how many it kept. own is the ownership
// set as bits (ownBits).
func ownedPositionsVector(kept []uint32, s0 uint64, mod smallmod, own *[16]uint64) (done, w int) {
	n := len(kept) &^ 7
	if !hasPass1AVX512 || n == 0 || own == nil {
		return 0, 0
	}
	st := pass1State{own: *own}
	for l := range st.x {
		st.x[l] = s0 + splitmixGamma + uint64(l)*splitmixGamma2
		st.j[l] = uint64(l)
	}
	return n, ownedPass1AVX512(&kept[0], n, &st, mod.r, mod.c, mod.d)
}
