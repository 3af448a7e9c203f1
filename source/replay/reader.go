package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// chunkSize is how many records a file reader decodes ahead.
const chunkSize = 1024

// fileReader decodes one file into a chunk of records. Each format has its
// own loop in fill, so the per-row path makes no interface calls; the merge
// in Run takes records from the chunks of all files.
type fileReader struct {
	idx    int // position in the path list; breaks event-time ties
	path   string
	format fileFormat
	kind   md.Kind
	dec    decoder // a copy per file: Parquet timestamp columns bring their own unit
	mal    *malformed
	filter timeFilter

	trades []md.Trade
	quotes []md.Quote
	head   int
	eof    bool

	lines *lineInput
	line  int64 // number of the last line (or Parquet row) read
	vals  rowVals
	rerr  rowErr

	// CSV
	delim  byte
	cols   []slotCol // the mapped slots with their columns
	maxCol int
	fields [][]byte
	qbuf   []byte

	// JSON lines
	jkeys []jsonKey
	jbuf  [nSlots][]byte
	kbuf  []byte

	pq     *parquetInput
	pqFile *os.File

	jump jumpGuard
}

// timeFilter keeps records with start <= ts < end.
type timeFilter struct {
	start, end int64
}

func (f timeFilter) pass(ts int64) bool { return ts >= f.start && ts < f.end }

type slotCol struct {
	slot slot
	col  int
}

type jsonKey struct {
	name string
	slot slot
}

// readerConfig is what every file reader shares.
type readerConfig struct {
	lay     *layout
	format  string
	comp    string
	dec     *decoder
	mal     *malformed
	filter  timeFilter
	bufSize int
	maxJump int64         // ns; 0 disables the jump guard
	maxLine int64         // max_line_bytes
	counter *atomic.Int64 // raw bytes read, all files
}

func openReader(idx int, path string, rc *readerConfig) (*fileReader, error) {
	f, c, err := detect(path, rc.format, rc.comp)
	if err != nil {
		return nil, err
	}
	r := &fileReader{idx: idx, path: path, format: f, kind: rc.lay.kind, dec: *rc.dec, mal: rc.mal,
		filter: rc.filter, delim: rc.lay.delim, jump: jumpGuard{maxJump: rc.maxJump}}
	if r.kind == md.KindTrade {
		r.trades = make([]md.Trade, 0, chunkSize+chunkSlack)
	} else {
		r.quotes = make([]md.Quote, 0, chunkSize+chunkSlack)
	}
	switch f {
	case formatParquet:
		st, err := os.Stat(path)
		if err != nil {
			return nil, component.FileError("stat", path, err)
		}
		// Parquet needs random access: a plain file is read in place, a
		// compressed one is decompressed into memory first.
		var ra io.ReaderAt
		size := st.Size()
		if c == compNone {
			f, err := os.Open(path)
			if err != nil {
				return nil, component.FileError("open", path, err)
			}
			r.pqFile, ra = f, f
		} else {
			data, err := readAll(path, c, rc.counter)
			if err != nil {
				return nil, err
			}
			// readAll counted the raw bytes; progress counts them again as
			// rows are decoded, so take them back.
			rc.counter.Add(-size)
			ra, size = bytes.NewReader(data), int64(len(data))
		}
		if r.pq, err = openParquet(path, ra, size, st.Size(), rc.lay, rc.counter); err != nil {
			r.close()
			return nil, err
		}
		if u := r.pq.tsUnit[slotTS]; u > 0 {
			r.dec.ts = tsParser{kind: tsUnit, unit: u}
		}
		if u := r.pq.tsUnit[slotIngest]; u > 0 {
			r.dec.ingest = tsParser{kind: tsUnit, unit: u}
		}
		return r, nil
	case formatJSONL:
		for s, c := range rc.lay.columns {
			if c.index >= 0 {
				return nil, fmt.Errorf("%s: columns.%s is an index (%d); JSON lines name fields by key", path, slotNames[s], c.index)
			}
			r.jkeys = append(r.jkeys, jsonKey{name: c.name, slot: s})
		}
	}
	if r.lines, err = openLines(path, c, rc.bufSize, rc.maxLine, rc.counter); err != nil {
		return nil, err
	}
	if f == formatCSV {
		if err := r.csvHeader(rc.lay); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

func (r *fileReader) close() error {
	if r.lines != nil {
		return r.lines.close()
	}
	var err error
	if r.pq != nil {
		err = r.pq.rd.Close()
	}
	if r.pqFile != nil {
		if cerr := r.pqFile.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// csvHeader resolves column names to indexes, reading the header line when
// the file has one.
func (r *fileReader) csvHeader(lay *layout) error {
	var header [][]byte
	if lay.header {
		line, err := r.lines.readLine()
		if err == io.EOF {
			return fmt.Errorf("%s: empty file; expected a header line", r.path)
		}
		if err == errLineTooLong {
			return fmt.Errorf("%s:1: the header line (%d bytes) is longer than max_line_bytes (%d)", r.path, r.lines.size, r.lines.max)
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line = 1
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		if p := r.splitCSV(line, 1<<30); p != "" {
			return fmt.Errorf("%s:1: header: %s", r.path, p)
		}
		for _, f := range r.fields {
			header = append(header, bytes.Clone(f))
		}
	}
	r.maxCol = 0
	for s := range nSlots {
		c, ok := lay.columns[s]
		if !ok {
			continue
		}
		idx := c.index
		if idx < 0 {
			idx = -1
			for i, h := range header {
				if string(h) == c.name {
					idx = i
					break
				}
			}
			if idx < 0 {
				names := make([]string, len(header))
				for i, h := range header {
					names[i] = string(h)
				}
				return fmt.Errorf("%s: column %q (for %s) is not in the header; the columns are: %s", r.path, c.name, slotNames[s], strings.Join(names, ", "))
			}
		} else if lay.header && idx >= len(header) {
			return fmt.Errorf("%s: column index %d (for %s) is beyond the header's %d columns", r.path, idx, slotNames[s], len(header))
		}
		r.cols = append(r.cols, slotCol{s, idx})
		r.maxCol = max(r.maxCol, idx)
	}
	return nil
}

// splitCSV splits line into r.fields, stopping after limit fields. It
// returns a syntax problem or "". encoding/csv is not used: it allocates a
// fresh record per row and copies every field into a new string, which the
// per-row path must not; rows here are one per line (quoted fields may not
// span lines), so a byte scan over the line does the job.
func (r *fileReader) splitCSV(line []byte, limit int) string {
	var special bool
	if r.fields, special = splitPlain(line, r.delim, r.fields[:0], limit); !special {
		return ""
	}
	// Locals, not r's fields, in the loop: the compiler cannot keep fields
	// reached through r in registers across the appends.
	fields, delim := r.fields[:0], r.delim
	defer func() { r.fields = fields }()
	quoted := false
	for len(fields) < limit {
		if len(line) > 0 && line[0] == '"' {
			if !quoted {
				quoted = true
				if cap(r.qbuf) < len(line) {
					r.qbuf = make([]byte, 0, len(line)*2)
				}
				r.qbuf = r.qbuf[:0]
			}
			start := len(r.qbuf)
			i := 1
			for {
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					return "unterminated quoted field"
				}
				r.qbuf = append(r.qbuf, line[i:i+j]...)
				i += j + 1
				if i < len(line) && line[i] == '"' { // "" is an escaped quote
					r.qbuf = append(r.qbuf, '"')
					i++
					continue
				}
				break
			}
			fields = append(fields, r.qbuf[start:len(r.qbuf):len(r.qbuf)])
			if i == len(line) {
				return ""
			}
			if line[i] != delim {
				return "unexpected character after a quoted field"
			}
			line = line[i+1:]
			continue
		}
		i := indexDelim(line, delim)
		f := line[:i]
		if len(f) > 0 && (f[0] == ' ' || f[len(f)-1] == ' ') {
			f = trimSpace(f)
		}
		fields = append(fields, f)
		if i == len(line) {
			return ""
		}
		line = line[i+1:]
	}
	return ""
}

// splitPlain splits a line at delim, up to limit fields. It finds every
// delimiter in eight bytes at once (SWAR) and walks the set bits, so the cost
// is one step per eight bytes plus one per field rather than a branch per
// byte. special reports a quote or a space in the line: the caller then
// splits again on the slow path, which unquotes and trims.
func splitPlain(line []byte, delim byte, fields [][]byte, limit int) (_ [][]byte, special bool) {
	const ones, low7 = 0x0101010101010101, 0x7F7F7F7F7F7F7F7F
	// zeros has the high bit of every zero byte of x set; exact, unlike the
	// borrow-based test in indexDelim.
	zeros := func(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) }
	pat, quote, space := uint64(delim)*ones, uint64('"')*ones, uint64(' ')*ones
	start, i := 0, 0
	var odd uint64
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:])
		odd |= zeros(w^quote) | zeros(w^space)
		m := zeros(w ^ pat)
		for m != 0 {
			p := i + bits.TrailingZeros64(m)>>3
			fields = append(fields, line[start:p:p])
			if len(fields) == limit {
				return fields, odd != 0 // every byte of the fields taken was scanned
			}
			start = p + 1
			m &= m - 1
		}
	}
	special = odd != 0
	for ; i < len(line); i++ {
		switch line[i] {
		case delim:
			fields = append(fields, line[start:i:i])
			if len(fields) == limit {
				return fields, special
			}
			start = i + 1
		case '"', ' ':
			special = true
		}
	}
	return append(fields, line[start:]), special
}

// indexDelim returns the index of the first delim in line, or len(line).
// It tests eight bytes per step (SWAR): fields are a few bytes long, so
// bytes.IndexByte's vectorised search costs more to set up than it saves,
// and a byte loop pays a branch per byte.
func indexDelim(line []byte, delim byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	pat := uint64(delim) * lo
	i := 0
	for ; i+8 <= len(line); i += 8 {
		x := binary.LittleEndian.Uint64(line[i:]) ^ pat
		// The lowest set bit marks the first zero byte of x, the first
		// delim; bits above it may be false positives and are ignored.
		if m := (x - lo) &^ x & hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(line) && line[i] != delim {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// headTS is the event time of the next record in the chunk.
func (r *fileReader) headTS() int64 {
	if r.kind == md.KindTrade {
		return r.trades[r.head].TS
	}
	return r.quotes[r.head].TS
}

// buffered is the number of records left in the chunk.
func (r *fileReader) buffered() int {
	if r.kind == md.KindTrade {
		return len(r.trades) - r.head
	}
	return len(r.quotes) - r.head
}

// fill refills an exhausted chunk. At the end of the file it leaves the
// chunk empty and sets eof. Errors are I/O failures, or a malformed row
// under on_error: fail.
func (r *fileReader) fill() error {
	r.head = 0
	r.trades = r.trades[:0]
	r.quotes = r.quotes[:0]
	if r.eof {
		return nil
	}
	switch r.format {
	case formatCSV:
		return r.fillCSV()
	case formatJSONL:
		return r.fillJSON()
	}
	return r.fillParquet()
}

// longLine reports a line longer than max_line_bytes (head is its start).
func (r *fileReader) longLine(head []byte) error {
	e := rowErr{prob: probSyntax, msg: fmt.Sprintf("line of %d bytes is longer than max_line_bytes (%d)", r.lines.size, r.lines.max)}
	return r.mal.reportSized(r.path, r.line, head, r.lines.size, &e)
}

// accept decodes r.vals into the chunk. A malformed row is reported (raw
// is the row's text, or nil for Parquet, whose text is built only when
// needed); rows outside the filters are skipped without one. The error is
// the one that stops the job (on_error: fail).
func (r *fileReader) accept(raw []byte) error {
	r.rerr.prob = probNone
	var ts int64
	var n int
	if r.kind == md.KindTrade {
		n = len(r.trades)
		r.trades = r.trades[:n+1]
		if !r.dec.trade(&r.vals, &r.trades[n], &r.rerr) {
			r.trades = r.trades[:n]
			return r.reportRow(raw)
		}
		ts = r.trades[n].TS
	} else {
		n = len(r.quotes)
		r.quotes = r.quotes[:n+1]
		if !r.dec.quote(&r.vals, &r.quotes[n], &r.rerr) {
			r.quotes = r.quotes[:n]
			return r.reportRow(raw)
		}
		ts = r.quotes[n].TS
	}
	if r.jump.maxJump > 0 {
		if keep, err := r.jumpCheck(n, ts, raw); !keep || err != nil {
			return err
		}
	}
	if !r.filter.pass(ts) {
		if r.kind == md.KindTrade {
			r.trades = r.trades[:n]
		} else {
			r.quotes = r.quotes[:n]
		}
	}
	return nil
}

// reportRow reports the current row as malformed when decoding set a
// problem (a row of a filtered-out symbol has none).
func (r *fileReader) reportRow(raw []byte) error {
	if r.rerr.prob == probNone {
		return nil
	}
	if raw == nil && r.pq != nil {
		raw = r.pq.rowText()
	}
	return r.mal.report(r.path, r.line, raw, &r.rerr)
}

func (r *fileReader) fillCSV() error {
	limit := r.maxCol + 1
	for r.buffered() < chunkSize {
		line, err := r.lines.readLine()
		if err == io.EOF {
			r.eof = true
			return r.finishHeld()
		}
		if err == errLineTooLong {
			r.line++
			if err := r.longLine(line); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line++
		if len(line) == 0 {
			continue
		}
		if p := r.splitCSV(line, limit); p != "" {
			r.rerr = rowErr{prob: probSyntax, msg: p}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		if len(r.fields) < limit {
			r.rerr = rowErr{prob: probFields, have: len(r.fields), want: limit}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		for _, sc := range r.cols {
			r.vals[sc.slot] = r.fields[sc.col]
		}
		if err := r.accept(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileReader) fillJSON() error {
	for r.buffered() < chunkSize {
		line, err := r.lines.readLine()
		if err == io.EOF {
			r.eof = true
			return r.finishHeld()
		}
		if err == errLineTooLong {
			r.line++
			if err := r.longLine(line); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		for i := range r.vals {
			r.vals[i] = nil
		}
		if p := r.scanJSON(line); p != "" {
			r.rerr = rowErr{prob: probSyntax, msg: p}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		if err := r.accept(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileReader) fillParquet() error {
	for r.buffered() < chunkSize {
		ok, err := r.pq.next(&r.vals)
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		if !ok {
			r.eof = true
			return r.finishHeld()
		}
		r.line++
		if err := r.accept(nil); err != nil {
			return err
		}
	}
	return nil
}

// formatNum renders a Parquet number as text for the shared decoder.
func formatNum(dst []byte, f float64, bits int) []byte {
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}
