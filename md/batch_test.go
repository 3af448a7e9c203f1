package md

import (
	"slices"
	"testing"
)

// TestDropFront checks that DropFront keeps the records after the first
// n in order, for trades and for derived records with their field values.
func TestDropFront(t *testing.T) {
	b := &Batch{Kind: KindTrade}
	for i := range 5 {
		b.Trades = append(b.Trades, Trade{TradeID: int64(i)})
	}
	b.DropFront(2)
	var ids []int64
	for _, tr := range b.Trades {
		ids = append(ids, tr.TradeID)
	}
	if !slices.Equal(ids, []int64{2, 3, 4}) || cap(b.Trades) < 5 {
		t.Fatalf("trades after DropFront(2): %v (cap %d)", ids, cap(b.Trades))
	}
	b.DropFront(7)
	if b.Len() != 0 {
		t.Fatalf("DropFront past the end left %d records", b.Len())
	}

	s, err := NewSchema("sma", Field{Name: "value"}, Field{Name: "n", Type: Int})
	if err != nil {
		t.Fatal(err)
	}
	d := &Batch{Kind: KindDerived, Schema: s}
	for i := range 4 {
		v := d.AddDerived(int64(i), SymID(i))
		v[0], v[1] = FloatValue(float64(i)), IntValue(int64(10*i))
	}
	d.DropFront(3)
	if d.Len() != 1 || d.Derived[0].TS != 3 || d.Row(0)[0].Float() != 3 || d.Row(0)[1].Int() != 30 || len(d.Values) != 2 {
		t.Fatalf("derived after DropFront(3): %+v, values %v", d.Derived, d.Values)
	}
}
