package options_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

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

func TestChainRefusesParallelismAndBadParams(t *testing.T) {
	src := &enginetest.Source{Symbols: []string{"XYZ"}, Trades: enginetest.TradesAt(1)}
	if _, err := optest.Try(t, optest.Job{Src: src, Type: options.Type, Params: map[string]any{}, Parallelism: 2}); err == nil || !strings.Contains(err.Error(), "parallelism 1") {
		t.Fatalf("parallelism 2: err = %v", err)
	}
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
