package rowmap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// JSONScanner reads flat JSON objects (one row each) into Vals by key.
type JSONScanner struct {
	keys []jsonKey
	jbuf [NSlots][]byte
	kbuf []byte
	// seen is, per position in the object, the key the last row had there
	// (when it has no escapes) and its target: rows of one file write their
	// keys in one order, so the key is matched in place, with no scan for
	// its closing quote and no search of the mapping.
	seen []seenKey
}

// seenKey is a key met at one position of an object and the slot it maps
// to (-1: unmapped).
type seenKey struct {
	name   []byte
	target int
	// A key of at most 15 bytes is also kept as the 16 bytes that follow
	// its opening quote (the name and the closing quote) in two words with
	// their masks, compared without a call when the line is long enough.
	short  bool
	w, msk [2]uint64
}

// maxSeen bounds the positions Scan remembers keys for.
const maxSeen = 64

type jsonKey struct {
	name string
	slot Slot
}

// NewJSONScanner returns a scanner of the layout's columns, which must be
// named by key (an index is an error).
func NewJSONScanner(l *Layout) (*JSONScanner, error) {
	s := &JSONScanner{}
	for sl := range NSlots {
		c, ok := l.Columns[sl]
		if !ok {
			continue
		}
		if c.Index >= 0 {
			return nil, fmt.Errorf("columns.%s is an index (%d); JSON names fields by key", SlotNames[sl], c.Index)
		}
		s.keys = append(s.keys, jsonKey{name: c.Name, slot: sl})
	}
	return s, nil
}

// Scan reads one flat JSON object and points vals at the values of the
// mapped keys: string contents (unescaped) or the literal text of numbers;
// null counts as absent (so is a mapped key missing from the object). Nested objects and
// arrays are skipped. encoding/json is not used because decoding into a map
// or struct allocates per row; this scanner reuses its buffers. The values
// are valid until the next Scan. It returns a syntax problem or "".
func (r *JSONScanner) Scan(line []byte, vals *Vals) string {
	for _, k := range r.keys {
		vals[k.slot] = nil
	}
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return "not a JSON object"
	}
	i = skipWS(line, i+1)
	if i < len(line) && line[i] == '}' {
		return trailing(line, i+1)
	}
	for n := 0; ; n++ {
		if i >= len(line) || line[i] != '"' {
			return "want a quoted key"
		}
		target := -1
		var p string
		if k, ok := r.match(line, i, n); ok {
			i, target = k, r.seen[n].target
		} else {
			var key []byte
			r.kbuf = r.kbuf[:0]
			key, i, p = jsonString(line, i, &r.kbuf)
			if p != "" {
				return p
			}
			for k := range r.keys {
				if string(key) == r.keys[k].name {
					target = int(r.keys[k].slot)
					break
				}
			}
			r.remember(n, key, target)
		}
		i = skipWS(line, i)
		if i >= len(line) || line[i] != ':' {
			return "want : after a key"
		}
		i = skipWS(line, i+1)
		if i >= len(line) {
			return "unexpected end of line"
		}
		var val []byte
		switch c := line[i]; {
		case c == '"':
			buf := &r.kbuf
			if target >= 0 {
				r.jbuf[target] = r.jbuf[target][:0]
				buf = &r.jbuf[target]
			}
			val, i, p = jsonString(line, i, buf)
			if p != "" {
				return p
			}
		case c == '{' || c == '[':
			start := i
			if i, p = skipNested(line, i); p != "" {
				return p
			}
			val = line[start:i]
		default:
			start := i
			for i < len(line) && !valueEnd[line[i]] {
				i++
			}
			val = line[start:i]
			if len(val) == 0 {
				return "missing value"
			}
			if string(val) == "null" {
				val = nil
			}
		}
		if target >= 0 {
			vals[target] = val
		}
		i = skipWS(line, i)
		if i >= len(line) {
			return "unexpected end of line"
		}
		if line[i] == '}' {
			return trailing(line, i+1)
		}
		if line[i] != ',' {
			return "want , or } after a value"
		}
		i = skipWS(line, i+1)
	}
}

// match reports whether the quoted key at line[i] is the one the last row
// had at position n, and the index after its closing quote. The remembered
// key has no backslash, so its bytes followed by a quote are the whole key.
func (r *JSONScanner) match(line []byte, i, n int) (int, bool) {
	if n >= len(r.seen) {
		return 0, false
	}
	sk := &r.seen[n]
	end := i + 1 + len(sk.name)
	if sk.short && i+17 <= len(line) {
		a, b := binary.LittleEndian.Uint64(line[i+1:]), binary.LittleEndian.Uint64(line[i+9:])
		if a&sk.msk[0] != sk.w[0] || b&sk.msk[1] != sk.w[1] {
			return 0, false
		}
		return end + 1, true
	}
	if sk.name == nil || end >= len(line) || line[end] != '"' || string(line[i+1:end]) != string(sk.name) {
		return 0, false
	}
	return end + 1, true
}

// remember notes key (unescaped) at position n for match.
func (r *JSONScanner) remember(n int, key []byte, target int) {
	if n >= maxSeen {
		return
	}
	for len(r.seen) <= n {
		r.seen = append(r.seen, seenKey{})
	}
	sk := &r.seen[n]
	if bytes.IndexByte(key, '\\') >= 0 || bytes.IndexByte(key, '"') >= 0 {
		sk.name, sk.short = nil, false // not the raw text of the key: never matched in place
		return
	}
	sk.name = append(sk.name[:0], key...)
	if sk.name == nil {
		sk.name = []byte{} // an empty key is remembered too
	}
	sk.target = target
	sk.short = len(key) < 16
	if sk.short {
		var pat [16]byte
		copy(pat[:], key)
		pat[len(key)] = '"'
		var m [16]byte
		for k := range len(key) + 1 {
			m[k] = 0xFF
		}
		for k := range 2 {
			sk.w[k] = binary.LittleEndian.Uint64(pat[8*k:])
			sk.msk[k] = binary.LittleEndian.Uint64(m[8*k:])
		}
	}
}

// valueEnd marks the bytes that end a bare (number or literal) value.
var valueEnd = [256]bool{',': true, '}': true, ' ': true, '\t': true}

func trailing(line []byte, i int) string {
	if skipWS(line, i) != len(line) {
		return "text after the JSON object"
	}
	return ""
}

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// jsonString reads the string starting at b[i] (a quote). Without escapes
// it returns a sub-slice of b; with them it unescapes into *buf.
func jsonString(b []byte, i int, buf *[]byte) ([]byte, int, string) {
	i++
	// Keys and values are short: a byte loop that stops at a quote or a
	// backslash beats two vectorised searches.
	j := i
	for j < len(b) && b[j] != '"' && b[j] != '\\' {
		j++
	}
	if j == len(b) {
		return nil, 0, "unterminated string"
	}
	if b[j] == '"' {
		return b[i:j], j + 1, ""
	}
	out := (*buf)[:0]
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			*buf = out
			return out, i + 1, ""
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		i++
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(b, i+1)
			if n < 0 {
				return nil, 0, "invalid \\u escape"
			}
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, n2 := hex4(b, i+3); n2 >= 0 && r2 >= 0xdc00 && r2 < 0xe000 {
					r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
					i += 6
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, 0, "invalid escape in string"
		}
		i++
	}
	return nil, 0, "unterminated string"
}

func hex4(b []byte, i int) (rune, int) {
	if i+4 > len(b) {
		return 0, -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

// skipNested skips a nested object or array starting at b[i].
func skipNested(b []byte, i int) (int, string) {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return 0, "unterminated string"
			}
			i = j
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, ""
			}
		}
		i++
	}
	return 0, "unterminated object or array"
}
