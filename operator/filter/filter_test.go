package filter_test

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/filter"
	"github.com/mdpio/mdp/operator/internal/optest"
)

func trades() []md.Trade {
	var out []md.Trade
	for i := 0; i < 400; i++ {
		out = append(out, md.Trade{TS: int64(1000 + i), Price: float64(i%7) - 1, Size: float64(i % 250), Sym: md.SymID(i % 8), TradeID: int64(i)})
	}
	return out
}

func TestFilterKeepsExactlyTheMatchingTradesAtAnyParallelism(t *testing.T) {
	in := trades()
	var want []int64
	for _, tr := range in {
		if tr.Price > 0 && tr.Size >= 100 {
			want = append(want, tr.TradeID)
		}
	}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: enginetest.Symbols(8), Trades: in, BatchSize: 37},
			Type: filter.Type, Params: map[string]any{"expr": "price > 0 && size >= 100"}, Parallelism: par})
		var got []int64
		for _, tr := range res.Ports[""].Trades {
			got = append(got, tr.TradeID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("parallelism %d: got %d trades %v, want %d %v", par, len(got), got, len(want), want)
		}
		if res.Drops["filtered"] != int64(len(in)-len(want)) {
			t.Fatalf("parallelism %d: filtered drops %d, want %d", par, res.Drops["filtered"], len(in)-len(want))
		}
	}
}

func TestFilterBySymbolOnQuotesAndBars(t *testing.T) {
	src := &enginetest.Source{Symbols: []string{"AAPL", "MSFT"},
		Quotes: []md.Quote{{TS: 1, Bid: 10, Ask: 11, Sym: 0}, {TS: 2, Bid: 20, Ask: 20.5, Sym: 1}, {TS: 3, Bid: 12, Ask: 11, Sym: 0}},
		Bars:   []md.Bar{{Start: 10, Close: 5, Sym: 1}, {Start: 11, Close: 6, Sym: 0}}}
	res := optest.Run(t, optest.Job{Src: src, Type: filter.Type, Params: map[string]any{"expr": `symbol == "AAPL"`}})
	c := res.Ports[""]
	if len(c.Quotes) != 2 || c.Quotes[0].TS != 1 || c.Quotes[1].TS != 3 || len(c.Bars) != 1 || c.Bars[0].Start != 11 {
		t.Fatalf("got quotes %+v bars %+v", c.Quotes, c.Bars)
	}
	res = optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Quotes: src.Quotes},
		Type: filter.Type, Params: map[string]any{"expr": "spread > 0"}})
	if q := res.Ports[""].Quotes; len(q) != 2 || q[0].TS != 1 || q[1].TS != 2 {
		t.Fatalf("spread > 0 kept %+v", q)
	}
}

func decode(t *testing.T, typ, doc string) []*component.FieldError {
	t.Helper()
	spec, _ := component.Lookup(typ)
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	_, errs := component.Decode(spec, "f", &n)
	return errs
}

func TestBadExpressionIsAConfigErrorAtItsLineAndColumn(t *testing.T) {
	errs := decode(t, filter.Type, "expr: price > 0 && siez >= 100\n")
	if len(errs) != 1 || errs[0].Line != 1 || errs[0].Column != 20 || !strings.Contains(errs[0].Msg, "siez") {
		t.Fatalf("errs = %v (line %d col %d)", errs, errs[0].Line, errs[0].Column)
	}
	errs = decode(t, filter.Type, "expr: price * 2\n")
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "bool") {
		t.Fatalf("a non-boolean filter: errs = %v", errs)
	}
	errs = decode(t, filter.Type, "{}\n")
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, `missing required param "expr"`) {
		t.Fatalf("no expr: errs = %v", errs)
	}
}

func TestAnExpressionInvalidForTheInputKindFailsTheBuild(t *testing.T) {
	spec, _ := component.Lookup(filter.Type)
	p, err := component.NewParams(spec, map[string]any{"expr": "bid > 0"})
	if err != nil {
		t.Fatal(err)
	}
	g := &engine.Graph{Nodes: []*engine.Node{
		enginetest.SourceNode("src", md.KindTrade, &enginetest.Source{Trades: enginetest.TradesAt(1)}),
		component.Node(spec, p, component.NodeOptions{ID: "op"}),
		enginetest.SinkNode("out", &enginetest.Sink{})},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "op", To: "out"}}}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err == nil {
		err = j.Run(t.Context())
	}
	if err == nil || !strings.Contains(err.Error(), "bid") || !strings.Contains(err.Error(), "trade") {
		t.Fatalf("err = %v, want the expression's error for trade records", err)
	}
}

func BenchmarkFilter(b *testing.B) {
	in := optest.NewInstance(b, filter.Type, map[string]any{"expr": "price > 0 && size >= 100"}, enginetest.Symbols(8))
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = trades()
	optest.Bench(b, in, len(batch.Trades), 16, func(int) { in.Process(batch) })
}
