package dedupe

// table maps keys to ring numbers: open addressing with linear probing
// and backward-shift deletion (no tombstones, so a steady insert/expire
// stream never degrades or rehashes). It holds at most half its slots.
type table struct {
	slots []slot
	mask  uint64
	n     int
}

// slot is a table slot: free when h is 0; else h is k's hash with the top
// bit set, kept so that probes compare it first and a deletion's backward
// shift needs no rehashing.
type slot struct {
	k    key
	ring uint64
	h    uint64
}

const usedBit = 1 << 63

func newTable(capacity int) *table {
	size := 16
	for size < 2*capacity {
		size <<= 1
	}
	return &table{slots: make([]slot, size), mask: uint64(size - 1)}
}

func (k key) hash() uint64 {
	x := k.id ^ uint64(k.sym)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// find returns k's ring number.
func (t *table) find(k key) (uint64, bool) {
	i, ok := t.lookup(k)
	return t.slots[i].ring, ok
}

// lookup returns the slot holding k and true, or the free slot k would
// take and false.
func (t *table) lookup(k key) (uint64, bool) {
	h := k.hash() | usedBit
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.h == 0 {
			return i, false
		}
		if s.h == h && s.k == k {
			return i, true
		}
	}
}

// putAt puts k, absent, into slot i that lookup returned, with nothing
// put or deleted since.
func (t *table) putAt(i uint64, k key, ring uint64) {
	t.slots[i] = slot{k: k, ring: ring, h: k.hash() | usedBit}
	t.n++
}

// delIf removes k if its ring number is ring, in one probe.
func (t *table) delIf(k key, ring uint64) bool {
	i, ok := t.lookup(k)
	if !ok || t.slots[i].ring != ring {
		return false
	}
	t.delAt(i)
	return true
}

// put sets k's ring number; the caller keeps n below half the slots
// (grow).
func (t *table) put(k key, ring uint64) {
	i, ok := t.lookup(k)
	if ok {
		t.slots[i].ring = ring
		return
	}
	t.putAt(i, k, ring)
}

// del removes k, shifting later members of its probe run back.
func (t *table) del(k key) {
	if i, ok := t.lookup(k); ok {
		t.delAt(i)
	}
}

// delAt empties slot i, in use, shifting later members of its probe run
// back.
func (t *table) delAt(i uint64) {
	t.n--
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if s.h == 0 {
			break
		}
		home := s.h & t.mask
		// s may move to i when i lies cyclically in [home, j).
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.slots[i] = *s
			i = j
		}
	}
	t.slots[i] = slot{}
}

// grow rehashes into a table for capacity keys.
func (t *table) grow(capacity int) {
	nt := newTable(capacity)
	for i := range t.slots {
		if s := &t.slots[i]; s.h != 0 {
			nt.put(s.k, s.ring)
		}
	}
	*t = *nt
}

// reset empties the table.
func (t *table) reset() {
	clear(t.slots)
	t.n = 0
}
