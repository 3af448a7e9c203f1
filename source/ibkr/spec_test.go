package ibkr

import (
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/source/ibkr/tws"
)

func params(t *testing.T, p map[string]any) (*config, error) {
	t.Helper()
	spec, ok := component.Lookup("provider.ibkr.stream")
	if !ok || spec.Type != Type {
		t.Fatal("provider.ibkr.stream is not an alias of provider.ibkr")
	}
	pp, err := component.NewParams(spec, p)
	if err != nil {
		return nil, err
	}
	return newConfig(pp)
}

func TestParams(t *testing.T) {
	cfg, err := params(t, map[string]any{"contracts": []any{
		map[string]any{"symbol": "AAPL", "primary_exchange": "NASDAQ"},
		map[string]any{"symbol": "ES", "sec_type": "future", "exchange": "CME", "expiry": 202612, "multiplier": 50, "trades": "Last", "quotes": false},
		map[string]any{"symbol": "EUR", "sec_type": "forex", "currency": "USD", "trades": "none", "market_data": true, "quotes": false},
		map[string]any{"con_id": 265598, "exchange": "SMART", "name": "AAPL.ID", "bars_5s": true},
		map[string]any{"symbol": "AAPL", "sec_type": "OPT", "expiry": "20261218", "strike": 150, "right": "c", "multiplier": "100"},
		map[string]any{"symbol": "SPX", "sec_type": "IND", "exchange": "CBOE", "trades": "none", "quotes": false, "market_data": true},
		map[string]any{"symbol": "BTC", "sec_type": "CRYPTO", "trades": "AllLast"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != "127.0.0.1:7497" || cfg.clientID != 1 || cfg.mdType != 1 || cfg.skip {
		t.Errorf("defaults: %+v", cfg)
	}
	want := []struct {
		name string
		c    tws.Contract
		tr   string
		q    bool
	}{
		{"AAPL", tws.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", PrimaryExchange: "NASDAQ", Currency: "USD"}, "AllLast", true},
		{"ES202612", tws.Contract{Symbol: "ES", SecType: "FUT", LastTradeDateOrContractMonth: "202612", Multiplier: "50", Exchange: "CME", Currency: "USD"}, "Last", false},
		{"EUR.USD", tws.Contract{Symbol: "EUR", SecType: "CASH", Exchange: "IDEALPRO", Currency: "USD"}, "", false},
		{"AAPL.ID", tws.Contract{ConID: 265598, Exchange: "SMART"}, "AllLast", true},
		{"AAPL 20261218 C150", tws.Contract{Symbol: "AAPL", SecType: "OPT", LastTradeDateOrContractMonth: "20261218", Strike: 150, Right: "C", Multiplier: "100", Exchange: "SMART", Currency: "USD"}, "AllLast", true},
		{"SPX", tws.Contract{Symbol: "SPX", SecType: "IND", Exchange: "CBOE", Currency: "USD"}, "", false},
		{"BTC", tws.Contract{Symbol: "BTC", SecType: "CRYPTO", Exchange: "PAXOS", Currency: "USD"}, "AllLast", true},
	}
	for i, w := range want {
		c := cfg.contracts[i]
		if c.name != w.name || c.c != w.c || c.trades != w.tr || c.quotes != w.q {
			t.Errorf("contract %d: %+v, want %+v", i, c, w)
		}
	}
	if !cfg.contracts[3].bars5s || !cfg.contracts[2].marketData {
		t.Error("per-contract streams")
	}
}

func TestParamErrors(t *testing.T) {
	for _, c := range []struct {
		contract map[string]any
		extra    map[string]any
		want     string
	}{
		{map[string]any{"symbl": "AAPL"}, nil, `unknown key "symbl" (did you mean "symbol"?)`},
		{map[string]any{"symbol": "ES", "sec_type": "FUT"}, nil, "a future needs expiry"},
		{map[string]any{"symbol": "AAPL", "sec_type": "OPT", "expiry": "20261218"}, nil, "an option needs expiry, strike and right"},
		{map[string]any{"symbol": "AAPL", "sec_type": "bond"}, nil, `sec_type "bond"`},
		{map[string]any{"symbol": "AAPL", "primary_exchange": "SMART"}, nil, "never SMART"},
		{map[string]any{"symbol": "AAPL", "trades": "all"}, nil, `trades "all"`},
		{map[string]any{"symbol": "AAPL", "trades": "none", "quotes": false}, nil, "nothing to stream"},
		{map[string]any{"symbol": "SPX", "sec_type": "IND"}, nil, "an index has no tick-by-tick"},
		{map[string]any{"symbol": "ES", "sec_type": "FUT", "expiry": "2026-12"}, nil, "want YYYYMM or YYYYMMDD"},
		{map[string]any{"symbol": "AAPL"}, map[string]any{"backfill": map[string]any{"duration": "2 days", "bar_size": "1 min"}}, "IB duration"},
		{map[string]any{"symbol": "AAPL"}, map[string]any{"backfill": map[string]any{"duration": "2 D", "bar_size": "1 minute"}}, "bar_size"},
		{map[string]any{"symbol": "AAPL"}, map[string]any{"backfill": map[string]any{"duration": "2 D", "bar_size": "1 min", "what": "BIDASK"}}, "what"},
	} {
		p := map[string]any{"contracts": []any{c.contract}}
		for k, v := range c.extra {
			p[k] = v
		}
		_, err := params(t, p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: %v, want %q", c.contract, c.extra, err, c.want)
		}
	}
	_, err := params(t, map[string]any{"contracts": []any{map[string]any{"symbol": "AAPL"}, map[string]any{"symbol": "AAPL", "exchange": "ARCA"}}})
	if err == nil || !strings.Contains(err.Error(), "both named") {
		t.Errorf("duplicate names: %v", err)
	}
}

// TestBackfillWhatIsTheBarSource: each whatToShow IB offers for the
// backfill gives its bars the matching source column.
func TestBackfillWhatIsTheBarSource(t *testing.T) {
	for what, want := range map[string]string{"TRADES": "trade", "MIDPOINT": "mid", "BID": "bid", "ASK": "ask", "BID_ASK": "bid_ask"} {
		b, err := parseBackfill(map[string]any{"duration": "2 D", "bar_size": "1 min", "what": what})
		if err != nil || b.source.String() != want {
			t.Errorf("%s: source %v (%v), want %s", what, b, err, want)
		}
	}
}
