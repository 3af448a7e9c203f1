package md

import (
	"strings"
	"testing"
)

func TestNewSchemaChecksNames(t *testing.T) {
	if _, err := NewSchema("sma_20", Field{Name: "value"}, Field{Name: "n", Type: Int}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		fields []Field
		want   string
	}{
		{"Sma", []Field{{Name: "v"}}, `"Sma" is not a lower-case identifier`},
		{"1m", []Field{{Name: "v"}}, `"1m" is not a lower-case identifier`},
		{"bars", []Field{{Name: "v"}}, "schema name bars is reserved"},
		{"x", nil, "schema x has no fields"},
		{"x", []Field{{Name: "ts"}}, "field ts: the name is reserved"},
		{"x", []Field{{Name: "v"}, {Name: "v", Type: Int}}, "field v declared twice"},
		{"x", []Field{{Name: "v", Type: 9}}, "field v: unknown type 9"},
		{"x", []Field{{Name: "a-b"}}, `"a-b" is not a lower-case identifier`},
	} {
		_, err := NewSchema(c.name, c.fields...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSchema(%q, %v) = %v, want %q", c.name, c.fields, err, c.want)
		}
	}
}

// Adding derived records to a pooled batch allocates nothing once the
// pool's batches have held as many values.
func TestAddDerivedIsAllocationFree(t *testing.T) {
	sc, _ := NewSchema("feat", Field{Name: "a"}, Field{Name: "b", Type: Int}, Field{Name: "c"})
	p := NewPool(256)
	fill := func() {
		b := p.Get(KindDerived)
		b.Schema = sc
		for i := 0; i < 256; i++ {
			v := b.AddDerived(int64(i), SymID(i%3))
			v[0], v[1], v[2] = FloatValue(1.5), IntValue(int64(i)), FloatValue(-2)
		}
		b.Release()
	}
	fill()
	if n := testing.AllocsPerRun(100, fill); n != 0 {
		t.Fatalf("%v allocations per batch", n)
	}
	b := p.Get(KindDerived)
	b.Schema = sc
	b.AddDerived(7, 1)[1] = IntValue(-3)
	v := b.AddDerived(8, 2)
	if len(v) != 3 || v[0] != 0 || v[1] != 0 { // reused storage comes back zeroed
		t.Fatalf("second row %v", v)
	}
	v[0] = FloatValue(0.25)
	c := NewBatch(KindDerived)
	c.Schema = sc
	c.CopyDerived(b, 1)
	c.CopyDerived(b, 0)
	if c.Len() != 2 || c.Derived[0].TS != 8 || c.Row(0)[0].Float() != 0.25 || c.Row(1)[1].Int() != -3 {
		t.Fatalf("copied %+v %v", c.Derived, c.Values)
	}
	if cl := b.Clone(); cl.Schema != sc || cl.Len() != 2 || cl.Row(0)[1].Int() != -3 {
		t.Fatalf("clone %+v", cl)
	}
}

func TestRoundSum(t *testing.T) {
	// The first minute of testdata/replay/tardis_trades.csv: 90 sizes with
	// up to three decimals.
	if got := RoundSum(35.712999999999994, 90, 3); got != 35.713 {
		t.Fatalf("RoundSum = %v, want 35.713", got)
	}
	if got := RoundSum(0.1+0.2, 2, 1); got != 0.3 {
		t.Fatalf("0.1+0.2 = %v, want 0.3", got)
	}
	// A sum outside the bound, an unknown precision and too many places
	// are left as they are.
	for _, c := range []struct {
		sum float64
		n   int64
		d   int
	}{
		{35.712999999999994, 1e12, 3}, {35.712999999999994, 90, -1}, {35.712999999999994, 90, 16}, {1e300, 1, 2},
	} {
		if got := RoundSum(c.sum, c.n, c.d); got != c.sum {
			t.Errorf("RoundSum(%v, %d, %d) = %v, want it unchanged", c.sum, c.n, c.d, got)
		}
	}
}

func TestSizeDecimalsKeepsTheMost(t *testing.T) {
	tab := NewSymbolTable()
	a, b := tab.Intern("p", "A"), tab.Intern("p", "B")
	if _, ok := tab.SizeDecimals(a); ok {
		t.Fatal("decimals known before any size")
	}
	sd := NewSizeDecimals(tab)
	sd.Note(a, 2)
	sd.Note(a, 1)
	sd.Note(b, 0)
	sd.Note(a, 40) // more than RoundSum handles: rounding off
	if d, ok := tab.SizeDecimals(a); !ok || d != maxExactDecimals+1 {
		t.Fatalf("A: %d %v", d, ok)
	}
	if d, ok := tab.SizeDecimals(b); !ok || d != 0 {
		t.Fatalf("B: %d %v", d, ok)
	}
	if n := testing.AllocsPerRun(100, func() { sd.Note(b, 0) }); n != 0 {
		t.Fatalf("Note allocates %v", n)
	}
}
