package websocket

import (
	"strconv"

	"github.com/mdpio/mdp/tsparse"
)

// Timestamps arrive as bytes inside messages. time.Parse needs a string (a
// conversion that may allocate per message) and is several times slower than
// reading the fixed RFC 3339 layout directly, so both parsers here work on the
// bytes. They return exact nanoseconds: no float rounding.

// parseRFC3339 parses "2006-01-02T15:04:05[.fraction](Z|±hh:mm)" to ns since
// the epoch. Fraction digits past the ninth are truncated; a leap second
// (":60") is refused, as time.Parse refuses it.
func parseRFC3339(b []byte) (int64, bool) {
	if len(b) < 20 {
		return 0, false
	}
	t, ok := tsparse.ParseDateTime(b)
	if !ok || t.Sec > 59 {
		return 0, false
	}
	i := 19
	var frac int64
	if b[i] == '.' {
		f, n := tsparse.Fraction(b[i+1:], 1e9)
		if n == 0 {
			return 0, false
		}
		frac, i = f, i+1+n
	}
	if i >= len(b) {
		return 0, false
	}
	var offset int64
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 {
			return 0, false
		}
		if offset, ok = tsparse.ParseOffset(b[i:]); !ok {
			return 0, false
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(b) {
		return 0, false
	}
	return (t.Unix()-offset)*1e9 + frac, true
}

// parseUnix parses a decimal count of units since the epoch ("1630048897897",
// "1582329602.111") to ns; unit is ns per unit (1e9 for seconds, 1e6 for ms,
// 1e3 for µs, 1 for ns). Digits below one nanosecond are truncated.
func parseUnix(b []byte, unit int64) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
	}
	i := 0
	var whole int64
	limit := int64(1<<63-1) / unit // the largest whole count of units that fits
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := int64(b[i] - '0')
		if whole > (limit-d)/10 {
			return 0, false
		}
		whole = whole*10 + d
		i++
	}
	if i == 0 {
		return 0, false
	}
	ns := whole * unit
	if i < len(b) && b[i] == '.' {
		frac, n := tsparse.Fraction(b[i+1:], unit)
		if n == 0 {
			return 0, false
		}
		if ns > 1<<63-1-frac {
			return 0, false
		}
		ns += frac
		i += 1 + n
	}
	if i != len(b) {
		// An exponent ("1.63e12") is valid JSON but no feed spells time so;
		// take the slow, rounding path rather than reject it.
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return 0, false
		}
		ns = int64(f * float64(unit))
	}
	if neg {
		ns = -ns
	}
	return ns, true
}
