// Package busfmt is the encode/decode layer every message-bus source and
// sink shares: the `mdp` binary frame (one batch per message, versioned,
// fixed-size records after a per-frame symbol dictionary, or for trades and
// quotes a compact columnar version), the JSON lines
// and CSV encodings of package recfmt for messages other programs read, and
// the counting of malformed messages by reason.
//
// # The mdp frame, version 1
//
// All integers are little-endian; floats are IEEE 754 binary64 bits.
//
//	offset  size  field
//	0       2     magic "MD" (0x4D 0x44)
//	2       1     version, 1
//	3       1     kind: 1 trade, 2 quote, 4 bar, 8 derived (md.Kind)
//	4       4     n, the record count (uint32, at most md.MaxBatchSize)
//	8       2     s, the symbol dictionary size (uint16)
//	10      …     s entries: provider length (1 byte), provider bytes,
//	              symbol length (1 byte), symbol bytes, size decimals
//	              (1 byte: the most decimal places seen in the symbol's
//	              sizes, 0 to 24, or 255 when unknown)
//	…       2     reason length r (uint16), then r bytes of reason text
//	              (the batch's Reason; 0 on the main flow)
//	…       …     derived only: schema name length (1 byte), name bytes,
//	              field count f (1 byte), then f times: name length
//	              (1 byte), name bytes, type (1 byte: 0 float64, 1 int64)
//	…       n×R   the records, R bytes each (below)
//
// Every record starts with its symbol's index in the dictionary (uint16);
// then, by kind:
//
//	trade   (51 bytes): sym, ts, ingest_ts (int64 ns), price, size
//	                    (float64), trade_id (int64), seq (uint64), side
//	                    (1 byte: 0 unknown, 1 buy, 2 sell)
//	quote   (58 bytes): sym, ts, ingest_ts, bid, bid_size, ask, ask_size,
//	                    seq (uint64)
//	bar     (85 bytes): sym, start, end, interval (int64), open, high, low,
//	                    close, volume, vwap (float64), trades (int64),
//	                    bar type (1 byte: 0 time, 1 tick, 2 volume, 3 value,
//	                    4 tick imbalance, 5 volume imbalance),
//	                    source (1 byte: 0 trade, 1 mid, 2 bid, 3 ask,
//	                    4 bid_ask), flags (1 byte: bit 0 labelled by end,
//	                    bit 1 update, bit 2 partial)
//	derived (10+8f bytes): sym, ts (int64 ns), then the f field values in
//	                    schema order (int64 or float64 bits)
//
// The frame ends exactly after the last record: a decoder rejects a frame
// with bytes left over, a dictionary index out of range, an unknown kind,
// enum value or flag bit, a schema md.NewSchema refuses, or a version other
// than 1, 2 or 3. A later version that adds fields bumps the version byte; a
// decoder never guesses.
//
// # The compact frame, version 2 (trades and quotes)
//
// Encoder.Compact (and Columns) write trades and quotes as version 2: the
// same header, dictionary and reason as version 1 (version byte 2), then
// the records column by column. A varint is unsigned LEB128 (7 bits a
// byte, low first, at most 10 bytes); a zigzag varint holds an int64 v as
// the varint of (v << 1) ^ (v >> 63). "Delta per symbol" is the difference
// from the previous record of the same dictionary index in this frame (0
// before its first); "delta" from the previous record (0 before the
// first). Integer differences wrap (two's complement).
//
//	symbols     n dictionary indexes: none when s is 1 (all 0), 1 byte
//	            each when s <= 256, else uint16 each
//	ts          n zigzag varints, delta
//	ingest_ts   mode (1 byte): 0, every ingest_ts equals its ts and
//	            nothing follows; 1, n zigzag varints of ingest_ts - ts
//	trade       price (float column, delta per symbol), size (float
//	            column), trade_id (n zigzag varints, delta per symbol),
//	            seq (n zigzag varints of the uint64, delta), side (2 bits
//	            a record, record i in byte i/4 at bit 2·(i%4), ceil(n/4)
//	            bytes, unused bits 0)
//	quote       bid (float column, delta per symbol), bid_size (float
//	            column), ask (float column, delta per symbol), ask_size
//	            (float column), seq (n zigzag varints, delta)
//
// A float column starts with its scale byte k. With k in 0…22 it holds n
// zigzag varints of integers m (or their deltas per symbol), the value
// being float64(m) / 10^k: the encoder picks, per frame and column, the
// smallest k at which every value v comes back bit-identical (|m| <= 2^53,
// checked by computing exactly that division). With k = 255 it holds n
// IEEE 754 binary64 values, 8 bytes each, little-endian: NaN, ±Inf, -0 and
// values no decimal scale holds go this way. Every value round-trips to
// the same bits. Besides the version 1 reasons, a decoder rejects a scale
// or ingest_ts mode it does not know or side 3 (bad_enum) and a varint
// longer than 64 bits (bad_varint); a version 2 frame of another kind is
// bad_kind. Bars and derived records have no version 2. A new value of an existing enum or flag byte (bar source
// bid_ask and the partial flag came this way) keeps version 1: frames that
// do not use it are unchanged, and an older decoder rejects one that does
// as bad_enum, counted, rather than misreading it.
//
// # The packed frame, version 3 (trades and quotes)
//
// Encoder.Packed writes trades and quotes as version 3, what the scale-out
// stream carries: the columns of version 2, in the same order and with the
// same deltas, but each integer column fixed-width, so that a decoder reads
// a column in one loop without a branch per value. An integer column is
// its width w (1 byte: 0, 1, 2, 4 or 8), its seed (int64, 8 bytes), then n
// zigzagged values of w bytes each (none when w is 0: all 0). In a delta
// column (ts, seq; per symbol: trade_id and the delta float columns) the
// seed is the value before the first record (before each symbol's first
// record), where version 2 starts from 0: the encoder writes the first
// record's value, so no absolute value widens the column. In a plain
// column (ingest_ts - ts, the other float columns) each value is the seed
// plus the stored one (the encoder writes seed 0). The ingest_ts column has
// no mode byte: it is an integer column (width 0 when every ingest_ts
// equals its ts). A float column is its scale byte k, then with k in 0…22
// an integer column of the scaled integers, with k = 255 the n raw values.
// The ts column is at least 1 byte wide, so a frame holds at least a byte
// a record. The side column is version 2's. Besides version 2's reasons, a
// decoder rejects another width (bad_enum).
package busfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/mdpio/mdp/md"
)

// Frame constants.
const (
	Magic0, Magic1 = 'M', 'D'
	// Version is the frame version of fixed-size records (every kind);
	// VersionCompact and VersionPacked are the others this package writes
	// and reads.
	Version = 1
	// headerSize is magic, version, kind, n and s.
	headerSize = 10
	// MaxSymbols is the most distinct symbols one frame can name.
	MaxSymbols = math.MaxUint16
	// MaxNameLen is the longest provider or symbol a frame can carry.
	MaxNameLen = math.MaxUint8
	// MaxSizeDecimals is the most size decimals a frame carries.
	MaxSizeDecimals = 24
	// unknownDecimals marks a symbol whose size decimals are not known.
	unknownDecimals = 255
	// MaxReasonLen is the longest reason a frame carries; longer reasons
	// are cut at a UTF-8 boundary when encoding.
	MaxReasonLen = 1024
)

// Record sizes in bytes, by kind.
const (
	tradeSize      = 2 + 6*8 + 1
	quoteSize      = 2 + 7*8
	barSize        = 2 + 10*8 + 3
	derivedFixed   = 2 + 8
	barFlagLabel   = 1
	barFlagUpdate  = 2
	barFlagPartial = 4
	barFlagsKnown  = barFlagLabel | barFlagUpdate | barFlagPartial
	maxBarSource   = 4 // bar source
	maxBarTypeEnum = 5 // bar type
	maxSideEnum    = 2
	maxSchemaField = math.MaxUint8
)

// FrameError is why a frame could not be decoded. Reason is a short
// snake_case word, the key malformed messages are counted under.
type FrameError struct {
	Reason string
	Detail string
}

func (e *FrameError) Error() string { return "mdp frame: " + e.Reason + ": " + e.Detail }

func frameErr(reason, format string, args ...any) error {
	return &FrameError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reasons a frame is rejected (FrameError.Reason).
const (
	ReasonMagic     = "bad_magic"
	ReasonVersion   = "bad_version"
	ReasonKind      = "bad_kind"
	ReasonTruncated = "truncated"
	ReasonTrailing  = "trailing_bytes"
	ReasonSymbol    = "bad_symbol"
	ReasonSchema    = "bad_schema"
	ReasonEnum      = "bad_enum"
	ReasonTooLarge  = "too_large"
	ReasonVarint    = "bad_varint"
)

// Encoder writes batches as mdp frames. It keeps scratch space between
// calls, so encoding a steady stream does not allocate; it is not safe for
// concurrent use.
type Encoder struct {
	// Compact, when set, writes trade and quote batches as compact
	// (version 2) frames; other kinds stay version 1.
	Compact bool
	// Packed, when set, writes them as packed (version 3) frames instead.
	Packed bool
	sidx   []uint16  // compact: the records' dictionary indexes
	u      []uint64  // packed: integer columns
	lastID []int64   // packed: per symbol, the previous trade id
	vals   []float64 // compact: one float column
	last   []int64   // compact: per symbol, the previous value

	slot []uint32 // per SymID: its dictionary index+1 in the current frame, stamped by gen
	gen  []uint32
	cur  uint32
	dict []md.SymID
}

// AppendFrame appends b as one frame. syms resolves the records' SymIDs
// (md.SymbolTable.Snapshot). It fails when a record's id is outside syms or
// has an empty symbol, when the batch names more than MaxSymbols symbols,
// or when a provider or symbol is longer than MaxNameLen; dst is then
// returned unextended.
func (e *Encoder) AppendFrame(dst []byte, b *md.Batch, syms []md.Instrument) ([]byte, error) {
	n := b.Len()
	if n > md.MaxBatchSize {
		return dst, fmt.Errorf("mdp frame: %d records, more than %d", n, md.MaxBatchSize)
	}
	if (e.Compact || e.Packed) && (b.Kind == md.KindTrade || b.Kind == md.KindQuote) {
		dst0 := len(dst)
		enc := e.appendCompactBatch
		if e.Packed {
			enc = e.appendPackedBatch
		}
		dst, err := enc(dst, b, syms)
		if err != nil {
			return dst[:dst0], err
		}
		return dst, nil
	}
	e.cur++
	if e.cur == 0 { // wrapped: clear the stamps
		clear(e.gen)
		e.cur = 1
	}
	e.dict = e.dict[:0]
	dst0 := len(dst)
	dst, err := e.appendFrame(dst, b, syms, n)
	if err != nil {
		return dst[:dst0], err
	}
	return dst, nil
}

func (e *Encoder) appendFrame(dst []byte, b *md.Batch, syms []md.Instrument, n int) ([]byte, error) {
	dst = append(dst, Magic0, Magic1, Version, byte(b.Kind))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	// The dictionary is written after a pass over the records.
	for i := 0; i < n; i++ {
		if _, err := e.index(recSym(b, i)); err != nil {
			return dst, err
		}
	}
	var err error
	dst, err = appendDict(dst, e.dict, syms)
	if err != nil {
		return dst, err
	}
	reason := cutReason(b.Reason)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(reason)))
	dst = append(dst, reason...)
	le := binary.LittleEndian
	switch b.Kind {
	case md.KindTrade:
		for i := range b.Trades {
			t := &b.Trades[i]
			dst = le.AppendUint16(dst, e.idx(t.Sym))
			dst = le.AppendUint64(dst, uint64(t.TS))
			dst = le.AppendUint64(dst, uint64(t.Ingest))
			dst = le.AppendUint64(dst, math.Float64bits(t.Price))
			dst = le.AppendUint64(dst, math.Float64bits(t.Size))
			dst = le.AppendUint64(dst, uint64(t.TradeID))
			dst = le.AppendUint64(dst, t.Seq)
			dst = append(dst, byte(t.Side))
		}
	case md.KindQuote:
		for i := range b.Quotes {
			q := &b.Quotes[i]
			dst = le.AppendUint16(dst, e.idx(q.Sym))
			dst = le.AppendUint64(dst, uint64(q.TS))
			dst = le.AppendUint64(dst, uint64(q.Ingest))
			dst = le.AppendUint64(dst, math.Float64bits(q.Bid))
			dst = le.AppendUint64(dst, math.Float64bits(q.BidSize))
			dst = le.AppendUint64(dst, math.Float64bits(q.Ask))
			dst = le.AppendUint64(dst, math.Float64bits(q.AskSize))
			dst = le.AppendUint64(dst, q.Seq)
		}
	case md.KindBar:
		for i := range b.Bars {
			r := &b.Bars[i]
			dst = le.AppendUint16(dst, e.idx(r.Sym))
			dst = le.AppendUint64(dst, uint64(r.Start))
			dst = le.AppendUint64(dst, uint64(r.End))
			dst = le.AppendUint64(dst, uint64(r.Interval))
			dst = le.AppendUint64(dst, math.Float64bits(r.Open))
			dst = le.AppendUint64(dst, math.Float64bits(r.High))
			dst = le.AppendUint64(dst, math.Float64bits(r.Low))
			dst = le.AppendUint64(dst, math.Float64bits(r.Close))
			dst = le.AppendUint64(dst, math.Float64bits(r.Volume))
			dst = le.AppendUint64(dst, math.Float64bits(r.VWAP))
			dst = le.AppendUint64(dst, uint64(r.Trades))
			var flags byte
			if r.LabelEnd {
				flags |= barFlagLabel
			}
			if r.Update {
				flags |= barFlagUpdate
			}
			if r.Partial {
				flags |= barFlagPartial
			}
			dst = append(dst, byte(r.Type), byte(r.Source), flags)
		}
	case md.KindDerived:
		s := b.Schema
		if s == nil {
			return dst, errors.New("mdp frame: derived batch without a schema")
		}
		if s.Len() > maxSchemaField {
			return dst, fmt.Errorf("mdp frame: schema %s has %d fields, more than %d", s.Name(), s.Len(), maxSchemaField)
		}
		dst = append(dst, byte(len(s.Name())))
		dst = append(dst, s.Name()...)
		dst = append(dst, byte(s.Len()))
		for f := 0; f < s.Len(); f++ {
			fd := s.Field(f)
			dst = append(dst, byte(len(fd.Name)))
			dst = append(dst, fd.Name...)
			dst = append(dst, byte(fd.Type))
		}
		for i := range b.Derived {
			d := &b.Derived[i]
			dst = le.AppendUint16(dst, e.idx(d.Sym))
			dst = le.AppendUint64(dst, uint64(d.TS))
			for _, v := range b.Row(i) {
				dst = le.AppendUint64(dst, uint64(v))
			}
		}
	case md.KindNone:
	default:
		return dst, fmt.Errorf("mdp frame: cannot encode a batch of kind %s", b.Kind)
	}
	return dst, nil
}

// appendDict appends a frame's symbol dictionary: its size, then each
// entry.
func appendDict(dst []byte, dict []md.SymID, syms []md.Instrument) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(dict)))
	for _, id := range dict {
		if int(id) >= len(syms) || syms[id].Symbol == "" {
			return dst, fmt.Errorf("mdp frame: symbol id %d has no symbol text", id)
		}
		in := &syms[id]
		if len(in.Provider) > MaxNameLen || len(in.Symbol) > MaxNameLen {
			return dst, fmt.Errorf("mdp frame: provider %q or symbol %q longer than %d bytes", in.Provider, in.Symbol, MaxNameLen)
		}
		dst = append(dst, byte(len(in.Provider)))
		dst = append(dst, in.Provider...)
		dst = append(dst, byte(len(in.Symbol)))
		dst = append(dst, in.Symbol...)
		dec := byte(unknownDecimals)
		if d, ok := in.SizeDecimals(); ok && d <= MaxSizeDecimals {
			dec = byte(d)
		}
		dst = append(dst, dec)
	}
	return dst, nil
}

// cutReason bounds a reason to MaxReasonLen bytes at a UTF-8 boundary.
func cutReason(s string) string {
	if len(s) <= MaxReasonLen {
		return s
	}
	i := MaxReasonLen
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

func recSym(b *md.Batch, i int) md.SymID {
	switch b.Kind {
	case md.KindTrade:
		return b.Trades[i].Sym
	case md.KindQuote:
		return b.Quotes[i].Sym
	case md.KindBar:
		return b.Bars[i].Sym
	case md.KindDerived:
		return b.Derived[i].Sym
	}
	return 0
}

// index adds id to the frame's dictionary if it is not there yet.
func (e *Encoder) index(id md.SymID) (uint16, error) {
	if int(id) >= len(e.gen) {
		n := max(int(id)+1, 2*len(e.gen))
		e.gen = append(e.gen, make([]uint32, n-len(e.gen))...)
		e.slot = append(e.slot, make([]uint32, n-len(e.slot))...)
	}
	if e.gen[id] == e.cur {
		return uint16(e.slot[id]), nil
	}
	if len(e.dict) == MaxSymbols {
		return 0, fmt.Errorf("mdp frame: a batch names more than %d symbols", MaxSymbols)
	}
	e.gen[id] = e.cur
	e.slot[id] = uint32(len(e.dict))
	e.dict = append(e.dict, id)
	return uint16(len(e.dict) - 1), nil
}

// idx is the dictionary index of an id index has seen in this frame.
func (e *Encoder) idx(id md.SymID) uint16 { return uint16(e.slot[id]) }

// Decoder reads mdp frames into batches, interning their symbols into a
// job's symbol table. It caches symbols and schemas it has seen, so a
// steady stream decodes without allocating; it is not safe for concurrent
// use.
type Decoder struct {
	syms    *md.SymbolTable
	symIDs  map[string]md.SymID // dictionary entry bytes -> id
	schemas map[string]*md.Schema
	dict    []md.SymID
	idx     []uint16   // compact frames: the records' dictionary indexes
	last    []int64    // compact frames: per symbol, the previous value
	cols    colScratch // compact frames: decoded columns
	// Expect, when set, is the only derived schema accepted; a derived
	// frame of another schema is rejected with ReasonSchema.
	Expect *md.Schema
}

// NewDecoder returns a decoder interning into syms.
func NewDecoder(syms *md.SymbolTable) *Decoder {
	return &Decoder{syms: syms, symIDs: map[string]md.SymID{}, schemas: map[string]*md.Schema{}}
}

// cache bounds: a stream that names ever new symbols or schemas is served,
// but the caches stop growing and those lookups go to the symbol table.
const (
	maxCachedSyms    = 1 << 20
	maxCachedSchemas = 64
)

// Kind returns the record kind a frame claims, without checking the rest.
func Kind(frame []byte) (md.Kind, error) {
	if len(frame) < headerSize {
		return md.KindNone, frameErr(ReasonTruncated, "%d bytes, shorter than the %d-byte header", len(frame), headerSize)
	}
	return md.Kind(frame[3]), nil
}

// Decode appends the records of one frame to b, which must be of the
// frame's kind (see Kind) and, for derived records, carry no records of
// another schema yet; it sets b.Schema and b.Reason from the frame. On
// error b is left as it was and the error is a *FrameError.
func (d *Decoder) Decode(frame []byte, b *md.Batch) error {
	if len(frame) < headerSize {
		return frameErr(ReasonTruncated, "%d bytes, shorter than the %d-byte header", len(frame), headerSize)
	}
	if frame[0] != Magic0 || frame[1] != Magic1 {
		return frameErr(ReasonMagic, "starts with %#x %#x, not \"MD\"", frame[0], frame[1])
	}
	if frame[2] != Version && frame[2] != VersionCompact && frame[2] != VersionPacked {
		return frameErr(ReasonVersion, "version %d, this build reads %d, %d and %d", frame[2], Version, VersionCompact, VersionPacked)
	}
	le := binary.LittleEndian
	kind := md.Kind(frame[3])
	n := int(le.Uint32(frame[4:]))
	ns := int(le.Uint16(frame[8:]))
	switch kind {
	case md.KindTrade, md.KindQuote, md.KindBar, md.KindDerived, md.KindNone:
	default:
		return frameErr(ReasonKind, "kind byte %d", frame[3])
	}
	if kind != b.Kind {
		return frameErr(ReasonKind, "a %s frame for a %s batch", kind, b.Kind)
	}
	if n > md.MaxBatchSize {
		return frameErr(ReasonTooLarge, "%d records, more than %d", n, md.MaxBatchSize)
	}
	if kind == md.KindNone && n != 0 {
		return frameErr(ReasonKind, "a frame of kind none with %d records", n)
	}
	p := headerSize
	d.dict = d.dict[:0]
	for range ns {
		start := p
		for range 2 {
			if p >= len(frame) {
				return frameErr(ReasonTruncated, "in the symbol dictionary")
			}
			p += 1 + int(frame[p])
		}
		p++ // size decimals
		if p > len(frame) {
			return frameErr(ReasonTruncated, "in the symbol dictionary")
		}
		id, err := d.symbol(frame[start:p])
		if err != nil {
			return err
		}
		d.dict = append(d.dict, id)
	}
	if p+2 > len(frame) {
		return frameErr(ReasonTruncated, "before the reason")
	}
	rl := int(le.Uint16(frame[p:]))
	p += 2
	if rl > MaxReasonLen || p+rl > len(frame) {
		return frameErr(ReasonTruncated, "reason of %d bytes", rl)
	}
	reason := frame[p : p+rl]
	p += rl
	if frame[2] == VersionCompact || frame[2] == VersionPacked {
		if err := d.decodeCompact(frame, p, kind, n, b, frame[2] == VersionPacked); err != nil {
			return err
		}
		if len(reason) > 0 && string(reason) != b.Reason {
			b.Reason = string(reason)
		}
		return nil
	}
	recSize := 0
	var schema *md.Schema
	switch kind {
	case md.KindTrade:
		recSize = tradeSize
	case md.KindQuote:
		recSize = quoteSize
	case md.KindBar:
		recSize = barSize
	case md.KindDerived:
		var err error
		schema, p, err = d.schema(frame, p)
		if err != nil {
			return err
		}
		if d.Expect != nil && !d.Expect.Equal(schema) {
			return frameErr(ReasonSchema, "schema %s, expected %s", schema, d.Expect)
		}
		if b.Schema != nil && len(b.Derived) > 0 && !b.Schema.Equal(schema) {
			return frameErr(ReasonSchema, "schema %s in a batch of %s", schema, b.Schema)
		}
		recSize = derivedFixed + 8*schema.Len()
	}
	if rest := len(frame) - p; rest != n*recSize {
		if rest < n*recSize {
			return frameErr(ReasonTruncated, "%d records of %d bytes need %d bytes, %d left", n, recSize, n*recSize, rest)
		}
		return frameErr(ReasonTrailing, "%d bytes after %d records", rest-n*recSize, n)
	}
	// Validate before appending, so a rejected frame leaves b unchanged.
	for i := range n {
		r := frame[p+i*recSize:]
		if int(le.Uint16(r)) >= len(d.dict) {
			return frameErr(ReasonSymbol, "record %d names symbol %d of %d", i, le.Uint16(r), len(d.dict))
		}
		switch kind {
		case md.KindTrade:
			if r[tradeSize-1] > maxSideEnum {
				return frameErr(ReasonEnum, "record %d: side %d", i, r[tradeSize-1])
			}
		case md.KindBar:
			if r[barSize-3] > maxBarTypeEnum || r[barSize-2] > maxBarSource || r[barSize-1]&^barFlagsKnown != 0 {
				return frameErr(ReasonEnum, "record %d: bar type %d, source %d, flags %#x", i, r[barSize-3], r[barSize-2], r[barSize-1])
			}
		}
	}
	if len(reason) > 0 && string(reason) != b.Reason {
		b.Reason = string(reason)
	}
	f64 := func(r []byte, off int) float64 { return math.Float64frombits(le.Uint64(r[off:])) }
	i64 := func(r []byte, off int) int64 { return int64(le.Uint64(r[off:])) }
	switch kind {
	case md.KindTrade:
		for i := range n {
			r := frame[p+i*recSize:]
			b.Trades = append(b.Trades, md.Trade{
				Sym: d.dict[le.Uint16(r)], TS: i64(r, 2), Ingest: i64(r, 10), Price: f64(r, 18), Size: f64(r, 26),
				TradeID: i64(r, 34), Seq: le.Uint64(r[42:]), Side: md.Side(r[50]),
			})
		}
	case md.KindQuote:
		for i := range n {
			r := frame[p+i*recSize:]
			b.Quotes = append(b.Quotes, md.Quote{
				Sym: d.dict[le.Uint16(r)], TS: i64(r, 2), Ingest: i64(r, 10), Bid: f64(r, 18), BidSize: f64(r, 26),
				Ask: f64(r, 34), AskSize: f64(r, 42), Seq: le.Uint64(r[50:]),
			})
		}
	case md.KindBar:
		for i := range n {
			r := frame[p+i*recSize:]
			fl := r[84]
			b.Bars = append(b.Bars, md.Bar{
				Sym: d.dict[le.Uint16(r)], Start: i64(r, 2), End: i64(r, 10), Interval: i64(r, 18),
				Open: f64(r, 26), High: f64(r, 34), Low: f64(r, 42), Close: f64(r, 50), Volume: f64(r, 58), VWAP: f64(r, 66),
				Trades: i64(r, 74), Type: md.BarType(r[82]), Source: md.BarSource(r[83]),
				LabelEnd: fl&barFlagLabel != 0, Update: fl&barFlagUpdate != 0, Partial: fl&barFlagPartial != 0,
			})
		}
	case md.KindDerived:
		b.Schema = schema
		for i := range n {
			r := frame[p+i*recSize:]
			vals := b.AddDerived(i64(r, 2), d.dict[le.Uint16(r)])
			for f := range vals {
				vals[f] = md.Value(le.Uint64(r[derivedFixed+8*f:]))
			}
		}
	}
	return nil
}

// symbol interns one dictionary entry (provider length, provider, symbol
// length, symbol, size decimals) and notes its size decimals.
func (d *Decoder) symbol(entry []byte) (md.SymID, error) {
	if id, ok := d.symIDs[string(entry)]; ok {
		return id, nil
	}
	pl := int(entry[0])
	prov, sym, dec := entry[1:1+pl], entry[2+pl:len(entry)-1], entry[len(entry)-1]
	if len(sym) == 0 {
		return 0, frameErr(ReasonSymbol, "an empty symbol in the dictionary")
	}
	if dec > MaxSizeDecimals && dec != unknownDecimals {
		return 0, frameErr(ReasonSymbol, "symbol %q: %d size decimals", sym, dec)
	}
	id := d.syms.Intern(string(prov), string(sym))
	if dec != unknownDecimals {
		d.syms.NoteSizeDecimals(id, int(dec))
	}
	if len(d.symIDs) < maxCachedSyms {
		d.symIDs[string(entry)] = id
	}
	return id, nil
}

// schema reads a derived frame's schema at p and returns it and the offset
// after it.
func (d *Decoder) schema(frame []byte, p int) (*md.Schema, int, error) {
	start := p
	if p >= len(frame) {
		return nil, p, frameErr(ReasonTruncated, "before the schema")
	}
	p += 1 + int(frame[p])
	if p >= len(frame) {
		return nil, p, frameErr(ReasonTruncated, "in the schema")
	}
	nf := int(frame[p])
	p++
	for range nf {
		if p >= len(frame) {
			return nil, p, frameErr(ReasonTruncated, "in the schema's fields")
		}
		p += 1 + int(frame[p]) + 1
	}
	if p > len(frame) {
		return nil, p, frameErr(ReasonTruncated, "in the schema's fields")
	}
	raw := frame[start:p]
	if s, ok := d.schemas[string(raw)]; ok {
		return s, p, nil
	}
	q := 0
	name := string(raw[1 : 1+raw[0]])
	q = 1 + int(raw[0]) + 1
	fields := make([]md.Field, 0, nf)
	for range nf {
		l := int(raw[q])
		fname := string(raw[q+1 : q+1+l])
		t := raw[q+1+l]
		if t > byte(md.Int) {
			return nil, p, frameErr(ReasonSchema, "field %q has type byte %d", fname, t)
		}
		fields = append(fields, md.Field{Name: fname, Type: md.FieldType(t)})
		q += 1 + l + 1
	}
	s, err := md.NewSchema(name, fields...)
	if err != nil {
		return nil, p, frameErr(ReasonSchema, "%v", err)
	}
	if len(d.schemas) < maxCachedSchemas {
		d.schemas[string(raw)] = s
	}
	return s, p, nil
}
