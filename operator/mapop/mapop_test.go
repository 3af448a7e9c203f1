package mapop_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/mapop"
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
		{map[string]any{"price": "pirce * 2"}, "set.price: "},
		{map[string]any{"price": "bid * 2"}, "not valid for trade records"},
		{map[string]any{"price": `symbol == "A"`}, "set.price"},
		{map[string]any{}, "at least one"},
		{map[string]any{"price": true}, "want an expression string"},
	} {
		err := optest.Params(mapop.Type, map[string]any{"set": tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set %v: err = %v, want %q", tc.set, err, tc.want)
		}
	}
}

func BenchmarkMap(b *testing.B) {
	in := optest.NewInstance(b, mapop.Type, map[string]any{"set": map[string]any{"price": "price * 100"}}, []string{"S0"})
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = enginetest.Trades(512, 1, 0)
	optest.Bench(b, in, 512, 16, func(int) { in.Process(batch) })
}
