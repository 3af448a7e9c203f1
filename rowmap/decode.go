package rowmap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// Vals holds one row's raw value per mapped Slot; nil for a field absent
// from the row. The slices point into the reader's buffers and are valid
// until the next row.
type Vals [NSlots][]byte

// Problem codes of a malformed row. A code is cheap to return per row; the
// message is built only when a row is reported.
type Problem uint8

const (
	ProbNone Problem = iota
	ProbMissing
	ProbInvalid
	ProbFields // too few CSV fields
	ProbSyntax // the row is not valid CSV / JSON
	ProbNumber // numbers that break md.CheckTrade / md.CheckQuote
)

// RowErr describes why a row was rejected.
type RowErr struct {
	Prob  Problem
	Slot  Slot
	Value []byte // the offending value (ProbInvalid)
	Have  int    // fields present (ProbFields)
	Want  int
	Msg   string // ProbSyntax
	Num   md.Problem
}

// Reason says in words why the row was rejected.
func (e *RowErr) Reason() string {
	switch e.Prob {
	case ProbMissing:
		return "empty or missing " + SlotNames[e.Slot]
	case ProbInvalid:
		return fmt.Sprintf("invalid %s %q", SlotNames[e.Slot], e.Value)
	case ProbFields:
		return fmt.Sprintf("row has %d fields, want at least %d", e.Have, e.Want)
	case ProbSyntax:
		return e.Msg
	case ProbNumber:
		return e.Num.String()
	}
	return "malformed row"
}

// Decoder turns Vals into records.
type Decoder struct {
	kind   md.Kind
	TS     TSParser // parses ts (a Parquet reader sets its column's unit)
	Ingest TSParser // parses ingest_ts
	mapped [NSlots]bool
	syms   *SymResolver
	sizes  *md.SizeDecimals // decimal places of trade sizes, per symbol
	symbol []byte           // constant symbol, or nil
	prov   []byte           // constant provider, or nil
	// sizeLog, when on (LogSizeDecimals), replaces sizes: growth of an
	// instrument's size decimals is queued for TakeSizeNotes instead of
	// reported to the table, so a decoder on its own goroutine and table
	// can hand it to the job's table in order.
	sizeLog  bool
	sizeSeen []int8
	notes    []SizeNote
}

// SizeNote is a growth of an instrument's size decimal places, queued by
// a decoder that logs them (LogSizeDecimals).
type SizeNote struct {
	Sym      md.SymID
	Decimals int
}

// LogSizeDecimals makes the decoder queue the growth of each instrument's
// size decimals (see TakeSizeNotes) rather than report it to its table.
func (d *Decoder) LogSizeDecimals() { d.sizeLog, d.sizes = true, nil }

// TakeSizeNotes appends the queued size-decimal growths to dst, oldest
// first, and clears the queue.
func (d *Decoder) TakeSizeNotes(dst []SizeNote) []SizeNote {
	dst = append(dst, d.notes...)
	d.notes = d.notes[:0]
	return dst
}

// NotesLen is the number of size-decimal growths queued since the last
// TakeSizeNotes.
func (d *Decoder) NotesLen() int { return len(d.notes) }

// logSize queues the growth of sym's size decimals to n.
func (d *Decoder) logSize(sym md.SymID, n int) {
	if int(sym) < len(d.sizeSeen) && int(d.sizeSeen[sym]) >= n {
		return
	}
	for int(sym) >= len(d.sizeSeen) {
		d.sizeSeen = append(d.sizeSeen, -1)
	}
	if n < 0 || int(d.sizeSeen[sym]) >= n {
		return
	}
	d.sizeSeen[sym] = int8(min(n, 127))
	d.notes = append(d.notes, SizeNote{Sym: sym, Decimals: n})
}

// parseFloat parses a price or size: a plain decimal number, with an
// optional sign and exponent, finite, of at most 64 bytes (tsparse.ParseFloat,
// bit-identical to strconv). Hex floats ("0x1p3"), NaN, Inf and underscores
// are not numbers in a CSV or JSON-lines file.
func parseFloat(b []byte) (float64, bool) { return tsparse.ParseFloat(b) }

// parseInt parses a decimal int64 of at most 19 bytes (sign included).
func parseInt(b []byte) (int64, bool) {
	if len(b) > 19 {
		return 0, false
	}
	return tsparse.ParseInt(b)
}

// tradeID parses a numeric id; any other id is hashed (xxhash64, top bit
// cleared) so that equal ids still compare equal downstream.
func tradeID(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	if n, ok := parseInt(b); ok {
		return n
	}
	return int64(xxhash.Sum64(b) & math.MaxInt64)
}

// parseSide reads buy/sell spellings; anything else is unknown. A switch on
// string(b) compiles to comparisons without allocating.
func parseSide(b []byte) md.Side {
	switch string(b) {
	case "buy", "Buy", "BUY", "b", "B", "bid", "BID":
		return md.SideBuy
	case "sell", "Sell", "SELL", "s", "S", "ask", "ASK":
		return md.SideSell
	}
	return md.SideUnknown
}

func (d *Decoder) num(v *Vals, s Slot, required bool, e *RowErr) (float64, bool) {
	b := v[s]
	if len(b) == 0 {
		if required {
			*e = RowErr{Prob: ProbMissing, Slot: s}
			return 0, false
		}
		return 0, true
	}
	f, ok := parseFloat(b)
	if !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: s, Value: b}
	}
	return f, ok
}

// seq parses the optional seq column (mdp's own JSON and CSV carry it).
func (d *Decoder) seq(v *Vals, e *RowErr) (uint64, bool) {
	b := v[SlotSeq]
	if len(b) == 0 {
		return 0, true
	}
	n, ok := parseInt(b)
	if !ok || n < 0 {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotSeq, Value: b}
		return 0, false
	}
	return uint64(n), true
}

// common decodes the fields every record has: times and instrument. ok is
// false when the row is malformed (e is set) or filtered out (e is zero).
func (d *Decoder) common(v *Vals, e *RowErr) (ts, ingest int64, sym md.SymID, ok bool) {
	b := v[SlotTS]
	if len(b) == 0 {
		*e = RowErr{Prob: ProbMissing, Slot: SlotTS}
		return
	}
	if ts, ok = d.TS.Parse(b); !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotTS, Value: b}
		return
	}
	ingest = ts
	if b := v[SlotIngest]; d.mapped[SlotIngest] && len(b) > 0 {
		var ok2 bool
		if ingest, ok2 = d.Ingest.Parse(b); !ok2 {
			*e = RowErr{Prob: ProbInvalid, Slot: SlotIngest, Value: b}
			return 0, 0, 0, false
		}
	}
	symb := d.symbol
	if symb == nil {
		if symb = v[SlotSymbol]; len(symb) == 0 {
			*e = RowErr{Prob: ProbMissing, Slot: SlotSymbol}
			return 0, 0, 0, false
		}
	}
	prov := d.prov
	if prov == nil {
		if prov = v[SlotProvider]; len(prov) == 0 {
			*e = RowErr{Prob: ProbMissing, Slot: SlotProvider}
			return 0, 0, 0, false
		}
	}
	sym, ok = d.syms.Resolve(prov, symb)
	return ts, ingest, sym, ok
}

// trade decodes a trade row.
func (d *Decoder) Trade(v *Vals, t *md.Trade, e *RowErr) bool {
	ts, ingest, sym, ok := d.common(v, e)
	if !ok {
		return false
	}
	price, ok := d.num(v, SlotPrice, true, e)
	if !ok {
		return false
	}
	// The size and its decimal places (the instrument's precision) in one
	// scan.
	sb := v[SlotSize]
	if len(sb) == 0 {
		*e = RowErr{Prob: ProbMissing, Slot: SlotSize}
		return false
	}
	size, dec, ok := tsparse.ParseFloatDecimals(sb)
	if !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotSize, Value: sb}
		return false
	}
	if d.sizes != nil {
		d.sizes.Note(sym, dec)
	} else if d.sizeLog {
		d.logSize(sym, dec)
	}
	seq, ok := d.seq(v, e)
	if !ok {
		return false
	}
	*t = md.Trade{TS: ts, Ingest: ingest, Price: price, Size: size, Sym: sym,
		Side: parseSide(v[SlotSide]), TradeID: tradeID(v[SlotTradeID]), Seq: seq}
	if p := md.CheckTrade(t); !p.OK() {
		*e = RowErr{Prob: ProbNumber, Num: p}
		return false
	}
	return true
}

// quote decodes a quote row. Sizes are optional (FX quotes have none).
func (d *Decoder) Quote(v *Vals, q *md.Quote, e *RowErr) bool {
	ts, ingest, sym, ok := d.common(v, e)
	if !ok {
		return false
	}
	// Either side may be empty (absent, 0); md.CheckQuote wants one.
	bid, ok := d.num(v, SlotBid, false, e)
	if !ok {
		return false
	}
	ask, ok := d.num(v, SlotAsk, false, e)
	if !ok {
		return false
	}
	bs, ok := d.num(v, SlotBidSize, false, e)
	if !ok {
		return false
	}
	as, ok := d.num(v, SlotAskSize, false, e)
	if !ok {
		return false
	}
	seq, ok := d.seq(v, e)
	if !ok {
		return false
	}
	*q = md.Quote{TS: ts, Ingest: ingest, Bid: bid, BidSize: bs, Ask: ask, AskSize: as, Sym: sym, Seq: seq}
	if p := md.CheckQuote(q); !p.OK() {
		*e = RowErr{Prob: ProbNumber, Num: p}
		return false
	}
	return true
}

// SymResolver maps (provider, symbol) bytes to SymIDs, applying the symbols
// filter once per new instrument. In front of the per-provider maps sits an
// open-addressing table (at most a quarter full) of the pairs seen, each
// keyed by the words that spell it (a key of up to sixteen bytes is its first and last eight bytes,
// or four, and its length, so two loads), found by a multiplicative hash of
// them and confirmed by comparing the words: a pair costs a few loads and
// compares per row, not a map lookup that hashes a string key.
type SymResolver struct {
	table  *md.SymbolTable
	filter map[string]bool // nil: every symbol passes
	provs  map[string]*provSyms
	slots  []symSlot // a power of two long, at most a quarter full
	used   int
}

// symSlot is one pair of the table; lens is 0 in an empty slot.
type symSlot struct {
	sa, sz, pa, pz uint64 // symWords of the symbol and the provider
	lens           uint64 // len(sym)<<32 | len(prov)<<1 | 1
	prov, sym      []byte // the pair, compared when a key is longer than 16 bytes
	id             md.SymID
	ok             bool
}

type provSyms struct {
	in  *md.Interner
	ids map[string]symEntry
}

type symEntry struct {
	id md.SymID
	ok bool // passes the symbols filter
}

func NewSymResolver(t *md.SymbolTable, symbols []string) *SymResolver {
	r := &SymResolver{table: t, provs: map[string]*provSyms{}, slots: make([]symSlot, 256)}
	if len(symbols) > 0 {
		r.filter = map[string]bool{}
		for _, s := range symbols {
			r.filter[s] = true
		}
	}
	return r
}

// symWords are the words that, with its length, spell a key of at most 16
// bytes: its first and last eight bytes (four, when shorter), which
// overlap and cover it, or its bytes for fewer than four. Of a longer key
// they are a fingerprint.
func symWords(b []byte) (a, z uint64) {
	switch n := len(b); {
	case n >= 8:
		return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	}
	for i, c := range b {
		a |= uint64(c) << (8 * i)
	}
	return a, 0
}

// Resolve returns the id of (prov, sym) and whether the pair passes the
// symbols filter.
func (r *SymResolver) Resolve(prov, sym []byte) (md.SymID, bool) {
	sa, sz := symWords(sym)
	pa, pz := symWords(prov)
	lens := uint64(len(sym))<<32 | uint64(len(prov))<<1 | 1
	mask := uint64(len(r.slots) - 1)
	for h := slotHash(sa, sz, pa, pz, lens); ; h++ {
		c := &r.slots[h&mask]
		if c.lens == 0 {
			break
		}
		if c.sa == sa && c.sz == sz && c.pa == pa && c.pz == pz && c.lens == lens &&
			(len(sym) <= 16 && len(prov) <= 16 || bytes.Equal(sym, c.sym) && bytes.Equal(prov, c.prov)) {
			return c.id, c.ok
		}
	}
	e := r.lookup(prov, sym)
	if 4*(r.used+1) > len(r.slots) { // at most a quarter full: short probes
		r.grow()
	}
	r.insert(symSlot{sa: sa, sz: sz, pa: pa, pz: pz, lens: lens, prov: bytes.Clone(prov), sym: bytes.Clone(sym), id: e.id, ok: e.ok})
	return e.id, e.ok
}

// lookup resolves a pair the table does not hold, through the maps.
func (r *SymResolver) lookup(prov, sym []byte) symEntry {
	ps := r.provs[string(prov)]
	if ps == nil {
		p := string(prov)
		ps = &provSyms{in: md.NewInterner(r.table, p), ids: map[string]symEntry{}}
		r.provs[p] = ps
	}
	e, found := ps.ids[string(sym)]
	if !found {
		e.ok = r.filter == nil || r.filter[string(sym)]
		if e.ok {
			e.id = ps.in.IDBytes(sym)
		}
		ps.ids[string(sym)] = e
	}
	return e
}

// slotHash is where a pair's probe starts in the table.
func slotHash(sa, sz, pa, pz, lens uint64) uint64 {
	return ((sa ^ sz*0x94D049BB133111EB ^ pa*0xBF58476D1CE4E5B9 ^ pz ^ lens) * 0x9E3779B97F4A7C15) >> 32
}

// insert puts s, not in the table, into the first free slot of its probe.
func (r *SymResolver) insert(s symSlot) {
	mask := uint64(len(r.slots) - 1)
	h := slotHash(s.sa, s.sz, s.pa, s.pz, s.lens)
	for r.slots[h&mask].lens != 0 {
		h++
	}
	r.slots[h&mask] = s
	r.used++
}

// grow doubles the table.
func (r *SymResolver) grow() {
	old := r.slots
	r.slots, r.used = make([]symSlot, 2*len(old)), 0
	for _, s := range old {
		if s.lens != 0 {
			r.insert(s)
		}
	}
}

// NewDecoder returns a decoder of the layout's records, interning symbols
// into t; with symbols, only those symbols pass (the others are skipped
// without a problem).
func NewDecoder(l *Layout, t *md.SymbolTable, symbols []string) *Decoder {
	d := &Decoder{kind: l.Kind, syms: NewSymResolver(t, symbols), sizes: md.NewSizeDecimals(t)}
	d.TS, _ = NewTSParser(l.TSFormat, l.Loc) // checked by Resolve
	d.Ingest = d.TS
	for s := range l.Columns {
		d.mapped[s] = true
	}
	if l.Symbol != "" {
		d.symbol = []byte(l.Symbol)
	}
	if l.Provider != "" {
		d.prov = []byte(l.Provider)
	}
	return d
}

// UnitParser parses epoch numbers in unit (ns per unit).
func UnitParser(unit int64) TSParser { return TSParser{kind: tsUnit, unit: unit} }
