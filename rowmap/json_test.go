package rowmap

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// scanAll runs lines through one scanner (which remembers key positions
// from row to row) and through a fresh scanner per line (which cannot), and
// fails on any difference in the values or the problem reported.
func scanAll(t *testing.T, lines []string) {
	t.Helper()
	lay := &Layout{Columns: named(map[string]string{"provider": "exchange", "symbol": "symbol", "ts": "timestamp",
		"price": "price", "size": "amount", "side": "s\"de"})}
	reused, err := NewJSONScanner(lay)
	if err != nil {
		t.Fatal(err)
	}
	for k, line := range lines {
		fresh, _ := NewJSONScanner(lay)
		var got, want Vals
		pg := reused.Scan([]byte(line), &got)
		pw := fresh.Scan([]byte(line), &want)
		if pg != pw {
			t.Fatalf("line %d %q: problem %q, fresh scanner %q", k+1, line, pg, pw)
		}
		if pw != "" {
			continue
		}
		for s := range NSlots {
			if string(got[s]) != string(want[s]) || (got[s] == nil) != (want[s] == nil) {
				t.Fatalf("line %d %q: %s = %q, fresh scanner %q", k+1, line, SlotNames[s], got[s], want[s])
			}
		}
	}
}

// TestJSONScanKeyMemory: matching a key in place because the row before had
// it at the same position gives exactly what a full scan gives, whatever the
// next row does there: another key, a prefix or extension of it, an escaped
// spelling, a duplicate, an unmapped key, a truncated row.
func TestJSONScanKeyMemory(t *testing.T) {
	base := `{"exchange":"x","symbol":"A","timestamp":1,"price":2.5,"amount":3}`
	scanAll(t, []string{
		base, base,
		`{"symbol":"B","exchange":"y","timestamp":2,"price":3,"amount":4}`,
		`{"exchangeX":"z","symbol":"C","timestamp":3,"price":4,"amount":5}`,
		`{"exchang":"z","symbol":"C","timestamp":3,"price":4,"amount":5}`,
		`{"exch\u0061nge":"w","symbol":"D","timestamp":4,"price":5,"amount":6}`,
		base,
		`{"exchange":"v","symbol":"E","timestamp":5,"price":6,"amount":7,"amount":8}`,
		`{"exchange":"v","symbol":"E","timestamp":5,"price":6,"amount":7,"amount":8}`,
		`{"exchange":"u","other":{"a":[1,2]},"timestamp":6,"price":7,"amount":8}`,
		`{"exchange":"u","symbol":"F","timestamp":6,"price":7,"amount":8}`,
		`{"exchange":"u","symbol":"F","timestamp":6,"price":7,"amount":8}`,
		`{"s\"de":"buy","exchange":"t"}`,
		`{"s\"de":"sell","exchange":"t"}`,
		`{"s\\de":"sell","exchange":"t"}`,
		`{"":1,"exchange":"t"}`,
		`{"":2,"exchange":"t"}`,
		`{"exchange`,
		`{"exchange"`,
		`{"exchange":`,
		`{"exchange":"q","symbol"`,
		`{ "exchange" : "q" , "symbol" : "G" }`,
		`{"exchange":null,"symbol":"H"}`,
		`{"exchange":"r","symbol":"I","timestamp":7}` + strings.Repeat(` `, 3),
	})
}

// FuzzJSONScanKeyMemory checks the same on arbitrary pairs of rows.
func FuzzJSONScanKeyMemory(f *testing.F) {
	f.Add(`{"exchange":"x","symbol":"A"}`, `{"exchange":"y","symbol":"B"}`)
	f.Add(`{"exchange":"x","symbol":"A"}`, `{"exch\u0061nge":"y","symbol":"B"}`)
	f.Add(`{"a":1,"exchange":"x"}`, `{"a":1,"exchange"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		scanAll(t, []string{a, b, a, b, b})
	})
}

// TestJSONLitMatchesLitAt: a key literal compared as words is found
// exactly where the string comparison finds it, for literals of every
// length JSONFast takes (4 to 24 bytes), at every place of lines that hold
// it, a copy with one byte changed, or a prefix of it, and with eight
// bytes or more left after it (at returns -1 when fewer are left).
func TestJSONLitMatchesLitAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 9))
	for n := 4; n <= 24; n++ {
		key := []byte(`,"`)
		for len(key) < n-2 {
			key = append(key, byte('a'+rng.IntN(26)))
		}
		key = append(key, `":`...)
		l := newJSONLit(key)
		for range 2000 {
			line := make([]byte, rng.IntN(3*n))
			for j := range line {
				line[j] = byte(rng.IntN(256))
			}
			at := rng.IntN(len(line) + 1)
			switch rng.IntN(3) {
			case 0:
				line = append(line[:at], append(append([]byte(nil), key...), line[at:]...)...)
			case 1:
				bent := append([]byte(nil), key...)
				bent[rng.IntN(len(bent))] ^= byte(1 + rng.IntN(255))
				line = append(line[:at], append(bent, line[at:]...)...)
			case 2:
				line = append(line[:at], key[:rng.IntN(len(key))]...)
			}
			for i := -1; i <= len(line); i++ {
				want := litAt(line, i, string(key))
				if want >= 0 && len(line)-i < 8 {
					want = -1
				}
				if got := l.at(line, i); got != want {
					t.Fatalf("key %q in %q at %d: %d, litAt %d", key, line, i, got, want)
				}
			}
		}
	}
}
