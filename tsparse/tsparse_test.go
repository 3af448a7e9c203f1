package tsparse

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "42377944": 42377944, "-17": -17, "9223372036854775807": 1<<63 - 1} {
		if v, ok := ParseInt([]byte(in)); !ok || v != want {
			t.Errorf("ParseInt(%s) = %d, %v", in, v, ok)
		}
	}
	for _, in := range []string{"", "-", "1.5", "9223372036854775808", "12a", "+1"} {
		if _, ok := ParseInt([]byte(in)); ok {
			t.Errorf("ParseInt(%q) accepted", in)
		}
	}
	// Against strconv at the length and range edges (ParseInt refuses
	// -2^63 and anything over 20 bytes).
	for _, s := range []string{"-9223372036854775807", "-9223372036854775808", "00000000000000000001", "-0000000000000000001",
		"99999999999999999999", "18446744073709551615", "18446744073709551616", "000000000000000000001", "-1000000000000000000", "1 ", " 1", "-0"} {
		want, err := strconv.ParseInt(s, 10, 64)
		wok := err == nil && want != math.MinInt64 && len(s) <= 20
		if got, ok := ParseInt([]byte(s)); ok != wok || (ok && got != want) {
			t.Errorf("ParseInt(%q) = %d %v, strconv %d %v", s, got, ok, want, err)
		}
	}
}

func TestParseUint(t *testing.T) {
	for _, s := range []string{"", "0", "7", "1234567890123456789", "9999999999999999999", "18446744073709551615", "18446744073709551616",
		"18446744073709551620", "99999999999999999999", "00000000000000000009", "000000000000000000009", "-1", "+1", "1x", "1844674407370955161a"} {
		want, err := strconv.ParseUint(s, 10, 64)
		wok := err == nil && len(s) <= 20
		if got, ok := ParseUint([]byte(s)); ok != wok || (ok && got != want) {
			t.Errorf("ParseUint(%q) = %d %v, strconv %d %v", s, got, ok, want, err)
		}
	}
}

func TestParseFloatRejectsNonDecimals(t *testing.T) {
	for _, in := range []string{"9682.19", "0.00000001", "9524.15", "1e-3", "-3.25", "123456789.123456789"} {
		want, _ := strconv.ParseFloat(in, 64)
		if v, ok := ParseFloat([]byte(in)); !ok || v != want {
			t.Errorf("ParseFloat(%s) = %v, %v", in, v, ok)
		}
	}
	for _, in := range []string{"", "NaN", "Inf", "0x1p3", "1_000", "1e400", "abc"} {
		if _, ok := ParseFloat([]byte(in)); ok {
			t.Errorf("ParseFloat(%q) accepted", in)
		}
	}
}

// TestParseFloatMatchesStrconv proves the fast path bit-identical to
// strconv.ParseFloat.
func TestParseFloatMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		var s string
		switch i % 4 {
		case 0: // prices with 0-8 decimals
			s = strconv.FormatFloat(r.Float64()*float64(r.IntN(1_000_000)), 'f', r.IntN(9), 64)
		case 1: // long mantissas past 2^53
			s = strconv.FormatUint(r.Uint64()>>r.IntN(20), 10)
			if k := r.IntN(len(s)); k > 0 {
				s = s[:k] + "." + s[k:]
			}
		case 2:
			s = strconv.FormatFloat(r.NormFloat64()*1e3, 'g', -1, 64)
		default:
			s = strconv.FormatFloat(r.ExpFloat64(), 'f', -1, 64)
		}
		want, err := strconv.ParseFloat(s, 64)
		got, ok := ParseFloat([]byte(s))
		if (err == nil) != ok || (ok && math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("ParseFloat(%s) = %v %v, strconv %v %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"1.", ".5", "-0", "0.1", "9007199254740993", "0.30000000000000004", "123456789012345678"} {
		want, _ := strconv.ParseFloat(s, 64)
		if got, ok := ParseFloat([]byte(s)); !ok || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("ParseFloat(%s) = %v, strconv %v", s, got, want)
		}
	}
	// Signs, exponents and edge spellings: accepted exactly when strconv
	// gives a finite value (hex never occurs here), and then bit-identical.
	for _, s := range []string{"0", "1", "-1", "+2.5", "+9682.19", "-+1", "+", "9682.19", "0.001", "123456789012345", "1234567890.12345",
		"0.1", "0.3", "113.09", "1e3", "1.5E-3", ".5", "5.", "12345678901234567", "0.000000000000001", "-0.0",
		"1.7976931348623157e308", "inf", "NaN", "", ".", "-", "1.2.3", "1,5", "0x10", "9007199254740992", "9007199254740993.5"} {
		g, gok := ParseFloat([]byte(s))
		w, err := strconv.ParseFloat(s, 64)
		wok := err == nil && !math.IsNaN(w) && !math.IsInf(w, 0)
		if gok != wok || (wok && math.Float64bits(g) != math.Float64bits(w)) {
			t.Errorf("%q: got %v %v, want %v %v", s, g, gok, w, wok)
		}
	}
	// Every price of the form dddd.dd parses bit-identically.
	for c := 0; c < 2_000_000; c += 7 {
		s := strconv.FormatFloat(float64(c)/100, 'f', -1, 64)
		g, _ := ParseFloat([]byte(s))
		w, _ := strconv.ParseFloat(s, 64)
		if g != w {
			t.Fatalf("%q: %v != %v", s, g, w)
		}
	}
}

func TestEightDigits(t *testing.T) {
	for _, s := range []string{"00000000", "12345678", "99999999", "01234567", "1234567a", "/2345678", ":2345678", "1234 678"} {
		n, err := strconv.ParseUint(s, 10, 64)
		v, ok := eightDigits([]byte(s))
		if ok != (err == nil) || (ok && uint64(v) != n) {
			t.Errorf("%q: got %d %v, want %d %v", s, v, ok, n, err)
		}
	}
}

func TestFraction(t *testing.T) {
	for _, c := range []struct {
		in   string
		unit int64
		v    int64
		n    int
	}{
		{"5", 1e9, 5e8, 1}, {"123456789", 1e9, 123456789, 9}, {"1234567891Z", 1e9, 123456789, 10},
		{"111", 1e9, 111e6, 3}, {"5", 1e6, 5e5, 1}, {"1234567", 1e3, 123, 7}, {"9", 1, 0, 1}, {"Z", 1e9, 0, 0}, {"", 1e9, 0, 0},
	} {
		if v, n := fraction([]byte(c.in), c.unit); v != c.v || n != c.n {
			t.Errorf("Fraction(%q, %d) = %d %d, want %d %d", c.in, c.unit, v, n, c.v, c.n)
		}
	}
}

// TestDateTimeMatchesTimePackage checks ParseDateTime, Unix and ParseOffset
// against time.Parse over random instants and zones.
func TestDateTimeMatchesTimePackage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20000; i++ {
		ns := r.Int64N(4102444800e9) - 2208988800e9 // 1900..2100
		zone := time.FixedZone("", (r.IntN(47)-23)*1800)
		s := time.Unix(0, ns).In(zone).Format("2006-01-02T15:04:05-07:00")
		want, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		dt, ok := parseDateTime([]byte(s))
		off, ok2 := ParseOffset([]byte(s[19:]))
		if !ok || !ok2 || dt.Unix()-off != want.Unix() {
			t.Fatalf("%s: got %+v %d %v %v, want %d", s, dt, off, ok, ok2, want.Unix())
		}
	}
	for _, bad := range []string{"2020-02-30T00:00:00", "2023-02-29T00:00:00", "2020-13-01T00:00:00", "2020-00-01T00:00:00", "2020-01-01T24:00:00",
		"2020-01-01T00:60:00", "2020-01-01T00:00:61", "2020-01-01X00:00:00", "2020-01-01T00:00:0", "2020/01/01T00:00:00", "2020-01-01T0a:00:00"} {
		if dt, ok := parseDateTime([]byte(bad)); ok {
			t.Errorf("%s accepted as %+v", bad, dt)
		}
	}
	if dt, ok := parseDateTime([]byte("2016-12-31 23:59:60")); !ok || dt.Unix() != time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("leap second: %+v %v", dt, ok)
	}
	for in, want := range map[string]int64{"+01": 3600, "-0530": -19800, "+05:45": 20700, "-00:00": 0} {
		if got, ok := ParseOffset([]byte(in)); !ok || got != want {
			t.Errorf("ParseOffset(%s) = %d %v, want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "Z", "+1", "+24:00", "+01:60", "+01-00", "+0100x", "01:00", "+1:000"} {
		if got, ok := ParseOffset([]byte(bad)); ok {
			t.Errorf("ParseOffset(%q) accepted as %d", bad, got)
		}
	}
}

func TestDaysFromCivil(t *testing.T) {
	for y := -800; y <= 2800; y += 7 {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, 28, DaysIn(y, m)} {
				want := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400
				if got := DaysFromCivil(y, m, d); got != want {
					t.Fatalf("%d-%d-%d: %d, want %d", y, m, d, got, want)
				}
			}
			if next := time.Date(y, time.Month(m), DaysIn(y, m)+1, 0, 0, 0, 0, time.UTC); next.Day() != 1 {
				t.Fatalf("DaysIn(%d, %d) = %d", y, m, DaysIn(y, m))
			}
		}
	}
}

func TestDecimals(t *testing.T) {
	for in, want := range map[string]int{"0.132": 3, "7": 0, "9682.10": 2, "-1.5": 1, "1e-3": 3, "1.25E-2": 4,
		"1.5e2": 0, "2.125e+1": 2, ".5": 1, "0x1p-2": 99, "NaN": 99} {
		if got := Decimals([]byte(in)); got != want {
			t.Errorf("Decimals(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzParseFloat: ParseFloat accepts exactly the plain decimals strconv
// parses to a finite value, bit-identically, and ParseFloatDecimals adds
// Decimals of the same text.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"9682.19", "0.132", "-1.5e-3", "9007199254740993", "1.", ".5", "0x10", "NaN", "1e400", "+0.000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseFloat([]byte(s))
		g2, dec, ok2 := ParseFloatDecimals([]byte(s))
		if ok != ok2 || math.Float64bits(got) != math.Float64bits(g2) {
			t.Fatalf("%q: ParseFloat %v %v, ParseFloatDecimals %v %v", s, got, ok, g2, ok2)
		}
		plain := len(s) <= 64
		for _, c := range s {
			plain = plain && (c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
		}
		want, err := strconv.ParseFloat(s, 64)
		wok := plain && err == nil && !math.IsInf(want, 0)
		if ok != wok || (ok && math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("%q: %v %v, strconv %v %v", s, got, ok, want, err)
		}
		if ok && dec != Decimals([]byte(s)) {
			t.Fatalf("%q: decimals %d, Decimals %d", s, dec, Decimals([]byte(s)))
		}
	})
}
