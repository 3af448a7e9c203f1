package busio

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Held are the body sums (xxhash64) of messages a bus source handed on
// and the broker will deliver again because they were not acknowledged: a
// checkpoint saved before a crash covers messages whose acknowledgement
// the crash prevented, and after --resume the broker delivers them again
// while the restored state already holds their records. A source writes
// them into its checkpoint position (Append) and, after a restore, takes
// a redelivered message whose sum it holds without its records (Take).
// Oldest first; at most Cap are kept, the oldest dropped first (a sum that
// never comes back, say of a message acknowledged just before the crash,
// must not stay forever).
type Held struct {
	Cap  int
	sums []uint64
}

// Sum is the sum a message body is known by.
func Sum(body []byte) uint64 { return xxhash.Sum64(body) }

// Add appends sums (oldest first).
func (h *Held) Add(sums ...uint64) {
	h.sums = append(h.sums, sums...)
	if over := len(h.sums) - h.Cap; h.Cap > 0 && over > 0 {
		h.sums = append(h.sums[:0], h.sums[over:]...)
	}
}

// Len is the number of sums held.
func (h *Held) Len() int { return len(h.sums) }

// Take removes one occurrence of sum (the oldest) and reports whether it
// was held.
func (h *Held) Take(sum uint64) bool {
	for i, x := range h.sums {
		if x == sum {
			h.sums = append(h.sums[:i], h.sums[i+1:]...)
			return true
		}
	}
	return false
}

// AppendSums appends sums to dst as a position's held bytes (8 bytes
// little endian each).
func AppendSums(dst []byte, sums ...uint64) []byte {
	for _, s := range sums {
		dst = binary.LittleEndian.AppendUint64(dst, s)
	}
	return dst
}

// Append appends the held sums to dst (see AppendSums).
func (h *Held) Append(dst []byte) []byte { return AppendSums(dst, h.sums...) }

// Restore replaces the held sums with those AppendSums wrote into b.
func (h *Held) Restore(b []byte) error {
	if len(b)%8 != 0 {
		return fmt.Errorf("held sums of %d bytes, not a multiple of 8", len(b))
	}
	h.sums = h.sums[:0]
	for i := 0; i < len(b); i += 8 {
		h.sums = append(h.sums, binary.LittleEndian.Uint64(b[i:]))
	}
	if over := len(h.sums) - h.Cap; h.Cap > 0 && over > 0 {
		h.sums = append(h.sums[:0], h.sums[over:]...)
	}
	return nil
}
