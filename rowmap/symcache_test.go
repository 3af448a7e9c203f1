package rowmap

import (
	"math"
	"testing"
)

// TestSymCacheKeys: symbols of one to seven bytes have distinct keys, the
// bytes after a symbol do not change its key, and a symbol with no key
// (empty, eight bytes or more, or too near the end of its buffer) gets 0.
func TestSymCacheKeys(t *testing.T) {
	buf := []byte("BTC,ETH,BTCUSDT,BTCUSDTX,")
	btc, btc2 := symKey(buf[0:3]), symKey(append(make([]byte, 0, 8), "BTC"...))
	if btc == 0 || btc != btc2 {
		t.Fatalf("BTC: %#x and %#x", btc, btc2)
	}
	if eth, usdt := symKey(buf[4:7]), symKey(buf[8:15]); eth == 0 || usdt == 0 || eth == btc || usdt == btc || eth == usdt {
		t.Fatalf("keys %#x %#x %#x", btc, eth, usdt)
	}
	if k := symKey(append(make([]byte, 0, 8), "BT\x00"...)); k == 0 || k == symKey(append(make([]byte, 0, 8), "BT"...)) {
		t.Fatalf("a symbol's length is part of its key: %#x", k)
	}
	for _, s := range [][]byte{buf[8:16], buf[:0], buf[len(buf)-3:]} {
		if k := symKey(s); k != 0 {
			t.Fatalf("%q: key %#x, want none", s, k)
		}
	}
}

// TestSymCacheGenerations: a new generation makes every slot stale; when
// the generation counter wraps, the table is emptied, so a slot of the
// generation that comes round again never matches.
func TestSymCacheGenerations(t *testing.T) {
	c := new(symCache)
	key := symKey([]byte("ETHUSDT,")[:7])
	hit := func() bool { _, ok := c.get(key); return ok }
	s, _ := c.get(key)
	c.put(s, key, 7, true)
	if !hit() {
		t.Fatal("no hit in the slot's generation")
	}
	c.next()
	if hit() {
		t.Fatal("a hit after a new generation")
	}
	c.gen = math.MaxUint32
	*c.slot(key) = symCacheSlot{key: key, gen: 0, id: 7, ok: true} // the generation the wrap returns to
	c.next()
	if c.gen != 0 || hit() {
		t.Fatalf("after the wrap: generation %d, hit %v", c.gen, hit())
	}
}
