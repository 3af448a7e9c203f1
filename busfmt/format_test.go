package busfmt

import (
	"errors"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func TestWriterFormats(t *testing.T) {
	st, a, b := testSyms(t)
	in := tradeBatch(a, b)
	for _, name := range FormatNames {
		f, err := ParseFormat(name)
		if err != nil || f.String() != name {
			t.Fatalf("%s: %v %v", name, f, err)
		}
	}
	if _, err := ParseFormat("avro"); err == nil {
		t.Fatal("avro accepted")
	}
	j, _ := NewWriter(JSON).Message(in, st.Snapshot())
	lines := strings.Split(strings.TrimSuffix(string(j), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"type":"trade","provider":"binance","symbol":"BTCUSDT","ts":"2023-11-14T22:13:20.123456789Z"`) {
		t.Fatalf("json message:\n%s", j)
	}
	c, _ := NewWriter(CSV).Message(barBatch(a, b), st.Snapshot())
	rows := strings.Split(strings.TrimSuffix(string(c), "\n"), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[0], "provider,symbol,interval,ts,") || !strings.HasSuffix(rows[0], ",reason") {
		t.Fatalf("csv message:\n%s", c)
	}
	d, _ := NewWriter(CSV).Message(derivedBatch(t, a, b), st.Snapshot())
	if !strings.HasPrefix(string(d), "provider,symbol,ts,value,count\n") {
		t.Fatalf("derived csv:\n%s", d)
	}
	m, err := NewWriter(MDP).Message(in, st.Snapshot())
	if err != nil || string(m[:2]) != "MD" {
		t.Fatalf("mdp message %q %v", m, err)
	}
}

func TestReaderCountsByReason(t *testing.T) {
	nc := &engine.NodeContext{Symbols: md.NewSymbolTable()}
	r := NewReader(nc)
	b := md.NewBatch(md.KindTrade)
	var fe *FrameError
	if err := r.Decode([]byte("XX\x01\x01\x00\x00\x00\x00\x00\x00"), b); !errors.As(err, &fe) || fe.Reason != ReasonMagic {
		t.Fatalf("%v", err)
	}
	if r.total.Load() != 1 {
		t.Fatalf("total %d", r.total.Load())
	}
}
