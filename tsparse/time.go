package tsparse

import "time"

// Event times are int64 nanoseconds since the epoch. The two extreme values
// are sentinels downstream (md.MinTime, md.MaxTime: no watermark yet, end of
// stream), so a parsed time lies in [MinNanos, MaxNanos], symmetric about
// the epoch: from 1677-09-21T00:12:43.145224194Z to
// 2262-04-11T23:47:16.854775806Z. Anything outside is rejected, never
// wrapped.
const (
	MaxNanos int64 = 1<<63 - 2
	MinNanos int64 = -MaxNanos
)

// fromUnix returns sec seconds plus nsec nanoseconds (0 ≤ nsec < 1e9) since
// the epoch as ns, and false when that lies outside [MinNanos, MaxNanos].
func fromUnix(sec, nsec int64) (int64, bool) {
	if nsec < 0 || nsec >= 1e9 {
		return 0, false
	}
	if sec < 0 && nsec > 0 {
		sec, nsec = sec+1, nsec-1e9 // nsec in (-1e9, 0]
	}
	const maxSec = MaxNanos / 1e9 // 9223372036
	if sec > maxSec || sec < -maxSec {
		return 0, false
	}
	base := sec * 1e9 // |base| ≤ 9223372036e9: no overflow
	if (base > 0 && nsec > MaxNanos-base) || (base < 0 && nsec < MinNanos-base) {
		return 0, false
	}
	return base + nsec, true
}

// FromTime is t in ns since the epoch, or false outside [MinNanos, MaxNanos]
// (where t.UnixNano is undefined).
func FromTime(t time.Time) (int64, bool) {
	return fromUnix(t.Unix(), int64(t.Nanosecond()))
}

// unitExp is log10(unit) for the units ParseUnix accepts, or -1.
func unitExp(unit int64) int {
	switch unit {
	case 1:
		return 0
	case 1e3:
		return 3
	case 1e6:
		return 6
	case 1e9:
		return 9
	}
	return -1
}

// ParseUnix parses a count of units since the epoch to ns: unit is ns per
// unit, 1e9 (seconds), 1e6 (ms), 1e3 (µs) or 1 (ns). The grammar is
//
//	[+-] digits [ . digits ] [ (e|E) [+-] digits ]
//
// with at least one digit on each side of a point and at most four exponent
// digits: "1630048897897", "1582329602.111", "-1.5", "1.63e12". The value is
// exact: the decimal is scaled to ns and digits below one ns are truncated
// toward zero, with no float rounding. A value outside [MinNanos, MaxNanos]
// is rejected, never wrapped.
func ParseUnix(b []byte, unit int64) (int64, bool) {
	if v, ok, done := parseUnixFast(b, unit); done {
		return v, ok
	}
	return parseUnixSlow(b, unit)
}

// parseUnixFast takes the common spelling, at most 18 integer digits and an
// optional fraction, without a division or a per-digit overflow check; done
// is false when the input needs the general path.
func parseUnixFast(b []byte, unit int64) (v int64, ok, done bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	start := i
	var n int64
	for i+8 <= len(b) && i-start <= 8 {
		d, ok := eightDigits(b[i:])
		if !ok {
			break
		}
		n = n*100_000_000 + int64(d)
		i += 8
	}
	for ; i < len(b) && i-start < 18 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	var limit int64 // the largest count of units in range
	switch unit {
	case 1:
		limit = MaxNanos
	case 1e3:
		limit = MaxNanos / 1e3
	case 1e6:
		limit = MaxNanos / 1e6
	case 1e9:
		limit = MaxNanos / 1e9
	}
	if i == start || limit == 0 || n > limit {
		return 0, false, false
	}
	n *= unit
	if i < len(b) {
		if b[i] != '.' {
			return 0, false, false
		}
		f, k := fraction(b[i+1:], unit)
		if k == 0 || i+1+k != len(b) || n > MaxNanos-f {
			return 0, false, false
		}
		n += f
	}
	if neg {
		n = -n
	}
	return n, true, true
}

// parseUnixSlow is ParseUnix for every input: long digit runs, exponents,
// values at the edges of the range, and the malformed.
func parseUnixSlow(b []byte, unit int64) (int64, bool) {
	ue := unitExp(unit)
	if ue < 0 || len(b) == 0 {
		return 0, false
	}
	i, neg := 0, false
	if b[0] == '-' || b[0] == '+' {
		neg, i = b[0] == '-', 1
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intDigits := b[intStart:i]
	if len(intDigits) == 0 {
		return 0, false
	}
	var fracDigits []byte
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == fs {
			return 0, false
		}
		fracDigits = b[fs:i]
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			eneg, i = b[i] == '-', i+1
		}
		es := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			exp = exp*10 + int(b[i]-'0')
			i++
		}
		if i == es || i-es > 4 {
			return 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(b) {
		return 0, false
	}
	// The value in ns is the digit string intDigits‖fracDigits with the
	// point after its k-th digit, truncated: its first k digits, padded with
	// zeros when k is past the end.
	k := len(intDigits) + exp + ue
	var n int64
	for j := 0; j < k; j++ {
		d := int64(0)
		switch {
		case j < len(intDigits):
			d = int64(intDigits[j] - '0')
		case j-len(intDigits) < len(fracDigits):
			d = int64(fracDigits[j-len(intDigits)] - '0')
		}
		if n > (MaxNanos-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// ParseRFC3339 parses an RFC 3339 / ISO 8601 time to ns since the epoch:
//
//	yyyy-mm-dd(T|t| )hh:mm:ss[(.|,)fraction][Z|z|±hh:mm|±hhmm|±hh]
//
// fraction digits past the ninth are truncated. Text without a zone is read
// in loc; with loc nil a zone is required. A leap second (":60") is refused,
// as time.Parse refuses it, and so is a time outside [MinNanos, MaxNanos].
func ParseRFC3339(b []byte, loc *time.Location) (int64, bool) {
	t, ok := parseDateTime(b)
	if !ok || t.Sec > 59 {
		return 0, false
	}
	i := 19
	var ns int64
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		f, k := fraction(b[i+1:], int64(time.Second))
		if k == 0 {
			return 0, false
		}
		ns, i = f, i+1+k
	}
	return Civil(t, ns, b[i:], loc)
}

// Civil converts a checked civil time t plus ns (0 ≤ ns < 1e9) and a zone
// suffix ("", "Z", "+02:00", "-0500", "+01") to ns since the epoch. Without
// a zone t is read in loc, or rejected when loc is nil. It returns false for
// a malformed zone or a time outside [MinNanos, MaxNanos].
func Civil(t DateTime, ns int64, zone []byte, loc *time.Location) (int64, bool) {
	switch {
	case len(zone) == 0:
		if loc == nil {
			return 0, false
		}
		if loc == time.UTC {
			return fromUnix(t.Unix(), ns)
		}
		return FromTime(time.Date(t.Year, time.Month(t.Month), t.Day, t.Hour, t.Min, t.Sec, int(ns), loc))
	case len(zone) == 1 && (zone[0] == 'Z' || zone[0] == 'z'):
		return fromUnix(t.Unix(), ns)
	}
	off, ok := ParseOffset(zone)
	if !ok {
		return 0, false
	}
	return fromUnix(t.Unix()-off, ns)
}
