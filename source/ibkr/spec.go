// Package ibkr is provider.ibkr (alias provider.ibkr.stream): live trades,
// quotes and 5-second bars from Interactive Brokers TWS or IB Gateway over
// the TWS socket API, with historical bars as a backfill stitched to the
// live stream.
//
// It speaks the wire protocol through package tws, mdp's own client for the
// market-data subset (see the README for why not a third-party client). The
// provider owns the connection: reconnect with backoff and jitter, the
// handshake and ready condition each time, re-subscription of everything
// after a reconnect or a 1101 "data lost", IB's pacing rules (a message
// rate, tick-by-tick and historical-request limits), and the mapping of
// IB's error codes to config errors, entitlement problems and connectivity
// events.
//
// Time: tick-by-tick trade and quote times are whole Unix seconds. Each
// record keeps that exchange time as its event time, the receipt time as
// its ingest time, and a per-contract sequence number (Seq) that counts
// every trade and quote of the contract in the order IB sent them. Inside
// one second, order is arrival order, which is IB's order; the engine keeps
// ties in arrival order and operator.bars opens and closes a bar on the
// earliest and latest event time with ties kept in arrival order, so a
// recording of the stream (which keeps Seq) replays to the same bars.
package ibkr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/source/ibkr/tws"
)

// Type is the component type id.
const Type = "provider.ibkr"

// Output ports besides the main one (trades).
const (
	PortQuotes = "quotes"
	PortBars   = "bars"
)

func init() {
	component.Register(component.Spec{
		Type:    Type,
		Aliases: []string{"provider.ibkr.stream"},
		Kind:    engine.KindSource,
		Summary: "live trades, quotes and 5-second bars from Interactive Brokers TWS / IB Gateway, with a paced historical backfill",
		Description: "Connects to TWS or IB Gateway (host, port, client_id), waits for the API to be ready, and subscribes per contract to " +
			"tick-by-tick trades (AllLast or Last) on the main output, tick-by-tick quotes (BidAsk) on the quotes port, " +
			"5-second real-time bars on the bars port (source trade; mid for forex), and/or top-of-book market data (quotes from bid/ask ticks, trades from RT_VOLUME). " +
			"Event time is IB's time (whole seconds for tick-by-tick), ingest time the receipt time, Seq a per-contract sequence in IB's order. " +
			"backfill requests historical bars (on the bars port) before the live stream and stitches them to it at a bar boundary, inside IB's pacing limits. " +
			"Reconnects with exponential backoff and full jitter, re-subscribes everything, and records the gap per contract in the symbol table (bars that touch it are partial). " +
			"Errors: 200/321 fail the job (contract or request wrong); 354/10089/10168 and other refusals skip the contract or fail the job per on_unavailable; " +
			"1100/2103/2105/2157 are connectivity warnings, 1101 re-subscribes; 326 (client id in use) fails with a clear message. " +
			"Gauges: mdp_ibkr_connection_state (0 disconnected, 1 TWS lost IB, 2 connected), mdp_ibkr_subscriptions_active. Counters: connects, reconnects, subscriptions, resubscriptions, subscriptions_skipped, entitlement_notices, ib_warnings, gaps, pacing_waits, pacing_wait_ms, backfill_bars, msg_<type>. " +
			"Errors by reason (each keeps the node DEGRADED for a minute; they repeat while disconnected): disconnect, connect_failed, ib_connectivity, entitlement, backfill.",
		Produces: md.KindTrade,
		Ports:    map[string]md.Kind{PortQuotes: md.KindQuote, PortBars: md.KindBar},
		Fields: []component.Field{
			{Name: "host", Type: component.String, Default: "127.0.0.1",
				Description: "Host of TWS or IB Gateway."},
			{Name: "port", Type: component.Int, Default: 7497, Min: component.Bound(1), Max: component.Bound(65535),
				Description: "API port: 7497 TWS paper, 7496 TWS live, 4002 IB Gateway paper, 4001 IB Gateway live."},
			{Name: "client_id", Type: component.Int, Default: 1, Min: component.Bound(0),
				Description: "API client id; each API client of one TWS needs its own (error 326 otherwise)."},
			{Name: "contracts", Type: component.List, Required: true,
				Description: "Instruments to stream. Each: symbol, sec_type (STK, FUT, CASH, CRYPTO, IND, OPT; or stock, future, forex, crypto, index, option), " +
					"exchange (default SMART; IDEALPRO for CASH, PAXOS for CRYPTO), currency (default USD), and as needed primary_exchange, expiry (YYYYMM or YYYYMMDD), " +
					"strike, right (C/P), multiplier, local_symbol, trading_class; or con_id (with exchange). name sets the symbol text in mdp " +
					"(default: symbol; EUR.USD for forex; symbol+expiry for futures; \"AAPL 20261218 C150\" for options; local_symbol when set). " +
					"Per contract, trades, quotes, bars_5s and market_data override the node-level defaults.",
				Example: []any{
					map[string]any{"symbol": "AAPL", "sec_type": "STK", "exchange": "SMART", "primary_exchange": "NASDAQ", "currency": "USD"},
					map[string]any{"symbol": "ES", "sec_type": "FUT", "exchange": "CME", "expiry": "202612", "trades": "Last", "quotes": false},
					map[string]any{"con_id": 12087792, "exchange": "IDEALPRO", "name": "EUR.USD", "trades": "none", "market_data": true},
				}},
			{Name: "trades", Type: component.String, Default: "AllLast", Enum: []string{"AllLast", "Last", "none"},
				Description: "Default per contract: tick-by-tick trades on the main output. AllLast includes combos, derivatives and average-price trades that Last omits."},
			{Name: "quotes", Type: component.Bool, Default: true,
				Description: "Default per contract: tick-by-tick bid/ask on the quotes port."},
			{Name: "bars_5s", Type: component.Bool, Default: false,
				Description: "Default per contract: IB's 5-second real-time bars (TRADES; MIDPOINT for forex) on the bars port."},
			{Name: "market_data", Type: component.Bool, Default: false,
				Description: "Default per contract: top-of-book ticks (reqMktData, aggregated by IB every 250 ms or so), for contracts or accounts without tick-by-tick: " +
					"quotes from bid/ask ticks on the quotes port (stamped with the receipt time) and trades from RT_VOLUME (millisecond times) on the main output; delayed data has no RT_VOLUME, so quotes only."},
			{Name: "market_data_type", Type: component.String, Default: "live", Enum: []string{"live", "frozen", "delayed", "delayed_frozen"},
				Description: "reqMarketDataType for market_data: delayed data for accounts without a subscription (tick-by-tick and real-time bars have no delayed form)."},
			{Name: "on_unavailable", Type: component.String, Default: "fail", Enum: []string{"fail", "skip"},
				Description: "When IB refuses a subscription for lack of entitlement or a limit (354, 10089, 10168, 101, 420, 10190, 10197): fail the job, or log it, skip that subscription and go on."},
			{Name: "backfill", Type: component.Map,
				Description: "Historical bars before the live stream, on the bars port: duration (IB duration: \"2 D\", \"3600 S\", \"1 W\"), bar_size (\"1 min\", \"5 mins\", \"1 hour\"…), " +
					"what (TRADES, MIDPOINT, BID, ASK or BID_ASK; default TRADES; the bars' source column is trade, mid, bid, ask or bid_ask — " +
					"a BID_ASK bar is IB's: open the mean bid, high the highest ask, low the lowest bid, close the mean ask), use_rth (default false). The live stream is cut at the first bar boundary after it started: " +
					"live trades and quotes before the cut are dropped (counted, reason before_backfill_cut) and the historical request ends at the cut, so the bars " +
					"stitch without a gap or a duplicate. Requests are paced inside IB's limits: 60 per 10 minutes, none identical within 15 s, at most 5 per contract in 2 s.",
				Example: map[string]any{"duration": "2 D", "bar_size": "1 min", "what": "TRADES"}},
			{Name: "provider", Type: component.String, Default: "ibkr",
				Description: "Provider name the symbols are interned under."},
			{Name: "max_out_of_orderness", Type: component.Duration, Default: "2s",
				Description: "How far behind the newest event time a record may arrive and still count as on time. IB stamps tick-by-tick records in whole seconds and contracts interleave, so the default allows 2s."},
			{Name: "max_future", Type: component.Duration, Default: "10s", Min: component.Bound(0), Max: component.Bound(24 * 3600),
				Description: "A record whose event time is more than this ahead of the time its message arrived is malformed (counted, logged, dropped): a live feed cannot report the future, and one such record would carry the watermark past every record after it. 0 disables the check."},
			{Name: "connect_timeout", Type: component.Duration, Default: "10s", Min: component.Bound(0.001),
				Description: "Limit on connecting and the API handshake up to ready (nextValidId and managedAccounts)."},
			{Name: "heartbeat", Type: component.Duration, Default: "20s", Min: component.Bound(0.01),
				Description: "After this long without a message the source sends reqCurrentTime; with no reply within another heartbeat the connection is presumed dead and replaced."},
			{Name: "reconnect_backoff", Type: component.Duration, Default: "1s", Min: component.Bound(0.001),
				Description: "First delay before reconnecting; it doubles per failed attempt up to reconnect_max_backoff, with full jitter (a random 0-100% of the step)."},
			{Name: "reconnect_max_backoff", Type: component.Duration, Default: "30s", Min: component.Bound(0.001),
				Description: "Longest delay between reconnect attempts (keep it under a minute: each failed attempt keeps the node DEGRADED for a minute)."},
			{Name: "max_reconnects", Type: component.Int, Default: 0, Min: component.Bound(0),
				Description: "Fail the node after this many reconnect attempts in a row that delivered no records. 0 retries forever (IB restarts daily)."},
			{Name: "requests_per_second", Type: component.Float, Default: 40, Min: component.Bound(0.1), Max: component.Bound(50),
				Description: "Cap on API messages per second sent to TWS (TWS allows 50 for all clients together)."},
		},
		Validate: validate,
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			cfg, err := newConfig(p)
			if err != nil {
				return nil, err
			}
			return newSource(cfg), nil
		},
	})
}

// contract is one configured instrument and what to stream for it.
type contract struct {
	c          tws.Contract
	name       string
	trades     string // tws.TickAllLast, tws.TickLast or ""
	quotes     bool
	bars5s     bool
	marketData bool
}

// backfillConf is the decoded backfill param.
type backfillConf struct {
	duration string
	barSize  string
	interval time.Duration
	what     string
	// source is the bars' md.BarSource, from what.
	source md.BarSource
	useRTH bool
}

// config is the decoded params.
type config struct {
	addr           string
	clientID       int
	contracts      []contract
	mdType         int
	skip           bool
	backfill       *backfillConf
	provider       string
	connectTimeout time.Duration
	heartbeat      time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	maxReconnects  int
	rate           float64
	maxFuture      time.Duration
}

func validate(p *component.Params) error {
	var errs []error
	if _, err := parseContracts(p); err != nil {
		errs = append(errs, p.Errorf("contracts", "%v", err))
	}
	if p.Has("backfill") {
		if _, err := parseBackfill(p.Map("backfill")); err != nil {
			errs = append(errs, p.Errorf("backfill", "%v", err))
		}
	}
	if p.Duration("reconnect_max_backoff") < p.Duration("reconnect_backoff") {
		errs = append(errs, p.Errorf("reconnect_max_backoff", "%s is shorter than reconnect_backoff %s",
			p.Duration("reconnect_max_backoff"), p.Duration("reconnect_backoff")))
	}
	return errors.Join(errs...)
}

func newConfig(p *component.Params) (*config, error) {
	cs, err := parseContracts(p)
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	c := &config{
		addr:           p.String("host") + ":" + strconv.FormatInt(p.Int("port"), 10),
		clientID:       int(p.Int("client_id")),
		contracts:      cs,
		mdType:         map[string]int{"live": 1, "frozen": 2, "delayed": 3, "delayed_frozen": 4}[p.String("market_data_type")],
		skip:           p.String("on_unavailable") == "skip",
		provider:       p.String("provider"),
		connectTimeout: p.Duration("connect_timeout"),
		heartbeat:      p.Duration("heartbeat"),
		backoff:        p.Duration("reconnect_backoff"),
		maxBackoff:     p.Duration("reconnect_max_backoff"),
		maxReconnects:  int(p.Int("max_reconnects")),
		rate:           p.Float("requests_per_second"),
		maxFuture:      p.Duration("max_future"),
	}
	if p.Has("backfill") {
		if c.backfill, err = parseBackfill(p.Map("backfill")); err != nil {
			return nil, fmt.Errorf("backfill: %w", err)
		}
	}
	return c, nil
}

var secTypes = map[string]string{
	"STK": "STK", "stock": "STK", "FUT": "FUT", "future": "FUT", "CASH": "CASH", "forex": "CASH",
	"CRYPTO": "CRYPTO", "crypto": "CRYPTO", "IND": "IND", "index": "IND", "OPT": "OPT", "option": "OPT",
}

var contractKeys = []string{"symbol", "sec_type", "exchange", "currency", "primary_exchange", "expiry", "strike", "right",
	"multiplier", "local_symbol", "trading_class", "con_id", "name", "trades", "quotes", "bars_5s", "market_data"}

func parseContracts(p *component.Params) ([]contract, error) {
	items := p.List("contracts")
	if len(items) == 0 {
		return nil, errors.New("want at least one contract")
	}
	var out []contract
	names := map[string]int{}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("contract %d: want a mapping (symbol, sec_type, …), got %v", i, it)
		}
		c, err := parseContract(m, p)
		if err != nil {
			return nil, fmt.Errorf("contract %d (%s): %w", i, describe(m), err)
		}
		if j, dup := names[c.name]; dup {
			return nil, fmt.Errorf("contracts %d and %d are both named %q; set name on one of them", j, i, c.name)
		}
		names[c.name] = i
		out = append(out, c)
	}
	return out, nil
}

func describe(m map[string]any) string {
	for _, k := range []string{"name", "symbol", "local_symbol", "con_id"} {
		if v, ok := m[k]; ok {
			return fmt.Sprint(v)
		}
	}
	return "?"
}

func parseContract(m map[string]any, p *component.Params) (contract, error) {
	for k := range m {
		found := false
		for _, ck := range contractKeys {
			found = found || k == ck
		}
		if !found {
			if s := component.Suggest(k, contractKeys); s != "" {
				return contract{}, fmt.Errorf("unknown key %q (did you mean %q?)", k, s)
			}
			return contract{}, fmt.Errorf("unknown key %q (keys: %s)", k, strings.Join(contractKeys, ", "))
		}
	}
	var err error
	str := func(k string) string {
		v, ok := m[k]
		if !ok || v == nil {
			return ""
		}
		switch x := v.(type) {
		case string:
			return x
		case int64, int, float64:
			return fmt.Sprint(x)
		}
		err = errors.Join(err, fmt.Errorf("%s: want a string, got %v", k, v))
		return ""
	}
	num := func(k string) float64 {
		switch x := m[k].(type) {
		case nil:
			return 0
		case int64:
			return float64(x)
		case int:
			return float64(x)
		case float64:
			return x
		case string:
			f, e := strconv.ParseFloat(x, 64)
			if e == nil {
				return f
			}
		}
		err = errors.Join(err, fmt.Errorf("%s: want a number, got %v", k, m[k]))
		return 0
	}
	boolean := func(k string, def bool) bool {
		v, ok := m[k]
		if !ok {
			return def
		}
		b, isB := v.(bool)
		if !isB {
			err = errors.Join(err, fmt.Errorf("%s: want true or false, got %v", k, v))
		}
		return b
	}
	var c contract
	c.c.Symbol = str("symbol")
	st := str("sec_type")
	if st == "" && m["con_id"] == nil {
		st = "STK"
	}
	if st != "" {
		var ok bool
		if c.c.SecType, ok = secTypes[st]; !ok {
			return c, fmt.Errorf("sec_type %q: want STK, FUT, CASH, CRYPTO, IND or OPT (or stock, future, forex, crypto, index, option)", st)
		}
	}
	c.c.Exchange = str("exchange")
	if c.c.Exchange == "" {
		c.c.Exchange = map[string]string{"CASH": "IDEALPRO", "CRYPTO": "PAXOS"}[c.c.SecType]
		if c.c.Exchange == "" {
			c.c.Exchange = "SMART"
		}
	}
	c.c.Currency = str("currency")
	if c.c.Currency == "" && m["con_id"] == nil {
		c.c.Currency = "USD"
	}
	c.c.PrimaryExchange = str("primary_exchange")
	if strings.EqualFold(c.c.PrimaryExchange, "SMART") {
		return c, errors.New("primary_exchange must be a real venue (NASDAQ, ARCA, NYSE, IBIS…), never SMART")
	}
	c.c.LastTradeDateOrContractMonth = str("expiry")
	c.c.Strike = num("strike")
	c.c.Right = strings.ToUpper(str("right"))
	c.c.Multiplier = str("multiplier")
	c.c.LocalSymbol = str("local_symbol")
	c.c.TradingClass = str("trading_class")
	c.c.ConID = int64(num("con_id"))
	c.name = str("name")
	trades := p.String("trades")
	switch x := m["trades"].(type) {
	case nil:
	case string:
		trades = x
	case bool:
		trades = map[bool]string{true: "AllLast", false: "none"}[x]
	default:
		return c, fmt.Errorf("trades: want AllLast, Last or none, got %v", x)
	}
	switch trades {
	case "AllLast":
		c.trades = tws.TickAllLast
	case "Last":
		c.trades = tws.TickLast
	case "none":
	default:
		return c, fmt.Errorf("trades %q: want AllLast, Last or none", trades)
	}
	c.quotes = boolean("quotes", p.Bool("quotes"))
	c.bars5s = boolean("bars_5s", p.Bool("bars_5s"))
	c.marketData = boolean("market_data", p.Bool("market_data"))
	if err != nil {
		return c, err
	}
	if c.c.ConID < 0 {
		return c, errors.New("con_id must be positive")
	}
	if c.c.ConID == 0 {
		if c.c.Symbol == "" && c.c.LocalSymbol == "" {
			return c, errors.New("want symbol (or local_symbol, or con_id)")
		}
		switch c.c.SecType {
		case "FUT":
			if c.c.LastTradeDateOrContractMonth == "" && c.c.LocalSymbol == "" {
				return c, errors.New("a future needs expiry (YYYYMM or YYYYMMDD) or local_symbol")
			}
		case "OPT":
			if c.c.LocalSymbol == "" && (c.c.LastTradeDateOrContractMonth == "" || c.c.Strike <= 0 || (c.c.Right != "C" && c.c.Right != "P")) {
				return c, errors.New("an option needs expiry, strike and right (C or P), or local_symbol")
			}
		}
	}
	if e := c.c.LastTradeDateOrContractMonth; e != "" {
		if _, err := strconv.Atoi(e); err != nil || (len(e) != 6 && len(e) != 8) {
			return c, fmt.Errorf("expiry %q: want YYYYMM or YYYYMMDD", e)
		}
	}
	if c.c.SecType == "IND" && (c.trades != "" || c.quotes) && !c.marketData {
		return c, errors.New("an index has no tick-by-tick trades or quotes: set trades: none, quotes: false and market_data: true (or bars_5s)")
	}
	if c.trades == "" && !c.quotes && !c.bars5s && !c.marketData {
		return c, errors.New("nothing to stream: set trades, quotes, bars_5s or market_data")
	}
	if c.name == "" {
		c.name = defaultName(&c.c)
	}
	return c, nil
}

// defaultName is the symbol text a contract gets in mdp.
func defaultName(c *tws.Contract) string {
	switch {
	case c.SecType == "CASH" && c.Symbol != "":
		return c.Symbol + "." + c.Currency
	case c.LocalSymbol != "":
		return c.LocalSymbol
	case c.SecType == "FUT" && c.Symbol != "":
		return c.Symbol + c.LastTradeDateOrContractMonth
	case c.SecType == "OPT" && c.Symbol != "":
		return fmt.Sprintf("%s %s %s%s", c.Symbol, c.LastTradeDateOrContractMonth, c.Right, strconv.FormatFloat(c.Strike, 'f', -1, 64))
	case c.Symbol != "":
		return c.Symbol
	}
	return "conid:" + strconv.FormatInt(c.ConID, 10)
}

var barSizes = map[string]time.Duration{
	"1 secs": time.Second, "5 secs": 5 * time.Second, "10 secs": 10 * time.Second, "15 secs": 15 * time.Second, "30 secs": 30 * time.Second,
	"1 min": time.Minute, "2 mins": 2 * time.Minute, "3 mins": 3 * time.Minute, "5 mins": 5 * time.Minute, "10 mins": 10 * time.Minute,
	"15 mins": 15 * time.Minute, "20 mins": 20 * time.Minute, "30 mins": 30 * time.Minute,
	"1 hour": time.Hour, "2 hours": 2 * time.Hour, "3 hours": 3 * time.Hour, "4 hours": 4 * time.Hour, "8 hours": 8 * time.Hour,
}

// whatSources maps a backfill's whatToShow to its bars' source column.
var whatSources = map[string]md.BarSource{
	"TRADES": md.FromTrades, "MIDPOINT": md.FromMid, "BID": md.FromBid, "ASK": md.FromAsk, "BID_ASK": md.FromBidAsk,
}

func parseBackfill(m map[string]any) (*backfillConf, error) {
	b := &backfillConf{what: "TRADES"}
	for k, v := range m {
		s, isS := v.(string)
		switch k {
		case "duration":
			b.duration = s
		case "bar_size":
			b.barSize = s
		case "what":
			b.what = s
		case "use_rth":
			r, isB := v.(bool)
			if !isB {
				return nil, fmt.Errorf("use_rth: want true or false, got %v", v)
			}
			b.useRTH = r
			continue
		default:
			return nil, fmt.Errorf("unknown key %q (keys: duration, bar_size, what, use_rth)", k)
		}
		if !isS {
			return nil, fmt.Errorf("%s: want a string, got %v", k, v)
		}
	}
	f := strings.Fields(b.duration)
	if len(f) != 2 || !strings.Contains("SDWMY", f[1]) || len(f[1]) != 1 {
		return nil, fmt.Errorf("duration %q: want an IB duration such as \"2 D\", \"3600 S\", \"1 W\", \"1 M\", \"1 Y\"", b.duration)
	}
	if n, err := strconv.Atoi(f[0]); err != nil || n <= 0 {
		return nil, fmt.Errorf("duration %q: want a positive whole number before the unit", b.duration)
	}
	b.duration = f[0] + " " + f[1]
	var ok bool
	if b.interval, ok = barSizes[b.barSize]; !ok {
		return nil, fmt.Errorf("bar_size %q: want an intraday IB bar size (\"1 min\", \"5 mins\", \"1 hour\", \"5 secs\"…)", b.barSize)
	}
	var ok2 bool
	if b.source, ok2 = whatSources[b.what]; !ok2 {
		return nil, fmt.Errorf("what %q: want TRADES, MIDPOINT, BID, ASK or BID_ASK", b.what)
	}
	return b, nil
}
