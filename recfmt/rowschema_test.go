package recfmt

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
)

// jsonKeys returns the keys of a JSON object in order.
func jsonKeyOrder(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// The JSON keys and CSV columns of every kind are rowschema's stream
// columns, in order.
func TestColumnsAreRowschemas(t *testing.T) {
	bar := md.NewBatch(md.KindBar)
	bar.Bars = append(bar.Bars, md.Bar{Start: t0, End: t0 + s1, Interval: s1, Update: true, Partial: true, Source: md.FromBid})
	sc, _ := md.NewSchema("greeks", md.Field{Name: "delta"}, md.Field{Name: "n", Type: md.Int})
	der := md.NewBatch(md.KindDerived)
	der.Schema = sc
	v := der.AddDerived(t0, 0)
	v[0], v[1] = md.FloatValue(0.5), md.IntValue(-2)
	for _, c := range []struct {
		b *md.Batch
		t *rowschema.Table
	}{{tradeBatch(), rowschema.Trade}, {quoteBatch(), rowschema.Quote}, {bar, rowschema.Bar}, {der, rowschema.Derived(sc)}} {
		want := "type," + strings.Join(c.t.StreamNames(), ",")
		if got := strings.Join(jsonKeyOrder(t, AppendJSON(nil, c.b, 0, syms)), ","); got != want {
			t.Errorf("%s JSON keys %s, want %s", c.t.Name, got, want)
		}
		var hdr []byte
		if c.b.Kind == md.KindDerived {
			hdr = AppendDerivedCSVHeader(nil, sc, false)
		} else {
			hdr = AppendCSVHeader(nil, c.b.Kind, false)
		}
		if got := strings.TrimSpace(string(hdr)); got != strings.Join(c.t.StreamNames(), ",") {
			t.Errorf("%s CSV header %s", c.t.Name, got)
		}
		row := AppendCSV(nil, c.b, 0, syms, false)
		if n := strings.Count(string(row), ",") + 1; n != len(c.t.Columns) {
			t.Errorf("%s CSV row has %d fields, want %d: %s", c.t.Name, n, len(c.t.Columns), row)
		}
	}
	if got := string(AppendJSON(nil, bar, 0, syms)); !strings.Contains(got, `"bar_type":"time","source":"bid","partial":true,"update":true}`) {
		t.Errorf("bar JSON %s", got)
	}
	if got := string(AppendJSON(nil, der, 0, syms)); got != `{"type":"greeks","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00Z","delta":0.5,"n":-2}` {
		t.Errorf("derived JSON %s", got)
	}
	if got := string(AppendCSV(nil, der, 0, syms, false)); got != "synthetic,AAPL,2024-01-02T14:30:00Z,0.5,-2\n" {
		t.Errorf("derived CSV %q", got)
	}
}

// A CSV stream holds one derived schema.
func TestCSVWriterRefusesASecondSchema(t *testing.T) {
	a, _ := md.NewSchema("a", md.Field{Name: "x"})
	b, _ := md.NewSchema("b", md.Field{Name: "x"})
	var buf bytes.Buffer
	w := NewWriter(&buf, CSV)
	for i, sc := range []*md.Schema{a, a, b} {
		bt := md.NewBatch(md.KindDerived)
		bt.Schema = sc
		bt.AddDerived(t0, 0)[0] = md.FloatValue(float64(i))
		err := w.WriteBatch(bt, syms)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && (err == nil || !strings.Contains(err.Error(), "csv output holds one record schema: got b records after a records")) {
			t.Fatalf("err = %v", err)
		}
	}
	if buf.String() != "provider,symbol,ts,x\nsynthetic,AAPL,2024-01-02T14:30:00Z,0\nsynthetic,AAPL,2024-01-02T14:30:00Z,1\n" {
		t.Fatalf("csv %q", buf.String())
	}
}
