package websocket

import (
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	jobconfig "github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/md"
	_ "github.com/mdpio/mdp/sink/sqlite" // sink.sqlite, for the shipped config
)

func TestParamsValidation(t *testing.T) {
	spec, _ := component.Lookup(Type)
	okGeneric := map[string]any{"symbol": "s", "price": "p", "size": "q"}
	cases := []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"url": "http://x", "preset": "binance"},
			`params.url: want a ws:// or wss:// URL with a host, got "http://x"`},
		{map[string]any{"url": "ws://x", "preset": "kraken"},
			`params.preset: "kraken" is not allowed; want one of binance, coinbase, generic`},
		{map[string]any{"url": "ws://x", "preset": "binance", "fields": okGeneric},
			`params.fields: fields applies to preset generic only (preset is binance)`},
		{map[string]any{"url": "ws://x", "preset": "binance", "sequence_check": "sequence"},
			`params.sequence_check: binance messages carry no per-symbol sequence number (bookTicker u is the book's update id and skips); use trade_id or none`},
		{map[string]any{"url": "ws://x", "preset": "coinbase", "kind": "quote", "sequence_check": "trade_id"},
			`params.sequence_check: trade_id applies to trades; quotes carry no trade id (use sequence or none)`},
		{map[string]any{"url": "ws://x", "preset": "generic", "fields": map[string]any{"symbol": "s", "price": "p"}},
			`params.fields: "size" is required for trade records`},
		{map[string]any{"url": "ws://x", "preset": "generic", "fields": map[string]any{"symbol": "s", "price": "p", "size": "q", "bid": "b"}},
			`params.fields: "bid" is not a trade field; want symbol, price, size, ts, side, trade_id, seq`},
		{map[string]any{"url": "ws://x", "preset": "generic", "fields": map[string]any{"symbol": "s", "price": "a..b", "size": "q"}},
			`params.fields: price: path "a..b" has an empty segment`},
		{map[string]any{"url": "ws://x", "preset": "generic", "fields": okGeneric, "sequence_check": "sequence"},
			`params.sequence_check: sequence needs fields.seq`},
		{map[string]any{"url": "ws://x", "preset": "generic", "fields": okGeneric, "match": map[string]any{"type": []any{1}}},
			`params.match: "type": want a string, number or bool, got [1]`},
		{map[string]any{"url": "ws://x", "preset": "binance", "subscribe": []any{"a", 5}},
			`params.subscribe: item 1: want a string (sent as is) or a mapping (sent as JSON), got 5`},
		{map[string]any{"url": "ws://x", "preset": "binance", "reconnect_backoff": "5s", "reconnect_max_backoff": "1s"},
			`params.reconnect_max_backoff: 1s is shorter than reconnect_backoff 5s`},
		{map[string]any{"url": "ws://x", "preset": "binance", "read_timeout": "5s", "ping_interval": "5s"},
			`params.ping_interval: 5s must be shorter than read_timeout 5s, or a quiet healthy connection is taken for dead`},
		{map[string]any{"url": "ws://x", "preset": "binance", "read_timout": "5s"},
			`params.read_timout: unknown param "read_timout" for provider.websocket; did you mean "read_timeout"?`},
	}
	for _, c := range cases {
		_, err := component.NewParams(spec, c.params)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.params, err, c.want)
		}
	}
}

func TestParamsDefaultsAndKinds(t *testing.T) {
	spec, _ := component.Lookup(Type)
	p, err := component.NewParams(spec, map[string]any{"url": "wss://stream.binance.com:9443/ws", "preset": "coinbase"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.provider != "coinbase" || cfg.kind != md.KindTrade || cfg.check != checkTradeID || cfg.readTimeout != 30*time.Second ||
		cfg.pingInterval != 10*time.Second || cfg.backoff != 500*time.Millisecond || cfg.maxBackoff != 30*time.Second ||
		cfg.maxReconnects != 0 || cfg.maxMessage != 1<<20 || len(cfg.subscribe) != 0 {
		t.Errorf("defaults %+v", cfg)
	}
	if k := spec.OutKind(p); k != md.KindTrade {
		t.Errorf("out kind %s", k)
	}
	q, _ := component.NewParams(spec, map[string]any{"url": "ws://x", "preset": "binance", "kind": "quote"})
	if k := spec.OutKind(q); k != md.KindQuote {
		t.Errorf("out kind %s, want quote", k)
	}
	// Both common source params are there, idle_timeout distinct from read_timeout.
	names := strings.Join(spec.FieldNames(), " ")
	for _, f := range []string{"read_timeout", "idle_timeout", "max_out_of_orderness"} {
		if !strings.Contains(names, f) {
			t.Errorf("no %s param: %s", f, names)
		}
	}
}

func TestShippedLiveConfigValidates(t *testing.T) {
	// Loaded and compiled to a graph, never run: it needs the internet.
	doc, err := jobconfig.LoadFile("../../configs/dag/binance_live_bars.yaml", jobconfig.LoadOptions{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	g, err := doc.Graph()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 4 || len(g.Edges) != 4 {
		t.Fatalf("%d nodes, %d edges", len(g.Nodes), len(g.Edges))
	}
	src := doc.Nodes[0]
	if src.Type != Type || src.Params.String("url") != "wss://fstream.binance.com/ws" || g.Nodes[0].IdleTimeout != 2*time.Second ||
		g.Nodes[0].MaxOutOfOrderness != 500*time.Millisecond {
		t.Errorf("source node %+v", g.Nodes[0])
	}
	cfg, err := newConfig(src.Params)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.subscribe) != 1 || string(cfg.subscribe[0]) != `{"id":1,"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"]}` {
		t.Errorf("subscribe %q", cfg.subscribe)
	}
}
