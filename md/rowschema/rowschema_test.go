package rowschema

import (
	"strings"
	"testing"

	"github.com/mdpio/mdp/md"
)

func TestTables(t *testing.T) {
	for _, c := range []struct {
		t               *Table
		stored, values  string
		stream, keyCols string
	}{
		{Trade, "provider,symbol,ts,price,size,side,trade_id,seq", "price,size,side,seq",
			"provider,symbol,ts,ingest_ts,price,size,side,trade_id,seq", "provider,symbol,ts,trade_id"},
		{Quote, "provider,symbol,ts,bid,bid_size,ask,ask_size,seq", "bid,bid_size,ask,ask_size",
			"provider,symbol,ts,ingest_ts,bid,bid_size,ask,ask_size,seq", "provider,symbol,ts,seq"},
		{Bar, "provider,symbol,interval,ts,open,high,low,close,volume,vwap,trades,bar_type,source,partial",
			"open,high,low,close,volume,vwap,trades,partial",
			"provider,symbol,interval,ts,start,end,open,high,low,close,volume,vwap,trades,bar_type,source,partial,update",
			"provider,symbol,bar_type,source,interval,ts"},
	} {
		if got := strings.Join(c.t.StoredNames(), ","); got != c.stored {
			t.Errorf("%s stored %s, want %s", c.t.Name, got, c.stored)
		}
		if got := strings.Join(c.t.ValueNames(), ","); got != c.values {
			t.Errorf("%s values %s, want %s", c.t.Name, got, c.values)
		}
		if got := strings.Join(c.t.StreamNames(), ","); got != c.stream {
			t.Errorf("%s stream %s, want %s", c.t.Name, got, c.stream)
		}
		if got := strings.Join(c.t.Key, ","); got != c.keyCols {
			t.Errorf("%s key %s", c.t.Name, got)
		}
		// Every key column is stored.
		for _, k := range c.t.Key {
			found := false
			for _, s := range c.t.StoredNames() {
				found = found || s == k
			}
			if !found {
				t.Errorf("%s: key column %s is not stored", c.t.Name, k)
			}
		}
		if For(c.t.Kind) != c.t {
			t.Errorf("For(%s)", c.t.Kind)
		}
	}
	sc, _ := md.NewSchema("greeks", md.Field{Name: "delta"}, md.Field{Name: "n", Type: md.Int})
	d := Derived(sc)
	if d.Name != "greeks" || d.Dataset != "greeks" || strings.Join(d.StoredNames(), ",") != "provider,symbol,ts,delta,n" ||
		strings.Join(d.Key, ",") != "provider,symbol,ts" || d.Columns[4].Type != Int || d.Columns[3].Type != Float {
		t.Fatalf("derived table %+v", d)
	}
}
