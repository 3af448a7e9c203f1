// Package recfmt encodes market-data records as JSON lines and as CSV by
// appending to a byte slice. Every file-like sink (stdout, files, dead-letter
// outputs) shares it, so one record looks the same wherever it is written.
//
// Encoding is hand-written on strconv.Append* rather than encoding/json or
// encoding/csv: those reflect or allocate per value, and sinks encode every
// record on the hot path. Nothing here allocates once dst has grown to size.
//
// The columns of each kind — names, order, types — are package rowschema's.
// JSON objects carry their kind in "type" and fields in that order:
//
//	trade: type provider symbol ts ingest_ts price size side trade_id seq
//	quote: type provider symbol ts ingest_ts bid bid_size ask ask_size seq
//	bar:   type provider symbol interval ts start end open high low close
//	       volume vwap trades bar_type source [partial] [update]
//	derived: type (the schema's name) provider symbol ts <fields…>
//
// "partial" appears (as true) only on a bar whose interval touches a gap in
// the feed, "update" only on a bar that replaces an earlier emission.
// A batch with a non-empty Reason (late records, dead letters) adds "reason"
// as the last field. CSV rows have the same columns minus "type" (a CSV
// stream holds one record kind, and for derived records one schema, named
// by its header), with the bar's "partial" and "update" columns always
// present and "reason" present when asked for.
//
// Times are RFC 3339 in UTC with a Z and as many fraction digits as needed,
// exactly as md.FormatTime renders them. Floats use the shortest text that
// parses back to the same value, as encoding/json writes them; JSON has no
// NaN or infinity, so those are written as null (CSV: NaN, +Inf, -Inf).
package recfmt

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
)

// Format is an output encoding.
type Format uint8

// Formats.
const (
	JSON Format = iota // one JSON object per line
	CSV                // a header line, then one row per record
)

// String returns "json" or "csv".
func (f Format) String() string {
	if f == CSV {
		return "csv"
	}
	return "json"
}

// ParseFormat parses "json" (also "jsonl", "ndjson") or "csv".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "json", "jsonl", "ndjson":
		return JSON, nil
	case "csv":
		return CSV, nil
	}
	return JSON, fmt.Errorf("unknown format %q (want json, jsonl or csv)", s)
}

// FormatForPath picks the format a file name implies: CSV for a .csv
// extension (any case), JSON lines otherwise.
func FormatForPath(path string) Format {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return CSV
	}
	return JSON
}

// instrument returns the instrument for id, or the zero Instrument when syms
// does not cover it.
func instrument(syms []md.Instrument, id md.SymID) *md.Instrument {
	if int(id) < len(syms) {
		return &syms[id]
	}
	return &zeroInstrument
}

var zeroInstrument md.Instrument

// JSON keys and CSV headers per kind, from package rowschema: key i is the
// text before column i's value (the first also opens the object and names
// the kind).
var (
	tradeJSON  = jsonKeys(rowschema.Trade)
	quoteJSON  = jsonKeys(rowschema.Quote)
	barJSON    = jsonKeys(rowschema.Bar)
	tradeCSV   = strings.Join(rowschema.Trade.StreamNames(), ",")
	quoteCSV   = strings.Join(rowschema.Quote.StreamNames(), ",")
	barCSV     = strings.Join(rowschema.Bar.StreamNames(), ",")
	derivedCSV = strings.Join(rowschema.Derived(mustSchema()).StreamNames()[:3], ",")
)

// mustSchema is a throwaway schema whose table gives the columns every
// derived record starts with.
func mustSchema() *md.Schema {
	s, err := md.NewSchema("x", md.Field{Name: "x"})
	if err != nil {
		panic(err)
	}
	return s
}

func jsonKeys(t *rowschema.Table) []string {
	keys := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		keys[i] = `,"` + c.Name + `":`
	}
	keys[0] = `{"type":"` + t.Kind.String() + `"` + keys[0]
	return keys
}

// AppendJSON appends record i of b as one JSON object, without a trailing
// newline. syms resolves the record's SymID to provider and symbol text
// (md.SymbolTable.Snapshot); an id outside syms is written with empty text.
// The keys, their order and the value types are rowschema's.
func AppendJSON(dst []byte, b *md.Batch, i int, syms []md.Instrument) []byte {
	switch b.Kind {
	case md.KindTrade:
		t, k := &b.Trades[i], tradeJSON
		in := instrument(syms, t.Sym)
		dst = append(dst, k[0]...)
		dst = AppendJSONString(dst, in.Provider)
		dst = append(dst, k[1]...)
		dst = AppendJSONString(dst, in.Symbol)
		dst = append(dst, k[2]...)
		dst = appendJSONTime(dst, t.TS)
		dst = append(dst, k[3]...)
		dst = appendJSONTime(dst, t.Ingest)
		dst = append(dst, k[4]...)
		dst = appendJSONFloat(dst, t.Price)
		dst = append(dst, k[5]...)
		dst = appendJSONFloat(dst, t.Size)
		dst = append(dst, k[6]...)
		dst = appendJSONWord(dst, t.Side.String())
		dst = append(dst, k[7]...)
		dst = strconv.AppendInt(dst, t.TradeID, 10)
		dst = append(dst, k[8]...)
		dst = strconv.AppendUint(dst, t.Seq, 10)
	case md.KindQuote:
		q, k := &b.Quotes[i], quoteJSON
		in := instrument(syms, q.Sym)
		dst = append(dst, k[0]...)
		dst = AppendJSONString(dst, in.Provider)
		dst = append(dst, k[1]...)
		dst = AppendJSONString(dst, in.Symbol)
		dst = append(dst, k[2]...)
		dst = appendJSONTime(dst, q.TS)
		dst = append(dst, k[3]...)
		dst = appendJSONTime(dst, q.Ingest)
		dst = append(dst, k[4]...)
		dst = appendJSONFloat(dst, q.Bid)
		dst = append(dst, k[5]...)
		dst = appendJSONFloat(dst, q.BidSize)
		dst = append(dst, k[6]...)
		dst = appendJSONFloat(dst, q.Ask)
		dst = append(dst, k[7]...)
		dst = appendJSONFloat(dst, q.AskSize)
		dst = append(dst, k[8]...)
		dst = strconv.AppendUint(dst, q.Seq, 10)
	case md.KindBar:
		r, k := &b.Bars[i], barJSON
		in := instrument(syms, r.Sym)
		dst = append(dst, k[0]...)
		dst = AppendJSONString(dst, in.Provider)
		dst = append(dst, k[1]...)
		dst = AppendJSONString(dst, in.Symbol)
		dst = append(dst, k[2]...)
		dst = append(dst, '"')
		dst = AppendBarInterval(dst, r)
		dst = append(dst, '"')
		dst = append(dst, k[3]...)
		dst = appendJSONTime(dst, r.TS())
		dst = append(dst, k[4]...)
		dst = appendJSONTime(dst, r.Start)
		dst = append(dst, k[5]...)
		dst = appendJSONTime(dst, r.End)
		dst = append(dst, k[6]...)
		dst = appendJSONFloat(dst, r.Open)
		dst = append(dst, k[7]...)
		dst = appendJSONFloat(dst, r.High)
		dst = append(dst, k[8]...)
		dst = appendJSONFloat(dst, r.Low)
		dst = append(dst, k[9]...)
		dst = appendJSONFloat(dst, r.Close)
		dst = append(dst, k[10]...)
		dst = appendJSONFloat(dst, r.Volume)
		dst = append(dst, k[11]...)
		dst = appendJSONFloat(dst, r.VWAP)
		dst = append(dst, k[12]...)
		dst = strconv.AppendInt(dst, r.Trades, 10)
		dst = append(dst, k[13]...)
		dst = appendJSONWord(dst, r.Type.String())
		dst = append(dst, k[14]...)
		dst = appendJSONWord(dst, r.Source.String())
		if r.Partial {
			dst = append(dst, k[15]...)
			dst = append(dst, "true"...)
		}
		if r.Update {
			dst = append(dst, k[16]...)
			dst = append(dst, "true"...)
		}
	case md.KindDerived:
		dst = appendDerivedJSON(dst, b, i, syms)
	default:
		dst = append(dst, `{"type":"none"`...)
	}
	if b.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = AppendJSONString(dst, b.Reason)
	}
	return append(dst, '}')
}

// appendJSONTime appends ns as a quoted RFC 3339 string.
func appendJSONTime(dst []byte, ns int64) []byte {
	dst = append(dst, '"')
	dst = appendTime(dst, ns)
	return append(dst, '"')
}

// appendJSONWord appends a word known to need no escaping (a side, a bar
// type) as a JSON string.
func appendJSONWord(dst []byte, w string) []byte {
	dst = append(dst, '"')
	dst = append(dst, w...)
	return append(dst, '"')
}

func appendDerivedJSON(dst []byte, b *md.Batch, i int, syms []md.Instrument) []byte {
	d := &b.Derived[i]
	in := instrument(syms, d.Sym)
	dst = append(dst, `{"type":"`...)
	dst = append(dst, b.Schema.Name()...)
	dst = append(dst, `","provider":`...)
	dst = AppendJSONString(dst, in.Provider)
	dst = append(dst, `,"symbol":`...)
	dst = AppendJSONString(dst, in.Symbol)
	dst = append(dst, `,"ts":`...)
	dst = appendJSONTime(dst, d.TS)
	row := b.Row(i)
	for f := range row {
		fd := b.Schema.Field(f)
		dst = append(dst, ',', '"')
		dst = append(dst, fd.Name...)
		dst = append(dst, '"', ':')
		if fd.Type == md.Int {
			dst = strconv.AppendInt(dst, row[f].Int(), 10)
		} else {
			dst = appendJSONFloat(dst, row[f].Float())
		}
	}
	return dst
}

// AppendJSONLines appends every record of b as a JSON line (object plus
// newline).
func AppendJSONLines(dst []byte, b *md.Batch, syms []md.Instrument) []byte {
	for i, n := 0, b.Len(); i < n; i++ {
		dst = AppendJSON(dst, b, i, syms)
		dst = append(dst, '\n')
	}
	return dst
}

// AppendCSVHeader appends the CSV header line (with newline) for records of
// kind k, with a trailing "reason" column when reason is true: rowschema's
// column names. For KindDerived use AppendDerivedCSVHeader.
func AppendCSVHeader(dst []byte, k md.Kind, reason bool) []byte {
	switch k {
	case md.KindTrade:
		dst = append(dst, tradeCSV...)
	case md.KindQuote:
		dst = append(dst, quoteCSV...)
	case md.KindBar:
		dst = append(dst, barCSV...)
	}
	if reason {
		dst = append(dst, ",reason"...)
	}
	return append(dst, '\n')
}

// AppendDerivedCSVHeader is AppendCSVHeader for derived records of schema s:
// provider, symbol, ts and the schema's fields.
func AppendDerivedCSVHeader(dst []byte, s *md.Schema, reason bool) []byte {
	dst = append(dst, derivedCSV...)
	for i := 0; i < s.Len(); i++ {
		dst = append(dst, ',')
		dst = append(dst, s.Field(i).Name...)
	}
	if reason {
		dst = append(dst, ",reason"...)
	}
	return append(dst, '\n')
}

// AppendCSV appends record i of b as one CSV row with a trailing newline, in
// the column order of AppendCSVHeader(b.Kind, reason). With reason set the
// row ends with b.Reason (possibly empty). Text fields are quoted as RFC 4180
// requires.
func AppendCSV(dst []byte, b *md.Batch, i int, syms []md.Instrument, reason bool) []byte {
	switch b.Kind {
	case md.KindTrade:
		t := &b.Trades[i]
		dst = appendCSVHead(dst, instrument(syms, t.Sym))
		dst = appendTime(dst, t.TS)
		dst = append(dst, ',')
		dst = appendTime(dst, t.Ingest)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, t.Price)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, t.Size)
		dst = append(dst, ',')
		dst = append(dst, t.Side.String()...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, t.TradeID, 10)
		dst = append(dst, ',')
		dst = strconv.AppendUint(dst, t.Seq, 10)
	case md.KindQuote:
		q := &b.Quotes[i]
		dst = appendCSVHead(dst, instrument(syms, q.Sym))
		dst = appendTime(dst, q.TS)
		dst = append(dst, ',')
		dst = appendTime(dst, q.Ingest)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, q.Bid)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, q.BidSize)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, q.Ask)
		dst = append(dst, ',')
		dst = appendCSVFloat(dst, q.AskSize)
		dst = append(dst, ',')
		dst = strconv.AppendUint(dst, q.Seq, 10)
	case md.KindBar:
		r := &b.Bars[i]
		dst = appendCSVHead(dst, instrument(syms, r.Sym))
		dst = AppendBarInterval(dst, r)
		dst = append(dst, ',')
		dst = appendTime(dst, r.TS())
		dst = append(dst, ',')
		dst = appendTime(dst, r.Start)
		dst = append(dst, ',')
		dst = appendTime(dst, r.End)
		for _, v := range [...]float64{r.Open, r.High, r.Low, r.Close, r.Volume, r.VWAP} {
			dst = append(dst, ',')
			dst = appendCSVFloat(dst, v)
		}
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, r.Trades, 10)
		dst = append(dst, ',')
		dst = append(dst, r.Type.String()...)
		dst = append(dst, ',')
		dst = append(dst, r.Source.String()...)
		dst = append(dst, ',')
		dst = strconv.AppendBool(dst, r.Partial)
		dst = append(dst, ',')
		dst = strconv.AppendBool(dst, r.Update)
	case md.KindDerived:
		d := &b.Derived[i]
		dst = appendCSVHead(dst, instrument(syms, d.Sym))
		dst = appendTime(dst, d.TS)
		row := b.Row(i)
		for f := range row {
			dst = append(dst, ',')
			if b.Schema.Field(f).Type == md.Int {
				dst = strconv.AppendInt(dst, row[f].Int(), 10)
			} else {
				dst = appendCSVFloat(dst, row[f].Float())
			}
		}
	}
	if reason {
		dst = append(dst, ',')
		dst = appendCSVField(dst, b.Reason)
	}
	return append(dst, '\n')
}

func appendCSVHead(dst []byte, in *md.Instrument) []byte {
	dst = appendCSVField(dst, in.Provider)
	dst = append(dst, ',')
	dst = appendCSVField(dst, in.Symbol)
	return append(dst, ',')
}

// AppendBarInterval appends the bar's interval column: its duration for a
// time bar (1s, 5m), its threshold for tick, volume and value bars and its
// initial expected ticks per bar for imbalance bars.
func AppendBarInterval(dst []byte, r *md.Bar) []byte {
	if r.Type == md.BarTime {
		return appendInterval(dst, r.Interval)
	}
	return strconv.AppendInt(dst, r.Interval, 10)
}

// appendCSVField appends s as one CSV field, quoted (with quotes doubled)
// when it contains a comma, a quote, a line break or leading or trailing
// space, as RFC 4180 readers expect.
func appendCSVField(dst []byte, s string) []byte {
	need := s != "" && (s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t')
	for i := 0; i < len(s) && !need; i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			need = true
		}
	}
	if !need {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a quoted JSON string. Control characters,
// quotes and backslashes are escaped, as are U+2028 and U+2029 (so the line
// stays valid JavaScript); invalid UTF-8 becomes U+FFFD, as encoding/json
// does.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendFloat appends f in the shortest form that parses back to f, as
// encoding/json writes numbers: plain decimals, with an exponent only below
// 1e-6 or from 1e21 on. NaN and infinities are written as strconv does
// (NaN, +Inf, -Inf); JSON encoders write null instead.
func AppendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) && !math.IsInf(f, 0) {
		n := len(dst)
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// Shorten e-09 to e-9, as encoding/json (and JavaScript) do.
		if m := len(dst) - n; m >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return AppendFloat(dst, f)
}

func appendCSVFloat(dst []byte, f float64) []byte { return AppendFloat(dst, f) }

// appendInterval appends a bar interval as md.FormatInterval renders it
// (1s, 5m, 250ms), without allocating.
func appendInterval(dst []byte, ns int64) []byte {
	if ns > 0 {
		for _, u := range intervalUnits {
			if ns%u.n == 0 {
				dst = strconv.AppendInt(dst, ns/u.n, 10)
				return append(dst, u.name...)
			}
		}
	}
	dst = strconv.AppendInt(dst, ns, 10)
	return append(dst, "ns"...)
}

var intervalUnits = [...]struct {
	n    int64
	name string
}{
	{86_400_000_000_000, "d"}, {3_600_000_000_000, "h"}, {60_000_000_000, "m"},
	{1_000_000_000, "s"}, {1_000_000, "ms"}, {1_000, "us"},
}

// appendTime appends ns (since the Unix epoch) as RFC 3339 in UTC with a Z,
// with the fraction of a second trimmed of trailing zeros and left out when
// zero: exactly md.FormatTime's text, without its allocations.
func appendTime(dst []byte, ns int64) []byte {
	secs := ns / 1e9
	frac := ns % 1e9
	if frac < 0 {
		frac += 1e9
		secs--
	}
	days := secs / 86400
	sod := secs % 86400
	if sod < 0 {
		sod += 86400
		days--
	}
	y, m, d := civil(days)
	dst = append4(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	dst = append2(dst, d)
	dst = append(dst, 'T')
	dst = append2(dst, sod/3600)
	dst = append(dst, ':')
	dst = append2(dst, sod/60%60)
	dst = append(dst, ':')
	dst = append2(dst, sod%60)
	if frac != 0 {
		var buf [10]byte
		buf[0] = '.'
		f := uint32(frac)
		for i := 8; i >= 2; i -= 2 {
			q := f / 100
			d := (f - q*100) * 2
			buf[i], buf[i+1] = pairs[d], pairs[d+1]
			f = q
		}
		buf[1] = byte('0' + f)
		n := 10
		for buf[n-1] == '0' {
			n--
		}
		dst = append(dst, buf[:n]...)
	}
	return append(dst, 'Z')
}

// pairs holds "00" to "99" back to back, for writing two digits at a time.
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(dst []byte, v int64) []byte {
	return append(dst, pairs[v*2], pairs[v*2+1])
}

func append4(dst []byte, v int64) []byte {
	if v < 0 || v > 9999 {
		// Out of RFC 3339's range; unreachable for int64 ns (years 1677-2262).
		return strconv.AppendInt(dst, v, 10)
	}
	return append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}
