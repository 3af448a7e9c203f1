package rowmap

import (
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
}

// FastResult is what CSVFast.Trade did with a row.
type FastResult uint8

const (
	// FastFallback: the row was not decoded and nothing was changed; the
	// generic path decodes or reports it.
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
		len(cols) != len(tardisTradeCols) {
		return f, false
	}
	for _, sc := range cols {
		if sc.Col >= len(tardisTradeCols) || tardisTradeCols[sc.Col] != sc.Slot {
			return f, false
		}
	}
	f = CSVFast{delim: delim, tsUnit: d.TS.unit, ingUnit: d.Ingest.unit}
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
	delim := f.delim
	// exchange, symbol: text up to the delimiter.
	i := scanDelim(line, 0, delim)
	if i == 0 || i == len(line) {
		return FastFallback
	}
	prov := line[:i]
	s := i + 1
	i = scanDelim(line, s, delim)
	if i == s || i == len(line) {
		return FastFallback
	}
	sym := line[s:i]
	if !plainText(prov) || !plainText(sym) {
		return FastFallback
	}
	// timestamp, local_timestamp: digits, eight at a time.
	s = i + 1
	n, i := tsparse.ScanDigits(line, s)
	if i == s || i-s > 18 || n > f.tsLimit || i >= len(line) || line[i] != delim {
		return FastFallback
	}
	ts := int64(n) * f.tsUnit
	ingest := ts // an empty local_timestamp is the event time
	s = i + 1
	if n, i = tsparse.ScanDigits(line, s); i != s {
		if i-s > 18 || n > f.ingLimit {
			return FastFallback
		}
		ingest = int64(n) * f.ingUnit
	}
	if i >= len(line) || line[i] != delim {
		return FastFallback
	}
	// id: digits, else any text (hashed, as tradeID does).
	s = i + 1
	var id int64
	n, i = 0, s
	for i < len(line) && line[i]-'0' <= 9 { // short: a byte loop beats SWAR
		n = n*10 + uint64(line[i]-'0') // wraps only past 19 digits, rejected below
		i++
	}
	if i < len(line) && line[i] == delim && i-s <= 18 {
		id = int64(n)
	} else {
		i = s + indexDelim(line[s:], delim)
		if i == len(line) || !plainText(line[s:i]) {
			return FastFallback
		}
		id = tradeID(line[s:i])
	}
	// side
	s = i + 1
	i = scanDelim(line, s, delim)
	if i == len(line) || !plainText(line[s:i]) {
		return FastFallback
	}
	var side md.Side
	switch b := line[s:i]; {
	case string(b) == "buy": // the common spellings first, without the switch
		side = md.SideBuy
	case string(b) == "sell":
		side = md.SideSell
	default:
		side = parseSide(b)
	}
	// price, amount: decimals read while scanning; the amount is the last
	// column read (what follows it is ignored, as by Split's limit).
	price, _, i, ok := tsparse.ScanDecimal(line, i+1)
	if !ok || i >= len(line) || line[i] != delim || !(price > 0) {
		return FastFallback
	}
	size, dec, i, ok := tsparse.ScanDecimal(line, i+1)
	if !ok || i < len(line) && line[i] != delim {
		return FastFallback
	}
	sid, ok := d.syms.Resolve(prov, sym)
	if !ok {
		return FastSkip
	}
	if d.sizes != nil {
		d.sizes.Note(sid, dec)
	} else if d.sizeLog {
		d.logSize(sid, dec)
	}
	// Field by field: a whole-struct store is built on the stack first and
	// copied in 16-byte moves that stall on the narrower stores before them.
	t.TS, t.Ingest, t.Price, t.Size, t.TradeID, t.Seq, t.Sym, t.Side = ts, ingest, price, size, id, 0, sid, side
	return FastOK
}

// scanDelim returns the index of the first delim at or after line[i], or
// len(line). A byte loop: the short text fields of a row have lengths
// that repeat from row to row, so its exit branch is predicted and the
// next field's scan starts speculatively, where a SWAR search (indexDelim)
// makes every field's start wait on the previous field's bit arithmetic.
func scanDelim(line []byte, i int, delim byte) int {
	for i < len(line) && line[i] != delim {
		i++
	}
	return i
}
