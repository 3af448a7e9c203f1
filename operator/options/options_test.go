package options_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/options"
)

func TestParseOCC(t *testing.T) {
	for _, tc := range []struct {
		in     string
		root   string
		date   string
		call   bool
		strike float64
	}{
		{"AAPL  240119C00190000", "AAPL", "2024-01-19", true, 190},
		{"AAPL240119P00187500", "AAPL", "2024-01-19", false, 187.5},
		{"O:SPY251219C00600000", "SPY", "2025-12-19", true, 600},
		{"BRKB  250117P00000500", "BRKB", "2025-01-17", false, 0.5},
	} {
		c, err := options.ParseOCC(tc.in)
		if err != nil || c.Root != tc.root || c.Expiry.Format("2006-01-02") != tc.date || c.Call != tc.call || c.Strike != tc.strike {
			t.Errorf("%q: %+v, %v", tc.in, c, err)
		}
	}
	for _, bad := range []string{"AAPL", "AAPL 240119X00190000", "AAPL240132C00190000", "TOOLONGX240119C00190000", "AAPL240119C0019000"} {
		if _, err := options.ParseOCC(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// Hull's 20-week call (S0 = 49, K = 50, r = 5%, sigma = 20%, T = 0.3846
// years; see bs_test.go) as an OCC contract expiring 2024-01-19 16:00
// New York (21:00 UTC), valued 0.3846 years before, through the engine.
func TestChainThroughTheEngine(t *testing.T) {
	expiry := time.Date(2024, 1, 19, 21, 0, 0, 0, time.UTC).UnixNano()
	ts := expiry - int64(0.3846*365*24*float64(time.Hour))
	const und, opt, junk = 0, 1, 2
	src := &enginetest.Source{Symbols: []string{"XYZ", "XYZ   240119C00050000", "NOT-AN-OPTION"},
		Quotes: []md.Quote{
			{TS: ts - 10, Bid: 10, Ask: 11, Sym: opt},        // no underlying price yet: nothing
			{TS: ts - 5, Bid: 48.99, Ask: 49.01, Sym: und},   // underlying mid 49
			{TS: ts, Bid: 2.35, Ask: 2.45, Sym: opt},         // mid 2.40
			{TS: ts, Bid: 1, Ask: 1.1, Sym: junk},            // an underlying nobody uses
			{TS: expiry + 1, Bid: 2.35, Ask: 2.45, Sym: opt}, // expired
		}}
	res := optest.Run(t, optest.Job{Src: src, Type: options.Type,
		Params: map[string]any{"rate": 0.05, "volatility": 0.2}})
	c := res.Ports[""]
	if len(c.Derived) != 1 || c.Schema.Name() != "option_greeks" {
		t.Fatalf("%d records (%v), want 1; counts %v", len(c.Derived), c.Schema, res.Counts)
	}
	row := map[string]float64{}
	for i, f := range options.Fields {
		if f.Type == md.Int {
			row[f.Name] = float64(c.Values[0][i].Int())
		} else {
			row[f.Name] = c.Values[0][i].Float()
		}
	}
	want := map[string][2]float64{"expiry": {float64(expiry), 0}, "strike": {50, 0}, "call": {1, 0}, "underlying_price": {49, 1e-9},
		"mid": {2.40, 1e-9}, "iv": {0.2, 0}, "model_price": {2.40, 0.005}, "delta": {0.522, 0.0005}, "gamma": {0.066, 0.0005},
		"vega": {12.1, 0.05}, "theta": {-4.31, 0.005}, "rho": {8.91, 0.005}, "years": {0.3846, 1e-9}}
	for k, w := range want {
		if math.Abs(row[k]-w[0]) > w[1] {
			t.Errorf("%s = %v, want %v ± %v", k, row[k], w[0], w[1])
		}
	}
	if res.Counts["expired"] != 1 {
		t.Errorf("counts %v, want expired 1", res.Counts)
	}

	// Without a volatility, the implied one is solved from the mid; the
	// model price then equals the mid.
	res = optest.Run(t, optest.Job{Src: src, Type: options.Type, Params: map[string]any{"rate": 0.05}})
	v := res.Ports[""].Values[0]
	if iv := v[10].Float(); math.Abs(iv-0.2) > 0.002 || math.Abs(v[11].Float()-2.40) > 1e-8 {
		t.Errorf("iv %v (want about 0.2), model price %v (want the mid 2.40)", iv, v[11].Float())
	}
}

// chains are option and underlying quotes and trades of several roots, in
// random order within 2ms of event time (the source's out-of-orderness).
func chains(n int) *enginetest.Source {
	r := rand.New(rand.NewPCG(3, 8))
	roots := []string{"XYZ", "ABC", "QQQ", "SPY", "T", "F", "GE", "IBM"}
	var syms []string
	for _, root := range roots {
		syms = append(syms, root, fmt.Sprintf("%-6s240119C00050000", root), fmt.Sprintf("%-6s240119P00050000", root), "O:"+root+"240216C00045000")
	}
	t0 := time.Date(2023, 11, 1, 15, 0, 0, 0, time.UTC).UnixNano()
	src := &enginetest.Source{Symbols: syms, BatchSize: 13}
	for i := range n {
		at := t0 + int64(i)*int64(time.Millisecond) + int64(r.IntN(2_000_000))
		s := r.IntN(len(syms))
		px := 1.5 + float64(r.IntN(100))/100
		if s%4 == 0 {
			px = 45 + float64(r.IntN(1000))/100
		}
		if r.IntN(3) == 0 {
			src.Trades = append(src.Trades, md.Trade{TS: at, Price: px, Size: float64(1 + r.IntN(5)), Sym: md.SymID(s)})
		} else {
			src.Quotes = append(src.Quotes, md.Quote{TS: at, Bid: px - 0.05, Ask: px + 0.05, BidSize: 1, AskSize: 1, Sym: md.SymID(s)})
		}
	}
	return src
}

// With parallelism the records are partitioned by the underlying (the
// chain's PartitionKey), so every instance values its options with their
// underlying's price and the output equals one instance's, record for
// record.
func TestChainAtParallelismFourEqualsOne(t *testing.T) {
	src := chains(4000)
	rows := func(par int) []string {
		res := optest.Run(t, optest.Job{Src: src, Type: options.Type, Params: map[string]any{"rate": 0.05}, Parallelism: par, OOO: 2 * time.Millisecond})
		c := res.Ports[""]
		var out []string
		for i, d := range c.Derived {
			out = append(out, fmt.Sprint(d.TS, " ", res.Syms.Get(d.Sym).Symbol, " ", c.Values[i]))
		}
		slices.Sort(out)
		return out
	}
	one, four := rows(1), rows(4)
	if len(one) < 400 {
		t.Fatalf("%d records at parallelism 1: too few to compare", len(one))
	}
	if !slices.Equal(one, four) {
		for i := range min(len(one), len(four)) {
			if one[i] != four[i] {
				t.Fatalf("%d records at 1, %d at 4; first difference:\n1: %s\n4: %s", len(one), len(four), one[i], four[i])
			}
		}
		t.Fatalf("%d records at 1, %d at 4", len(one), len(four))
	}
	// The key: an option goes by its root, anything else by itself.
	for _, s := range []string{"XYZ   240119C00050000", "O:XYZ240216C00045000", "XYZ240119P00050000"} {
		if got := options.PartitionKey(&md.Instrument{Symbol: s, Hash: md.HashSymbol(s)}); got != md.HashSymbol("XYZ") {
			t.Errorf("PartitionKey(%q) = %x, want XYZ's hash", s, got)
		}
	}
	if got := options.PartitionKey(&md.Instrument{Symbol: "XYZ", Hash: 7}); got != 7 {
		t.Errorf("PartitionKey(XYZ) = %d, want its own hash 7", got)
	}
}

func TestChainBadParams(t *testing.T) {
	for _, tc := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{"timezone": "Mars/Olympus"}, "unknown time zone"},
		{map[string]any{"expiry_time": "4pm"}, "HH:MM"},
		{map[string]any{"model": "black76", "dividend_yield": 0.01}, "black_scholes only"},
		{map[string]any{"volatility": 0}, "volatility"},
		{map[string]any{"schema": "trades"}, "reserved"},
	} {
		if err := optest.Params(options.Type, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.p, err, tc.want)
		}
	}
}

func BenchmarkGreeksWithImpliedVol(b *testing.B) {
	b.ReportAllocs()
	cpu0 := optest.CPUTime()
	for i := 0; i < b.N; i++ {
		m := func(s float64) options.Greeks { return options.BlackScholes(true, 49, 50, 0.3846, 0.05, 0, s) }
		iv, _ := options.ImpliedVol(2.40+float64(i%7)*0.01, m)
		_ = m(iv)
	}
	optest.ReportPerRecord(b, 1, cpu0)
}

// Two ports interleaving: an underlying quote arriving after an option
// quote but stamped before it values it; one stamped after it, even if it
// arrives first, does not; one at the same time does. Output follows the
// watermark, and a record behind it is counted as late.
func TestOptionsPairWithTheUnderlyingByEventTime(t *testing.T) {
	expiry := time.Date(2024, 1, 19, 21, 0, 0, 0, time.UTC).UnixNano()
	ts := expiry - int64(0.3846*365*24*float64(time.Hour))
	sc, _ := md.NewSchema("option_greeks", options.Fields...)
	c := options.New(options.Config{Rate: 0.05, Vol: 0.2, Schema: sc})
	to := enginetest.NewOutput(nil, 0)
	und := to.NC.Symbols.Intern("test", "XYZ")
	opt := to.NC.Symbols.Intern("test", "XYZ   240119C00050000")
	ctx := context.Background()
	if err := c.Open(ctx, to.NC); err != nil {
		t.Fatal(err)
	}
	port := func(p int, qs ...md.Quote) {
		b := md.NewBatch(md.KindQuote)
		b.Quotes = qs
		if err := c.ProcessPort(ctx, p, b, to.Output); err != nil {
			t.Fatal(err)
		}
	}
	wm := func(w int64) {
		if err := c.OnWatermark(ctx, w, to.Output); err != nil {
			t.Fatal(err)
		}
	}
	underlyings := func() (got []float64) {
		for _, b := range to.Drain(engine.PortMain) {
			for i := range b.Derived {
				got = append(got, b.Row(i)[3].Float())
			}
		}
		return got
	}
	port(2, md.Quote{TS: ts + 100, Bid: 59.99, Ask: 60.01, Sym: und}) // after both options: arrives first
	port(1, md.Quote{TS: ts, Bid: 2.35, Ask: 2.45, Sym: opt}, md.Quote{TS: ts + 50, Bid: 2.35, Ask: 2.45, Sym: opt})
	port(2, md.Quote{TS: ts - 5, Bid: 48.99, Ask: 49.01, Sym: und}, md.Quote{TS: ts + 50, Bid: 49.99, Ask: 50.01, Sym: und})
	if got := underlyings(); len(got) != 0 {
		t.Fatalf("emitted before the watermark: %v", got)
	}
	wm(ts + 51)
	if got := underlyings(); len(got) != 2 || math.Abs(got[0]-49) > 1e-9 || math.Abs(got[1]-50) > 1e-9 {
		t.Fatalf("underlying prices %v, want 49 (at ts-5) and 50 (at the option's own time)", got)
	}
	port(1, md.Quote{TS: ts + 20, Bid: 2.35, Ask: 2.45, Sym: opt}) // behind the watermark
	port(1, md.Quote{TS: ts + 200, Bid: 2.35, Ask: 2.45, Sym: opt})
	wm(md.MaxTime)
	if got := underlyings(); len(got) != 1 || math.Abs(got[0]-60) > 1e-9 {
		t.Fatalf("underlying prices %v, want 60", got)
	}
	if d := to.NC.Stats.Drops(); d["late"] != 1 {
		t.Fatalf("drops %v, want late 1", d)
	}
}

// Open interest arrives as derived records on port open_interest (3), is
// taken in event-time order before an option update of the same time, and
// is carried in the contract's snapshot into its output records (-1 until
// given); a record behind the watermark is late.
func TestOpenInterestIsCarriedToTheOutput(t *testing.T) {
	expiry := time.Date(2024, 1, 19, 21, 0, 0, 0, time.UTC).UnixNano()
	ts := expiry - int64(0.3846*365*24*float64(time.Hour))
	sc, _ := md.NewSchema("option_greeks", options.Fields...)
	c := options.New(options.Config{Rate: 0.05, Vol: 0.2, Schema: sc, OIField: "oi"})
	to := enginetest.NewOutput(nil, 0)
	und := to.NC.Symbols.Intern("test", "XYZ")
	opt := to.NC.Symbols.Intern("test", "XYZ   240119C00050000")
	put := to.NC.Symbols.Intern("test", "XYZ   240119P00050000")
	ctx := context.Background()
	if err := c.Open(ctx, to.NC); err != nil {
		t.Fatal(err)
	}
	oiSchema, _ := md.NewSchema("oi_feed", md.Field{Name: "day", Type: md.Int}, md.Field{Name: "oi", Type: md.Int})
	oi := func(at int64, sym md.SymID, v int64) {
		b := md.NewBatch(md.KindDerived)
		b.Schema = oiSchema
		row := b.AddDerived(at, sym)
		row[0], row[1] = md.IntValue(1), md.IntValue(v)
		if err := c.ProcessPort(ctx, 3, b, to.Output); err != nil {
			t.Fatal(err)
		}
	}
	quotes := func(qs ...md.Quote) {
		b := md.NewBatch(md.KindQuote)
		b.Quotes = qs
		if err := c.ProcessPort(ctx, 0, b, to.Output); err != nil {
			t.Fatal(err)
		}
	}
	// The open interest column, by option record.
	col := sc.Index("open_interest")
	got := func() (out []float64) {
		for _, b := range to.Drain(engine.PortMain) {
			for i := range b.Derived {
				out = append(out, b.Row(i)[col].Float())
			}
		}
		return out
	}
	quotes(md.Quote{TS: ts - 5, Bid: 48.99, Ask: 49.01, Sym: und},
		md.Quote{TS: ts, Bid: 2.35, Ask: 2.45, Sym: opt},      // before any open interest: -1
		md.Quote{TS: ts + 10, Bid: 2.35, Ask: 2.45, Sym: opt}, // same time as its open interest: 1500
		md.Quote{TS: ts + 20, Bid: 2.0, Ask: 2.1, Sym: put})   // the put has none: -1
	oi(ts+10, opt, 1500) // arrives after the quote of its time, taken before it
	if err := c.OnWatermark(ctx, ts+21, to.Output); err != nil {
		t.Fatal(err)
	}
	if g := got(); !slices.Equal(g, []float64{-1, 1500, -1}) {
		t.Fatalf("open interest %v, want [-1 1500 -1]", g)
	}
	oi(ts+5, put, 7) // behind the watermark
	oi(ts+30, put, 900)
	quotes(md.Quote{TS: ts + 40, Bid: 2.0, Ask: 2.1, Sym: put}, md.Quote{TS: ts + 40, Bid: 2.4, Ask: 2.5, Sym: opt})
	if err := c.OnWatermark(ctx, md.MaxTime, to.Output); err != nil {
		t.Fatal(err)
	}
	if g := got(); !slices.Equal(g, []float64{900, 1500}) {
		t.Fatalf("open interest %v, want [900 1500]", g)
	}
	if d := to.NC.Stats.Drops()["late"]; d != 1 {
		t.Fatalf("late drops %d, want 1", d)
	}
	// The field must be in the schema reaching the port, checked at build.
	spec, _ := component.Lookup(options.Type)
	p, err := component.NewParams(spec, map[string]any{"open_interest_field": "open_int"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := component.CheckInputs(spec, p, checkedNode(t, spec, p, oiSchema)); len(errs) != 1 || !strings.Contains(errs[0].Msg, "no field open_int") {
		t.Fatalf("errs = %v", errs)
	}
	// And a wrong schema at run time is an error, not a silent -1.
	bad, _ := md.NewSchema("other", md.Field{Name: "x", Type: md.Float})
	b := md.NewBatch(md.KindDerived)
	b.Schema = bad
	b.AddDerived(md.MaxTime-1, opt)
	if err := c.ProcessPort(ctx, 3, b, to.Output); err == nil || !strings.Contains(err.Error(), "no field oi") {
		t.Fatalf("err = %v", err)
	}
}

// checkedNode is the options node of a validated graph whose open_interest
// port receives derived records of schema sc.
func checkedNode(t *testing.T, spec *component.Spec, p *component.Params, sc *md.Schema) *engine.Node {
	t.Helper()
	feed := &engine.Node{ID: "feed", Type: "operator.test", Kind: engine.KindOperator, Accepts: md.KindAny,
		Ports: map[string]md.Kind{engine.PortMain: md.KindDerived}, Schemas: map[string]*md.Schema{engine.PortMain: sc},
		NewProcessor: func(int) (engine.Processor, error) { return nil, nil }}
	op := component.Node(spec, p, component.NodeOptions{ID: "op"})
	g := &engine.Graph{Nodes: []*engine.Node{
		enginetest.SourceNode("src", md.KindQuote, &enginetest.Source{}), feed, op, enginetest.SinkNode("out", &enginetest.Sink{})},
		Edges: []*engine.Edge{{From: "src", To: "op"}, {From: "src", To: "feed"}, {From: "feed", To: "op", ToPort: options.PortOpenInterest}, {From: "op", To: "out"}}}
	if errs := g.Validate(); len(errs) > 0 {
		t.Fatalf("graph: %v", errs[0])
	}
	return op
}
