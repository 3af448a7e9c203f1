package rowmap

import (
	"bytes"
	"strings"
	"testing"
)

func TestIndexDelim(t *testing.T) {
	for _, line := range []string{"", ",", "a", "abcdefgh", "abcdefgh,", "abcdefghijklmnop,q", "a,b", "1234567,",
		"12345678,", "123456789,", "\x80\x81\x82\x83\x84\x85\x86\x87\x88,", "\x2b\x2d\x2c", "++++++++++,,", "no delimiter at all here"} {
		want := strings.IndexByte(line, ',')
		if want < 0 {
			want = len(line)
		}
		if got := indexDelim([]byte(line), ','); got != want {
			t.Errorf("%q: got %d, want %d", line, got, want)
		}
	}
	for c := 0; c < 256; c++ {
		line := []byte("xxxxxxxxxxxxxxxxxxxx")
		line[11] = byte(c)
		want := bytes.IndexByte(line, ';')
		if want < 0 {
			want = len(line)
		}
		if got := indexDelim(line, ';'); got != want {
			t.Errorf("byte %d: got %d, want %d", c, got, want)
		}
	}
}

func TestSplitPlainMatchesSplit(t *testing.T) {
	for _, line := range []string{`"a",b`, "a, b", "abcdefghijklmnop,\"q\"", "abcdefghijklmnop,q ", "abcdefgh ,x,y,z", "abcdefghi,j\"", "abcdefghijklm ", "abcdefgh\""} {
		if _, special := splitPlain([]byte(line), ',', nil, 2); !special {
			t.Errorf("%q: not special", line)
		}
	}
	for _, line := range []string{"", ",", ",,", "a", "a,b", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
		"binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132", "12345678,", ",12345678", "1234567,9",
		"\xac,\xad\x2c\x2c,\x80\x7f", "12345678,9", "12345678,", "12345678abcdefg,", "12345678abcdefg", "12345678,,,,,,,",
		"12345678\x00\x00,\x00", "abcdefgh,ijklmnop,q,r,s"} {
		want := strings.Split(line, ",")
		got, special := splitPlain([]byte(line), ',', nil, 1<<30)
		if special {
			t.Fatalf("%q: special", line)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %q, want %q", line, got, want)
		}
		for i := range want {
			if string(got[i]) != want[i] {
				t.Fatalf("%q: %q, want %q", line, got, want)
			}
		}
		if n := len(want); n > 1 {
			if got, _ := splitPlain([]byte(line), ',', nil, n-1); len(got) != n-1 || string(got[n-2]) != want[n-2] {
				t.Fatalf("%q limit %d: %q", line, n-1, got)
			}
		}
	}
}
