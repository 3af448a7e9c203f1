package synthetic

import (
	"fmt"
	"math/bits"

	"github.com/mdpio/mdp/md"
)

// splitmix64 is the generator WORKLOAD.md specifies; both models use it so
// a seed means the same thing everywhere.
type splitmix64 struct{ s uint64 }

func (r *splitmix64) next() uint64 {
	r.s += splitmixGamma
	return splitmixMix(r.s)
}

const splitmixGamma = 0x9E3779B97F4A7C15

// splitmixGamma2 is 2*splitmixGamma mod 2^64: the step between the draws
// of consecutive positions (two draws a trade).
const splitmixGamma2 = uint64(splitmixGamma * 2 % (1 << 64))

// splitmixMix is splitmix64's output function. The generator is counter
// based: the k-th value after state s is splitmixMix(s + k*gamma), so any
// draw can be computed without the ones before it.
func splitmixMix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// fastmod computes a % d for a divisor fixed at run time with multiplications
// instead of a 64-bit DIV (Lemire, Kaser, Kurz: "Faster remainder by direct
// computation", 2019, with 128-bit M for 64-bit numerators). It is exact for
// every a and every d > 0; the standard library has no such helper.
type fastmod struct{ mh, ml, d uint64 }

func newFastmod(d uint64) fastmod {
	if d == 1 {
		return fastmod{d: 1} // M = 0 makes every remainder 0
	}
	// M = floor((2^128-1)/d) + 1 = ceil(2^128/d) for every d > 1.
	qh := ^uint64(0) / d
	ql, _ := bits.Div64(^uint64(0)%d, ^uint64(0), d)
	ml, c := bits.Add64(ql, 1, 0)
	return fastmod{mh: qh + c, ml: ml, d: d}
}

func (f *fastmod) mod(a uint64) uint64 {
	// low = M*a mod 2^128; result = (low*d) >> 128.
	h1, l1 := bits.Mul64(f.ml, a)
	lh := h1 + f.mh*a
	h2, _ := bits.Mul64(l1, f.d)
	h3, l3 := bits.Mul64(lh, f.d)
	_, c := bits.Add64(h2, l3, 0)
	return h3 + c
}

// smallmod computes a % d for a divisor d below 2^16 fixed at run time,
// with one fewer 128-bit multiplication than fastmod: a is first folded to
// a' = hi*(2^32 mod d) + lo (hi and lo its 32-bit halves; a' = a mod d and
// a' < 2^48), then a' mod d = ((c*a' mod 2^64) * d) >> 64 with
// c = ceil(2^64/d), exact for every a' below 2^(64-log2 d) (Lemire, Kaser,
// Kurz 2019, theorem 1: F = 64 >= N + L with N = 48, L = 16).
type smallmod struct{ r, c, d uint64 }

// smallmodMax bounds smallmod's divisors.
const smallmodMax = 1 << 16

func newSmallmod(d uint64) smallmod {
	if d == 0 || d >= smallmodMax {
		panic(fmt.Sprintf("synthetic: smallmod divisor %d out of range", d))
	}
	if d == 1 {
		return smallmod{d: 1} // c = 0 makes every remainder 0
	}
	return smallmod{r: (1 << 32) % d, c: ^uint64(0)/d + 1, d: d}
}

func (f smallmod) mod(a uint64) uint64 {
	a = (a>>32)*f.r + a&0xffffffff
	h, _ := bits.Mul64(f.c*a, f.d)
	return h
}

// Bench workload constants (WORKLOAD.md).
const (
	benchT0   = int64(1704205800) * 1_000_000_000 // 2024-01-02T14:30:00Z
	benchStep = int64(10_000)                     // one trade every 10µs of event time
	// benchMaxSymbols keeps names at three digits, SYM000..SYM999.
	benchMaxSymbols = 1000
	// benchMaxSymbolsPow2 is the power of two above benchMaxSymbols: a
	// symbol index masked with it minus one needs no bounds check.
	benchMaxSymbolsPow2 = 1024
)

// benchNames returns SYM000..SYM(n-1).
func benchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("SYM%03d", i)
	}
	return names
}

// benchGen produces the bars workload exactly: trade i has symbol
// next() % S, price and size from the following next(), and event time
// T0 + i*10µs.
type benchGen struct {
	rng splitmix64
	mod fastmod
	sym []benchSym // symArr[:number of symbols]
	// symArr backs sym at the largest size, so fillOwned indexes it with a
	// mask instead of a bounds check.
	symArr *[benchMaxSymbolsPow2]benchSym
	i      int64
	own    *[benchMaxSymbolsPow2]uint8 // 1 for the symbols fillOwned keeps (by index)
	// ownBits is own as a bit set (ownBits), for the vector first pass.
	ownBits *[16]uint64
	// smod is mod for fillOwned's first pass (symbols are fewer than
	// benchMaxSymbols).
	smod smallmod
	// fillOwned's scratch: the stream positions it keeps, each packed with
	// its symbol's index (ownedPositions).
	kept []uint32
}

// benchSym is one symbol's id and walking price, together so a trade
// touches one cache line and one bounds check.
type benchSym struct {
	cents int64
	id    md.SymID
}

func newBenchGen(ids []md.SymID, seed uint64) *benchGen {
	g := &benchGen{rng: splitmix64{seed}, mod: newFastmod(uint64(len(ids))), smod: newSmallmod(uint64(len(ids))), symArr: new([benchMaxSymbolsPow2]benchSym)}
	g.sym = g.symArr[:len(ids)]
	for k := range g.sym {
		g.sym[k] = benchSym{cents: 10000 + 100*int64(k), id: ids[k]}
	}
	return g
}

// fill appends n trades to b. ingest, when non-zero, is the ingest time of
// every trade (a paced run); otherwise ingest equals event time.
func (g *benchGen) fill(b *md.Batch, n int, ingest int64) {
	start := len(b.Trades)
	b.Trades = growTrades(b.Trades, n)
	tr := b.Trades[start : start+n]
	rng, mod, syms := g.rng, g.mod, g.sym
	i := g.i
	for j := range tr {
		st := &syms[mod.mod(rng.next())]
		r2 := rng.next()
		c := max(st.cents+int64(r2%21)-10, 1)
		st.cents = c
		i++
		// Field by field: a composite literal is built on the stack and
		// copied with wide loads that miss store forwarding (3-4x slower).
		t := &tr[j]
		t.TS = benchT0 + (i-1)*benchStep
		t.Ingest = t.TS
		t.Price = float64(c) / 100.0
		t.Size = float64(1 + (r2>>32)%100)
		t.TradeID = i
		t.Seq = uint64(i)
		t.Sym = st.id
		t.Side = md.SideUnknown
	}
	if ingest != 0 {
		for j := range tr {
			tr[j].Ingest = ingest
		}
	}
	g.rng, g.i = rng, i
}

// fillOwned is fill for one of several instances: it runs the next n
// trades of the stream and appends those of the symbols it owns, so the
// instances together emit exactly what fill does, each symbol's trades in
// the same order. It works in two passes so that neither branches on
// ownership (an unpredictable branch per trade would cost more than the
// work it skips): the first (ownedPositions) draws every position's symbol
// (the generator is counter based, so one draw of two is made) and lists
// the positions kept, the second draws the rest of each kept trade and
// walks its price. The other symbols' prices are not walked: only their
// owner reads them.
//
// Every instance makes the first pass over the whole stream, so it is the
// part of the source's work that parallelism does not divide; it is kept to
// a splitmix64 output, a small-divisor remainder and one store per position.
func (g *benchGen) fillOwned(b *md.Batch, n int, ingest int64) {
	for n > 0 {
		// Positions are packed with their symbol in 32 bits (ownedPositions).
		m := min(n, maxOwnedChunk)
		g.fillOwnedChunk(b, m, ingest)
		n -= m
	}
}

// maxOwnedChunk is the most stream positions one pass of fillOwned lists:
// a position within the chunk and a symbol index (below benchMaxSymbols)
// share a uint32.
const maxOwnedChunk = 1 << ownedPosBits

// ownedPosBits is the width of the position in a packed kept position;
// the symbol index takes the bits above it.
const ownedPosBits = 20

func (g *benchGen) fillOwnedChunk(b *md.Batch, n int, ingest int64) {
	if cap(g.kept) < n {
		g.kept = make([]uint32, n)
	}
	s0 := g.rng.s
	w := ownedPositions(g.kept[:n], s0, g.smod, g.own, g.ownBits)
	start := len(b.Trades)
	b.Trades = growTrades(b.Trades, w)
	tr := b.Trades[start : start+w]
	ownedTrades(tr, g.kept[:w], g.symArr, s0, g.i)
	if ingest != 0 {
		for j := range tr {
			tr[j].Ingest = ingest
		}
	}
	g.rng.s = s0 + uint64(2*n)*splitmixGamma
	g.i += int64(n)
}

// ownedTrades is fillOwned's second pass: it writes to tr the trade of
// each position in kept (ownedPositions), walking its symbol's price in
// syms; s0 and i0 are the stream's state and trade count before the first
// position. (A function of its own, with few values live, so the compiler
// keeps the loop in registers.)
func ownedTrades(tr []md.Trade, kept []uint32, syms *[benchMaxSymbolsPow2]benchSym, s0 uint64, i0 int64) {
	kept = kept[:len(tr)]
	for t := range tr {
		j := kept[t] & (maxOwnedChunk - 1)
		st := &syms[(kept[t]>>ownedPosBits)&(benchMaxSymbolsPow2-1)]
		r2 := splitmixMix(s0 + uint64(j+1)*splitmixGamma2)
		c := max(st.cents+int64(r2%21)-10, 1)
		st.cents = c
		i := i0 + int64(j) + 1
		p := &tr[t] // field by field, as in fill
		p.TS = benchT0 + (i-1)*benchStep
		p.Ingest = p.TS
		p.Price = float64(c) / 100.0
		p.Size = float64(1 + (r2>>32)%100)
		p.TradeID = i
		p.Seq = uint64(i)
		p.Sym = st.id
		p.Side = md.SideUnknown
	}
}

// ownedPositions is fillOwned's first pass over the len(kept) positions of
// the stream after state s0: it writes to the front of kept, packed, each
// position whose symbol own marks with the symbol's index, and returns how
// many it wrote. ownBits is own as a bit set (ownBits), for the vector
// version of the loop, which covers the positions up to a multiple of 8
// where the CPU has one (pass1_amd64.s); ownedPositionsFrom does the rest.
func ownedPositions(kept []uint32, s0 uint64, mod smallmod, own *[benchMaxSymbolsPow2]uint8, ownBits *[16]uint64) int {
	done, w := ownedPositionsVector(kept, s0, mod, ownBits)
	return ownedPositionsFrom(kept, done, w, s0, mod, own)
}

// ownedPositionsFrom is ownedPositions' loop from position j0, with w
// positions already kept. Every position is written (and overwritten by the
// next one unless kept), so the loop has no branch on ownership.
func ownedPositionsFrom(kept []uint32, j0, w int, s0 uint64, mod smallmod, own *[benchMaxSymbolsPow2]uint8) int {
	x := s0 + splitmixGamma + uint64(j0)*splitmixGamma2 // position j's symbol draw is splitmixMix(s0 + (2j+1)*gamma)
	for j := j0; j < len(kept); j++ {
		k := mod.mod(splitmixMix(x))
		x += splitmixGamma2
		kept[w] = uint32(k)<<ownedPosBits | uint32(j)
		w += int(own[k&(benchMaxSymbolsPow2-1)])
	}
	return w
}

// ownBits returns own (1 for each owned symbol index) as a set of 1024
// bits: bit k&63 of word k>>6 is set when symbol k is owned.
func ownBits(own *[benchMaxSymbolsPow2]uint8) *[16]uint64 {
	b := new([16]uint64)
	for k, o := range own {
		if o != 0 {
			b[k>>6] |= 1 << (k & 63)
		}
	}
	return b
}

// growTrades extends s by n elements, reallocating only when a caller asks
// for more than a pooled batch holds.
func growTrades(s []md.Trade, n int) []md.Trade {
	if len(s)+n <= cap(s) {
		return s[:len(s)+n]
	}
	return append(s, make([]md.Trade, n)...)
}

func growQuotes(s []md.Quote, n int) []md.Quote {
	if len(s)+n <= cap(s) {
		return s[:len(s)+n]
	}
	return append(s, make([]md.Quote, n)...)
}

// randomGen is the default model: a random walk in cent ticks per symbol,
// symbols drawn uniformly, everything derived from the seed so a run
// reproduces exactly.
type randomGen struct {
	rng   splitmix64
	mod   fastmod
	ids   []md.SymID
	cents []int64
	i     int64
	start int64  // event time of record 0 (unpaced)
	step  int64  // event-time gap between records (unpaced)
	own   []bool // the symbols this instance emits (by index); nil: all
	// owned, when set, lists the positions of own's symbols in two passes
	// (ownedPositions) instead of walking every record: set by ownSymbols
	// when the symbols are few enough.
	owned *ownedPass
}

// ownedPass is the first pass of a generator that emits only some of the
// stream's symbols: the owned set (as bytes and as bits, see
// ownedPositions), the remainder by the symbol count and the scratch list of
// kept positions.
type ownedPass struct {
	own  *[benchMaxSymbolsPow2]uint8
	bits *[16]uint64
	smod smallmod
	kept []uint32
}

// newOwnedPass returns the first pass for the symbols own marks (by
// index), or nil when there are more of them than it can index.
func newOwnedPass(own []bool) *ownedPass {
	if len(own) > benchMaxSymbols {
		return nil
	}
	p := &ownedPass{own: new([benchMaxSymbolsPow2]uint8), smod: newSmallmod(uint64(len(own)))}
	for k, o := range own {
		if o {
			p.own[k] = 1
		}
	}
	p.bits = ownBits(p.own)
	return p
}

// positions returns, packed (ownedPositions), the kept positions among the
// next n (at most maxOwnedChunk) of the stream after state s0.
func (p *ownedPass) positions(s0 uint64, n int) []uint32 {
	if cap(p.kept) < n {
		p.kept = make([]uint32, n)
	}
	return p.kept[:ownedPositions(p.kept[:n], s0, p.smod, p.own, p.bits)]
}

// ownSymbols makes g emit only the symbols own marks (by index); nil: all.
func (g *randomGen) ownSymbols(own []bool) {
	g.own, g.owned = own, nil
	if own != nil {
		g.owned = newOwnedPass(own)
	}
}

func newRandomGen(ids []md.SymID, seed uint64, start, step int64) *randomGen {
	g := &randomGen{rng: splitmix64{seed}, mod: newFastmod(uint64(len(ids))), ids: ids, cents: make([]int64, len(ids)), start: start, step: step}
	for k := range g.cents {
		g.cents[k] = 10000 + 100*int64(k)
	}
	return g
}

// walk advances one symbol's price and returns the symbol index, its new
// price in cents and the random bits left for sizes and sides.
func (g *randomGen) walk() (sym uint64, c int64, r uint64) {
	sym = g.mod.mod(g.rng.next())
	r = g.rng.next()
	c = g.cents[sym] + int64(r%21) - 10
	if c < 1 {
		c = 1
	}
	g.cents[sym] = c
	return sym, c, r
}

// times returns record i's event and ingest time: the wall clock when paced
// (wall != 0), else start + i*step for both.
func (g *randomGen) times(wall int64) (int64, int64) {
	if wall != 0 {
		return wall, wall
	}
	ts := g.start + g.i*g.step
	return ts, ts
}

// fillOwned runs the next n records of the stream in chunks, two passes a
// chunk as benchGen.fillOwned does: emit writes the records of the kept
// positions (the packed list, the stream's state before the chunk and its
// first record's number), then the stream moves past the chunk.
func (g *randomGen) fillOwned(n int, emit func(kept []uint32, s0 uint64, i0 int64)) {
	for n > 0 {
		m := min(n, maxOwnedChunk)
		s0 := g.rng.s
		emit(g.owned.positions(s0, m), s0, g.i)
		g.rng.s = s0 + uint64(2*m)*splitmixGamma
		g.i += int64(m)
		n -= m
	}
}

// ownedWalk is walk for kept position p (packed, ownedPositions) of a
// chunk after state s0 whose first record is number i0: the symbol index,
// its new price, the random bits and the record's number.
func (g *randomGen) ownedWalk(p uint32, s0 uint64, i0 int64) (sym uint64, c int64, r uint64, i int64) {
	j := p & (maxOwnedChunk - 1)
	sym = uint64(p >> ownedPosBits)
	r = splitmixMix(s0 + uint64(j+1)*splitmixGamma2)
	c = max(g.cents[sym]+int64(r%21)-10, 1)
	g.cents[sym] = c
	return sym, c, r, i0 + int64(j)
}

func (g *randomGen) fillTrades(b *md.Batch, n int, wall int64) {
	if g.owned != nil {
		g.fillOwned(n, func(kept []uint32, s0 uint64, i0 int64) {
			start := len(b.Trades)
			b.Trades = growTrades(b.Trades, len(kept))
			for x, p := range kept {
				sym, c, r, i := g.ownedWalk(p, s0, i0)
				g.i = i
				ts, in := g.times(wall)
				side := md.SideBuy
				if r>>63 != 0 {
					side = md.SideSell
				}
				t := &b.Trades[start+x]
				t.TS, t.Ingest = ts, in
				t.Price = float64(c) / 100.0
				t.Size = float64(1 + (r>>32)%100)
				t.TradeID, t.Seq = i+1, uint64(i+1)
				t.Sym, t.Side = g.ids[sym], side
			}
			g.i = i0
		})
		return
	}
	start := len(b.Trades)
	b.Trades = growTrades(b.Trades, n)
	j := 0
	for range n {
		sym, c, r := g.walk()
		ts, in := g.times(wall)
		g.i++
		if g.own != nil && !g.own[sym] {
			continue
		}
		side := md.SideBuy
		if r>>63 != 0 {
			side = md.SideSell
		}
		t := &b.Trades[start+j] // field by field, as in benchGen.fill
		j++
		t.TS, t.Ingest = ts, in
		t.Price = float64(c) / 100.0
		t.Size = float64(1 + (r>>32)%100)
		t.TradeID, t.Seq = g.i, uint64(g.i)
		t.Sym, t.Side = g.ids[sym], side
	}
	b.Trades = b.Trades[:start+j]
}

func (g *randomGen) fillQuotes(b *md.Batch, n int, wall int64) {
	if g.owned != nil {
		g.fillOwned(n, func(kept []uint32, s0 uint64, i0 int64) {
			start := len(b.Quotes)
			b.Quotes = growQuotes(b.Quotes, len(kept))
			for x, p := range kept {
				sym, c, r, i := g.ownedWalk(p, s0, i0)
				g.i = i
				ts, in := g.times(wall)
				spread := 1 + int64((r>>8)%5)
				q := &b.Quotes[start+x]
				q.TS, q.Ingest = ts, in
				q.Bid = float64(c) / 100.0
				q.BidSize = float64(100 * (1 + (r>>32)%10))
				q.Ask = float64(c+spread) / 100.0
				q.AskSize = float64(100 * (1 + (r>>40)%10))
				q.Seq = uint64(i + 1)
				q.Sym = g.ids[sym]
			}
			g.i = i0
		})
		return
	}
	start := len(b.Quotes)
	b.Quotes = growQuotes(b.Quotes, n)
	j := 0
	for range n {
		sym, c, r := g.walk()
		ts, in := g.times(wall)
		g.i++
		if g.own != nil && !g.own[sym] {
			continue
		}
		spread := 1 + int64((r>>8)%5)
		q := &b.Quotes[start+j]
		j++
		q.TS, q.Ingest = ts, in
		q.Bid = float64(c) / 100.0
		q.BidSize = float64(100 * (1 + (r>>32)%10))
		q.Ask = float64(c+spread) / 100.0
		q.AskSize = float64(100 * (1 + (r>>40)%10))
		q.Seq = uint64(g.i)
		q.Sym = g.ids[sym]
	}
	b.Quotes = b.Quotes[:start+j]
}
