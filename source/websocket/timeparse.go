package websocket

import "strconv"

// Timestamps arrive as bytes inside messages. time.Parse needs a string (a
// conversion that may allocate per message) and is several times slower than
// reading the fixed RFC 3339 layout directly, so both parsers here work on the
// bytes. They return exact nanoseconds: no float rounding.

// parseRFC3339 parses "2006-01-02T15:04:05[.fraction](Z|±hh:mm)" to ns since
// the epoch. Fraction digits past the ninth are truncated.
func parseRFC3339(b []byte) (int64, bool) {
	if len(b) < 20 {
		return 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	if t := b[10]; t != 'T' && t != 't' && t != ' ' {
		return 0, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 9 {
				frac = frac*10 + int64(b[i]-'0')
				digits++
			}
			i++
		}
		if digits == 0 {
			return 0, false
		}
		for ; digits < 9; digits++ {
			frac *= 10
		}
	}
	if i >= len(b) {
		return 0, false
	}
	var offset int64
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := num(b[i+1 : i+3])
		om, ok2 := num(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(b) {
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1e9 + frac, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
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
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if whole > (1<<63-1)/10/unit {
			return 0, false
		}
		whole = whole*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 {
		return 0, false
	}
	ns := whole * unit
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		scale := unit
		var frac int64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if scale >= 10 {
				scale /= 10
				frac += int64(b[i]-'0') * scale
			}
			i++
		}
		if i == start {
			return 0, false
		}
		ns += frac
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
