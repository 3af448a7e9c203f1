package tsparse

import (
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The wrapping values: each lies outside the range and must be
// rejected, where the old parsers returned dates in 1677–1816.
func TestOutOfRangeNeverWraps(t *testing.T) {
	for _, s := range []string{"2300-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1677-09-21T00:12:43Z",
		"2262-04-11T23:47:16.854775807Z", "2262-04-12T00:00:00+00:00"} {
		if v, ok := ParseRFC3339([]byte(s), time.UTC); ok {
			t.Errorf("ParseRFC3339(%s) = %d (%s), want rejected", s, v, time.Unix(0, v).UTC())
		}
	}
	for _, s := range []string{"9223372036.9", "-9223372036.999999999", "9223372036.854775807", "9223372037", "1e10", "-9.3e9",
		"92233720368547758070"} {
		if v, ok := ParseUnix([]byte(s), 1e9); ok {
			t.Errorf("ParseUnix(%s, s) = %d (%s), want rejected", s, v, time.Unix(0, v).UTC())
		}
	}
	for _, s := range []string{"9223372036854775807", "-9223372036854775807", "-9223372036854775808", "9223372036854775808"} {
		if v, ok := ParseUnix([]byte(s), 1); ok {
			t.Errorf("ParseUnix(%s, ns) = %d, want rejected", s, v)
		}
	}
	// The edges themselves are in range.
	if v, ok := ParseUnix([]byte("9223372036.854775806"), 1e9); !ok || v != MaxNanos {
		t.Errorf("max: %d %v", v, ok)
	}
	if v, ok := ParseUnix([]byte("-9223372036854775806"), 1); !ok || v != MinNanos {
		t.Errorf("min: %d %v", v, ok)
	}
	if v, ok := ParseRFC3339([]byte("2262-04-11T23:47:16.854775806Z"), nil); !ok || v != MaxNanos {
		t.Errorf("max RFC 3339: %d %v", v, ok)
	}
	if v, ok := ParseRFC3339([]byte("1677-09-21T00:12:43.145224194Z"), nil); !ok || v != MinNanos {
		t.Errorf("min RFC 3339: %d %v", v, ok)
	}
	if _, ok := FromTime(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("FromTime(2300) accepted")
	}
}

func TestParseUnixValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		unit int64
		want int64
	}{
		{"1630048897897", 1e6, 1630048897897000000},
		{"1582329602.111", 1e9, 1582329602111000000},
		{"1582329602.1234567891", 1e9, 1582329602123456789},
		{"1582329602111000123", 1, 1582329602111000123},
		{"1630048897897.5", 1e6, 1630048897897500000},
		{"-1.5", 1e9, -1500000000},
		{"+2", 1e3, 2000},
		{"1.5e9", 1e9, 1.5e18},
		{"1.63e12", 1e6, 1.63e18},
		{"16300488978975e-1", 1e6, 1630048897897500000},
		{"0e9999", 1, 0},
		{"-0", 1e9, 0},
		{"00000000000000000000000001", 1, 1},
		{"1.9", 1, 1},
		{"-1.9", 1, -1},
	} {
		if got, ok := ParseUnix([]byte(c.in), c.unit); !ok || got != c.want {
			t.Errorf("ParseUnix(%s, %d) = %d %v, want %d", c.in, c.unit, got, ok, c.want)
		}
	}
	for _, bad := range []string{"", "-", "+", "abc", "12.", ".5", "1.2.3", "1e", "1e+", "1e12345", "1 ", " 1", "0x10", "1_0", "--1", "NaN", "Inf"} {
		if v, ok := ParseUnix([]byte(bad), 1e6); ok {
			t.Errorf("ParseUnix(%q) = %d, want rejected", bad, v)
		}
	}
	if _, ok := ParseUnix([]byte("1"), 7); ok {
		t.Error("unit 7 accepted")
	}
}

func TestParseRFC3339Values(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range []struct {
		in   string
		loc  *time.Location
		want time.Time
	}{
		{"2024-02-29T23:59:59.999999999-00:30", nil, time.Date(2024, 3, 1, 0, 29, 59, 999999999, time.UTC)},
		{"1969-12-31T23:59:59Z", nil, time.Unix(-1, 0)},
		{"2024-01-02 14:30:00,5+0100", nil, time.Date(2024, 1, 2, 13, 30, 0, 5e8, time.UTC)},
		{"2024-01-02t14:30:00z", nil, time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC)},
		{"2024-01-02T14:30:00+01", nil, time.Date(2024, 1, 2, 13, 30, 0, 0, time.UTC)},
		{"2024-07-02 09:30:00", ny, time.Date(2024, 7, 2, 13, 30, 0, 0, time.UTC)},
		{"2024-02-29T12:00:00.1234567891Z", nil, time.Date(2024, 2, 29, 12, 0, 0, 123456789, time.UTC)},
	} {
		if got, ok := ParseRFC3339([]byte(c.in), c.loc); !ok || got != c.want.UnixNano() {
			t.Errorf("ParseRFC3339(%s) = %d %v, want %d", c.in, got, ok, c.want.UnixNano())
		}
	}
	for _, bad := range []string{"2020-02-30T00:00:00Z", "2020-13-01T00:00:00Z", "2020-01-01T24:00:00Z", "2020-01-01T00:00:00",
		"2020-01-01T00:00:00.Z", "2020-01-01T00:00:00Zx", "2016-12-31T23:59:60Z", "2020-01-01T00:00:00+2", "2020-01-01T00:00:00+24:00"} {
		if v, ok := ParseRFC3339([]byte(bad), nil); ok {
			t.Errorf("%s accepted as %d", bad, v)
		}
	}
}

var unixGrammar = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?$`)

// FuzzParseUnix checks ParseUnix against exact big-rational arithmetic:
// whatever the grammar accepts and lies in range parses to the truncated
// value; everything else is rejected.
func FuzzParseUnix(f *testing.F) {
	for _, s := range []string{"1630048897897", "1582329602.111", "-1.5", "1.5e9", "9223372036.9", "-9223372036.999999999",
		"9223372036854775806", "9223372036854775807", "0e9999", "12.", "1e", "1.63e12"} {
		f.Add([]byte(s))
	}
	units := []int64{1, 1e3, 1e6, 1e9}
	lo, hi := big.NewInt(MinNanos), big.NewInt(MaxNanos)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		for _, unit := range units {
			got, ok := ParseUnix(b, unit)
			if !unixGrammar.MatchString(s) {
				if ok {
					t.Fatalf("ParseUnix(%q, %d) = %d, want rejected (grammar)", s, unit, got)
				}
				continue
			}
			r, rok := new(big.Rat).SetString(s)
			if !rok {
				t.Fatalf("big.Rat rejects %q", s)
			}
			r.Mul(r, new(big.Rat).SetInt64(unit))
			want := new(big.Int).Quo(r.Num(), r.Denom()) // truncates toward zero
			in := want.Cmp(lo) >= 0 && want.Cmp(hi) <= 0
			if ok != in || (ok && got != want.Int64()) {
				t.Fatalf("ParseUnix(%q, %d) = %d %v, want %s (in range %v)", s, unit, got, ok, want, in)
			}
		}
	})
}

// FuzzParseRFC3339 checks ParseRFC3339 against time.Parse and big-integer
// arithmetic: what time.Parse reads as RFC 3339 is accepted exactly when it
// lies in range, with the same instant; whatever ParseRFC3339 accepts,
// time.Parse reads the same once the spelling extensions (space for T, comma
// for the point, offsets without a colon) are normalised.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2024-01-02T14:30:00Z", "2024-02-29T23:59:59.999999999-00:30", "2300-01-01T00:00:00Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2262-04-11T23:47:16.854775806Z", "1677-09-21T00:12:43.145224194Z",
		"2024-01-02 14:30:00,5+0100", "2024-01-02T14:30:00+01", "2016-12-31T23:59:60Z", "2020-01-01T00:00:00+23:59"} {
		f.Add([]byte(s))
	}
	lo, hi := big.NewInt(MinNanos), big.NewInt(MaxNanos)
	exact := func(tm time.Time) (*big.Int, bool) {
		v := new(big.Int).Mul(big.NewInt(tm.Unix()), big.NewInt(1e9))
		v.Add(v, big.NewInt(int64(tm.Nanosecond())))
		return v, v.Cmp(lo) >= 0 && v.Cmp(hi) <= 0
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		got, ok := ParseRFC3339(b, nil)
		// time.Parse is lenient about field widths ("0:00:00"); compare
		// where the fixed layout holds.
		fixed := len(s) >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':'
		for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
			fixed = fixed && s[i] >= '0' && s[i] <= '9'
		}
		// RFC 3339 offsets have hours 00-23 and minutes 00-59; time.Parse
		// takes more.
		if z := len(s) - 6; fixed && z >= 19 && (s[z] == '+' || s[z] == '-') && (s[z+1:z+3] > "23" || s[z+4:] > "59") {
			fixed = false
		}
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil && fixed {
			want, in := exact(tm)
			if ok != in || (ok && got != want.Int64()) {
				t.Fatalf("ParseRFC3339(%q) = %d %v; time.Parse gives %s (in range %v)", s, got, ok, want, in)
			}
		}
		if !ok {
			return
		}
		n := []byte(s)
		n[10] = 'T'
		if len(n) > 19 && n[19] == ',' {
			n[19] = '.'
		}
		norm := string(n)
		switch z := norm[len(norm)-1]; {
		case z == 'z':
			norm = norm[:len(norm)-1] + "Z"
		case len(norm) >= 22 && (norm[len(norm)-3] == '+' || norm[len(norm)-3] == '-'):
			norm += ":00" // ±hh
		case len(norm) >= 24 && (norm[len(norm)-5] == '+' || norm[len(norm)-5] == '-'):
			norm = norm[:len(norm)-2] + ":" + norm[len(norm)-2:] // ±hhmm
		}
		norm = strings.Replace(norm, "t", "T", 1)
		tm, err := time.Parse(time.RFC3339Nano, norm)
		if err != nil {
			t.Fatalf("ParseRFC3339(%q) = %d, but time.Parse(%q): %v", s, got, norm, err)
		}
		if want, _ := exact(tm); got != want.Int64() {
			t.Fatalf("ParseRFC3339(%q) = %d, time.Parse(%q) = %s", s, got, norm, want)
		}
	})
}

func TestParseRFC3339MatchesTimePackage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	layouts := []string{"2006-01-02T15:04:05Z", "2006-01-02T15:04:05.000000Z", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.000-07:00"}
	for i := 0; i < 20000; i++ {
		ns := r.Int64N(4102444800e9) // 1970..2100
		zone := time.FixedZone("", (r.IntN(27)-13)*1800)
		s := time.Unix(0, ns).In(zone).Format(layouts[i%len(layouts)])
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseRFC3339([]byte(s), nil)
		if !ok || got != want.UnixNano() {
			t.Fatalf("%s: got %d %v, want %d", s, got, ok, want.UnixNano())
		}
	}
}
