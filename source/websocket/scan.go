package websocket

import "errors"

// This file is a small JSON scanner for the message shapes the presets read.
//
// Why by hand: encoding/json decodes through reflection (about 1.3 µs per
// Binance trade message on the development machine, with allocations), and
// the allocation-free alternatives either generate code (easyjson, ffjson) or
// are not in this module's dependency set (fastjson). What the presets need is
// much narrower than a JSON decoder: walk one object, note where the values
// of a handful of keys start and end, and convert those bytes to numbers
// without allocating. That is a few dozen lines of index arithmetic, it keeps
// the hot path free of reflection, interface calls and allocation, and it
// parses prices with strconv.ParseFloat so a price decodes to exactly the
// float64 every other path (replay files, encoding/json) produces.
//
// The scanner checks structure as far as it walks: objects and arrays must be
// well formed, strings terminated, the message must be a single value. Values
// it skips are only checked for balance and termination.

// span is a raw JSON value inside a message: bytes [s, e). The zero span means
// "absent" (no value can start at offset 0 inside an object).
type span struct{ s, e int32 }

func (v span) ok() bool { return v.e > 0 }

var (
	errNotObject   = errors.New("not a JSON object")
	errSyntax      = errors.New("invalid JSON")
	errTrailing    = errors.New("invalid JSON: data after the top-level value")
	errUnterminate = errors.New("invalid JSON: unterminated string")
)

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the closing quote of the string that
// opens at b[i] ('"'), and whether it holds escapes; -1 if unterminated.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j++
		}
	}
	return -1, esc
}

// valueEnd returns the index just past the value that starts at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		e, _ := stringEnd(b, i)
		return e
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _ := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	default:
		j := i
		for j < len(b) && literalByte[b[j]] {
			j++
		}
		if j == i {
			return -1
		}
		if j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
			default:
				return -1
			}
		}
		return j
	}
}

// literalByte marks the bytes of numbers and of true, false and null.
var literalByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eEtruefalsn") {
		t[c] = true
	}
	return t
}()

// objIter walks the members of one JSON object.
type objIter struct {
	b     []byte
	i     int
	first bool
	err   error
}

// newObjIter starts at the object that opens at b[i] ('{').
func newObjIter(b []byte, i int) objIter {
	return objIter{b: b, i: i + 1, first: true}
}

// next returns the next member: its key bytes (without quotes, escapes left
// as they are) and its value span. ok is false at the end of the object or
// on a syntax error (then it.err is set).
func (it *objIter) next() (key []byte, v span, ok bool) {
	b := it.b
	i := skipWS(b, it.i)
	if i >= len(b) {
		it.err = errSyntax
		return nil, span{}, false
	}
	if b[i] == '}' {
		it.i = i + 1
		return nil, span{}, false
	}
	if !it.first {
		if b[i] != ',' {
			it.err = errSyntax
			return nil, span{}, false
		}
		i = skipWS(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.err = errSyntax
		return nil, span{}, false
	}
	ke, _ := stringEnd(b, i)
	if ke < 0 {
		it.err = errUnterminate
		return nil, span{}, false
	}
	key = b[i+1 : ke-1]
	i = skipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		it.err = errSyntax
		return nil, span{}, false
	}
	i = skipWS(b, i+1)
	ve := valueEnd(b, i)
	if ve < 0 {
		it.err = errSyntax
		return nil, span{}, false
	}
	it.i = ve
	it.first = false
	return key, span{int32(i), int32(ve)}, true
}

// arrIter walks the elements of one JSON array.
type arrIter struct {
	b     []byte
	i     int
	first bool
	err   error
}

func newArrIter(b []byte, i int) arrIter { return arrIter{b: b, i: i + 1, first: true} }

func (it *arrIter) next() (v span, ok bool) {
	b := it.b
	i := skipWS(b, it.i)
	if i >= len(b) {
		it.err = errSyntax
		return span{}, false
	}
	if b[i] == ']' {
		it.i = i + 1
		return span{}, false
	}
	if !it.first {
		if b[i] != ',' {
			it.err = errSyntax
			return span{}, false
		}
		i = skipWS(b, i+1)
	}
	ve := valueEnd(b, i)
	if ve < 0 {
		it.err = errSyntax
		return span{}, false
	}
	it.i = ve
	it.first = false
	return span{int32(i), int32(ve)}, true
}

// endOfMessage checks that only whitespace follows offset i.
func endOfMessage(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return errTrailing
	}
	return nil
}

// raw returns the bytes of v.
func raw(b []byte, v span) []byte { return b[v.s:v.e] }

// text returns the content of a string value without its quotes, or the raw
// bytes of any other scalar (a number, true, false). Escaped strings are
// returned as written; the values the presets read never need unescaping.
func text(b []byte, v span) []byte {
	if v.e-v.s >= 2 && b[v.s] == '"' {
		return b[v.s+1 : v.e-1]
	}
	return b[v.s:v.e]
}

// isString reports whether v is a JSON string.
func isString(b []byte, v span) bool { return v.ok() && b[v.s] == '"' }

func isObject(b []byte, v span) bool { return v.ok() && b[v.s] == '{' }

func isArray(b []byte, v span) bool { return v.ok() && b[v.s] == '[' }

// equal compares bytes to a string without allocating.
func equal(b []byte, s string) bool { return string(b) == s }
