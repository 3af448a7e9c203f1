package mapop_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/features"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/mapop"
	"github.com/mdpio/mdp/operator/window"
)

func TestMapSetsFieldsFromTheRecordAsItArrived(t *testing.T) {
	var in []md.Trade
	for i := 0; i < 200; i++ {
		in = append(in, md.Trade{TS: int64(i), Price: 1.25 + float64(i), Size: 2, Sym: md.SymID(i % 5), TradeID: int64(i)})
	}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: enginetest.Symbols(5), Trades: in, BatchSize: 16},
			Type: mapop.Type, Params: map[string]any{"set": map[string]any{"price": "price * 100", "size": "price * size"}}, Parallelism: par})
		got := res.Ports[""].Trades
		slices.SortFunc(got, func(a, b md.Trade) int { return int(a.TradeID - b.TradeID) })
		if len(got) != len(in) {
			t.Fatalf("parallelism %d: %d trades, want %d", par, len(got), len(in))
		}
		for i, g := range got {
			w := in[i]
			if g.Price != w.Price*100 || g.Size != w.Price*w.Size || g.TS != w.TS {
				t.Fatalf("parallelism %d: trade %d = %+v, want price %v size %v", par, i, g, w.Price*100, w.Price*w.Size)
			}
		}
	}
}

func TestMapOnQuotesAndBars(t *testing.T) {
	src := &enginetest.Source{Symbols: []string{"A"},
		Quotes: []md.Quote{{TS: 1, Bid: 10, Ask: 12, BidSize: 3, AskSize: 4}},
		Bars:   []md.Bar{{Start: 5, Open: 1, High: 3, Low: 0.5, Close: 2, Volume: 7}}}
	res := optest.Run(t, optest.Job{Src: src, Type: mapop.Type,
		Params: map[string]any{"set": map[string]any{"bid": "mid", "ask": "mid", "close": "(high + low) / 2", "volume": 0}}})
	c := res.Ports[""]
	if len(c.Quotes) != 1 || c.Quotes[0].Bid != 11 || c.Quotes[0].Ask != 11 || c.Quotes[0].BidSize != 3 {
		t.Fatalf("quotes %+v", c.Quotes)
	}
	if len(c.Bars) != 1 || c.Bars[0].Close != 1.75 || c.Bars[0].Volume != 0 || c.Bars[0].Open != 1 {
		t.Fatalf("bars %+v", c.Bars)
	}
}

func TestBadAssignmentsAreRejected(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]any
		want string
	}{
		{map[string]any{"symbol": "1"}, "set.symbol: not a settable field"},
		{map[string]any{"price": "pirce * (2"}, "set.price: "},
		{map[string]any{}, "at least one"},
		{map[string]any{"price": true}, "want an expression string"},
	} {
		err := optest.Params(mapop.Type, map[string]any{"set": tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set %v: err = %v, want %q", tc.set, err, tc.want)
		}
	}
	// Checked against what reaches the node once the graph is built.
	trades := &enginetest.Source{Symbols: []string{"A"}, Trades: enginetest.TradesAt(1)}
	for _, tc := range []struct {
		set  map[string]any
		want string
	}{
		{map[string]any{"price": "pirce * 2"}, "set.price: expression \"pirce * 2\": unknown name pirce (for trade records)"},
		{map[string]any{"price": "bid * 2"}, "unknown name bid (for trade records)"},
		{map[string]any{"price": `symbol == "A"`}, "set.price"},
		{map[string]any{"bid": "price"}, "the input carries trade records and no assignment of set applies"},
		{map[string]any{"price": "price", "sma_3": "1"}, "set.sma_3: expression \"1\": no record reaching the node has a field sma_3 (trades: price, size)"},
	} {
		errs := optest.Check(t, optest.Job{Src: trades, Type: mapop.Type, Params: map[string]any{"set": tc.set}})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("set %v: errs = %v, want %q", tc.set, errs, tc.want)
		}
	}
}

func TestMapOverFeaturesAndWindows(t *testing.T) {
	// features price, sma_2, return over one symbol's trades.
	in := []md.Trade{{TS: 1e6, Price: 10, Size: 1}, {TS: 2e6, Price: 12, Size: 1}, {TS: 3e6, Price: 9, Size: 1}}
	src := &enginetest.Source{Symbols: []string{"A"}, Trades: in, BatchSize: 2}
	res := optest.Run(t, optest.Job{Src: src, Upstream: &optest.Stage{Type: features.Type, Params: map[string]any{"features": []any{"sma(2)", "return"}}},
		Type: mapop.Type, Params: map[string]any{"set": map[string]any{"return": "return * 100", "sma_2": "price - sma_2", "price": "price"}}})
	ret := func(a, b float64) float64 { return (a/b - 1) * 100 }
	want := []optest.Row{{TS: 1e6, V: []float64{10, 0, 0}}, {TS: 2e6, V: []float64{12, 12 - 11.0, ret(12, 10)}}, {TS: 3e6, V: []float64{9, 9 - 10.5, ret(9, 12)}}}
	if got := res.Ports[""].Rows(); !rowsEqual(got, want) {
		t.Fatalf("features: got %v, want %v", got, want)
	}
	// A window's int64 count takes an integer expression; a float one is
	// refused for it.
	w := &optest.Stage{Type: window.TypeTumbling, Params: map[string]any{"size": "10ms", "aggregations": []any{"count", "max(price)"}}}
	wsrc := &enginetest.Source{Symbols: []string{"A", "B"}, Trades: []md.Trade{{TS: 1e6, Price: 10, Size: 1}, {TS: 2e6, Price: 11, Size: 1, Sym: 1}, {TS: 3e6, Price: 12, Size: 1}}}
	for _, par := range []int{1, 4} {
		res = optest.Run(t, optest.Job{Src: wsrc, Upstream: w, Type: mapop.Type, Parallelism: par,
			Params: map[string]any{"set": map[string]any{"count": "count * 10 + 1", "max_price": "max_price / 2"}}})
		got := res.Ports[""].Rows()
		slices.SortFunc(got, func(a, b optest.Row) int { return int(a.Sym) - int(b.Sym) })
		// end, count, max_price, early, update
		want = []optest.Row{{Sym: 0, TS: 0, V: []float64{10e6, 21, 6, 0, 0}}, {Sym: 1, TS: 0, V: []float64{10e6, 11, 5.5, 0, 0}}}
		if !rowsEqual(got, want) {
			t.Fatalf("window, parallelism %d: got %v, want %v", par, got, want)
		}
	}
	errs := optest.Check(t, optest.Job{Src: wsrc, Upstream: w, Type: mapop.Type, Params: map[string]any{"set": map[string]any{"count": "count * 1.5"}}})
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "set.count") || !strings.Contains(errs[0].Msg, "integer expression") {
		t.Fatalf("a float for an int64 field: %v", errs)
	}
	errs = optest.Check(t, optest.Job{Src: wsrc, Upstream: w, Type: mapop.Type, Params: map[string]any{"set": map[string]any{"max_price": "max_pirce"}}})
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "unknown name max_pirce") || errs[0].Key != "set" {
		t.Fatalf("a misspelt field: %v", errs)
	}
}

func rowsEqual(a, b []optest.Row) bool {
	return slices.EqualFunc(a, b, func(x, y optest.Row) bool { return x.Sym == y.Sym && x.TS == y.TS && slices.Equal(x.V, y.V) })
}

func BenchmarkMap(b *testing.B) {
	in := optest.NewInstance(b, mapop.Type, map[string]any{"set": map[string]any{"price": "price * 100"}}, []string{"S0"})
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = enginetest.Trades(512, 1, 0)
	optest.Bench(b, in, 512, 16, func(int) { in.Process(batch) })
}

// A window's schema, a float and an int64 field set by closures compiled
// against it: no allocation per record.
func BenchmarkMapDerived(b *testing.B) {
	in := optest.NewInstance(b, mapop.Type, map[string]any{"set": map[string]any{"max_price": "max_price * 100", "count": "count + 1"}}, enginetest.Symbols(8))
	sc, _ := md.NewSchema("win", md.Field{Name: "count", Type: md.Int}, md.Field{Name: "max_price"})
	batch := md.NewBatch(md.KindDerived)
	batch.Schema = sc
	for i := range 1024 {
		row := batch.AddDerived(int64(i), md.SymID(i%8))
		row[0], row[1] = md.IntValue(int64(i)), md.FloatValue(float64(i)/8)
	}
	optest.Bench(b, in, batch.Len(), 16, func(int) { in.Process(batch) })
}
