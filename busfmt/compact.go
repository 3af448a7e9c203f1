package busfmt

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/mdpio/mdp/md"
)

// Compact frame (version 2) constants.
const (
	// VersionCompact is the columnar frame version for trades and quotes.
	VersionCompact = 2
	// MaxScale is the largest decimal scale a compact float column uses:
	// 10^22 is the largest power of ten a float64 holds exactly.
	MaxScale = 22
	// rawScale marks a float column of raw IEEE 754 bits.
	rawScale = 0xFF
	// maxExact bounds a scaled integer: every integer up to 2^53 is a
	// float64.
	maxExact = 1 << 53
	// minTradeBytes and minQuoteBytes are the fewest bytes a compact record
	// can take (one byte per varint column), to refuse a frame claiming
	// more records than it could hold before growing the batch.
	minTradeBytes = 5
	minQuoteBytes = 6
	// minPackedBytes is the same for a packed frame: its ts column takes
	// at least a byte a record.
	minPackedBytes = 1
)

// pow10 holds 10^0 … 10^MaxScale, each exact.
var pow10 = func() (p [MaxScale + 1]float64) {
	p[0] = 1
	for i := 1; i <= MaxScale; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// scaled returns m with float64(m)/10^k bit-identical to v, if there is
// one with |m| <= 2^53 (never for NaN, ±Inf or -0).
func scaled(v float64, k int) (int64, bool) {
	if k == 0 { // no division
		if !(v <= maxExact && v >= -maxExact) {
			return 0, false
		}
		i := int64(v)
		return i, math.Float64bits(float64(i)) == math.Float64bits(v)
	}
	m := v * pow10[k]
	if !(m <= maxExact && m >= -maxExact) {
		return 0, false
	}
	// Round half away from zero; a wrong guess fails the check below.
	i := int64(m + math.Copysign(0.5, m))
	return i, math.Float64bits(float64(i)/pow10[k]) == math.Float64bits(v)
}

func appendZigzag(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	if u < 0x80 {
		return append(dst, byte(u))
	}
	return binary.AppendUvarint(dst, u)
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// floatCol is one float column of a compact frame being built: the
// frame's decimal scale and the scaled integers as zigzag varints (deltas
// from the same symbol's previous value when delta), or raw bits.
type floatCol struct {
	buf   []byte
	tmp   []byte  // widen's and toRaw's scratch
	run   []int64 // widen's and toRaw's scratch
	scale int     // 0…MaxScale, or rawScale
	delta bool
	last  []int64 // per dictionary index: the previous scaled value
}

func (c *floatCol) reset() {
	c.buf, c.scale, c.last = c.buf[:0], 0, c.last[:0]
}

// add appends v for a record of dictionary index s; syms are the indexes
// of the records already in the column. The common case, v exact at the
// column's scale, is checked here without a call.
func (c *floatCol) add(v float64, s uint16, syms []uint16) {
	var m int64
	switch k := c.scale; {
	case k == 0:
		if v <= maxExact && v >= -maxExact {
			m = int64(v)
			if math.Float64bits(float64(m)) == math.Float64bits(v) {
				break
			}
		}
		c.addSlow(v, s, syms)
		return
	case k <= MaxScale:
		p := pow10[k]
		x := v * p
		if x <= maxExact && x >= -maxExact {
			m = int64(x + math.Copysign(0.5, x))
			if math.Float64bits(float64(m)/p) == math.Float64bits(v) {
				break
			}
		}
		c.addSlow(v, s, syms)
		return
	default:
		c.buf = binary.LittleEndian.AppendUint64(c.buf, math.Float64bits(v))
		return
	}
	if c.delta {
		m, c.last[s] = m-c.last[s], m
	}
	c.buf = appendZigzag(c.buf, m)
}

// addSlow appends a value the column's scale does not hold: it widens the
// scale or turns the column raw.
func (c *floatCol) addSlow(v float64, s uint16, syms []uint16) {
	c.widen(v, syms)
	if c.scale == rawScale {
		c.buf = binary.LittleEndian.AppendUint64(c.buf, math.Float64bits(v))
		return
	}
	m, _ := scaled(v, c.scale)
	if c.delta {
		m, c.last[s] = m-c.last[s], m
	}
	c.buf = appendZigzag(c.buf, m)
}

// widen moves the column to the smallest larger scale that holds v and
// rescales what it holds, or to raw bits when no scale holds v or a held
// value outgrows 2^53. Values exact at scale k stay exact at k+j: m·10^j
// and 10^(k+j) are exact, and a division is correctly rounded.
func (c *floatCol) widen(v float64, syms []uint16) {
	k := c.scale + 1
	for ; k <= MaxScale; k++ {
		if _, ok := scaled(v, k); ok {
			break
		}
	}
	if k > MaxScale {
		c.toRaw(syms)
		return
	}
	j := k - c.scale
	fl := pow10[j]
	var f int64
	if j <= 18 {
		f = int64(fl)
	}
	c.tmp = c.tmp[:0]
	run := c.running()
	clear(c.last) // the new scale's previous values
	p := 0
	for _, s := range syms {
		u, n := binary.Uvarint(c.buf[p:])
		p += n
		m := unzigzag(u)
		if c.delta {
			m += run[s]
			run[s] = m
		}
		if m != 0 {
			if math.Abs(float64(m))*fl > maxExact {
				c.toRaw(syms)
				return
			}
			m *= f
		}
		if c.delta {
			m, c.last[s] = m-c.last[s], m
		}
		c.tmp = appendZigzag(c.tmp, m)
	}
	c.buf, c.tmp = c.tmp, c.buf
	c.scale = k
}

// running returns scratch of one int64 per dictionary index, zeroed.
func (c *floatCol) running() []int64 {
	if cap(c.run) < len(c.last) {
		c.run = make([]int64, len(c.last), cap(c.last))
	}
	c.run = c.run[:len(c.last)]
	clear(c.run)
	return c.run
}

// toRaw rewrites the column's scaled values as raw bits.
func (c *floatCol) toRaw(syms []uint16) {
	c.tmp = c.tmp[:0]
	run := c.running()
	p := 0
	for _, s := range syms {
		u, n := binary.Uvarint(c.buf[p:])
		p += n
		m := unzigzag(u)
		if c.delta {
			m += run[s]
			run[s] = m
		}
		c.tmp = binary.LittleEndian.AppendUint64(c.tmp, math.Float64bits(float64(m)/pow10[c.scale]))
	}
	c.buf, c.tmp = c.tmp, c.buf
	c.scale = rawScale
}

// appendTo writes the column: its scale byte, then its values.
func (c *floatCol) appendTo(dst []byte) []byte {
	return append(append(dst, byte(c.scale)), c.buf...)
}

// Columns builds one compact (version 2) frame of trades or of quotes
// record by record, for a caller that gathers a frame from several batches
// (the scale-out publisher) without copying the records first. It keeps its
// buffers between frames, so a steady stream does not allocate; it is not
// safe for concurrent use.
type Columns struct {
	kind md.Kind
	n    int
	// The dictionary, as in Encoder; tab may be shared (NewColumnsSharing).
	tab  *symTable
	cur  uint32
	dict []md.SymID

	sym     []uint16 // per record: its dictionary index
	ts      []byte
	ing     []byte
	ingUsed bool // some record's ingest_ts differs from its ts
	f       [4]floatCol
	tid     []byte
	seq     []byte
	side    []byte
	lastTS  int64
	lastSeq uint64
	lastTID []int64 // per dictionary index
}

// NewColumns returns a builder of frames of kind md.KindTrade or
// md.KindQuote.
func NewColumns(kind md.Kind) *Columns {
	if kind != md.KindTrade && kind != md.KindQuote {
		panic(fmt.Sprintf("busfmt: compact frames carry trades or quotes, not %s", kind))
	}
	c := &Columns{kind: kind, cur: 1, tab: &symTable{}}
	// trade: price (delta), size; quote: bid (delta), bid_size, ask (delta), ask_size.
	c.f[0].delta = true
	if kind == md.KindQuote {
		c.f[2].delta = true
	}
	return c
}

// symTable is a dictionary lookup by SymID: per id the frame (stamp) that
// last indexed it and its index there.
type symTable struct {
	slot []uint32
	gen  []uint32
}

// NewColumnsSharing returns a builder like NewColumns that shares with's
// symbol lookup table (one entry per SymID of the job) instead of keeping
// its own. It is only correct when no two sharing builders ever take the
// same symbol, as the scale-out publisher's partitions (for one kind):
// then a partition costs no table of its own.
func NewColumnsSharing(kind md.Kind, with *Columns) *Columns {
	c := NewColumns(kind)
	c.tab = with.tab
	return c
}

// Kind is the kind of records the builder takes.
func (c *Columns) Kind() md.Kind { return c.kind }

// Len is the number of records added since the last frame.
func (c *Columns) Len() int { return c.n }

// Bytes is about the size the frame's records take so far (without the
// header and dictionary).
func (c *Columns) Bytes() int {
	n := len(c.ts) + len(c.ing) + len(c.tid) + len(c.seq) + len(c.side) + 2*len(c.sym)
	for i := range c.f {
		n += len(c.f[i].buf)
	}
	return n
}

// Reset drops the records added since the last frame.
func (c *Columns) Reset() {
	c.n = 0
	c.cur++
	if c.cur == 0 {
		// A sharing builder may then index a symbol twice in its
		// current frame: two entries of one symbol, still exact.
		clear(c.tab.gen)
		c.cur = 1
	}
	c.dict = c.dict[:0]
	c.sym = c.sym[:0]
	c.ts, c.ing, c.tid, c.seq, c.side = c.ts[:0], c.ing[:0], c.tid[:0], c.seq[:0], c.side[:0]
	c.ingUsed = false
	for i := range c.f {
		c.f[i].reset()
	}
	c.lastTS, c.lastSeq, c.lastTID = 0, 0, c.lastTID[:0]
}

// index returns id's dictionary index, adding it if new.
func (c *Columns) index(id md.SymID) (uint16, error) {
	t := c.tab
	if int(id) < len(t.gen) && t.gen[id] == c.cur {
		return uint16(t.slot[id]), nil
	}
	if int(id) >= len(t.gen) {
		n := max(int(id)+1, 2*len(t.gen))
		t.gen = append(t.gen, make([]uint32, n-len(t.gen))...)
		t.slot = append(t.slot, make([]uint32, n-len(t.slot))...)
	}
	if len(c.dict) == MaxSymbols {
		return 0, fmt.Errorf("mdp frame: a batch names more than %d symbols", MaxSymbols)
	}
	t.gen[id] = c.cur
	t.slot[id] = uint32(len(c.dict))
	c.dict = append(c.dict, id)
	for i := range c.f {
		c.f[i].last = append(c.f[i].last, 0)
	}
	c.lastTID = append(c.lastTID, 0)
	return uint16(len(c.dict) - 1), nil
}

// common appends the columns every kind has: symbol, ts, ingest_ts.
func (c *Columns) common(s uint16, ts, ingest int64) {
	c.sym = append(c.sym, s)
	c.ts = appendZigzag(c.ts, ts-c.lastTS)
	c.lastTS = ts
	c.ing = appendZigzag(c.ing, ingest-ts)
	if ingest != ts {
		c.ingUsed = true
	}
}

// AddTrade appends a trade. It fails, adding nothing, when the frame
// would name more than MaxSymbols symbols or the side is not one a frame
// carries.
func (c *Columns) AddTrade(t *md.Trade) error {
	if t.Side > maxSideEnum {
		return fmt.Errorf("mdp frame: trade side %d", t.Side)
	}
	s, err := c.index(t.Sym)
	if err != nil {
		return err
	}
	syms := c.sym
	c.common(s, t.TS, t.Ingest)
	c.f[0].add(t.Price, s, syms)
	c.f[1].add(t.Size, s, syms)
	c.tid = appendZigzag(c.tid, t.TradeID-c.lastTID[s])
	c.lastTID[s] = t.TradeID
	c.seq = appendZigzag(c.seq, int64(t.Seq-c.lastSeq))
	c.lastSeq = t.Seq
	if c.n&3 == 0 {
		c.side = append(c.side, 0)
	}
	c.side[len(c.side)-1] |= byte(t.Side) << (2 * (c.n & 3))
	c.n++
	return nil
}

// AddQuote appends a quote. It fails, adding nothing, when the frame
// would name more than MaxSymbols symbols.
func (c *Columns) AddQuote(q *md.Quote) error {
	s, err := c.index(q.Sym)
	if err != nil {
		return err
	}
	syms := c.sym
	c.common(s, q.TS, q.Ingest)
	c.f[0].add(q.Bid, s, syms)
	c.f[1].add(q.BidSize, s, syms)
	c.f[2].add(q.Ask, s, syms)
	c.f[3].add(q.AskSize, s, syms)
	c.seq = appendZigzag(c.seq, int64(q.Seq-c.lastSeq))
	c.lastSeq = q.Seq
	c.n++
	return nil
}

// AppendFrame appends the records added since the last frame as one
// compact frame with reason (empty on the main flow) and resets the
// builder. syms resolves the records' SymIDs (md.SymbolTable.Snapshot). It
// fails, leaving the records in place, when an id is outside syms or has
// an empty symbol, or a name is longer than MaxNameLen.
func (c *Columns) AppendFrame(dst []byte, syms []md.Instrument, reason string) ([]byte, error) {
	dst0 := len(dst)
	dst = append(dst, Magic0, Magic1, VersionCompact, byte(c.kind))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(c.n))
	var err error
	dst, err = appendDict(dst, c.dict, syms)
	if err != nil {
		return dst[:dst0], err
	}
	reason = cutReason(reason)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(reason)))
	dst = append(dst, reason...)
	switch {
	case len(c.dict) <= 1:
	case len(c.dict) <= 256:
		for _, s := range c.sym {
			dst = append(dst, byte(s))
		}
	default:
		for _, s := range c.sym {
			dst = binary.LittleEndian.AppendUint16(dst, s)
		}
	}
	dst = append(dst, c.ts...)
	if c.ingUsed {
		dst = append(append(dst, 1), c.ing...)
	} else {
		dst = append(dst, 0)
	}
	if c.kind == md.KindTrade {
		dst = c.f[0].appendTo(dst)
		dst = c.f[1].appendTo(dst)
		dst = append(dst, c.tid...)
		dst = append(dst, c.seq...)
		dst = append(dst, c.side...)
	} else {
		for i := range c.f {
			dst = c.f[i].appendTo(dst)
		}
		dst = append(dst, c.seq...)
	}
	c.Reset()
	return dst, nil
}

// reader reads a compact frame's columns; the first error sticks.
type reader struct {
	b    []byte
	p    int
	err  error
	ints []int64 // scratch of the frame's record count
	// pack: a packed (version 3) frame, whose integer columns are
	// fixed-width (reader.packed) rather than varints.
	pack bool
}

func (r *reader) fail(reason, format string, args ...any) {
	if r.err == nil {
		r.err = frameErr(reason, format, args...)
	}
	r.p = len(r.b)
}

func (r *reader) byte1(what string) byte {
	if r.p >= len(r.b) {
		r.fail(ReasonTruncated, "before the %s column", what)
		return 0
	}
	r.p++
	return r.b[r.p-1]
}

// zz reads one zigzag varint.
func (r *reader) zz(what string) int64 {
	if r.p < len(r.b) && r.b[r.p] < 0x80 {
		u := r.b[r.p]
		r.p++
		return int64(u>>1) ^ -int64(u&1)
	}
	return r.zzSlow(what)
}

func (r *reader) zzSlow(what string) int64 {
	u, n := binary.Uvarint(r.b[min(r.p, len(r.b)):])
	switch {
	case n == 0:
		r.fail(ReasonTruncated, "in the %s column", what)
		return 0
	case n < 0:
		r.fail(ReasonVarint, "in the %s column: a varint longer than 64 bits", what)
		return 0
	}
	r.p += n
	return unzigzag(u)
}

// zzs reads len(out) zigzag varints, or a packed frame's integer column
// (reader.packed), and returns the column's seed (0 in a compact frame).
func (r *reader) zzs(what string, out []int64, plain bool) int64 {
	if r.pack {
		return r.packed(what, out, plain)
	}
	b, p := r.b, r.p
	for i := range out {
		if p+binary.MaxVarintLen64 > len(b) {
			r.p = p
			for ; i < len(out); i++ {
				out[i] = r.zz(what)
			}
			return 0
		}
		c := b[p]
		if c < 0x80 {
			out[i] = int64(c>>1) ^ -int64(c&1)
			p++
			continue
		}
		u := uint64(c & 0x7f)
		for s := uint(7); ; s += 7 {
			p++
			c = b[p]
			if c < 0x80 {
				if s == 63 && c > 1 {
					r.p = p
					r.fail(ReasonVarint, "in the %s column: a varint longer than 64 bits", what)
					return 0
				}
				u |= uint64(c) << s
				break
			}
			if s == 63 {
				r.p = p
				r.fail(ReasonVarint, "in the %s column: a varint longer than 64 bits", what)
				return 0
			}
			u |= uint64(c&0x7f) << s
		}
		p++
		out[i] = int64(u>>1) ^ -int64(u&1)
	}
	r.p = p
	return 0
}

// floats reads a float column of len(out) values.
func (r *reader) floats(what string, syms []uint16, last []int64, out []float64) {
	n := len(out)
	k := int(r.byte1(what))
	switch {
	case r.err != nil:
		return
	case k == rawScale:
		if len(r.b)-r.p < 8*n {
			r.fail(ReasonTruncated, "%d raw %s values need %d bytes, %d left", n, what, 8*n, len(r.b)-r.p)
			return
		}
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.p+8*i:]))
		}
		r.p += 8 * n
	case k > MaxScale:
		r.fail(ReasonEnum, "%s scale %d", what, k)
	case last != nil:
		ints := r.ints[:n]
		seed := r.zzs(what, ints, false)
		fill(last, seed)
		p10 := pow10[k]
		for i, s := range syms[:n] {
			m := last[s] + ints[i]
			last[s] = m
			out[i] = float64(m) / p10
		}
	default:
		ints := r.ints[:n]
		r.zzs(what, ints, true)
		if k == 0 {
			for i, m := range ints {
				out[i] = float64(m)
			}
			return
		}
		p10 := pow10[k]
		for i, m := range ints {
			out[i] = float64(m) / p10
		}
	}
}

// ingest reads the ingest_ts column's mode byte and, in mode 1, its
// len(out) differences from ts; it reports whether they were read (mode 0:
// every ingest_ts equals its ts). In a packed frame the column is an
// integer column, all 0 (width 0) when every ingest_ts equals its ts.
func (r *reader) ingest(out []int64) bool {
	if r.pack {
		r.zzs("ingest_ts", out, true)
		return true
	}
	switch mode := r.byte1("ingest_ts"); {
	case r.err != nil, mode == 0:
		return false
	case mode == 1:
		r.zzs("ingest_ts", out, false)
		return true
	default:
		r.fail(ReasonEnum, "ingest_ts mode %d", mode)
		return false
	}
}

// decodeCompact reads the columns of a version 2 frame, or a version 3
// (packed) one when pack, at p into b.
func (d *Decoder) decodeCompact(frame []byte, p int, kind md.Kind, n int, b *md.Batch, pack bool) error {
	minBytes := minTradeBytes
	if kind == md.KindQuote {
		minBytes = minQuoteBytes
	} else if kind != md.KindTrade {
		return frameErr(ReasonKind, "a version %d frame of kind %s (it carries trades and quotes)", frame[2], kind)
	}
	if pack {
		minBytes = minPackedBytes
	}
	if rest := len(frame) - p; rest < n*minBytes {
		return frameErr(ReasonTruncated, "%d records need at least %d bytes, %d left", n, n*minBytes, rest)
	}
	r := reader{b: frame, p: p, pack: pack}
	ns := len(d.dict)
	// The symbol column.
	if cap(d.idx) < n {
		d.idx = make([]uint16, n)
	}
	idx := d.idx[:n]
	switch {
	case ns == 0:
		if n > 0 {
			return frameErr(ReasonSymbol, "%d records and no symbols", n)
		}
	case ns == 1:
		clear(idx)
	case ns <= 256:
		if len(frame)-r.p < n {
			return frameErr(ReasonTruncated, "in the symbol column")
		}
		for i := range idx {
			idx[i] = uint16(frame[r.p+i])
		}
		r.p += n
	default:
		if len(frame)-r.p < 2*n {
			return frameErr(ReasonTruncated, "in the symbol column")
		}
		for i := range idx {
			idx[i] = binary.LittleEndian.Uint16(frame[r.p+2*i:])
		}
		r.p += 2 * n
	}
	for i, s := range idx {
		if int(s) >= ns {
			return frameErr(ReasonSymbol, "record %d names symbol %d of %d", i, s, ns)
		}
	}
	if cap(d.last) < ns {
		d.last = make([]int64, ns)
	}
	last := d.last[:ns]
	if kind == md.KindTrade {
		n0 := len(b.Trades)
		b.Trades = slices.Grow(b.Trades, n)[:len(b.Trades)+n]
		if err := d.compactTrades(&r, b.Trades[n0:], idx, last); err != nil {
			b.Trades = b.Trades[:n0]
			return err
		}
		return nil
	}
	n0 := len(b.Quotes)
	b.Quotes = slices.Grow(b.Quotes, n)[:len(b.Quotes)+n]
	if err := d.compactQuotes(&r, b.Quotes[n0:], idx, last); err != nil {
		b.Quotes = b.Quotes[:n0]
		return err
	}
	return nil
}

// compactTrades reads the columns into the decoder's scratch, checks them,
// then writes each trade once (one pass over the batch's storage).
func (d *Decoder) compactTrades(r *reader, tr []md.Trade, idx []uint16, last []int64) error {
	n := len(tr)
	f := d.scratch(n)
	r.ints = f.tmp
	tsSeed := r.zzs("ts", f.ts, false)
	if !r.ingest(f.ing) {
		clear(f.ing)
	}
	r.floats("price", idx, last, f.a)
	r.floats("size", idx, nil, f.b)
	idSeed := r.zzs("trade_id", f.id, false)
	seqSeed := r.zzs("seq", f.seq, false)
	if r.err != nil {
		return r.err
	}
	sb := (n + 3) / 4
	if len(r.b)-r.p < sb {
		return frameErr(ReasonTruncated, "in the side column")
	}
	sides := r.b[r.p : r.p+sb]
	for j, x := range sides {
		if bad := x & (x >> 1) & 0x55; bad != 0 { // a side of 3
			i := 4*j + bits.TrailingZeros8(bad)/2
			if i >= n {
				return frameErr(ReasonEnum, "side bits set after the last record")
			}
			return frameErr(ReasonEnum, "record %d: side %d", i, 3)
		}
	}
	if n&3 != 0 && sides[sb-1]>>(2*(n&3)) != 0 {
		return frameErr(ReasonEnum, "side bits set after the last record")
	}
	r.p += sb
	if err := r.end(n); err != nil {
		return err
	}
	fill(last, idSeed)
	ts, ing, price, size, tid, sq := f.ts[:n], f.ing[:n], f.a[:n], f.b[:n], f.id[:n], f.seq[:n]
	t, seq := tsSeed, uint64(seqSeed)
	for i, s := range idx[:n] {
		t += ts[i]
		id := last[s] + tid[i]
		last[s] = id
		seq += uint64(sq[i])
		p := &tr[i]
		p.TS, p.Ingest, p.Price, p.Size, p.TradeID, p.Seq = t, t+ing[i], price[i], size[i], id, seq
		p.Sym, p.Side = d.dict[s], md.Side(sides[i>>2]>>(2*(i&3))&3)
	}
	return nil
}

// compactQuotes reads the columns into the decoder's scratch, then writes
// each quote once.
func (d *Decoder) compactQuotes(r *reader, qs []md.Quote, idx []uint16, last []int64) error {
	n := len(qs)
	f := d.scratch(n)
	r.ints = f.tmp
	tsSeed := r.zzs("ts", f.ts, false)
	if !r.ingest(f.ing) {
		clear(f.ing)
	}
	r.floats("bid", idx, last, f.a)
	r.floats("bid_size", idx, nil, f.b)
	r.floats("ask", idx, last, f.c)
	r.floats("ask_size", idx, nil, f.d)
	seqSeed := r.zzs("seq", f.seq, false)
	if err := r.end(n); err != nil {
		return err
	}
	ts, ing, bid, bsz, ask, asz, sq := f.ts[:n], f.ing[:n], f.a[:n], f.b[:n], f.c[:n], f.d[:n], f.seq[:n]
	t, seq := tsSeed, uint64(seqSeed)
	for i, s := range idx[:n] {
		t += ts[i]
		seq += uint64(sq[i])
		qs[i] = md.Quote{TS: t, Ingest: t + ing[i], Bid: bid[i], BidSize: bsz[i], Ask: ask[i], AskSize: asz[i], Seq: seq, Sym: d.dict[s]}
	}
	return nil
}

// colScratch is the decoder's per-column scratch.
type colScratch struct {
	a, b, c, d            []float64
	ts, ing, id, seq, tmp []int64
}

func (d *Decoder) scratch(n int) *colScratch {
	f := &d.cols
	if cap(f.a) < n {
		*f = colScratch{a: make([]float64, n), b: make([]float64, n), c: make([]float64, n), d: make([]float64, n),
			ts: make([]int64, n), ing: make([]int64, n), id: make([]int64, n), seq: make([]int64, n), tmp: make([]int64, n)}
	}
	f.a, f.b, f.c, f.d = f.a[:n], f.b[:n], f.c[:n], f.d[:n]
	f.ts, f.ing, f.id, f.seq, f.tmp = f.ts[:n], f.ing[:n], f.id[:n], f.seq[:n], f.tmp[:n]
	return f
}

// end checks the frame ends exactly after its last column.
func (r *reader) end(n int) error {
	if r.err != nil {
		return r.err
	}
	if r.p != len(r.b) {
		return frameErr(ReasonTrailing, "%d bytes after %d records", len(r.b)-r.p, n)
	}
	return nil
}

// floatScale returns the smallest scale at which every value of col holds
// (values exact at scale k stay exact at k+j while |m| <= 2^53), or
// rawScale.
func floatScale(vals []float64) int {
	k := 0
	for _, v := range vals {
		if _, ok := scaled(v, k); ok {
			continue
		}
		for k++; k <= MaxScale; k++ {
			if _, ok := scaled(v, k); ok {
				break
			}
		}
		if k > MaxScale {
			return rawScale
		}
	}
	return k
}

// appendFloatCol appends a float column of vals (deltas per symbol when
// last is not nil): its scale byte and values.
func appendFloatCol(dst []byte, vals []float64, idx []uint16, last []int64) []byte {
	k := floatScale(vals)
	start := len(dst)
	if k != rawScale {
		dst = append(dst, byte(k))
		p := pow10[k]
		if last != nil {
			clear(last)
		}
		ok := true
		for i, v := range vals {
			x := v * p
			m := int64(x + math.Copysign(0.5, x))
			if !(x <= 1<<50 && x >= -(1<<50)) {
				// Near 2^53 the product's rounding may miss m: check.
				if !(x <= maxExact && x >= -maxExact) || math.Float64bits(float64(m)/p) != math.Float64bits(v) {
					ok = false
					break
				}
			}
			if last != nil {
				s := idx[i]
				m, last[s] = m-last[s], m
			}
			dst = appendZigzag(dst, m)
		}
		if ok {
			return dst
		}
		dst = dst[:start]
	}
	dst = append(dst, rawScale)
	for _, v := range vals {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

// appendSymCol appends the symbol column of a frame of ns symbols.
func appendSymCol(dst []byte, idx []uint16, ns int) []byte {
	switch {
	case ns <= 1:
	case ns <= 256:
		for _, s := range idx {
			dst = append(dst, byte(s))
		}
	default:
		for _, s := range idx {
			dst = binary.LittleEndian.AppendUint16(dst, s)
		}
	}
	return dst
}

// appendCompactBatch appends b, of trades or quotes, as a compact frame,
// column by column.
func (e *Encoder) appendCompactBatch(dst []byte, b *md.Batch, syms []md.Instrument) ([]byte, error) {
	dst, idx, last, err := e.columnarHead(dst, b, syms, VersionCompact)
	if err != nil {
		return dst, err
	}
	n := len(idx)
	vals := e.vals[:n]
	if b.Kind == md.KindTrade {
		tr := b.Trades
		prev := int64(0)
		same := true
		for i := range tr {
			dst = appendZigzag(dst, tr[i].TS-prev)
			prev = tr[i].TS
			same = same && tr[i].Ingest == tr[i].TS
		}
		if same {
			dst = append(dst, 0)
		} else {
			dst = append(dst, 1)
			for i := range tr {
				dst = appendZigzag(dst, tr[i].Ingest-tr[i].TS)
			}
		}
		for i := range tr {
			vals[i] = tr[i].Price
		}
		dst = appendFloatCol(dst, vals, idx, last)
		for i := range tr {
			vals[i] = tr[i].Size
		}
		dst = appendFloatCol(dst, vals, idx, nil)
		clear(last)
		for i := range tr {
			s := idx[i]
			dst = appendZigzag(dst, tr[i].TradeID-last[s])
			last[s] = tr[i].TradeID
		}
		sq := uint64(0)
		for i := range tr {
			dst = appendZigzag(dst, int64(tr[i].Seq-sq))
			sq = tr[i].Seq
		}
		return appendSides(dst, tr), nil
	}
	qs := b.Quotes
	prev := int64(0)
	same := true
	for i := range qs {
		dst = appendZigzag(dst, qs[i].TS-prev)
		prev = qs[i].TS
		same = same && qs[i].Ingest == qs[i].TS
	}
	if same {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		for i := range qs {
			dst = appendZigzag(dst, qs[i].Ingest-qs[i].TS)
		}
	}
	for f := range 4 {
		for i := range qs {
			switch f {
			case 0:
				vals[i] = qs[i].Bid
			case 1:
				vals[i] = qs[i].BidSize
			case 2:
				vals[i] = qs[i].Ask
			default:
				vals[i] = qs[i].AskSize
			}
		}
		if f%2 == 0 {
			dst = appendFloatCol(dst, vals, idx, last)
		} else {
			dst = appendFloatCol(dst, vals, idx, nil)
		}
	}
	sq := uint64(0)
	for i := range qs {
		dst = appendZigzag(dst, int64(qs[i].Seq-sq))
		sq = qs[i].Seq
	}
	return dst, nil
}
