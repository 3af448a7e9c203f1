package rowmap

import (
	"encoding/binary"
	"math"
	"strings"
	"unsafe"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// CSVFast is a fused decoder of trade rows in the tardis column order
// (exchange,symbol,timestamp,local_timestamp,id,side,price,amount, the
// tardis_trades preset with its header): it decodes each column while it
// scans for the column's end, with no field slice, no per-field slot
// dispatch and no second pass over a number. It takes the plain rows (no
// quote, no padding, numbers as unsigned decimal digits, integer epoch
// times) and hands everything else back to the generic path (Split, then
// Decoder.Trade), which decodes or reports it; a row it decodes is the
// record the generic path would produce, with the same side effects on the
// symbol table and the size decimals.
type CSVFast struct {
	delim             byte
	tsUnit, ingUnit   int64
	tsLimit, ingLimit uint64 // the largest count of units in range
	buyWord           uint32 // "buy" and the delimiter as a little-endian word
	delimWord         uint64 // the delimiter in every byte
	// The last plain exchange of fewer than eight bytes, with its
	// delimiter: its length, and the word and mask that match it at the
	// start of a row; before one, provWord 1 and provMask 0, which match
	// no row.
	provLen            int
	provWord, provMask uint64
	// The previous row's symbol and id lengths when below eight, the
	// guesses for this row's; 0 for none.
	symLen, idLen int
	syms          *symCache       // the ids of the memo's exchange's short symbols
	times, itimes tsparse.Times16 // memos of the two time columns: local times differ from the event times
}

// FastResult is what CSVFast.Trade did with a row.
type FastResult uint8

const (
	// FastFallback: the row was not decoded and nothing was changed but
	// the trade, which holds any values; the generic path decodes or
	// reports the row.
	FastFallback FastResult = iota
	// FastOK: the row was decoded into the trade.
	FastOK
	// FastSkip: the row's symbol is not in the symbols filter; no record
	// and no problem, as on the generic path.
	FastSkip
)

// tardisTradeCols is the column order CSVFast reads: column i holds slot
// tardisTradeCols[i].
var tardisTradeCols = [...]Slot{SlotProvider, SlotSymbol, SlotTS, SlotIngest, SlotTradeID, SlotSide, SlotPrice, SlotSize}

// NewCSVFast returns the fused decoder for d's rows when their columns
// (cols, from Layout.CSVColumns) are the tardis trades order and both
// times are epoch numbers of a fixed unit; ok is false otherwise.
func NewCSVFast(d *Decoder, cols []SlotCol, delim byte) (f CSVFast, ok bool) {
	if d.kind != md.KindTrade || d.symbol != nil || d.prov != nil || d.TS.kind != tsUnit || d.Ingest.kind != tsUnit ||
		len(cols) != len(tardisTradeCols) || delim-'0' <= 9 || strings.IndexByte(".\"\r\n ", delim) >= 0 {
		return f, false
	}
	for _, sc := range cols {
		if sc.Col >= len(tardisTradeCols) || tardisTradeCols[sc.Col] != sc.Slot {
			return f, false
		}
	}
	f = CSVFast{delim: delim, tsUnit: d.TS.unit, ingUnit: d.Ingest.unit, buyWord: 'b' | 'u'<<8 | 'y'<<16 | uint32(delim)<<24, provWord: 1,
		delimWord: uint64(delim) * 0x0101010101010101, syms: new(symCache)}
	if f.tsUnit <= 0 || f.ingUnit <= 0 {
		return f, false
	}
	f.tsLimit, f.ingLimit = uint64(tsparse.MaxNanos/f.tsUnit), uint64(tsparse.MaxNanos/f.ingUnit)
	return f, true
}

// plainText reports whether a text field reads the same on the generic
// path: it does not open a quoted field and has no padding to trim.
func plainText(b []byte) bool {
	return len(b) == 0 || b[0] != '"' && b[0] != ' ' && b[len(b)-1] != ' '
}

// Trade decodes line (without its line ending) into t.
func (f *CSVFast) Trade(d *Decoder, line []byte, t *md.Trade) FastResult {
	res, _ := f.one(d, line, t, false)
	return res
}

// TradeAt decodes the row that starts at b[0] and ends with a line ending
// ("\n" or "\r\n") inside b, with the rows after it in b: a window of a
// read buffer, so no search for the line's end comes first. It returns what
// Trade returns for the row, and the index after its line ending when the
// result is not FastFallback. A row it does not take (one cut by the end
// of b, one with columns after the amount, anything Trade does not take)
// is left to the caller's line reader, with nothing changed.
func (f *CSVFast) TradeAt(d *Decoder, b []byte, t *md.Trade) (FastResult, int) {
	return f.one(d, b, t, true)
}

// RowsAt is TradeAt for the rows of the window b one after another, with
// no call between them: it decodes them into out until out is full or a
// row TradeAt leaves to the line reader, which it leaves untouched. A row
// of a symbol the symbols filter leaves out (FastSkip), and, when span is
// set, one whose event time is outside [from, to), is taken and not
// stored. It returns how many trades it stored in out (in order, from
// out[0]), how many bytes of b and rows it took (those left out
// included), and where in b the last row it took starts.
func (f *CSVFast) RowsAt(d *Decoder, b []byte, out []md.Trade, span bool, from, to int64) (stored, used, rows, last int) {
	return f.rows(d, b, out, math.MaxInt, true, span, from, to)
}

// one is Trade (window false) and TradeAt (window true): rows for one row.
func (f *CSVFast) one(d *Decoder, b []byte, t *md.Trade, window bool) (FastResult, int) {
	stored, used, rows, _ := f.rows(d, b, unsafe.Slice(t, 1), 1, window, false, 0, 0)
	return oneResult(stored, used, rows)
}

// rows decodes the rows of b into out, at most maxRows of them, as
// RowsAt describes: b is a window (window true) or one line without its
// ending (false, and maxRows 1). In a window the text scans stop at a
// '\n' as well as at the delimiter, so a row never runs into the next one.
// Rows follow one another in one loop: the call per row it replaced cost
// 2.4 ns a row (BenchmarkParseCSV, 39.7 against 37.3, nine alternating
// rounds).
//
// The common case makes no call: a call spills every live value of the
// row to the stack and reloads it (Go's calling convention saves no
// register across a call), which cost more than the work of the callees.
// So the sixteen-digit times go through the memo's inlined check
// (Times16.Fast), the decimals are scanned here, and the symbol is looked
// up in the cache or the resolver's table here; anything else calls the
// general function (Times16.Scan, SymResolver.Resolve) and gets the same
// result.
func (f *CSVFast) rows(d *Decoder, b []byte, out []md.Trade, maxRows int, window, span bool, from, to int64) (stored, used, rows, last int) {
	for rows < maxRows && stored < len(out) {
		line, t := b[used:], &out[stored]
		delim := f.delim
		// exchange: the previous row's (a file is mostly of one exchange),
		// compared as one word with its delimiter, else text up to the
		// delimiter.
		i := f.provLen
		memo := true // the exchange is the memo's, whose symbols f.syms holds
		if len(line) < 8 || binary.LittleEndian.Uint64(line)&f.provMask != f.provWord {
			memo = false
			i = scanText(line, 0, delim)
			if i == 0 || i == len(line) || line[i] != delim || !plainText(line[:i]) {
				return stored, used, rows, last
			}
			if i < 8 && len(line) >= 8 { // the memo: only a plain exchange
				f.provLen, f.provMask = i, 1<<(8*(i+1))-1
				f.provWord = binary.LittleEndian.Uint64(line) & f.provMask
				f.syms.next()
			}
		}
		prov := line[:i]
		// symbol: as long as the previous row's when that holds (no delimiter
		// or '\n' in as many bytes, the delimiter after them; checked on one
		// word), else scanned. The guess gives the next field's start without
		// waiting on this one's bytes, as a predicted loop exit does, with
		// fewer instructions than the loop.
		// Its key in the symbol cache (symKey) comes from the same word.
		s := i + 1
		var key uint64
		if l := f.symLen; l > 0 && s+8 <= len(line) && f.sepMask(x(line, s))&(1<<(8*l)-1) == 0 && line[s+l] == delim {
			i = s + l
			key = x(line, s)&(1<<(8*l)-1) | uint64(l)<<56
		} else {
			i = scanText(line, s, delim)
			if i-s < 8 {
				f.symLen = i - s
			}
			if i == s || i == len(line) || line[i] != delim {
				return stored, used, rows, last
			}
			key = symKey(line[s:i])
		}
		sym := line[s:i]
		if !plainText(sym) {
			return stored, used, rows, last
		}
		if !memo {
			key = 0 // the cache holds the memo's exchange's symbols only
		}
		// timestamp, local_timestamp: sixteen digits through each column's memo
		// of the first twelve, else digits eight at a time.
		s = i + 1
		var n uint64
		ok := false
		if i = s + 16; i < len(line) && line[i] == delim {
			n, ok = f.times.Fast(binary.LittleEndian.Uint64(line[s:]), binary.LittleEndian.Uint64(line[s+8:]))
		}
		if !ok { // (Fast's sixteen digits end at a delimiter: no check)
			n, i = f.times.Scan(line, s)
			if i == s || i-s > 18 || i >= len(line) || line[i] != delim {
				return stored, used, rows, last
			}
		}
		if n > f.tsLimit {
			return stored, used, rows, last
		}
		ts := int64(n) * f.tsUnit
		ingest := ts // an empty local_timestamp is the event time
		s, ok = i+1, false
		if i = s + 16; i < len(line) && line[i] == delim {
			n, ok = f.itimes.Fast(binary.LittleEndian.Uint64(line[s:]), binary.LittleEndian.Uint64(line[s+8:]))
		}
		if !ok {
			n, i = f.itimes.Scan(line, s)
			if i-s > 18 || i >= len(line) || line[i] != delim {
				return stored, used, rows, last
			}
		}
		if i != s {
			if n > f.ingLimit {
				return stored, used, rows, last
			}
			ingest = int64(n) * f.ingUnit
		}
		// Each decoded value goes to *t as soon as it is known: a value kept in
		// a register to the end of the row is one register fewer for the
		// decimals' loops, which then kept their mantissa on the stack.
		t.TS, t.Ingest = ts, ingest
		// id: digits, else any text (hashed, as tradeID does).
		// As many digits as the previous row's id when that holds (checked
		// and converted on one word), else a byte loop.
		s = i + 1
		var id int64
		const hi, six, zeros = 0xF0F0F0F0F0F0F0F0, 0x0606060606060606, 0x3030303030303030
		if l := f.idLen; l > 0 && s+8 <= len(line) && ((x(line, s)&hi^zeros)|((x(line, s)+six)&hi^zeros))&(1<<(8*l)-1) == 0 && line[s+l] == delim {
			id, i = int64(tsparse.Digits8((x(line, s)-zeros)<<(64-8*l))), s+l
		} else {
			for n, i = 0, s; i < len(line) && line[i]-'0' <= 9; i++ {
				n = n*10 + uint64(line[i]-'0') // wraps only past 19 digits, rejected below
			}
			if i-s < 8 {
				f.idLen = i - s
			}
			if i < len(line) && line[i] == delim && i-s <= 18 {
				id = int64(n)
			} else {
				i = scanText(line, s, delim)
				if i == len(line) || line[i] != delim || !plainText(line[s:i]) {
					return stored, used, rows, last
				}
				id = tradeID(line[s:i])
			}
		}
		t.TradeID = id
		// side: "buy" and "sell" by one word compare each, without a branch
		// (the two alternate at random); anything else as text.
		s = i + 1
		var side md.Side
		if s+5 <= len(line) {
			w := binary.LittleEndian.Uint32(line[s:])
			// b2u & b2u, not &&: a short-circuit would be the branch.
			sell := b2u(w == sellWord) & b2u(line[s+4] == delim)
			side = md.Side(b2u(w == f.buyWord) | sell<<1) // SideBuy 1, SideSell 2
			i = s + 3 + int(sell)
		}
		if side == md.SideUnknown {
			i = scanText(line, s, delim)
			if i == len(line) || line[i] != delim || !plainText(line[s:i]) {
				return stored, used, rows, last
			}
			side = parseSide(line[s:i])
		}
		t.Side = side
		// price, amount: a decimal's mantissa and the place of its '.' read
		// while scanning, then Clinger's exact fast path: one division, as
		// tsparse.ScanDecimal (the same conditions, the same bits). In a line
		// the amount is the last column read (what follows it is ignored, as
		// by Split's limit); in a window it must end the row.
		//
		// The scan is scanMantissa's, written here as two loops (scanDigits)
		// that carry only the integer and the index: scanMantissa's one loop,
		// carrying the '.' as well, had the compiler shuffle three registers on
		// every digit, and scanMantissa with two loops is too large to inline.
		s = i + 1
		m, i := scanDigits(line, 0, s)
		dot := -1
		if i < len(line) && line[i] == '.' {
			dot = i
			m, i = scanDigits(line, m, i+1)
		}
		frac, ok := exactDecimal(m, s, dot, i)
		if !ok || m == 0 || i >= len(line) || line[i] != delim {
			return stored, used, rows, last // !(price > 0): zero is not a price
		}
		t.Price = float64(m) / pow10[frac&31] // frac <= 18: no bounds check
		s = i + 1
		m, i = scanDigits(line, 0, s)
		dot = -1
		if i < len(line) && line[i] == '.' {
			dot = i
			m, i = scanDigits(line, m, i+1)
		}
		dec, ok := exactDecimal(m, s, dot, i)
		if !ok {
			return stored, used, rows, last
		}
		t.Size = float64(m) / pow10[dec&31]
		if window {
			switch {
			case i < len(line) && line[i] == '\n':
				i++
			case i+1 < len(line) && line[i] == '\r' && line[i+1] == '\n':
				i += 2
			default:
				return stored, used, rows, last
			}
		} else if i < len(line) && line[i] != delim {
			return stored, used, rows, last
		}
		// The symbol: the memo's exchange's cache, else the resolver's table
		// probed here (SymResolver.Resolve's hit path; a miss, or a key longer
		// than sixteen bytes, calls it), and the cache filled.
		var sid md.SymID
		if cs, hit := f.syms.get(key); hit {
			sid, ok = cs.id, cs.ok
		} else {
			sa, sz := symWords(sym)
			pa, pz := symWords(prov)
			lens := uint64(len(sym))<<32 | uint64(len(prov))<<1 | 1
			r := d.syms
			mask := uint64(len(r.slots) - 1)
			for h := slotHash(sa, sz, pa, pz, lens); ; h++ {
				c := &r.slots[h&mask]
				if c.lens == lens && c.sa == sa && c.sz == sz && c.pa == pa && c.pz == pz && len(sym) <= 16 && len(prov) <= 16 {
					sid, ok = c.id, c.ok
					break
				}
				if c.lens == 0 || len(sym) > 16 || len(prov) > 16 {
					sid, ok = r.Resolve(prov, sym)
					break
				}
			}
			f.syms.put(cs, key, sid, ok)
		}
		if !ok { // a symbol the filter leaves out: taken, not stored
			used, rows, last = used+i, rows+1, used
			continue
		}
		if d.sizes != nil {
			d.sizes.Note(sid, dec)
		} else if d.sizeLog {
			d.logSize(sid, dec)
		}
		// The rest of the fields (as the others, field by field: a whole-struct
		// store is built on the stack first and copied in 16-byte moves that
		// stall on the narrower stores before them).
		t.Seq, t.Sym = 0, sid
		used, rows, last = used+i, rows+1, used
		if !span || t.TS >= from && t.TS < to {
			stored++
		}
	}
	return stored, used, rows, last
}

// oneResult is what the decoders' rows did with one row: taken and
// stored (FastOK, with the bytes taken), taken and left out (FastSkip), or
// not taken (FastFallback).
func oneResult(stored, used, rows int) (FastResult, int) {
	switch {
	case rows == 0:
		return FastFallback, 0
	case stored == 0:
		return FastSkip, used
	}
	return FastOK, used
}

// b2u is 1 for true, 0 for false, without a branch.
func b2u(b bool) uint8 {
	var u uint8
	if b {
		u = 1
	}
	return u
}

// scanMantissa reads the plain decimal at line[s:] ("9682.19", "7", ".5")
// while it scans for its end, the first byte that is neither a digit nor
// its one '.': it returns the digits as one integer (wrapped past 19
// digits), the index of the '.' (-1: none) and the end. exactDecimal then
// says whether the integer and its places are the number exactly. Two
// functions, not one, so that each is inlined into the fused decoders'
// loops (a call there spills the row's values: measured slower).
func scanMantissa(line []byte, s int) (m uint64, dot, end int) {
	dot, end = -1, s
	for ; end < len(line); end++ {
		c := line[end]
		if c-'0' <= 9 {
			m = m*10 + uint64(c-'0')
			continue
		}
		if c != '.' || dot >= 0 {
			break
		}
		dot = end
	}
	return m, dot, end
}

// scanDigits reads the decimal digits at line[i:] onto m and returns it with
// the index of the first byte that is not a digit.
func scanDigits(line []byte, m uint64, i int) (uint64, int) {
	for ; i < len(line) && line[i]-'0' <= 9; i++ {
		m = m*10 + uint64(line[i]-'0') // wraps past 19 digits
	}
	return m, i
}

// exactDecimal is the places after the '.' of the decimal scanMantissa
// read from line[s:end], and whether float64(m) / pow10[places] is it
// exactly (Clinger's fast path, as tsparse.ScanDecimal, the same
// conditions and bits): at least one digit, at most 19 (m did not wrap),
// and m below 2^53.
func exactDecimal(m uint64, s, dot, end int) (places int, ok bool) {
	if dot >= 0 {
		places = end - dot - 1
	}
	k := end - s
	return places, k <= 19 && k > 0 && !(k == 1 && dot >= 0) && m < 1<<53
}

// pow10 are the powers of ten a float64 holds exactly, as many as a
// decimal of at most 19 bytes has places.
var pow10 = [32]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// sellWord is "sell" as a little-endian word.
const sellWord = 's' | 'e'<<8 | 'l'<<16 | 'l'<<24

// scanText returns the index of the first delim or '\n' at or after
// line[i], or len(line). A byte loop: the short text fields of a row have
// lengths that repeat from row to row, so its exit branch is predicted and
// the next field's scan starts speculatively, where a SWAR search
// (indexDelim) makes every field's start wait on the previous field's bit
// arithmetic.
func scanText(line []byte, i int, delim byte) int {
	for i < len(line) && line[i] != delim && line[i] != '\n' {
		i++
	}
	return i
}

// sepMask has its lowest set bit in the first byte of x (a word loaded
// little-endian from a row) that is the delimiter or a '\n', and is 0 when
// there is none. Borrows can set bits above the lowest one only.
func (f *CSVFast) sepMask(x uint64) uint64 {
	const lo, hi, nl = 0x0101010101010101, 0x8080808080808080, 0x0a0a0a0a0a0a0a0a
	d, n := x^f.delimWord, x^nl
	return ((d-lo)&^d | (n-lo)&^n) & hi
}

// x is the word at line[i:], little-endian.
func x(line []byte, i int) uint64 { return binary.LittleEndian.Uint64(line[i:]) }
