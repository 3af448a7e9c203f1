package rowmap

import (
	"encoding/binary"

	"github.com/mdpio/mdp/md"
)

// symCache is a direct-mapped cache of symbol ids in front of a
// SymResolver's table, for the fused decoders: it holds the short symbols
// (one to seven bytes, as BTCUSDT) met under one exchange, the decoder's
// exchange memo; a row whose exchange is not the memo's, or whose symbol
// is longer, probes the resolver's table as before. A symbol's key is its
// bytes and length in one word (symKey), so a lookup is a multiply and two
// compares, where the table hashes four words and compares five. Each slot
// carries the memo's generation: a new memo (next) makes every slot stale
// at once without clearing the table, so a file whose exchange changes on
// every row pays nothing for the cache. Ids never change once resolved;
// two symbols on one slot take turns, each looked up in the table again
// when it returns.
type symCache struct {
	slots [1 << symCacheBits]symCacheSlot
	gen   uint32 // the memo's generation; slots of another are stale
}

// symCacheBits sizes the cache: on 1024 slots, 100 symbols leave about
// five on shared slots; only the slots in use take room in the CPU's cache.
const symCacheBits = 10

type symCacheSlot struct {
	key uint64 // symKey; 0: empty
	gen uint32
	id  md.SymID
	ok  bool // passes the symbols filter
}

// next starts a new generation: the decoder's exchange memo changed.
func (c *symCache) next() {
	if c.gen++; c.gen == 0 { // wrapped: a stale slot could match again
		c.slots = [1 << symCacheBits]symCacheSlot{}
	}
}

// symKey is the cache key of a symbol of one to seven bytes: its bytes in
// a word loaded little-endian from sym[:8] (inside cap(sym)), what follows
// the symbol masked off, and its length in the top byte. It is 0 (no key)
// for any other symbol, and for one too near the end of its buffer for the
// load.
func symKey(sym []byte) uint64 {
	n := len(sym)
	if n == 0 || n >= 8 || cap(sym) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(sym[:8])&(1<<(8*n)-1) | uint64(n)<<56
}

// slot is key's slot; it holds key's id when its key and generation are
// key and c.gen.
func (c *symCache) slot(key uint64) *symCacheSlot {
	return &c.slots[(key*0x9E3779B97F4A7C15)>>(64-symCacheBits)]
}

// get returns key's slot and whether it holds key's id (key 0, no key,
// never does).
func (c *symCache) get(key uint64) (*symCacheSlot, bool) {
	s := c.slot(key)
	return s, key != 0 && s.key == key && s.gen == c.gen
}

// put stores key's id in s, its slot from get, when key is not 0.
func (c *symCache) put(s *symCacheSlot, key uint64, id md.SymID, ok bool) {
	if key != 0 {
		*s = symCacheSlot{key: key, gen: c.gen, id: id, ok: ok}
	}
}
