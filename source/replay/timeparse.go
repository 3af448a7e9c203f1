package replay

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// tsKind is how a timestamp column is spelled.
type tsKind uint8

const (
	tsAuto     tsKind = iota // a number (unit guessed from magnitude) or ISO 8601 text
	tsUnit                   // a number of seconds, ms, µs or ns since the epoch
	tsISO                    // RFC 3339 / ISO 8601: 2024-01-02T14:30:00.123Z, space separator allowed
	tsHistdata               // HistData.com ticks: 20200101 170000065 (yyyymmdd hhmmssSSS)
	tsLayout                 // any Go time layout (slow path: time.ParseInLocation allocates)
)

// tsParser turns the bytes of a timestamp column into ns since the epoch.
// The common spellings are parsed by hand because time.Parse allocates per
// call (its error value captures the input), which the per-row path must not.
type tsParser struct {
	kind   tsKind
	unit   int64 // ns per unit for tsUnit
	layout string
	loc    *time.Location // for text without a UTC offset
}

// newTSParser resolves a ts_format value.
func newTSParser(format string, loc *time.Location) (tsParser, error) {
	p := tsParser{loc: loc}
	switch strings.ToLower(format) {
	case "", "auto":
		p.kind = tsAuto
	case "unix_s", "unix", "s":
		p.kind, p.unit = tsUnit, int64(time.Second)
	case "unix_ms", "ms":
		p.kind, p.unit = tsUnit, int64(time.Millisecond)
	case "unix_us", "us":
		p.kind, p.unit = tsUnit, int64(time.Microsecond)
	case "unix_ns", "ns":
		p.kind, p.unit = tsUnit, 1
	case "rfc3339", "rfc3339nano", "iso", "iso8601":
		p.kind = tsISO
	case "histdata":
		p.kind = tsHistdata
	default:
		// A Go layout must contain at least a year or hour reference.
		if !strings.Contains(format, "2006") && !strings.Contains(format, "15") && !strings.Contains(format, "03") {
			return p, fmt.Errorf("ts_format %q is neither unix_s, unix_ms, unix_us, unix_ns, rfc3339, histdata, auto nor a Go time layout (such as \"2006-01-02 15:04:05.000\")", format)
		}
		p.kind, p.layout = tsLayout, format
	}
	return p, nil
}

// parse returns the time in ns and whether b was a valid timestamp.
func (p *tsParser) parse(b []byte) (int64, bool) {
	switch p.kind {
	case tsUnit:
		return parseUnix(b, p.unit)
	case tsISO:
		return parseISO(b, p.loc)
	case tsHistdata:
		return parseHistdata(b, p.loc)
	case tsLayout:
		t, err := time.ParseInLocation(p.layout, string(b), p.loc)
		if err != nil {
			return 0, false
		}
		return t.UnixNano(), true
	}
	// auto
	if len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) && !(len(b) >= 10 && b[4] == '-') {
		return parseUnix(b, autoUnit(b))
	}
	return parseISO(b, p.loc)
}

// autoUnit guesses the unit of an epoch number from the size of its integer
// part: below 1e11 seconds (until the year 5138), below 1e14 milliseconds,
// below 1e17 microseconds, else nanoseconds.
func autoUnit(b []byte) int64 {
	digits := 0
	for i, c := range b {
		if i == 0 && c == '-' {
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	switch {
	case digits <= 11:
		return int64(time.Second)
	case digits <= 14:
		return int64(time.Millisecond)
	case digits <= 17:
		return int64(time.Microsecond)
	}
	return 1
}

// parseUnix parses an epoch number with an optional fraction, exactly (no
// float rounding): "1582329602.111" in seconds is 1582329602111000000 ns.
// Exponent notation falls back to float arithmetic.
func parseUnix(b []byte, unit int64) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	i, neg := 0, false
	if b[0] == '-' || b[0] == '+' {
		neg, i = b[0] == '-', 1
	}
	var n int64
	start := i
	for i+8 <= len(b) {
		v, ok := eightDigits(b[i:])
		if !ok {
			break
		}
		n = n*100_000_000 + int64(v)
		i += 8
	}
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	digits := i - start
	// Up to 18 digits cannot overflow; checking per digit would cost a
	// division each, the largest cost of the row.
	if digits > 18 {
		var ok bool
		if n, ok = parseInt(b[start:i]); !ok {
			return 0, false
		}
	}
	if n > math.MaxInt64/unit {
		return 0, false
	}
	n *= unit
	if i < len(b) && b[i] == '.' {
		i++
		scale := unit
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			digits++
			scale /= 10
			n += int64(b[i]-'0') * scale
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsNaN(f) || math.Abs(f*float64(unit)) > math.MaxInt64 {
			return 0, false
		}
		return int64(math.Round(f * float64(unit))), true
	}
	if i != len(b) || digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// eightDigits parses eight ASCII digits at once (SWAR, after D. Lemire):
// epoch timestamps have 10 to 19 digits, and a digit-at-a-time loop is a
// chain of dependent multiplies.
func eightDigits(b []byte) (uint32, bool) {
	v := binary.LittleEndian.Uint64(b)
	if (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) != 0x3333333333333333 {
		return 0, false
	}
	v -= 0x3030303030303030
	v = v*10 + v>>8
	v = ((v&0x000000FF000000FF)*(100+1000000<<32) + (v>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
	return uint32(v), true
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

func digitsN(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseISO parses yyyy-mm-dd[T ]hh:mm:ss[.fraction][Z|±hh:mm|±hhmm|±hh].
// Without an offset the time is read in loc.
func parseISO(b []byte, loc *time.Location) (int64, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, false
	}
	y, ok1 := digitsN(b[0:4])
	mo, ok2 := digits2(b[5:7])
	d, ok3 := digits2(b[8:10])
	h, ok4 := digits2(b[11:13])
	mi, ok5 := digits2(b[14:16])
	s, ok6 := digits2(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, false
	}
	i := 19
	ns := 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		scale := int(time.Second)
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			scale /= 10
			ns += int(b[i]-'0') * scale
		}
		if i == start {
			return 0, false
		}
	}
	return civil(y, mo, d, h, mi, s, ns, b[i:], loc)
}

// parseHistdata parses HistData.com tick times: "20200101 170000065"
// (yyyymmdd hhmmss and milliseconds), read in loc.
func parseHistdata(b []byte, loc *time.Location) (int64, bool) {
	if len(b) != 18 && len(b) != 15 || b[8] != ' ' {
		return 0, false
	}
	y, ok1 := digitsN(b[0:4])
	mo, ok2 := digits2(b[4:6])
	d, ok3 := digits2(b[6:8])
	h, ok4 := digits2(b[9:11])
	mi, ok5 := digits2(b[11:13])
	s, ok6 := digits2(b[13:15])
	ms := 0
	ok7 := true
	if len(b) == 18 {
		ms, ok7 = digitsN(b[15:18])
	}
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return 0, false
	}
	return civil(y, mo, d, h, mi, s, ms*int(time.Millisecond), nil, loc)
}

var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// civil checks the fields and converts them, with the zone suffix zone
// ("", "Z", "+02:00", "-0500", "+01"), to ns since the epoch.
func civil(y, mo, d, h, mi, s, ns int, zone []byte, loc *time.Location) (int64, bool) {
	if mo < 1 || mo > 12 || d < 1 || d > daysIn[mo] || h > 23 || mi > 59 || s > 60 {
		return 0, false
	}
	if mo == 2 && d == 29 && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		return 0, false
	}
	switch {
	case len(zone) == 0:
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc).UnixNano(), true
	case len(zone) == 1 && (zone[0] == 'Z' || zone[0] == 'z'):
		return utcNanos(y, mo, d, h, mi, s, ns), true
	case zone[0] == '+' || zone[0] == '-':
		var oh, om int
		var ok bool
		switch len(zone) {
		case 3: // +hh
			oh, ok = digits2(zone[1:3])
		case 5: // +hhmm
			oh, ok = digits2(zone[1:3])
			if ok {
				om, ok = digits2(zone[3:5])
			}
		case 6: // +hh:mm
			if zone[3] != ':' {
				return 0, false
			}
			oh, ok = digits2(zone[1:3])
			if ok {
				om, ok = digits2(zone[4:6])
			}
		}
		if !ok || oh > 23 || om > 59 {
			return 0, false
		}
		off := int64(oh*3600+om*60) * int64(time.Second)
		if zone[0] == '-' {
			off = -off
		}
		return utcNanos(y, mo, d, h, mi, s, ns) - off, true
	}
	return 0, false
}

// utcNanos converts a UTC civil time to ns since the epoch (days from civil,
// H. Hinnant's algorithm), avoiding time.Date's normalisation work.
func utcNanos(y, mo, d, h, mi, s, ns int) int64 {
	yy, m := int64(y), int64(mo)
	if m <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 {
		era = (yy - 399) / 400
	}
	yoe := yy - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	secs := days*86400 + int64(h)*3600 + int64(mi)*60 + int64(s)
	return secs*int64(time.Second) + int64(ns)
}

// loadLocation resolves a timezone param: "" and "UTC" are UTC, "EST" style
// fixed zones and IANA names load from the embedded database, and "+02:00" /
// "-0500" are fixed offsets.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "utc") || name == "Z" {
		return time.UTC, nil
	}
	if name[0] == '+' || name[0] == '-' {
		if ns, ok := civil(1970, 1, 1, 0, 0, 0, 0, []byte(name), time.UTC); ok {
			return time.FixedZone(name, int(-ns/int64(time.Second))), nil
		}
		return nil, fmt.Errorf("timezone %q: want an IANA name such as America/New_York or an offset such as +02:00", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: want an IANA name such as America/New_York or an offset such as +02:00", name)
	}
	return loc, nil
}
