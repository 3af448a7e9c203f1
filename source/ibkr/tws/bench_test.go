package tws_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/mdpio/mdp/source/ibkr/tws"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// tbtStream is a mix of tick-by-tick trades and quotes, framed.
func tbtStream(n int) []byte {
	var s []byte
	for i := range n {
		if i%2 == 0 {
			s = append(s, faketws.Text(99, 2001, 2, 1764167400+i/100, 189.51+float64(i%50)/100, 100+i%7, 0, "NASDAQ", "")...)
		} else {
			s = append(s, faketws.Text(99, 2003, 3, 1764167400+i/100, 189.5, 189.52, 300, 200, 0)...)
		}
	}
	return s
}

type loop struct {
	b []byte
	i int
}

func (l *loop) Read(p []byte) (int, error) {
	if l.i == len(l.b) {
		l.i = 0
	}
	n := copy(p, l.b[l.i:])
	l.i += n
	return n, nil
}

// BenchmarkDecodeTickByTick reads frames and decodes them with the
// client's allocation-free path.
func BenchmarkDecodeTickByTick(b *testing.B) {
	r := tws.NewReader(&loop{b: tbtStream(4096)})
	var m tws.Message
	var sum float64
	b.ReportAllocs()
	for b.Loop() {
		p, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := tws.Decode(p, 200, &m); err != nil {
			b.Fatal(err)
		}
		sum += m.Price + m.Bid
	}
	_ = sum
}

// naiveMsg is what a split-and-parse decoder produces.
type naiveMsg struct {
	reqID, tickType, time int64
	price, size, bid, ask float64
	exchange, conditions  string
}

// naiveDecode is the straightforward decoder: split the payload on NUL into
// strings and strconv each field.
func naiveDecode(p []byte) (naiveMsg, error) {
	parts := bytes.Split(p, []byte{0})
	f := make([]string, 0, len(parts))
	for _, x := range parts[:len(parts)-1] {
		f = append(f, string(x))
	}
	var m naiveMsg
	var err error
	if m.reqID, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return m, err
	}
	m.tickType, _ = strconv.ParseInt(f[2], 10, 64)
	m.time, _ = strconv.ParseInt(f[3], 10, 64)
	switch m.tickType {
	case 1, 2:
		m.price, _ = strconv.ParseFloat(f[4], 64)
		m.size, _ = strconv.ParseFloat(f[5], 64)
		m.exchange, m.conditions = f[7], f[8]
	case 3:
		m.bid, _ = strconv.ParseFloat(f[4], 64)
		m.ask, _ = strconv.ParseFloat(f[5], 64)
	}
	return m, nil
}

// BenchmarkDecodeTickByTickNaive is the same work with naiveDecode, for a
// same-run ratio.
func BenchmarkDecodeTickByTickNaive(b *testing.B) {
	r := tws.NewReader(&loop{b: tbtStream(4096)})
	var sum float64
	b.ReportAllocs()
	for b.Loop() {
		p, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		m, err := naiveDecode(p)
		if err != nil {
			b.Fatal(err)
		}
		sum += m.price + m.bid
	}
	_ = sum
}

// TestDecodeAllocs: decoding tick-by-tick allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	r := tws.NewReader(&loop{b: tbtStream(256)})
	var m tws.Message
	allocs := testing.AllocsPerRun(2000, func() {
		p, _ := r.Next()
		if err := tws.Decode(p, 200, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}
