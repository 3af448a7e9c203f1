package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// rowVals holds one row's raw value per mapped slot; nil for a field absent
// from the row. The slices point into the reader's buffers and are valid
// until the next row.
type rowVals [nSlots][]byte

// problem codes of a malformed row. A code is cheap to return per row; the
// message is built only when a row is reported.
type problem uint8

const (
	probNone problem = iota
	probMissing
	probInvalid
	probFields // too few CSV fields
	probSyntax // the row is not valid CSV / JSON
	probNumber // numbers that break md.CheckTrade / md.CheckQuote
)

// rowErr describes why a row was rejected.
type rowErr struct {
	prob  problem
	slot  slot
	value []byte // the offending value (probInvalid)
	have  int    // fields present (probFields)
	want  int
	msg   string // probSyntax
	num   md.Problem
}

func (e *rowErr) reason() string {
	switch e.prob {
	case probMissing:
		return "empty or missing " + slotNames[e.slot]
	case probInvalid:
		return fmt.Sprintf("invalid %s %q", slotNames[e.slot], e.value)
	case probFields:
		return fmt.Sprintf("row has %d fields, want at least %d", e.have, e.want)
	case probSyntax:
		return e.msg
	case probNumber:
		return e.num.String()
	}
	return "malformed row"
}

// decoder turns rowVals into records.
type decoder struct {
	kind   md.Kind
	ts     tsParser
	ingest tsParser
	mapped [nSlots]bool
	syms   *symResolver
	sizes  *md.SizeDecimals // decimal places of trade sizes, per symbol
	symbol []byte           // constant symbol, or nil
	prov   []byte           // constant provider, or nil
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

func (d *decoder) num(v *rowVals, s slot, required bool, e *rowErr) (float64, bool) {
	b := v[s]
	if len(b) == 0 {
		if required {
			*e = rowErr{prob: probMissing, slot: s}
			return 0, false
		}
		return 0, true
	}
	f, ok := parseFloat(b)
	if !ok {
		*e = rowErr{prob: probInvalid, slot: s, value: b}
	}
	return f, ok
}

// common decodes the fields every record has: times and instrument. ok is
// false when the row is malformed (e is set) or filtered out (e is zero).
func (d *decoder) common(v *rowVals, e *rowErr) (ts, ingest int64, sym md.SymID, ok bool) {
	b := v[slotTS]
	if len(b) == 0 {
		*e = rowErr{prob: probMissing, slot: slotTS}
		return
	}
	if ts, ok = d.ts.parse(b); !ok {
		*e = rowErr{prob: probInvalid, slot: slotTS, value: b}
		return
	}
	ingest = ts
	if b := v[slotIngest]; d.mapped[slotIngest] && len(b) > 0 {
		var ok2 bool
		if ingest, ok2 = d.ingest.parse(b); !ok2 {
			*e = rowErr{prob: probInvalid, slot: slotIngest, value: b}
			return 0, 0, 0, false
		}
	}
	symb := d.symbol
	if symb == nil {
		if symb = v[slotSymbol]; len(symb) == 0 {
			*e = rowErr{prob: probMissing, slot: slotSymbol}
			return 0, 0, 0, false
		}
	}
	prov := d.prov
	if prov == nil {
		if prov = v[slotProvider]; len(prov) == 0 {
			*e = rowErr{prob: probMissing, slot: slotProvider}
			return 0, 0, 0, false
		}
	}
	sym, ok = d.syms.resolve(prov, symb)
	return ts, ingest, sym, ok
}

// trade decodes a trade row.
func (d *decoder) trade(v *rowVals, t *md.Trade, e *rowErr) bool {
	ts, ingest, sym, ok := d.common(v, e)
	if !ok {
		return false
	}
	price, ok := d.num(v, slotPrice, true, e)
	if !ok {
		return false
	}
	size, ok := d.num(v, slotSize, true, e)
	if !ok {
		return false
	}
	if d.sizes != nil {
		d.sizes.Note(sym, tsparse.Decimals(v[slotSize]))
	}
	*t = md.Trade{TS: ts, Ingest: ingest, Price: price, Size: size, Sym: sym,
		Side: parseSide(v[slotSide]), TradeID: tradeID(v[slotTradeID])}
	if p := md.CheckTrade(t); !p.OK() {
		*e = rowErr{prob: probNumber, num: p}
		return false
	}
	return true
}

// quote decodes a quote row. Sizes are optional (FX quotes have none).
func (d *decoder) quote(v *rowVals, q *md.Quote, e *rowErr) bool {
	ts, ingest, sym, ok := d.common(v, e)
	if !ok {
		return false
	}
	// Either side may be empty (absent, 0); md.CheckQuote wants one.
	bid, ok := d.num(v, slotBid, false, e)
	if !ok {
		return false
	}
	ask, ok := d.num(v, slotAsk, false, e)
	if !ok {
		return false
	}
	bs, ok := d.num(v, slotBidSize, false, e)
	if !ok {
		return false
	}
	as, ok := d.num(v, slotAskSize, false, e)
	if !ok {
		return false
	}
	*q = md.Quote{TS: ts, Ingest: ingest, Bid: bid, BidSize: bs, Ask: ask, AskSize: as, Sym: sym}
	if p := md.CheckQuote(q); !p.OK() {
		*e = rowErr{prob: probNumber, num: p}
		return false
	}
	return true
}

// symResolver maps (provider, symbol) bytes to SymIDs, applying the symbols
// filter once per new instrument. In front of the per-provider maps sits a
// small direct-mapped cache keyed by a hash of the bytes: files that
// interleave many symbols then cost a hash and two byte comparisons per row
// instead of a map lookup that hashes the whole key.
type symResolver struct {
	table  *md.SymbolTable
	filter map[string]bool // nil: every symbol passes
	provs  map[string]*provSyms
	cache  [256]symCache
}

type symCache struct {
	prov, sym []byte
	id        md.SymID
	ok        bool
	used      bool
}

type provSyms struct {
	in  *md.Interner
	ids map[string]symEntry
}

type symEntry struct {
	id md.SymID
	ok bool // passes the symbols filter
}

func newSymResolver(t *md.SymbolTable, symbols []string) *symResolver {
	r := &symResolver{table: t, provs: map[string]*provSyms{}}
	if len(symbols) > 0 {
		r.filter = map[string]bool{}
		for _, s := range symbols {
			r.filter[s] = true
		}
	}
	return r
}

// symHash mixes the last eight bytes of the symbol, the lengths and the
// provider's first byte into a cache index.
func symHash(prov, sym []byte) uint8 {
	var w uint64
	if len(sym) >= 8 {
		w = binary.LittleEndian.Uint64(sym[len(sym)-8:])
	} else {
		var b [8]byte
		copy(b[:], sym)
		w = binary.LittleEndian.Uint64(b[:])
	}
	w ^= uint64(len(sym))<<56 ^ uint64(len(prov))<<48
	if len(prov) > 0 {
		w ^= uint64(prov[0]) << 40
	}
	return uint8((w * 0x9E3779B97F4A7C15) >> 56)
}

func (r *symResolver) resolve(prov, sym []byte) (md.SymID, bool) {
	c := &r.cache[symHash(prov, sym)]
	if c.used && bytes.Equal(sym, c.sym) && bytes.Equal(prov, c.prov) {
		return c.id, c.ok
	}
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
	c.prov = append(c.prov[:0], prov...)
	c.sym = append(c.sym[:0], sym...)
	c.id, c.ok, c.used = e.id, e.ok, true
	return e.id, e.ok
}
