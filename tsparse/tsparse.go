// Package tsparse is byte-level, allocation-free parsing of timestamps and
// numbers as exchanges and recorded files write them.
//
// Sources read these values out of message and file buffers once per record.
// strconv and time work on strings (a conversion that may allocate) and
// time.Parse allocates its error values, so the common spellings are read
// here straight from the bytes. Every function is exact: numbers are
// bit-identical to strconv, times are exact nanoseconds with no float
// rounding. Each parser accepts one precise grammar; what a caller accepts
// beyond or short of it (a timezone for zone-less text, a leap second, an
// exponent) is the caller's glue.
package tsparse

import (
	"encoding/binary"
	"math"
	"strconv"
)

// ParseInt parses an optionally '-'-signed decimal int64 of at most 20 bytes.
// '+', spaces and values outside [-(2^63-1), 2^63-1] are rejected.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	n, ok := ParseUint(b)
	if !ok || n > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// ParseUint parses a non-empty run of at most 20 decimal digits as a uint64,
// rejecting values that overflow.
func ParseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	// 19 digits cannot overflow a uint64, so only a 20th needs a check.
	var n uint64
	for _, c := range b[:min(len(b), 19)] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if len(b) == 20 {
		c := b[19]
		d := uint64(c - '0')
		if c < '0' || c > '9' || n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// ParseFloat parses a finite decimal number of at most 64 bytes to the
// correctly rounded float64, bit-identical to strconv.ParseFloat. It accepts
// a sign, digits with an optional '.', and an exponent; it rejects what
// strconv accepts beyond plain decimals (NaN, Inf, hex floats, underscores)
// and values that overflow to ±Inf.
//
// Prices and sizes are short plain decimals ("9682.19", "0.132"): for those
// the digits form an integer m < 2^53 and the value is m / 10^k with
// 10^k ≤ 10^22, both exact in a float64, so one IEEE division is correctly
// rounded. That is Clinger's fast path, the same one strconv takes first; it
// is taken here without strconv's generality. Anything else goes to strconv,
// whose string(b) argument does not escape and so does not allocate.
func ParseFloat(b []byte) (float64, bool) {
	f, _, ok := ParseFloatDecimals(b)
	return f, ok
}

// ParseFloatDecimals is ParseFloat that also returns Decimals(b): on the
// fast path the digits after the point are counted while they are read,
// so a caller that wants both (a size and its precision) scans b once.
func ParseFloatDecimals(b []byte) (float64, int, bool) {
	if len(b) == 0 || len(b) > 64 {
		return 0, 0, false
	}
	if len(b) <= 19 {
		var m uint64
		frac, dot, digits := 0, false, 0
		i := 0
		neg := b[0] == '-'
		if neg || b[0] == '+' {
			i = 1
		}
		for ; i < len(b); i++ {
			c := b[i]
			if c >= '0' && c <= '9' {
				m = m*10 + uint64(c-'0')
				digits++
				if dot {
					frac++
				}
				continue
			}
			if c == '.' && !dot {
				dot = true
				continue
			}
			break
		}
		if i == len(b) && digits > 0 && m < 1<<53 {
			f := float64(m) / float64pow10[frac]
			if neg {
				f = -f
			}
			return f, frac, true
		}
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, 0, false
	}
	return f, Decimals(b), true
}

// eightDigits parses eight ASCII digits at b[0:8] at once (SWAR, after
// D. Lemire): epoch timestamps have 10 to 19 digits, and a digit-at-a-time
// loop is a chain of dependent multiplies. len(b) must be at least 8.
func eightDigits(b []byte) (uint32, bool) {
	v := binary.LittleEndian.Uint64(b)
	if (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) != 0x3333333333333333 {
		return 0, false
	}
	return uint32(digits8(v - 0x3030303030303030)), true
}

// digits8 is the value of the eight digits of x, each byte 0-9 with the
// most significant digit in the low byte.
func digits8(x uint64) uint64 {
	x = x*10 + x>>8
	return ((x&0x000000FF000000FF)*(100+1000000<<32) + (x>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
}

// Digits parses b, all decimal digits, as a small non-negative int (a date
// or time field); it does not check for overflow.
func Digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// fraction reads the digits after a decimal point at the start of b: v is
// their value in 1/unit steps (unit 1e9 gives ns of a second fraction, and
// unit is a power of ten), truncated, and n is how many digits it consumed,
// 0 if b does not start with a digit.
func fraction(b []byte, unit int64) (v int64, n int) {
	scale := unit
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		if scale >= 10 {
			scale /= 10
			v += int64(b[n]-'0') * scale
		}
	}
	return v, n
}

// DateTime is a civil date and time of day, without a zone.
type DateTime struct {
	Year, Month, Day, Hour, Min, Sec int
}

// Valid reports whether the fields name a real time: a day that exists in
// its month (leap years included), hour ≤ 23, minute ≤ 59 and second ≤ 60
// (a leap second; callers that refuse one check Sec themselves).
func (t DateTime) Valid() bool {
	return t.Month >= 1 && t.Month <= 12 && t.Day >= 1 && t.Day <= DaysIn(t.Year, t.Month) &&
		t.Hour >= 0 && t.Hour <= 23 && t.Min >= 0 && t.Min <= 59 && t.Sec >= 0 && t.Sec <= 60
}

// Unix is t, read as UTC, in seconds since the epoch; a second of 60 counts
// as the first second of the next minute, as time.Date normalises it.
func (t DateTime) Unix() int64 {
	return DaysFromCivil(t.Year, t.Month, t.Day)*86400 + int64(t.Hour*3600+t.Min*60+t.Sec)
}

// parseDateTime parses the RFC 3339 / ISO 8601 head "yyyy-mm-dd[Tt ]hh:mm:ss"
// from b[0:19] (what follows is the caller's: a fraction, a zone) and checks
// the fields with Valid.
func parseDateTime(b []byte) (DateTime, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return DateTime{}, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return DateTime{}, false
	}
	y, ok1 := Digits(b[0:4])
	mo, ok2 := Digits(b[5:7])
	d, ok3 := Digits(b[8:10])
	h, ok4 := Digits(b[11:13])
	mi, ok5 := Digits(b[14:16])
	s, ok6 := Digits(b[17:19])
	t := DateTime{y, mo, d, h, mi, s}
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !t.Valid() {
		return DateTime{}, false
	}
	return t, true
}

// ParseOffset parses a UTC offset, all of zone: "+hh", "+hhmm" or "+hh:mm"
// (or '-'), hours ≤ 23 and minutes ≤ 59. It returns the offset in seconds,
// positive east of UTC.
func ParseOffset(zone []byte) (int64, bool) {
	if len(zone) == 0 || zone[0] != '+' && zone[0] != '-' {
		return 0, false
	}
	var oh, om int
	var ok bool
	switch len(zone) {
	case 3: // +hh
		oh, ok = Digits(zone[1:3])
	case 5: // +hhmm
		oh, ok = Digits(zone[1:3])
		if ok {
			om, ok = Digits(zone[3:5])
		}
	case 6: // +hh:mm
		if zone[3] != ':' {
			return 0, false
		}
		oh, ok = Digits(zone[1:3])
		if ok {
			om, ok = Digits(zone[4:6])
		}
	}
	if !ok || oh > 23 || om > 59 {
		return 0, false
	}
	off := int64(oh*3600 + om*60)
	if zone[0] == '-' {
		off = -off
	}
	return off, true
}

// isLeap reports whether year is a leap year of the proleptic Gregorian
// calendar.
func isLeap(year int) bool {
	return year%4 == 0 && (year%100 != 0 || year%400 == 0)
}

// DaysIn is the number of days of month (1-12) in year.
func DaysIn(year, month int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// DaysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant's algorithm), negative before.
func DaysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// Decimals returns how many decimal places the number spelled by b has: the
// digits after its '.', less a decimal exponent ("1.25" 2, "7" 0, "1e-3" 3,
// "1.5e2" 0). A text that is not a plain decimal (hex, NaN) returns 99, so a
// caller treats its precision as unknown. It does not validate b beyond
// that; call it on text ParseFloat accepted.
func Decimals(b []byte) int {
	frac, i := 0, 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	if len(b)-i > 1 && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') {
		return 99
	}
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
	}
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			frac++
		}
	}
	if i == len(b) {
		return frac
	}
	if b[i] != 'e' && b[i] != 'E' {
		return 99
	}
	i++
	neg := false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	exp := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		exp = min(exp*10+int(b[i]-'0'), 1000)
	}
	if i != len(b) {
		return 99
	}
	if neg {
		return frac + exp
	}
	return max(frac-exp, 0)
}

// ScanDigits reads the run of decimal digits that starts at b[i], at most
// 19 of them (so the value cannot overflow), eight at a time where it can
// (SWAR). It returns their value and the index after the last digit read;
// end == i when b[i] is not a digit. A fused row decoder reads an integer
// field this way while it scans for the field's end.
func ScanDigits(b []byte, i int) (n uint64, end int) {
	// Sixteen digits, a microsecond epoch time, checked with one branch.
	if i >= 0 && i+16 < len(b) && b[i+16]-'0' > 9 {
		v, w := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		const hi, six, threes = 0xF0F0F0F0F0F0F0F0, 0x0606060606060606, 0x3333333333333333
		if ((v&hi|(v+six)&hi>>4)^threes)|((w&hi|(w+six)&hi>>4)^threes) == 0 {
			return digits8(v-0x3030303030303030)*100_000_000 + digits8(w-0x3030303030303030), i + 16
		}
	}
	start := i
	for i+8 <= len(b) && i-start <= 11 {
		d, ok := eightDigits(b[i:])
		if !ok {
			break
		}
		n = n*100_000_000 + uint64(d)
		i += 8
	}
	for i < len(b) && i-start < 19 && b[i]-'0' <= 9 {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	return n, i
}

// Times16 reads epoch times of exactly sixteen digits (microseconds, as
// tardis writes them) with a memo of their first twelve digits: the times
// of a file in time order share them for 10 ms at a stretch (the first
// eight for 100 s), so Fast compares twelve bytes with the last ones seen
// and converts only the last four digits. The zero value is ready (its
// memo is "000000000000", worth 0); a Times16 is for one goroutine.
type Times16 struct {
	hiDigits  uint64 // the first eight digits last converted, less '0' in each byte
	hiVal     uint64 // their value times 1e8
	midDigits uint32 // the four after them, less '0' in each byte
	midVal    uint64 // the value of the twelve times 1e4
}

// Fast is the value of sixteen digits whose first eight are the word v and
// last eight the word w (as loaded little-endian from the text) when the
// first twelve are the memo's and the last four are digits; ok is false
// otherwise, and the caller then calls Scan (which updates the memo). The
// caller checks that the byte after the sixteen is not a digit. Small
// enough to be inlined in a row decoder.
func (m *Times16) Fast(v, w uint64) (n uint64, ok bool) {
	t := uint32(w >> 32)
	return m.midVal + digits4(t-0x30303030), v-0x3030303030303030 == m.hiDigits && uint32(w)-0x30303030 == m.midDigits &&
		(t&0xF0F0F0F0|(t+0x06060606)&0xF0F0F0F0>>4) == 0x33333333
}

// Digits8 is the value of eight digits in a word less '0' in each byte (as
// loaded little-endian from the text, the first digit in the low byte).
func Digits8(x uint64) uint64 { return digits8(x) }

// digits4 is the value of the four digits of x, each byte 0-9 with the
// most significant digit in the low byte.
func digits4(x uint32) uint64 {
	y := uint64(x)*10 + uint64(x)>>8 // bytes 0 and 2: two-digit pairs
	return (y & 0x00FF00FF * (1 + 100<<16)) >> 16 & 0xFFFF
}

// Scan is ScanDigits(b, i), with the memo for sixteen digits: it takes
// the first eight from the memo when they match, and leaves the memo with
// the first twelve of what it read.
func (m *Times16) Scan(b []byte, i int) (n uint64, end int) {
	if i >= 0 && i+16 < len(b) && b[i+16]-'0' > 9 {
		v, w := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:])
		const hi, six, threes = 0xF0F0F0F0F0F0F0F0, 0x0606060606060606, 0x3333333333333333
		if v-0x3030303030303030 != m.hiDigits { // the memo holds only digits
			if ((v&hi|(v+six)&hi>>4)^threes)|((w&hi|(w+six)&hi>>4)^threes) != 0 {
				return ScanDigits(b, i)
			}
			m.hiDigits = v - 0x3030303030303030
			m.hiVal = digits8(m.hiDigits) * 100_000_000
		} else if (w&hi|(w+six)&hi>>4)^threes != 0 {
			return ScanDigits(b, i)
		}
		m.midDigits = uint32(w) - 0x30303030
		m.midVal = m.hiVal + digits4(m.midDigits)*10_000
		return m.hiVal + digits8(w-0x3030303030303030), i + 16
	}
	return ScanDigits(b, i)
}

// ScanDecimal reads an unsigned plain decimal ("9682.19", "7", ".5") that
// starts at b[i] while it scans for its end: digits with at most one '.',
// up to the first other byte. It returns the value, its decimal places and
// the index after it, with ok false when the number is not one Clinger's
// fast path takes exactly (more than 19 bytes, no digit, a mantissa of
// 2^53 or more); the caller then parses the field the general way. When ok,
// f and frac are what ParseFloatDecimals(b[i:end]) returns, bit for bit:
// the same fast path, in the same single pass.
func ScanDecimal(b []byte, i int) (f float64, frac int, end int, ok bool) {
	start := i
	var m uint64
	dot := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c-'0' <= 9 {
			m = m*10 + uint64(c-'0') // wraps only past 19 digits, rejected below
			frac += dot
			continue
		}
		if c != '.' || dot != 0 {
			break
		}
		dot = 1
	}
	if n := i - start; n > 19 || n == dot || m >= 1<<53 {
		return 0, 0, i, false
	}
	return float64(m) / float64pow10[frac], frac, i, true
}
