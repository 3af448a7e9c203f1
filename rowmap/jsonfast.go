package rowmap

import (
	"encoding/binary"
	"math"
	"strings"
	"unsafe"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// JSONFast is the fused decoder of JSON-lines trade rows written as the
// tardis trades layout maps them, keys in the tardis column order and
// nothing else:
//
//	{"exchange":"…","symbol":"…","timestamp":N,"local_timestamp":N,"id":N,"side":"…","price":D,"amount":D}
//
// (the key names are the layout's). Each key is matched as a literal in
// place, strings are taken without a copy, numbers are read while
// scanning. A row that differs in any way (whitespace, other keys or
// order, escapes, null, quoted numbers, exponents) goes back to the
// generic path (JSONScanner.Scan, then Decoder.Trade), with nothing
// changed; a row JSONFast decodes is the record the generic path would
// produce, with the same effects on the symbol table and size decimals.
type JSONFast struct {
	keys [len(tardisTradeCols)]string  // `{"exchange":`, then `,"symbol":` …
	lits [len(tardisTradeCols)]jsonLit // the keys as words
	// provLit is the memo of the last row's start, `{"exchange":"…"`, when
	// at most 24 bytes: a row that starts so has that exchange (as
	// CSVFast's provWord); its span is past any row before one.
	provLit           jsonLit
	syms              *symCache // the ids of the memo's exchange's short symbols
	tsUnit, ingUnit   int64
	tsLimit, ingLimit uint64
	times, itimes     tsparse.Times16 // memos of the two time columns: local times differ from the event times
}

// NewJSONFast returns the fused decoder for d's rows when the layout maps
// exactly the tardis trades fields, by key, and both times are epoch
// numbers of a fixed unit; ok is false otherwise.
func NewJSONFast(d *Decoder, l *Layout) (f JSONFast, ok bool) {
	if d.kind != md.KindTrade || d.symbol != nil || d.prov != nil || d.TS.kind != tsUnit || d.Ingest.kind != tsUnit ||
		len(l.Columns) != len(tardisTradeCols) || d.TS.unit <= 0 || d.Ingest.unit <= 0 {
		return f, false
	}
	for k, s := range tardisTradeCols {
		c, ok := l.Columns[s]
		if !ok || c.Index >= 0 || strings.ContainsAny(c.Name, "\"\\\n") || len(c.Name) > 20 { // a key literal of at most 24 bytes
			return f, false
		}
		sep := ","
		if k == 0 {
			sep = "{"
		}
		f.keys[k] = sep + `"` + c.Name + `":`
		f.lits[k] = newJSONLit([]byte(f.keys[k]))
	}
	f.provLit.span = math.MaxInt
	f.syms = new(symCache)
	f.tsUnit, f.ingUnit = d.TS.unit, d.Ingest.unit
	f.tsLimit, f.ingLimit = uint64(tsparse.MaxNanos/f.tsUnit), uint64(tsparse.MaxNanos/f.ingUnit)
	return f, true
}

// jsonLit is a key literal as up to three words, compared without a call
// (a comparison of strings of variable length calls the runtime, and a call
// spills the row's live values): the words at offsets 0, o1 and o2 of the
// literal, masked, which cover it (overlapping when it is not a multiple of
// eight long). NewJSONFast takes keys of up to 24 bytes.
type jsonLit struct {
	n      int // its length
	span   int // bytes read: max(n, 8)
	o1, o2 int
	w, m   [3]uint64
}

func newJSONLit(key []byte) jsonLit {
	l := jsonLit{n: len(key), span: max(len(key), 8)}
	var b [32]byte // no allocation: the exchange memo makes one per change of exchange
	copy(b[:], key)
	l.o1, l.o2 = max(len(key)-8, 0), max(len(key)-8, 0)
	if len(key) > 16 {
		l.o1 = 8
	}
	for k, o := range [3]int{0, l.o1, l.o2} {
		l.m[k] = ^uint64(0)
		if len(key) < 8 {
			l.m[k] = 1<<(8*len(key)) - 1
		}
		l.w[k] = binary.LittleEndian.Uint64(b[o:]) & l.m[k]
	}
	return l
}

// at returns the index after the literal when line has it at i, or -1;
// like litAt, and also -1 when fewer than eight bytes are left at i.
func (l *jsonLit) at(line []byte, i int) int {
	if i < 0 || len(line)-i < l.span {
		return -1
	}
	b := line[i:]
	if binary.LittleEndian.Uint64(b)&l.m[0] != l.w[0] || binary.LittleEndian.Uint64(b[l.o1:])&l.m[1] != l.w[1] ||
		binary.LittleEndian.Uint64(b[l.o2:])&l.m[2] != l.w[2] {
		return -1
	}
	return i + l.n
}

// litAt returns the index after key when line has it at i, or -1.
func litAt(line []byte, i int, key string) int {
	if i < 0 || len(line)-i < len(key) || string(line[i:i+len(key)]) != key {
		return -1
	}
	return i + len(key)
}

// jsonStr reads a string without escapes at line[i] (its opening quote):
// its contents and the index after its closing quote, or -1.
func jsonStr(line []byte, i int) ([]byte, int) {
	if i < 0 || i >= len(line) || line[i] != '"' {
		return nil, -1
	}
	j := i + 1
	for j < len(line) && line[j] != '"' && line[j] != '\\' && line[j] != '\n' {
		j++
	}
	if j == len(line) || line[j] != '"' {
		return nil, -1
	}
	return line[i+1 : j], j + 1
}

// Trade decodes line (one JSON object, without its line ending) into t.
func (f *JSONFast) Trade(d *Decoder, line []byte, t *md.Trade) FastResult {
	res, _ := f.one(d, line, t, false)
	return res
}

// TradeAt is CSVFast.TradeAt for JSON lines: it decodes the row that
// starts at b[0] and ends with a line ending inside b, and returns the
// index after it.
func (f *JSONFast) TradeAt(d *Decoder, b []byte, t *md.Trade) (FastResult, int) {
	return f.one(d, b, t, true)
}

// RowsAt is CSVFast.RowsAt for JSON lines.
func (f *JSONFast) RowsAt(d *Decoder, b []byte, out []md.Trade, span bool, from, to int64) (stored, used, rows, last int) {
	return f.rows(d, b, out, math.MaxInt, true, span, from, to)
}

// one is Trade (window false) and TradeAt (window true): rows for one row.
func (f *JSONFast) one(d *Decoder, b []byte, t *md.Trade, window bool) (FastResult, int) {
	stored, used, rows, _ := f.rows(d, b, unsafe.Slice(t, 1), 1, window, false, 0, 0)
	return oneResult(stored, used, rows)
}

// rows is CSVFast.rows for JSON lines; in a window a
// string stops at a '\n', so a row never runs into the next one.
func (f *JSONFast) rows(d *Decoder, win []byte, out []md.Trade, maxRows int, window, span bool, from, to int64) (stored, used, rows, last int) {
	for rows < maxRows && stored < len(out) {
		line, t := win[used:], &out[stored]
		var prov []byte
		i := f.provLit.at(line, 0)
		memo := i >= 0 // the exchange is the memo's, whose symbols f.syms holds
		if memo {
			prov = line[f.lits[0].n+1 : i-1]
		} else if prov, i = jsonStr(line, f.lits[0].at(line, 0)); i > 0 && i <= 24 {
			f.provLit = newJSONLit(line[:i])
			f.syms.next()
		}
		sym, i := jsonStr(line, f.lits[1].at(line, i))
		if i < 0 || len(prov) == 0 || len(sym) == 0 {
			return stored, used, rows, last
		}
		// As in CSVFast.rows, the common case makes no call: the times
		// through the memo's inlined check, the decimals and the symbol
		// table's probe written out here.
		if i = f.lits[2].at(line, i); i < 0 {
			return stored, used, rows, last
		}
		var n uint64
		ok := false
		e := i + 16
		if e < len(line) && line[e] == ',' {
			n, ok = f.times.Fast(binary.LittleEndian.Uint64(line[i:]), binary.LittleEndian.Uint64(line[i+8:]))
		}
		if !ok {
			n, e = f.times.Scan(line, i)
		}
		if e == i || e-i > 18 || n > f.tsLimit {
			return stored, used, rows, last
		}
		ts := int64(n) * f.tsUnit
		if i = f.lits[3].at(line, e); i < 0 {
			return stored, used, rows, last
		}
		ok = false
		if e = i + 16; e < len(line) && line[e] == ',' {
			n, ok = f.itimes.Fast(binary.LittleEndian.Uint64(line[i:]), binary.LittleEndian.Uint64(line[i+8:]))
		}
		if !ok {
			n, e = f.itimes.Scan(line, i)
		}
		if e == i || e-i > 18 || n > f.ingLimit {
			return stored, used, rows, last
		}
		ingest := int64(n) * f.ingUnit
		if i = f.lits[4].at(line, e); i < 0 || i >= len(line) {
			return stored, used, rows, last
		}
		var id int64
		if line[i] == '"' { // a string id: hashed unless numeric, as tradeID does
			var b []byte
			if b, e = jsonStr(line, i); e < 0 {
				return stored, used, rows, last
			}
			id = tradeID(b)
		} else {
			for n, e = 0, i; e < len(line) && line[e]-'0' <= 9; e++ {
				n = n*10 + uint64(line[e]-'0') // wraps only past 19 digits, rejected below
			}
			if e == i || e-i > 18 {
				return stored, used, rows, last
			}
			id = int64(n)
		}
		// side: "buy" and "sell" by a word compare each, without a branch
		// (a scan for the closing quote would branch on the length); anything
		// else read as a string.
		k := f.lits[5].at(line, e)
		var side md.Side
		i = -1
		if k >= 0 && k+6 <= len(line) && line[k] == '"' {
			w := binary.LittleEndian.Uint32(line[k+1:])
			sell := b2u(w == sellWord) & b2u(line[k+5] == '"') // not &&: no branch
			side = md.Side(b2u(w == buyQuoteWord) | sell<<1)   // SideBuy 1, SideSell 2
			i = k + 5 + int(sell)                              // after the closing quote
		}
		if side == md.SideUnknown {
			var text []byte
			text, i = jsonStr(line, k)
			side = parseSide(text)
		}
		if i = f.lits[6].at(line, i); i < 0 {
			return stored, used, rows, last
		}
		// price, amount: as in CSVFast.rows (tsparse.ScanDecimal's numbers
		// and bits).
		s := i
		m, dot, i := scanMantissa(line, s)
		frac, ok := exactDecimal(m, s, dot, i)
		if !ok || m == 0 {
			return stored, used, rows, last // m == 0: zero is not a price
		}
		price := float64(m) / pow10[frac]
		if i = f.lits[7].at(line, i); i < 0 {
			return stored, used, rows, last
		}
		s = i
		m, dot, i = scanMantissa(line, s)
		dec, ok := exactDecimal(m, s, dot, i)
		if !ok {
			return stored, used, rows, last
		}
		size := float64(m) / pow10[dec]
		e = i
		if e >= len(line) || line[e] != '}' {
			return stored, used, rows, last
		}
		e++
		if window {
			switch {
			case e < len(line) && line[e] == '\n':
				e++
			case e+1 < len(line) && line[e] == '\r' && line[e+1] == '\n':
				e += 2
			default:
				return stored, used, rows, last
			}
		} else if e != len(line) {
			return stored, used, rows, last
		}
		// The symbol: the memo's exchange's cache, else the resolver's table
		// probed here, as in CSVFast.rows.
		var sid md.SymID
		var pass bool
		key := uint64(0)
		if memo {
			key = symKey(sym)
		}
		if cs, hit := f.syms.get(key); hit {
			sid, pass = cs.id, cs.ok
		} else {
			sa, sz := symWords(sym)
			pa, pz := symWords(prov)
			lens := uint64(len(sym))<<32 | uint64(len(prov))<<1 | 1
			r := d.syms
			mask := uint64(len(r.slots) - 1)
			for h := slotHash(sa, sz, pa, pz, lens); ; h++ {
				c := &r.slots[h&mask]
				if c.lens == lens && c.sa == sa && c.sz == sz && c.pa == pa && c.pz == pz && len(sym) <= 16 && len(prov) <= 16 {
					sid, pass = c.id, c.ok
					break
				}
				if c.lens == 0 || len(sym) > 16 || len(prov) > 16 {
					sid, pass = r.Resolve(prov, sym)
					break
				}
			}
			f.syms.put(cs, key, sid, pass)
		}
		if !pass { // a symbol the filter leaves out: taken, not stored
			used, rows, last = used+e, rows+1, used
			continue
		}
		if d.sizes != nil {
			d.sizes.Note(sid, dec)
		} else if d.sizeLog {
			d.logSize(sid, dec)
		}
		t.TS, t.Ingest, t.Price, t.Size, t.TradeID, t.Seq, t.Sym, t.Side = ts, ingest, price, size, id, 0, sid, side
		used, rows, last = used+e, rows+1, used
		if !span || ts >= from && ts < to {
			stored++
		}
	}
	return stored, used, rows, last
}

// buyQuoteWord is `buy"` as a little-endian word.
const buyQuoteWord = 'b' | 'u'<<8 | 'y'<<16 | '"'<<24
