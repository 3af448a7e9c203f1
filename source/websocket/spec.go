// Package websocket is provider.websocket: live trades and quotes from an
// exchange WebSocket feed. Presets decode Binance (trade, aggTrade and
// bookTicker, raw or in combined-stream envelopes) and Coinbase Exchange
// (match, last_match and ticker) messages with a hand-written,
// allocation-free scanner; the generic preset reads any JSON feed from field
// paths. The source reconnects with exponential backoff and full jitter, re-sends
// its subscription, detects dead connections by read_timeout, counts sequence
// gaps with their size, drops records replayed after a reconnect, and stamps
// each record with the exchange's time as event time and the receipt time as
// ingest time.
//
// Flow control: a live feed cannot be slowed down, and dropping data is not
// an acceptable answer to a slow store. The source therefore never throttles
// or drops on store feedback. It emits as fast as the graph accepts; when an
// edge is full, Emit blocks, the socket is not read, and TCP flow control
// pushes back to the exchange (which may eventually disconnect a slow
// consumer; the reconnect then shows as a counted gap). Store feedback is
// reported, not acted on: level changes are logged and counted
// (feedback_soft, feedback_hard).
package websocket

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type is the component type id.
const Type = "provider.websocket"

func init() {
	component.Register(component.Spec{
		Type:    Type,
		Kind:    engine.KindSource,
		Summary: "Live trades or quotes from an exchange WebSocket feed (Binance, Coinbase, or any JSON feed)",
		Description: "Connects to url, sends the subscribe messages, and decodes every message with the preset: " +
			"binance (trade, aggTrade, bookTicker; raw or combined-stream envelopes), coinbase (match, last_match, ticker) " +
			"or generic (JSON field paths). Reconnects with exponential backoff and full jitter and re-subscribes; " +
			"a host that DNS does not know fails the job after 3 attempts in a row (a mistake in url, not an outage); " +
			"until the first connection the job's /readyz reports not ready; " +
			"a connection with no bytes for read_timeout is presumed dead and replaced. Per symbol, trade ids " +
			"(or sequence numbers) that skip are counted as sequence gaps with their size, and records at or below " +
			"the last id seen (replayed after a reconnect) are dropped as duplicates, so bars never count a trade twice. " +
			"Event time is the exchange's timestamp; ingest time is when the message was received. " +
			"Malformed messages are counted (drop reason malformed) and the connection is kept. " +
			"Errors by reason: disconnect (a connection was lost; the last one's cause is the node's last error), connect_failed, exchange_error. " +
			"Counters: connects, reconnects, sequence_gaps, sequence_gap_missing, ignored_messages, exchange_errors, feedback_soft, feedback_hard. " +
			"The source never drops or throttles on store feedback (a live feed cannot be slowed); it relies on " +
			"edge backpressure (a full edge stops socket reads, and TCP pushes back to the exchange) and logs and counts feedback level changes.",
		ProducesFn: func(p *component.Params) md.Kind {
			if p.String("kind") == "quote" {
				return md.KindQuote
			}
			return md.KindTrade
		},
		Fields: []component.Field{
			{Name: "url", Type: component.String, Required: true,
				Description: "WebSocket URL (ws:// or wss://).",
				Example:     "wss://fstream.binance.com/stream?streams=btcusdt@trade/ethusdt@trade"},
			{Name: "preset", Type: component.String, Required: true, Enum: []string{"binance", "coinbase", "generic"},
				Description: "Message format: binance, coinbase, or generic (set fields, ts_format, and optionally records and match)."},
			{Name: "subscribe", Type: component.List,
				Description: "Messages sent after every (re)connect, in order. A string is sent as is; a mapping is sent as JSON.",
				Example:     []any{map[string]any{"method": "SUBSCRIBE", "params": []any{"btcusdt@trade"}, "id": 1}}},
			{Name: "provider", Type: component.String,
				Description: "Provider name the symbols are interned under (default: the preset name)."},
			{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote"},
				Description: "Record kind to emit: trade (trade, aggTrade, match) or quote (bookTicker, ticker). Records of the other kind are dropped and counted (reason other_kind); run a second source for them."},
			{Name: "symbols", Type: component.Strings,
				Description: "Only keep these symbols (case-insensitive); others are dropped and counted (reason symbol_filter). Empty keeps all."},
			{Name: "sequence_check", Type: component.String, Default: "auto", Enum: []string{"auto", "trade_id", "sequence", "none"},
				Description: "Per-symbol counter that must go up by one: gaps are counted and logged with their size, records at or below the last value are dropped as duplicates. " +
					"auto: trade ids for binance (t, or a for aggTrade) and coinbase (trade_id), fields.trade_id for generic trades when set, else none. " +
					"sequence: coinbase sequence numbers (only meaningful on the full channel) or fields.seq. none: no check, no duplicate drop."},
			{Name: "fields", Type: component.Map,
				Description: "generic: dotted JSON path of each record field. trade: symbol, price, size (required), ts, side, trade_id, seq. quote: symbol, bid, ask (required), ts, bid_size, ask_size, seq.",
				Example:     map[string]any{"symbol": "instId", "price": "px", "size": "sz", "ts": "ts", "side": "side", "trade_id": "tradeId"}},
			{Name: "records", Type: component.String,
				Description: "generic: path to an array of records inside each message; fields are then relative to each element.",
				Example:     "data"},
			{Name: "match", Type: component.Map,
				Description: "generic: path: value conditions a message must meet to carry records; other messages are counted as ignored.",
				Example:     map[string]any{"arg.channel": "trades"}},
			{Name: "ts_format", Type: component.String, Default: "unix_ms", Enum: tsFormatNames(),
				Description: "generic: how fields.ts is written: unix_s, unix_ms, unix_us, unix_ns (integer or decimal, as a number or a string) or rfc3339. Without fields.ts the receipt time is the event time."},
			{Name: "read_timeout", Type: component.Duration, Default: "30s", Min: component.Bound(0),
				Description: "Dead-connection detection: a connection that delivers no bytes (data or pong) for this long is closed and replaced. 0 disables. Not to be confused with idle_timeout, which advances the watermark when the source is quiet."},
			{Name: "ping_interval", Type: component.Duration, Default: "10s", Min: component.Bound(0),
				Description: "Send a WebSocket ping this often, so a healthy but quiet connection still delivers bytes (the pong) within read_timeout. 0 disables."},
			{Name: "connect_timeout", Type: component.Duration, Default: "10s", Min: component.Bound(0.001),
				Description: "Limit on dialing, the handshake and sending the subscribe messages."},
			{Name: "reconnect_backoff", Type: component.Duration, Default: "500ms", Min: component.Bound(0.001),
				Description: "First delay before reconnecting; it doubles per failed attempt up to reconnect_max_backoff, with full jitter (a random 0-100% of the step; package retry)."},
			{Name: "reconnect_max_backoff", Type: component.Duration, Default: "30s", Min: component.Bound(0.001),
				Description: "Longest delay between reconnect attempts."},
			{Name: "max_reconnects", Type: component.Int, Default: 0, Min: component.Bound(0),
				Description: "Fail the node after this many reconnect attempts in a row that delivered no records. 0 retries forever. The backoff also starts over only after a connection that delivered records."},
			{Name: "max_message_size", Type: component.Int, Default: 1 << 20, Min: component.Bound(1024), Max: component.Bound(1 << 30),
				Description: "Largest message accepted, in bytes; a larger one fails the connection (then reconnect)."},
			{Name: "max_future", Type: component.Duration, Default: "10s", Min: component.Bound(0), Max: component.Bound(24 * 3600),
				Description: "A record whose event time is more than this ahead of the time its message arrived is malformed (counted, logged, dropped): a live feed cannot report the future, and one such record would carry the watermark past every record after it. 0 disables the check."},
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

// config is the decoded params.
type config struct {
	url            string
	preset         preset
	provider       string
	kind           md.Kind
	subscribe      [][]byte
	symbols        []string
	check          checkMode
	generic        *genericConf
	readTimeout    time.Duration
	pingInterval   time.Duration
	connectTimeout time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	maxReconnects  int
	maxMessage     int64
	maxFuture      time.Duration
}

func parsePreset(s string) preset {
	switch s {
	case "coinbase":
		return presetCoinbase
	case "generic":
		return presetGeneric
	}
	return presetBinance
}

func validate(p *component.Params) error {
	var errs []error
	u, err := url.Parse(p.String("url"))
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		errs = append(errs, p.Errorf("url", "want a ws:// or wss:// URL with a host, got %q", component.MaskQuerySecrets(p.String("url"), "xxxxx")))
	} else if port := u.Port(); port != "" {
		if err := component.CheckPort(port); err != nil {
			errs = append(errs, p.Errorf("url", "%v", err))
		}
	}
	pr := parsePreset(p.String("preset"))
	if pr != presetGeneric {
		for _, k := range []string{"fields", "records", "match", "ts_format"} {
			if p.Has(k) {
				errs = append(errs, p.Errorf(k, "%s applies to preset generic only (preset is %s)", k, pr))
			}
		}
	}
	if _, err := subscribeMessages(p.List("subscribe")); err != nil {
		errs = append(errs, p.Errorf("subscribe", "%v", err))
	}
	kind := md.KindTrade
	if p.String("kind") == "quote" {
		kind = md.KindQuote
	}
	if pr == presetGeneric {
		if _, err := genericFromParams(p, kind); err != nil {
			key := "fields"
			var ke *keyedError
			if errors.As(err, &ke) {
				key = ke.key
			}
			errs = append(errs, p.Errorf(key, "%v", err))
		}
	}
	if _, err := checkFor(p, pr, kind); err != nil {
		errs = append(errs, p.Errorf("sequence_check", "%v", err))
	}
	if p.Duration("reconnect_max_backoff") < p.Duration("reconnect_backoff") {
		errs = append(errs, p.Errorf("reconnect_max_backoff", "%s is shorter than reconnect_backoff %s",
			p.Duration("reconnect_max_backoff"), p.Duration("reconnect_backoff")))
	}
	if rt, pi := p.Duration("read_timeout"), p.Duration("ping_interval"); rt > 0 && pi >= rt {
		errs = append(errs, p.Errorf("ping_interval", "%s must be shorter than read_timeout %s, or a quiet healthy connection is taken for dead", pi, rt))
	}
	return errors.Join(errs...)
}

type keyedError struct {
	key string
	err error
}

func (e *keyedError) Error() string { return e.err.Error() }

func genericFromParams(p *component.Params, kind md.Kind) (*genericConf, error) {
	fields := map[string]string{}
	for k, v := range p.Map("fields") {
		s, ok := v.(string)
		if !ok {
			return nil, &keyedError{"fields", fmt.Errorf("%s: want a JSON path string, got %v", k, v)}
		}
		fields[k] = s
	}
	match := map[string]string{}
	for k, v := range p.Map("match") {
		switch v.(type) {
		case map[string]any, []any, nil:
			return nil, &keyedError{"match", fmt.Errorf("%q: want a string, number or bool, got %v", k, v)}
		}
		match[k] = fmt.Sprint(v)
	}
	g, err := compileGeneric(kind, fields, p.String("records"), match, p.String("ts_format"))
	if err != nil {
		return nil, err
	}
	return g, nil
}

// checkFor resolves sequence_check for the preset and kind.
func checkFor(p *component.Params, pr preset, kind md.Kind) (checkMode, error) {
	fields := p.Map("fields")
	switch p.String("sequence_check") {
	case "none":
		return checkNone, nil
	case "trade_id":
		switch {
		case kind != md.KindTrade:
			return checkNone, errors.New("trade_id applies to trades; quotes carry no trade id (use sequence or none)")
		case pr == presetGeneric && fields["trade_id"] == nil:
			return checkNone, errors.New("trade_id needs fields.trade_id")
		}
		return checkTradeID, nil
	case "sequence":
		switch {
		case pr == presetBinance:
			return checkNone, errors.New("binance messages carry no per-symbol sequence number (bookTicker u is the book's update id and skips); use trade_id or none")
		case pr == presetGeneric && fields["seq"] == nil:
			return checkNone, errors.New("sequence needs fields.seq")
		}
		return checkSequence, nil
	}
	// auto
	if kind != md.KindTrade {
		return checkNone, nil
	}
	if pr == presetGeneric && fields["trade_id"] == nil {
		return checkNone, nil
	}
	return checkTradeID, nil
}

// subscribeMessages encodes the subscribe list: strings as is, mappings and
// lists as JSON.
func subscribeMessages(items []any) ([][]byte, error) {
	out := make([][]byte, 0, len(items))
	for i, it := range items {
		switch v := it.(type) {
		case string:
			out = append(out, []byte(v))
		case map[string]any, []any:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("item %d: %v", i, err)
			}
			out = append(out, b)
		default:
			return nil, fmt.Errorf("item %d: want a string (sent as is) or a mapping (sent as JSON), got %v", i, it)
		}
	}
	return out, nil
}

func newConfig(p *component.Params) (*config, error) {
	c := &config{
		url:            p.String("url"),
		preset:         parsePreset(p.String("preset")),
		provider:       p.String("provider"),
		kind:           md.KindTrade,
		symbols:        p.Strings("symbols"),
		readTimeout:    p.Duration("read_timeout"),
		pingInterval:   p.Duration("ping_interval"),
		connectTimeout: p.Duration("connect_timeout"),
		backoff:        p.Duration("reconnect_backoff"),
		maxBackoff:     p.Duration("reconnect_max_backoff"),
		maxReconnects:  int(p.Int("max_reconnects")),
		maxMessage:     p.Int("max_message_size"),
		maxFuture:      p.Duration("max_future"),
	}
	if p.String("kind") == "quote" {
		c.kind = md.KindQuote
	}
	if c.provider == "" {
		c.provider = c.preset.String()
	}
	var err error
	if c.subscribe, err = subscribeMessages(p.List("subscribe")); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if c.check, err = checkFor(p, c.preset, c.kind); err != nil {
		return nil, fmt.Errorf("sequence_check: %w", err)
	}
	if c.preset == presetGeneric {
		if c.generic, err = genericFromParams(p, c.kind); err != nil {
			return nil, err
		}
	}
	return c, nil
}
