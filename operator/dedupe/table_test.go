package dedupe

import (
	"math/rand"
	"testing"

	"github.com/mdpio/mdp/md"
)

// The table agrees with a Go map over random puts, deletes and growth,
// with few distinct keys so probe runs collide and wrap.
func TestTableAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	tb := newTable(8)
	ref := map[key]uint64{}
	for i := 0; i < 20000; i++ {
		k := key{id: uint64(rng.Intn(40)), sym: md.SymID(rng.Intn(3))}
		switch op := rng.Intn(10); {
		case op < 5 && tb.n < len(tb.slots)/2:
			tb.put(k, uint64(i))
			ref[k] = uint64(i)
		case op < 9:
			tb.del(k)
			delete(ref, k)
		default:
			tb.grow(max(tb.n, 8)) // rehash, shrinking or keeping the size
		}
		if tb.n != len(ref) {
			t.Fatalf("step %d: %d keys, want %d", i, tb.n, len(ref))
		}
		for rk, rv := range ref {
			if v, ok := tb.find(rk); !ok || v != rv {
				t.Fatalf("step %d: key %v = %d, %v; want %d", i, rk, v, ok, rv)
			}
		}
		if _, ok := tb.find(key{id: 1000}); ok {
			t.Fatal("found a key never put")
		}
	}
}
