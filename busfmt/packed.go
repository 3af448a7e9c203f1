package busfmt

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/mdpio/mdp/md"
)

// VersionPacked is the packed columnar frame version for trades and
// quotes: the compact frame's columns with fixed-width values (a width per
// column and frame) instead of varints, so that decoding a column is one
// loop without a branch per value.
const VersionPacked = 3

// widthOf is the fewest bytes (0, 1, 2, 4 or 8) that hold every value
// whose bits are in or.
func widthOf(or uint64) int {
	switch {
	case or == 0:
		return 0
	case or <= math.MaxUint8:
		return 1
	case or <= math.MaxUint16:
		return 2
	case or <= math.MaxUint32:
		return 4
	}
	return 8
}

// appendPacked appends an integer column: its width byte w, its seed
// (int64, 8 bytes), then each value of u in w bytes, little-endian. or is
// the OR of u; minW the smallest width to write.
func appendPacked(dst []byte, u []uint64, or uint64, minW int, seed int64) []byte {
	w := max(widthOf(or), minW)
	dst = append(dst, byte(w))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(seed))
	n0 := len(dst)
	dst = slices.Grow(dst, w*len(u))[:n0+w*len(u)]
	out := dst[n0:]
	le := binary.LittleEndian
	switch w {
	case 1:
		out = out[:len(u)]
		for i, v := range u {
			out[i] = byte(v)
		}
	case 2:
		for i, v := range u {
			le.PutUint16(out[2*i:], uint16(v))
		}
	case 4:
		for i, v := range u {
			le.PutUint32(out[4*i:], uint32(v))
		}
	case 8:
		for i, v := range u {
			le.PutUint64(out[8*i:], v)
		}
	}
	return dst
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// packedFloats sets u to the zigzagged scaled integers of vals (deltas per
// symbol when last is not nil, from the first value, the seed) at the
// smallest decimal scale at which every value comes back bit-identical,
// and returns that scale, the OR of u and the seed; rawScale when there is
// none.
func packedFloats(vals []float64, idx []uint16, last []int64, u []uint64) (int, uint64, int64) {
	k := 0
	for {
		bad, or, seed := scaleInts(vals, k, idx, last, u)
		if bad < 0 {
			return k, or, seed
		}
		v := vals[bad]
		for k++; k <= MaxScale; k++ {
			if _, ok := scaled(v, k); ok {
				break
			}
		}
		if k > MaxScale {
			return rawScale, 0, 0
		}
	}
}

// scaleInts is packedFloats at scale k: it returns the index of the first
// value k does not hold, or -1.
func scaleInts(vals []float64, k int, idx []uint16, last []int64, u []uint64) (int, uint64, int64) {
	p := pow10[k]
	var or uint64
	var seed int64
	u = u[:len(vals)]
	for i, v := range vals {
		var m int64
		if k == 0 {
			if !(v <= maxExact && v >= -maxExact) {
				return i, 0, 0
			}
			m = int64(v)
			if math.Float64bits(float64(m)) != math.Float64bits(v) {
				return i, 0, 0
			}
		} else {
			x := v * p
			if !(x <= maxExact && x >= -maxExact) {
				return i, 0, 0
			}
			m = int64(x + math.Copysign(0.5, x))
			if math.Float64bits(float64(m)/p) != math.Float64bits(v) {
				return i, 0, 0
			}
		}
		if last != nil {
			if i == 0 {
				seed = m
				fill(last, m)
			}
			s := idx[i]
			m, last[s] = m-last[s], m
		}
		z := zigzag(m)
		u[i] = z
		or |= z
	}
	return -1, or, seed
}

// fill sets every element of s to v.
func fill(s []int64, v int64) {
	for i := range s {
		s[i] = v
	}
}

// appendPackedFloat appends a float column: its scale byte, then an
// integer column, or with rawScale the raw bits.
func appendPackedFloat(dst []byte, vals []float64, idx []uint16, last []int64, u []uint64) []byte {
	k, or, seed := packedFloats(vals, idx, last, u)
	dst = append(dst, byte(k))
	if k != rawScale {
		return appendPacked(dst, u[:len(vals)], or, 0, seed)
	}
	for _, v := range vals {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

// columnarHead starts a compact or packed frame of b: the header,
// dictionary, reason and symbol column. It returns the records' dictionary
// indexes and scratch of one int64 per dictionary entry.
func (e *Encoder) columnarHead(dst []byte, b *md.Batch, syms []md.Instrument, version byte) ([]byte, []uint16, []int64, error) {
	n := b.Len()
	idx, err := e.compactIndex(b, n)
	if err != nil {
		return dst, nil, nil, err
	}
	if cap(e.last) < len(e.dict) {
		e.last = make([]int64, len(e.dict))
	}
	dst = append(dst, Magic0, Magic1, version, byte(b.Kind))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	if dst, err = appendDict(dst, e.dict, syms); err != nil {
		return dst, nil, nil, err
	}
	reason := cutReason(b.Reason)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(reason)))
	dst = append(dst, reason...)
	return appendSymCol(dst, idx, len(e.dict)), idx, e.last[:len(e.dict)], nil
}

// appendPackedBatch appends b, of trades or quotes, as a packed frame.
func (e *Encoder) appendPackedBatch(dst []byte, b *md.Batch, syms []md.Instrument) ([]byte, error) {
	dst, idx, last, err := e.columnarHead(dst, b, syms, VersionPacked)
	if err != nil {
		return dst, err
	}
	n := len(idx)
	if cap(e.u) < n {
		e.u = make([]uint64, n)
	}
	u, vals := e.u[:n], e.vals[:n]
	// ts and ingest_ts: the ts column takes at least a byte a record, which
	// bounds a frame's record count by its size.
	var or uint64
	if b.Kind == md.KindTrade {
		return e.appendPackedTrades(dst, b.Trades, idx, last), nil
	}
	qs := b.Quotes
	var seedTS int64
	var seedSeq uint64
	if n > 0 {
		seedTS, seedSeq = qs[0].TS, qs[0].Seq
	}
	prev := seedTS
	for i := range qs {
		z := zigzag(qs[i].TS - prev)
		prev = qs[i].TS
		u[i], or = z, or|z
	}
	dst = appendPacked(dst, u, or, 1, seedTS)
	or = 0
	for i := range qs {
		z := zigzag(qs[i].Ingest - qs[i].TS)
		u[i], or = z, or|z
	}
	dst = appendPacked(dst, u, or, 0, 0)
	for f := range 4 {
		for i := range qs {
			vals[i] = [4]float64{qs[i].Bid, qs[i].BidSize, qs[i].Ask, qs[i].AskSize}[f]
		}
		l := last
		if f%2 == 1 {
			l = nil
		}
		dst = appendPackedFloat(dst, vals, idx, l, u)
	}
	or = 0
	sq := seedSeq
	for i := range qs {
		z := zigzag(int64(qs[i].Seq - sq))
		sq = qs[i].Seq
		u[i], or = z, or|z
	}
	return appendPacked(dst, u, or, 0, int64(seedSeq)), nil
}

// appendPackedTrades appends the columns of a packed trade frame. One pass
// over the records fills the integer columns and the float values, so
// each trade is read once.
func (e *Encoder) appendPackedTrades(dst []byte, tr []md.Trade, idx []uint16, last []int64) []byte {
	n := len(tr)
	if cap(e.u) < 5*n {
		e.u = make([]uint64, 5*n)
	}
	if cap(e.vals) < 2*n {
		e.vals = make([]float64, 2*n)
	}
	if cap(e.lastID) < len(last) {
		e.lastID = make([]int64, len(last))
	}
	u, vals, lastID := e.u[:5*n], e.vals[:2*n], e.lastID[:len(last)]
	// The seeds: the first record's values.
	var seedTS, seedID int64
	var seedSeq uint64
	if n > 0 {
		seedTS, seedID, seedSeq = tr[0].TS, tr[0].TradeID, tr[0].Seq
	}
	fill(lastID, seedID)
	ts, ing, tid, sq, fu := u[:n], u[n:2*n], u[2*n:3*n], u[3*n:4*n], u[4*n:]
	price, size := vals[:n], vals[n:]
	var orTS, orIng, orID, orSeq uint64
	prevTS, prevSeq := seedTS, seedSeq
	for i := range tr {
		t := &tr[i]
		s := idx[i]
		z := zigzag(t.TS - prevTS)
		ts[i], orTS, prevTS = z, orTS|z, t.TS
		z = zigzag(t.Ingest - t.TS)
		ing[i], orIng = z, orIng|z
		z = zigzag(t.TradeID - lastID[s])
		tid[i], orID, lastID[s] = z, orID|z, t.TradeID
		z = zigzag(int64(t.Seq - prevSeq))
		sq[i], orSeq, prevSeq = z, orSeq|z, t.Seq
		price[i], size[i] = t.Price, t.Size
	}
	dst = appendPacked(dst, ts, orTS, 1, seedTS)
	dst = appendPacked(dst, ing, orIng, 0, 0)
	dst = appendPackedFloat(dst, price, idx, last, fu)
	dst = appendPackedFloat(dst, size, idx, nil, fu)
	dst = appendPacked(dst, tid, orID, 0, seedID)
	dst = appendPacked(dst, sq, orSeq, 0, int64(seedSeq))
	return appendSides(dst, tr)
}

// appendSides appends the side column: 2 bits a trade, four a byte.
func appendSides(dst []byte, tr []md.Trade) []byte {
	n := len(tr)
	for i := 0; i < n; i += 4 {
		var x byte
		for j := i; j < min(i+4, n); j++ {
			x |= byte(tr[j].Side) << (2 * (j - i))
		}
		dst = append(dst, x)
	}
	return dst
}

// compactIndex starts a compact or packed frame of b: it builds the
// dictionary and returns each record's index in it. It fails on a side a
// frame does not carry or too many symbols.
func (e *Encoder) compactIndex(b *md.Batch, n int) ([]uint16, error) {
	e.cur++
	if e.cur == 0 {
		clear(e.gen)
		e.cur = 1
	}
	e.dict = e.dict[:0]
	if cap(e.sidx) < n {
		e.sidx, e.vals = make([]uint16, n), make([]float64, n)
	}
	idx := e.sidx[:n]
	for i := range idx {
		var id md.SymID
		if b.Kind == md.KindTrade {
			id = b.Trades[i].Sym
			if b.Trades[i].Side > maxSideEnum {
				return nil, fmt.Errorf("mdp frame: trade side %d", b.Trades[i].Side)
			}
		} else {
			id = b.Quotes[i].Sym
		}
		s, err := e.index(id)
		if err != nil {
			return nil, err
		}
		idx[i] = s
	}
	return idx, nil
}

// packed reads a packed integer column of len(out) values: its width
// byte, seed and zigzagged values, into out. A plain column's values are
// the seed plus each; a delta column's are returned as they are, with the
// seed (the value before the first).
func (r *reader) packed(what string, out []int64, plain bool) int64 {
	w := int(r.byte1(what))
	if r.err != nil {
		return 0
	}
	n := len(out)
	if w != 0 && w != 1 && w != 2 && w != 4 && w != 8 {
		r.fail(ReasonEnum, "%s width %d", what, w)
		return 0
	}
	if len(r.b)-r.p < 8+w*n {
		r.fail(ReasonTruncated, "%d %s values of %d bytes need %d bytes, %d left", n, what, w, 8+w*n, len(r.b)-r.p)
		return 0
	}
	seed := int64(binary.LittleEndian.Uint64(r.b[r.p:]))
	r.p += 8
	src := r.b[r.p : r.p+w*n]
	r.p += w * n
	le := binary.LittleEndian
	switch w {
	case 0:
		clear(out)
	case 1:
		src = src[:len(out)]
		for i, c := range src {
			out[i] = int64(c>>1) ^ -int64(c&1)
		}
	case 2:
		for i := range out {
			out[i] = unzigzag(uint64(le.Uint16(src[2*i:])))
		}
	case 4:
		for i := range out {
			out[i] = unzigzag(uint64(le.Uint32(src[4*i:])))
		}
	case 8:
		for i := range out {
			out[i] = unzigzag(le.Uint64(src[8*i:]))
		}
	}
	if !plain {
		return seed
	}
	if seed != 0 {
		for i := range out {
			out[i] += seed
		}
	}
	return 0
}
