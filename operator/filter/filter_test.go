package filter_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/features"
	"github.com/mdpio/mdp/operator/filter"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/window"
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
	// Decoding the params alone checks the syntax and the result type
	// (the fields an expression may name are known once the graph is).
	errs := decode(t, filter.Type, "expr: price > 0 && (size >= 100\n")
	if len(errs) != 1 || errs[0].Line != 1 || !strings.Contains(errs[0].Msg, "expression") {
		t.Fatalf("a syntax error: errs = %v", errs)
	}
	errs = decode(t, filter.Type, "expr: price * 2 > 1 && size\n")
	if len(errs) != 0 {
		t.Fatalf("errs = %v: the fields of derived records are checked with the graph", errs)
	}
	errs = decode(t, filter.Type, "{}\n")
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, `missing required param "expr"`) {
		t.Fatalf("no expr: errs = %v", errs)
	}
	// A misspelt field of a trade: a config error at its line and column
	// once the job's graph says trades reach the filter.
	src := job("    - {id: f, type: operator.filter, params: {expr: \"price > 0 && siez >= 100\"}}\n", "[[src, f], [f, out]]")
	e := loadErr(t, src)
	if e.Line != 7 || e.Column != 67 || !strings.Contains(e.Msg, "siez") || !strings.Contains(e.Msg, "trade records") {
		t.Fatalf("err = %+v, want siez at 7:67", e)
	}
	e = loadErr(t, job("    - {id: f, type: operator.filter, params: {expr: \"price * 2\"}}\n", "[[src, f], [f, out]]"))
	if e.Line != 7 || !strings.Contains(e.Msg, "expected bool") {
		t.Fatalf("a non-boolean filter: err = %+v", e)
	}
}

// job is a job file: synthetic trades, the given nodes (from line 7), a
// null sink, and edges.
func job(nodes, edges string) string {
	return "mode: dag\nname: t\ndag:\n  nodes:\n    - {id: src, type: provider.synthetic, params: {symbols: [A], count: 10}}\n    - {id: out, type: sink.null}\n" +
		nodes + "  edges: " + edges + "\n"
}

// loadErr loads a job file that must have exactly one error and returns it.
func loadErr(t *testing.T, src string) *config.Error {
	t.Helper()
	_, err := config.LoadBytes("job.yaml", []byte(src), config.LoadOptions{})
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("load: %v, want one error", err)
	}
	return errs[0]
}

// featTrades are one symbol's trades, 1ms apart, for operator.features.
func featTrades(prices ...float64) []md.Trade {
	out := make([]md.Trade, len(prices))
	for i, px := range prices {
		out[i] = md.Trade{TS: int64(i+1) * 1e6, Price: px, Size: float64(i + 1), TradeID: int64(i)}
	}
	return out
}

func TestFilterOverFeatures(t *testing.T) {
	// features: price, sma_3, return.
	in := featTrades(10, 11, 10.5, 12, 12, 11)
	src := &enginetest.Source{Symbols: []string{"A"}, Trades: in, BatchSize: 2}
	up := &optest.Stage{Type: features.Type, Params: map[string]any{"features": []any{"sma(3)", "return"}}}
	for _, expr := range []string{"return > 0 && price > sma_3", "return > 0 && price > sma_3 && ts > 0 && symbol == \"A\""} {
		res := optest.Run(t, optest.Job{Src: src, Upstream: up, Type: filter.Type, Params: map[string]any{"expr": expr}})
		rows := res.Ports[""].Rows()
		// 11 > 10.5 = (10+11)/2 and 12 > 11.1666 = (10.5+11+12)/3; the
		// second 12 has return 0, 10.5 and 11 fall.
		ret := func(a, b float64) float64 { return a/b - 1 }
		want := []optest.Row{
			{TS: 2e6, V: []float64{11, 10.5, ret(11, 10)}},
			{TS: 4e6, V: []float64{12, (11 + 10.5 + 12) / 3, ret(12, 10.5)}},
		}
		if len(rows) != len(want) {
			t.Fatalf("%s: rows %v, want %v", expr, rows, want)
		}
		for i := range want {
			if rows[i].TS != want[i].TS || !slices.Equal(rows[i].V, want[i].V) {
				t.Fatalf("%s: row %d = %v, want %v", expr, i, rows[i], want[i])
			}
		}
		if s := res.Ports[""].Schema; s == nil || s.Index("sma_3") != 1 {
			t.Fatalf("schema %v", s)
		}
		if res.Drops["filtered"] != 4 {
			t.Fatalf("%s: filtered %d, want 4", expr, res.Drops["filtered"])
		}
	}
}

func TestFilterOverWindows(t *testing.T) {
	// 10ms tumbling windows: [0,10ms) has 3 trades (max 12), [10ms,20ms)
	// one, [20ms,30ms) two (max 9).
	in := []md.Trade{{TS: 1e6, Price: 10, Size: 1}, {TS: 5e6, Price: 12, Size: 2}, {TS: 9e6, Price: 11, Size: 3},
		{TS: 10e6, Price: 20, Size: 4}, {TS: 21e6, Price: 9, Size: 5}, {TS: 29e6, Price: 8, Size: 6}}
	up := &optest.Stage{Type: window.TypeTumbling, Params: map[string]any{"size": "10ms", "aggregations": []any{"count", "sum(size)", "max(price)"}}}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Trades: in, BatchSize: 4}, Upstream: up,
			Type: filter.Type, Params: map[string]any{"expr": "count >= 2 && max_price > 10 * 1.0"}, Parallelism: par})
		rows := res.Ports[""].Rows()
		// end, count, sum_size, max_price, early, update
		want := []float64{10e6, 3, 6, 12, 0, 0}
		if len(rows) != 1 || rows[0].TS != 0 || !slices.Equal(rows[0].V, want) {
			t.Fatalf("parallelism %d: rows %v, want one at 0 with %v", par, rows, want)
		}
		if res.Drops["filtered"] != 2 {
			t.Fatalf("parallelism %d: filtered %d, want 2", par, res.Drops["filtered"])
		}
	}
}

func TestAFieldTheUpstreamSchemaLacksIsAConfigErrorAtItsLineAndColumn(t *testing.T) {
	nodes := "    - {id: feats, type: operator.features, params: {features: [sma(3), return]}}\n" +
		"    - id: f\n      type: operator.filter\n      params:\n        expr: return > 0 && smaa_3 > 1\n"
	e := loadErr(t, job(nodes, "[[src, feats], [feats, f], [f, out]]"))
	// line 11 holds the expression; smaa_3 starts at column 29.
	if e.Line != 11 || e.Column != 29 || !strings.Contains(e.Msg, "smaa_3") || !strings.Contains(e.Msg, "feats(") {
		t.Fatalf("err = %+v, want smaa_3 at 11:29 naming the schema", e)
	}
	if !strings.Contains(e.Path, "params.expr") {
		t.Fatalf("path %q", e.Path)
	}
	// The same expression with the right name loads.
	ok := strings.Replace(job(nodes, "[[src, feats], [feats, f], [f, out]]"), "smaa_3", "sma_3", 1)
	if _, err := config.LoadBytes("job.yaml", []byte(ok), config.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	// A type error against the schema (a string compared to a float).
	bad := strings.Replace(ok, "sma_3 > 1", `sma_3 == "x"`, 1)
	if e := loadErr(t, bad); e.Line != 11 || !strings.Contains(e.Msg, "mismatched types") {
		t.Fatalf("err = %+v, want a type error at line 11", e)
	}
	// Checked at Open too, for a graph built without a job file.
	up := &optest.Stage{Type: features.Type, Params: map[string]any{"features": []any{"sma(3)"}}}
	j := optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Trades: featTrades(1, 2)}, Upstream: up, Type: filter.Type,
		Params: map[string]any{"expr": "smaa_3 > 1"}}
	if errs := optest.Check(t, j); len(errs) != 1 || !strings.Contains(errs[0].Msg, "smaa_3") {
		t.Fatalf("Check: %v", errs)
	}
	if _, err := optest.Try(t, j); err == nil || !strings.Contains(err.Error(), "smaa_3") {
		t.Fatalf("run: %v, want the unknown name", err)
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

// Derived records (a features schema) through the closures compiled
// against the schema: no allocation per record.
func BenchmarkFilterDerived(b *testing.B) {
	in := optest.NewInstance(b, filter.Type, map[string]any{"expr": "return > 0 && price > sma_3"}, enginetest.Symbols(8))
	sc, _ := md.NewSchema("feats", md.Field{Name: "price"}, md.Field{Name: "sma_3"}, md.Field{Name: "return"})
	batch := md.NewBatch(md.KindDerived)
	batch.Schema = sc
	for i, tr := range trades() {
		row := batch.AddDerived(tr.TS, tr.Sym)
		row[0], row[1], row[2] = md.FloatValue(tr.Price), md.FloatValue(tr.Size/100), md.FloatValue(float64(i%3-1))
	}
	optest.Bench(b, in, batch.Len(), 16, func(int) { in.Process(batch) })
}
