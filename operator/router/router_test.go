package router_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/features"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/router"
)

var syms = []string{"BTCUSDT", "ETHUSDT", "AAPL", "MSFT"}

func input() []md.Trade {
	var out []md.Trade
	for i := 0; i < 300; i++ {
		out = append(out, md.Trade{TS: int64(i), Price: 100, Size: float64(i % 20), Sym: md.SymID(i % 4), TradeID: int64(i)})
	}
	return out
}

func ids(ts []md.Trade) []int64 {
	var out []int64
	for _, t := range ts {
		out = append(out, t.TradeID)
	}
	slices.Sort(out)
	return out
}

var routes = []any{
	map[string]any{"name": "crypto", "symbols": []any{"BTCUSDT", "ETHUSDT"}},
	map[string]any{"name": "big", "expr": "size >= 15"},
}

func TestRouterFirstMatchAndDefault(t *testing.T) {
	in := input()
	var crypto, big, rest []int64
	for _, tr := range in {
		switch {
		case tr.Sym < 2:
			crypto = append(crypto, tr.TradeID)
		case tr.Size >= 15:
			big = append(big, tr.TradeID)
		default:
			rest = append(rest, tr.TradeID)
		}
	}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: in, BatchSize: 50}, Type: router.Type,
			Params: map[string]any{"routes": routes}, Parallelism: par, Ports: []string{"crypto", "big", "default"}})
		if got := ids(res.Ports["crypto"].Trades); !slices.Equal(got, crypto) {
			t.Fatalf("parallelism %d: crypto %v, want %v", par, got, crypto)
		}
		if got := ids(res.Ports["big"].Trades); !slices.Equal(got, big) {
			t.Fatalf("parallelism %d: big %v, want %v", par, got, big)
		}
		if got := ids(res.Ports["default"].Trades); !slices.Equal(got, rest) {
			t.Fatalf("parallelism %d: default %v, want %v", par, got, rest)
		}
		if len(res.Ports[""].Trades) != 0 {
			t.Fatalf("the main port got records")
		}
	}
}

func TestRouterMatchAllAndUnwiredDefaultCounted(t *testing.T) {
	in := input()
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: in}, Type: router.Type,
		Params: map[string]any{"routes": routes, "match": "all"}, Ports: []string{"crypto", "big"}})
	var big, unmatched int64
	for _, tr := range in {
		if tr.Size >= 15 {
			big++
		} else if tr.Sym >= 2 {
			unmatched++
		}
	}
	if n := int64(len(res.Ports["big"].Trades)); n != big {
		t.Fatalf("match all: big got %d, want %d (crypto ones included)", n, big)
	}
	if res.Drops["unconnected_port_default"] != unmatched {
		t.Fatalf("drops %v, want unconnected_port_default %d", res.Drops, unmatched)
	}
}

func TestRouterBadParams(t *testing.T) {
	for _, tc := range []struct {
		routes any
		want   string
	}{
		{[]any{}, "at least one route"},
		{[]any{map[string]any{"symbols": []any{"A"}}}, "needs a name"},
		{[]any{map[string]any{"name": "default", "symbols": []any{"A"}}}, "reserved"},
		{[]any{map[string]any{"name": "a", "symbols": []any{"A"}}, map[string]any{"name": "a", "expr": "true"}}, "given twice"},
		{[]any{map[string]any{"name": "a"}}, "exactly one of symbols and expr"},
		{[]any{map[string]any{"name": "a", "expr": "prize > (1"}}, "routes[0] (a)"},
		{[]any{map[string]any{"name": "a", "symbols": []any{}}}, "non-empty list"},
		{[]any{map[string]any{"name": "a", "symbol": []any{"A"}}}, `unknown key "symbol"`},
	} {
		err := optest.Params(router.Type, map[string]any{"routes": tc.routes})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("routes %v: err = %v, want %q", tc.routes, err, tc.want)
		}
	}
}

func TestRouterOverFeatures(t *testing.T) {
	// features price, zscore_3 per symbol: BTCUSDT rises, AAPL falls.
	var in []md.Trade
	for i, px := range []float64{10, 11, 12, 13} {
		in = append(in, md.Trade{TS: int64(i+1) * 1e6, Price: px, Size: 1, Sym: 0}, md.Trade{TS: int64(i+1) * 1e6, Price: 20 - px, Size: 1, Sym: 2})
	}
	rs := []any{
		map[string]any{"name": "crypto", "symbols": []any{"BTCUSDT"}},
		map[string]any{"name": "up", "expr": "zscore_3 > 1"},
		map[string]any{"name": "down", "expr": "zscore_3 < -1 && price < 10"},
	}
	up := &optest.Stage{Type: features.Type, Params: map[string]any{"features": []any{"zscore(3)"}}}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: in, BatchSize: 3}, Upstream: up, Type: router.Type,
			Params: map[string]any{"routes": rs, "match": "all"}, Ports: []string{"crypto", "up", "down", "default"}, Parallelism: par})
		type got struct {
			sym md.SymID
			ts  int64
		}
		ports := map[string][]got{}
		for name, c := range res.Ports {
			for _, r := range c.Rows() {
				ports[name] = append(ports[name], got{r.Sym, r.TS})
			}
			slices.SortFunc(ports[name], func(a, b got) int { return int(a.ts-b.ts) + int(a.sym-b.sym)*1000000000 })
		}
		// zscore over the last 3 prices: 0 for the first record, then
		// ±(0.5/0.5) = ±1 for two, then ±1/sqrt(2/3) = ±1.2247 for three;
		// with match: all BTCUSDT goes to crypto and, when it qualifies, up.
		want := map[string][]got{
			"crypto":  {{0, 1e6}, {0, 2e6}, {0, 3e6}, {0, 4e6}},
			"up":      {{0, 3e6}, {0, 4e6}},
			"down":    {{2, 3e6}, {2, 4e6}},
			"default": {{2, 1e6}, {2, 2e6}},
		}
		for name, w := range want {
			if !slices.Equal(ports[name], w) {
				t.Fatalf("parallelism %d: port %s got %v, want %v", par, name, ports[name], w)
			}
		}
		if s := res.Ports["up"].Schema; s == nil || s.Index("zscore_3") != 1 {
			t.Fatalf("schema %v", s)
		}
	}
	bad := []any{map[string]any{"name": "up", "expr": "zscore_4 > 1"}}
	errs := optest.Check(t, optest.Job{Src: &enginetest.Source{Symbols: syms, Trades: in}, Upstream: up, Type: router.Type, Params: map[string]any{"routes": bad}})
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "routes[0] (up)") || !strings.Contains(errs[0].Msg, "unknown name zscore_4") {
		t.Fatalf("errs = %v", errs)
	}
}

func TestRoutesArePorts(t *testing.T) {
	spec, _ := component.Lookup(router.Type)
	p, err := component.NewParams(spec, map[string]any{"routes": routes})
	if err != nil {
		t.Fatal(err)
	}
	ports := spec.OutPorts(p)
	for _, name := range []string{"crypto", "big", "default"} {
		if ports[name] != engine.SameAsInput {
			t.Fatalf("ports %v lack %s", ports, name)
		}
	}
}

func BenchmarkRouterSymbols(b *testing.B) {
	in := optest.NewInstance(b, router.Type, map[string]any{"routes": routes[:1]}, syms, "crypto", "default")
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = input()
	optest.Bench(b, in, len(batch.Trades), 16, func(int) { in.Process(batch) })
}
