package dedupe

// table maps keys to ring numbers: open addressing with linear probing
// and backward-shift deletion (no tombstones, so a steady insert/expire
// stream never degrades or rehashes). It holds at most half its slots.
type table struct {
	slots []slot
	mask  uint64
	n     int
}

type slot struct {
	k    key
	ring uint64
	used bool
}

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
	for i := k.hash() & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			return 0, false
		}
		if s.k == k {
			return s.ring, true
		}
	}
}

// put sets k's ring number; the caller keeps n below half the slots
// (grow).
func (t *table) put(k key, ring uint64) {
	for i := k.hash() & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			*s = slot{k: k, ring: ring, used: true}
			t.n++
			return
		}
		if s.k == k {
			s.ring = ring
			return
		}
	}
}

// del removes k, shifting later members of its probe run back.
func (t *table) del(k key) {
	i := k.hash() & t.mask
	for ; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if !s.used {
			return
		}
		if s.k == k {
			break
		}
	}
	t.n--
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if !s.used {
			break
		}
		home := s.k.hash() & t.mask
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
		if s := &t.slots[i]; s.used {
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
