package rowmap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
)

// CSVSplitter splits CSV lines into fields, reusing its buffers.
type CSVSplitter struct {
	Delim  byte
	Fields [][]byte // the fields of the last line split; valid until the next Split
	qbuf   []byte
}

// SlotCol is a mapped slot with the index of its column.
type SlotCol struct {
	Slot Slot
	Col  int
}

// CSVColumns resolves the layout's columns against a header (nil when the
// input has none, and the columns are indexes). It returns the mapped slots
// with their indexes and the highest index.
func (l *Layout) CSVColumns(header [][]byte) ([]SlotCol, int, error) {
	var cols []SlotCol
	maxCol := 0
	for s := range NSlots {
		c, ok := l.Columns[s]
		if !ok {
			continue
		}
		idx := c.Index
		if idx < 0 {
			for i, h := range header {
				if string(h) == c.Name {
					idx = i
					break
				}
			}
			if idx < 0 {
				names := make([]string, len(header))
				for i, h := range header {
					names[i] = string(h)
				}
				return nil, 0, fmt.Errorf("column %q (for %s) is not in the header; the columns are: %s", c.Name, SlotNames[s], strings.Join(names, ", "))
			}
		} else if header != nil && idx >= len(header) {
			return nil, 0, fmt.Errorf("column index %d (for %s) is beyond the header's %d columns", idx, SlotNames[s], len(header))
		}
		cols = append(cols, SlotCol{s, idx})
		maxCol = max(maxCol, idx)
	}
	return cols, maxCol, nil
}

// Split splits line into r.Fields, stopping after limit fields. It
// returns a syntax problem or "". encoding/csv is not used: it allocates a
// fresh record per row and copies every field into a new string, which the
// per-row path must not; rows here are one per line (quoted fields may not
// span lines), so a byte scan over the line does the job.
func (r *CSVSplitter) Split(line []byte, limit int) string {
	var special bool
	if r.Fields, special = splitPlain(line, r.Delim, r.Fields[:0], limit); !special {
		return ""
	}
	// Locals, not r's fields, in the loop: the compiler cannot keep fields
	// reached through r in registers across the appends.
	fields, delim := r.Fields[:0], r.Delim
	defer func() { r.Fields = fields }()
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
