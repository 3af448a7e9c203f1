package rowmap

import (
	"fmt"
	"strings"
	"time"

	"github.com/mdpio/mdp/tsparse"
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

// TSParser turns the bytes of a timestamp column into ns since the epoch.
// The common spellings are parsed by hand because time.Parse allocates per
// call (its error value captures the input), which the per-row path must not.
type TSParser struct {
	kind   tsKind
	unit   int64 // ns per unit for tsUnit
	layout string
	loc    *time.Location // for text without a UTC offset
}

// NewTSParser resolves a ts_format value.
func NewTSParser(format string, loc *time.Location) (TSParser, error) {
	p := TSParser{loc: loc}
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

// parse returns the time in ns and whether b was a valid timestamp. Every
// spelling goes through tsparse, so a time outside the representable range
// is rejected (a malformed row), never wrapped.
func (p *TSParser) Parse(b []byte) (int64, bool) {
	switch p.kind {
	case tsUnit:
		return tsparse.ParseUnix(b, p.unit)
	case tsISO:
		return tsparse.ParseRFC3339(b, p.loc)
	case tsHistdata:
		return parseHistdata(b, p.loc)
	case tsLayout:
		t, err := time.ParseInLocation(p.layout, string(b), p.loc)
		if err != nil {
			return 0, false
		}
		return tsparse.FromTime(t)
	}
	// auto
	if len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) && !(len(b) >= 10 && b[4] == '-') {
		return tsparse.ParseUnix(b, autoUnit(b))
	}
	return tsparse.ParseRFC3339(b, p.loc)
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

// parseHistdata parses HistData.com tick times: "20200101 170000065"
// (yyyymmdd hhmmss and milliseconds), read in loc.
func parseHistdata(b []byte, loc *time.Location) (int64, bool) {
	if len(b) != 18 && len(b) != 15 || b[8] != ' ' {
		return 0, false
	}
	y, ok1 := tsparse.Digits(b[0:4])
	mo, ok2 := tsparse.Digits(b[4:6])
	d, ok3 := tsparse.Digits(b[6:8])
	h, ok4 := tsparse.Digits(b[9:11])
	mi, ok5 := tsparse.Digits(b[11:13])
	s, ok6 := tsparse.Digits(b[13:15])
	ms := 0
	ok7 := true
	if len(b) == 18 {
		ms, ok7 = tsparse.Digits(b[15:18])
	}
	t := tsparse.DateTime{Year: y, Month: mo, Day: d, Hour: h, Min: mi, Sec: s}
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || !t.Valid() {
		return 0, false
	}
	return tsparse.Civil(t, int64(ms)*int64(time.Millisecond), nil, loc)
}

// LoadLocation resolves a timezone param: "" and "UTC" are UTC, "EST" style
// fixed zones and IANA names load from the embedded database, and "+02:00" /
// "-0500" are fixed offsets.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "utc") || name == "Z" {
		return time.UTC, nil
	}
	if name[0] == '+' || name[0] == '-' {
		if off, ok := tsparse.ParseOffset([]byte(name)); ok {
			return time.FixedZone(name, int(off)), nil
		}
		return nil, fmt.Errorf("timezone %q: want an IANA name such as America/New_York or an offset such as +02:00", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: want an IANA name such as America/New_York or an offset such as +02:00", name)
	}
	return loc, nil
}
