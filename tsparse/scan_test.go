package tsparse

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// checkScanDecimal fails unless ScanDecimal on the text b, followed by
// tail, agrees with ParseFloatDecimals on the number it claims: where it
// says ok, the same bits and decimal places (and so strconv's value), and
// the end right after the number.
func checkScanDecimal(t *testing.T, b, tail string) {
	t.Helper()
	line := []byte("x," + b + tail)
	f, frac, end, ok := ScanDecimal(line, 2)
	if !ok {
		return
	}
	num := line[2:end]
	wf, wfrac, wok := ParseFloatDecimals(num)
	if !wok || math.Float64bits(f) != math.Float64bits(wf) || frac != wfrac {
		t.Fatalf("ScanDecimal(%q) = %v %d (to %d), ParseFloatDecimals(%q) = %v %d %v", line[2:], f, frac, end, num, wf, wfrac, wok)
	}
	if sf, err := strconv.ParseFloat(string(num), 64); err != nil || sf != f {
		t.Fatalf("ScanDecimal(%q) = %v, strconv %v %v", num, f, sf, err)
	}
	for _, c := range num {
		if c != '.' && (c < '0' || c > '9') {
			t.Fatalf("ScanDecimal(%q) took %q", line[2:], num)
		}
	}
}

func TestScanDecimal(t *testing.T) {
	for in, want := range map[string]float64{"9682.19": 9682.19, "0.132": 0.132, "7": 7, ".5": 0.5, "5.": 5, "007.50": 7.5,
		"9007199254740991": 9007199254740991, "0.00000000000000001": 1e-17} {
		f, _, end, ok := ScanDecimal([]byte(in+",1"), 0)
		if !ok || f != want || end != len(in) {
			t.Errorf("ScanDecimal(%q) = %v, end %d, %v; want %v", in, f, end, ok, want)
		}
	}
	for _, in := range []string{"", ".", "9007199254740992", "0.000000000000000001", "12345678901234567890", "1.23456789012345678901", ",5", "-1", "+1"} {
		if _, _, _, ok := ScanDecimal([]byte(in), 0); ok {
			t.Errorf("ScanDecimal(%q) is ok; want the general path", in)
		}
	}
	rng := rand.New(rand.NewPCG(3, 5))
	alphabet := "0123456789.....e-+x ,"
	for range 200_000 {
		n := rng.IntN(25)
		b := make([]byte, n)
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte('0' + rng.IntN(10))
			}
		}
		checkScanDecimal(t, string(b), ",")
		checkScanDecimal(t, string(b), "")
	}
}

func TestScanDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		n := rng.IntN(24)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if rng.IntN(3) == 0 && n > 0 {
			b[rng.IntN(n)] = ",.x/:"[rng.IntN(5)]
		}
		v, end := ScanDigits(b, 0)
		run := 0
		for run < len(b) && b[run] >= '0' && b[run] <= '9' {
			run++
		}
		if want := min(run, 19); end != want {
			t.Fatalf("ScanDigits(%q) ends at %d, want %d", b, end, want)
		}
		if w, err := strconv.ParseUint(string(b[:end]), 10, 64); end > 0 && (err != nil || w != v) {
			t.Fatalf("ScanDigits(%q) = %d, want %d (%v)", b, v, w, err)
		}
	}
}

// FuzzScanDecimal: wherever ScanDecimal takes a number, it is
// ParseFloatDecimals' (and strconv's) to the bit.
func FuzzScanDecimal(f *testing.F) {
	for _, s := range []string{"9682.19", "0.132", ".5", "5.", "9007199254740993", "1e5", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkScanDecimal(t, s, ",") })
}

// TestScanDigitsSixteen: the one-branch path for sixteen digits followed
// by a non-digit reads what strconv reads, and leaves every other run
// (a bad byte inside, a 17th digit, the end of the buffer) to the loop.
func TestScanDigitsSixteen(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for range 50_000 {
		b := make([]byte, 16, 20)
		for j := range b {
			b[j] = byte('0' + rng.IntN(10))
		}
		want, _ := strconv.ParseUint(string(b), 10, 64)
		for _, tail := range []string{",", "x", ".", "/", ":", "\x00", "\xff", "", "7", "7,", "123,"} {
			line := append(append([]byte("ab"), b...), tail...)
			wantEnd, wantN := 18, want
			if len(tail) > 0 && tail[0] >= '0' && tail[0] <= '9' {
				k := 2 + 16 + min(strings.IndexAny(tail+",", ",")+0, 3)
				wantEnd = k
				wantN, _ = strconv.ParseUint(string(line[2:k]), 10, 64)
			}
			if n, end := ScanDigits(line, 2); n != wantN || end != wantEnd {
				t.Fatalf("ScanDigits(%q, 2) = %d %d, want %d %d", line, n, end, wantN, wantEnd)
			}
		}
		if rng.IntN(2) == 0 { // a bad byte inside the sixteen
			line := append([]byte(nil), b...)
			k := rng.IntN(16)
			line[k] = ",.x:"[rng.IntN(4)]
			line = append(line, ',')
			w, _ := strconv.ParseUint(string(line[:k]), 10, 64)
			if n, end := ScanDigits(line, 0); end != k || k > 0 && n != w {
				t.Fatalf("ScanDigits(%q, 0) = %d %d, want %d %d", line, n, end, w, k)
			}
		}
	}
}

// TestTimes16MatchesScanDigits: the memo of the first twelve digits never
// changes what is read. A run of inputs that share a few first eight and
// next four digits (so the memo hits and misses), with bad bytes in either
// half, shorter and longer runs and ends of the buffer, each read by one
// Times16 (Fast where its caller would try it, then Scan) and by
// ScanDigits.
func TestTimes16MatchesScanDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 3))
	uppers := []string{"17042058", "17042059", "00000000", "99999999", "1704205:", "170420/8", "\x00\x00\x00\x00\x00\x00\x00\x00"}
	var m Times16
	hits, fast := 0, 0
	for range 200_000 {
		b := []byte(uppers[rng.IntN(len(uppers))])
		b = append(b, []string{"0000", "1234", "9999", "12:4"}[rng.IntN(4)]...) // digits 9-12 repeat too
		for range 4 {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		switch rng.IntN(8) {
		case 0:
			b[8+rng.IntN(8)] = ",.x/:\x00\xff"[rng.IntN(7)]
		case 1:
			b = b[:rng.IntN(17)]
		case 2:
			b = append(b, byte('0'+rng.IntN(10)))
		}
		b = append(b, ",\n7x"[rng.IntN(4)])
		if rng.IntN(10) == 0 {
			b = b[:len(b)-1] // the run ends the buffer
		}
		line := append([]byte("xy"), b...)
		wn, we := ScanDigits(line, 2)
		if string(line[2:min(10, len(line))]) == string(uppers[0]) {
			hits++
		}
		// Fast first, with the memo the inputs before left.
		if len(line) > 18 && line[18]-'0' > 9 { // Fast's caller checks the byte after the sixteen
			v, w := binary.LittleEndian.Uint64(line[2:]), binary.LittleEndian.Uint64(line[10:])
			if n, ok := m.Fast(v, w); ok && (we != 18 || n != wn) {
				t.Fatalf("Times16.Fast(%q) = %d, ScanDigits %d %d", line[2:18], n, wn, we)
			} else if ok {
				fast++
			}
		}
		if n, e := m.Scan(line, 2); n != wn || e != we {
			t.Fatalf("Times16.Scan(%q, 2) = %d %d, ScanDigits %d %d", line, n, e, wn, we)
		}
	}
	if hits == 0 || fast < 1000 {
		t.Fatalf("%d inputs shared an upper word, Fast took %d", hits, fast)
	}
}

// FuzzTimes16: two reads in a row through one memo agree with ScanDigits.
func FuzzTimes16(f *testing.F) {
	f.Add([]byte("1704205800000000,"), []byte("1704205800000010,"))
	f.Add([]byte("1704205800000000,"), []byte("17042058000x0010,"))
	f.Add([]byte("17042058"), []byte("1704205800000000"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x0012345678,"), []byte("0000000012345678,"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var m Times16
		for _, in := range [][]byte{a, b, a} {
			wn, we := ScanDigits(in, 0)
			if len(in) > 16 && in[16]-'0' > 9 {
				v, w := binary.LittleEndian.Uint64(in), binary.LittleEndian.Uint64(in[8:])
				if n, ok := m.Fast(v, w); ok && (we != 16 || n != wn) {
					t.Fatalf("Times16.Fast(%q) = %d, ScanDigits %d %d", in[:16], n, wn, we)
				}
			}
			if n, e := m.Scan(in, 0); n != wn || e != we {
				t.Fatalf("Times16.Scan(%q) = %d %d, ScanDigits %d %d", in, n, e, wn, we)
			}
		}
	})
}
