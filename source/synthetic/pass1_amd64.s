#include "textflag.h"

// func ownedPass1AVX512(kept *uint32, n int, st *pass1State, r, c, d uint64) int
//
// ownedPositions for n positions (a multiple of 8), eight a step in the
// qword lanes of Z registers: lane l handles position j+l. See
// ownedPositions for the arithmetic; st holds the lanes' first splitmix64
// states (x), their positions (j) and the 1024-bit ownership set (own).
TEXT ·ownedPass1AVX512(SB), NOSPLIT, $0-56
	MOVQ kept+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ st+16(FP), SI
	VMOVDQU64 0(SI), Z0    // x of each lane
	VMOVDQU64 64(SI), Z1   // j of each lane
	VMOVDQU64 128(SI), Z2  // own, words 0..7
	VMOVDQU64 192(SI), Z3  // own, words 8..15
	MOVQ $0xBF58476D1CE4E5B9, AX
	VPBROADCASTQ AX, Z20
	MOVQ $0x94D049BB133111EB, AX
	VPBROADCASTQ AX, Z21
	MOVQ r+24(FP), AX
	VPBROADCASTQ AX, Z22
	MOVQ c+32(FP), AX
	VPBROADCASTQ AX, Z23
	MOVQ d+40(FP), AX
	VPBROADCASTQ AX, Z24
	MOVQ $0xffffffff, AX
	VPBROADCASTQ AX, Z25
	MOVQ $63, AX
	VPBROADCASTQ AX, Z26
	MOVQ $1, AX
	VPBROADCASTQ AX, Z27
	MOVQ $0xE3779B97F4A7C150, AX // 16*gamma mod 2^64: eight positions, two draws each
	VPBROADCASTQ AX, Z28
	MOVQ $8, AX
	VPBROADCASTQ AX, Z29
	XORQ BX, BX // w

loop:
	TESTQ CX, CX
	JLE   done
	// a = splitmixMix(x)
	VPSRLQ  $30, Z0, Z4
	VPXORQ  Z0, Z4, Z4
	VPMULLQ Z20, Z4, Z4
	VPSRLQ  $27, Z4, Z5
	VPXORQ  Z5, Z4, Z4
	VPMULLQ Z21, Z4, Z4
	VPSRLQ  $31, Z4, Z5
	VPXORQ  Z5, Z4, Z4
	// a' = (a>>32)*r + a&0xffffffff (smallmod's fold, below 2^48)
	VPSRLQ   $32, Z4, Z5
	VPMULUDQ Z22, Z5, Z5
	VPANDQ   Z25, Z4, Z4
	VPADDQ   Z5, Z4, Z4
	// x' = c*a' mod 2^64; k = (x'*d)>>64 = (hi(x')*d + (lo(x')*d)>>32)>>32
	VPMULLQ  Z23, Z4, Z4
	VPMULUDQ Z24, Z4, Z5
	VPSRLQ   $32, Z5, Z5
	VPSRLQ   $32, Z4, Z6
	VPMULUDQ Z24, Z6, Z6
	VPADDQ   Z5, Z6, Z6
	VPSRLQ   $32, Z6, Z6 // k
	// owned: bit k&63 of own word k>>6
	VPSRLQ    $6, Z6, Z7
	VPERMI2Q  Z3, Z2, Z7
	VPANDQ    Z26, Z6, Z8
	VPSRLVQ   Z8, Z7, Z7
	VPTESTMQ  Z27, Z7, K1
	// packed k<<20 | j, the owned ones to kept[w:]
	VPSLLQ      $20, Z6, Z6
	VPORQ       Z1, Z6, Z6
	VPMOVQD     Z6, Y6
	VPCOMPRESSD Y6, K1, Y9
	VMOVDQU32   Y9, (DI)(BX*4)
	KMOVW       K1, AX
	POPCNTL     AX, AX
	ADDQ        AX, BX
	VPADDQ      Z28, Z0, Z0
	VPADDQ      Z29, Z1, Z1
	SUBQ        $8, CX
	JMP         loop

done:
	VZEROUPPER
	MOVQ BX, ret+48(FP)
	RET
