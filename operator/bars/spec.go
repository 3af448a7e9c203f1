package bars

import (
	"math"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.bars"

const description = `Builds OHLCV bars per symbol. bar_type time (the default) builds time bars over [start, end) intervals aligned to the Unix epoch plus origin_offset; tick, volume, value, tick_imbalance and volume_imbalance build activity bars (described at the end). Everything up to that point is about time bars.

Closing: a bar closes when the input watermark reaches end + build_delay, never on the wall clock and never because a later record arrived. When the watermark passes, every closable bar is emitted in order of start, then symbol id. The final watermark at end of stream (or on stop) flushes every open bar, so nothing is lost at shutdown.

Trade bars: open is the price of the trade with the earliest ts and close that of the trade with the latest ts (ties in arrival order), so out-of-order trades give the bar a time-sorted copy of them gives, as first(price, ts) and last(price, ts) in TimescaleDB or a pandas resample do; high and low are the extremes; volume is the sum of sizes; vwap = sum(price*size)/volume with the sums taken in input order (the close if volume is 0); trades is the number of trades.

Quote bars: the price of a quote is its mid (bid+ask)/2, its bid or its ask (param price); open and close follow ts as for trades. Volume is 0 because quoted size is not traded volume; trades counts the quotes; vwap is the plain mean of the prices. A node builds either trade bars or quote bars: receiving both kinds fails the batch.

Late data: a record is late when its bar has already closed, that is when its ts is before the last interval boundary the watermark has passed (minus build_delay). The engine gives every record the watermark of exactly the records before it in its source's stream (it cuts a source batch before a record behind the running watermark), so whether a record is late never depends on where a batch ends or on parallelism. Records within the source's max_out_of_orderness arrive before the watermark passes and go into the right open bar, even an older one; several bars per symbol can be open at once. late_policy drop counts late records as dropped under "late"; side_output sends them unchanged to the "late" port (batch reason "late"); update keeps each closed bar for allowed_lateness after it closed and re-emits the corrected bar with update=true (sinks upsert on the bar's key) at the end of the batch that changed it; a late record for an interval with no bar creates one. Records later than allowed_lateness are dropped under "too_late". Flat bars from emit_empty can be corrected this way but corrections never re-derive later flat bars.

skip_first_partial: the first bar each symbol closes is dropped (a feed or a symbol may start mid-interval, as in NautilusTrader); its records are counted as dropped under "skipped_partial", and so are late records at or before that bar.

emit_empty: for every interval with no records after a symbol's first bar, emit a flat bar: open = high = low = close = vwap = the previous bar's close, volume 0, trades 0. Live, flat bars follow the watermark. At end of stream every open bar is emitted and flat bars are filled up to the interval holding the last watermark before the final one (a value every instance of a parallel node shares, so parallelism never changes the output) and between a symbol's own bars.

Timestamps: every store (sink.sqlite, sink.postgres and sink.timescale, sink.parquet) keys and stores a bar by its start, whatever label says; label changes only the ts field of JSON and CSV output, which also always carries start and end.

Watermark: the watermark forwarded downstream is held at the start of the earliest bar that may still be emitted (the last closed boundary; under update, the start of the oldest bar still kept for correction), so downstream never receives a bar that starts before its watermark.

Activity bars. tick: a bar every threshold records (trades, or quotes with price). volume: a bar once the traded size reaches threshold. value: once the traded value, the sum of price × size, reaches threshold. With split_large_trades, a trade that overshoots a volume or value bar is split: the part that fills the bar goes in it (counted as a trade of that bar), the rest opens the next bar(s), so every closed bar holds exactly the threshold; a part's size is rounded to the decimal places the symbol's sizes have, so decimal sizes split exactly. Without it, the trade that reaches the threshold closes the bar whole.

Imbalance bars (López de Prado, Advances in Financial Machine Learning, 2.3.2). The tick rule signs every trade b = +1 or -1 by the direction of its price change, the previous sign when the price did not change (0 until the symbol's price first changes). A bar's imbalance θ is the sum of b (tick_imbalance) or of b × size (volume_imbalance) over its trades. It closes at the first trade where θ ≠ 0 and |θ| >= E[T] × |E[x]|, both estimates fixed when the bar opened: E[T] is the exponentially weighted mean of the symbol's bar lengths in trades (span ewma_bars, starting at expected_ticks, kept within [min_expected_ticks, max_expected_ticks] so it can neither collapse to 1 nor run away), and E[x] that of the signed flow per trade, b or b × size (span ewma_ticks, starting at the first trade's value); alpha = 2 / (span + 1). A symbol's first bar, opened with no estimate, is a tick bar of expected_ticks trades.

Order and time: which records form a bar depends on their order, so activity bars fold records in event-time order (ties in arrival order), holding each record until the watermark passes it; out-of-order records within the source's max_out_of_orderness land where a time-sorted stream puts them, and batching and parallelism never change a bar. A record behind the watermark is late: late_policy drop counts it, side_output sends it to the late port; update is refused (a late record would shift every later bar). A bar spans [start, end): start is its first record's time (or the previous bar's end, if later), end its last record's time plus 1ns, and at least start + 1µs, so a symbol's bars tile event time and start in distinct microseconds (stores key a bar by its start to the microsecond) even when records share a timestamp or one trade fills several bars. The interval column holds the threshold (expected_ticks for imbalance bars) and bar_type the type, so bars built differently never share a key. At end of stream every open bar is emitted, partial ones included. The forwarded watermark is held at the start of the earliest open bar. interval, origin_offset, emit_empty, skip_first_partial, build_delay and allowed_lateness apply to time bars only and are refused otherwise; volume, value and imbalance bars take trades only.`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "OHLCV bars from trades or quotes: time, tick, volume, value and imbalance bars, closed by watermark",
		Description: description,
		Accepts:     md.KindTrade | md.KindQuote,
		Produces:    md.KindBar,
		Ports:       map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: []component.Field{
			{Name: "bar_type", Type: component.String, Default: "time", Enum: []string{"time", "tick", "volume", "value", "tick_imbalance", "volume_imbalance"},
				Description: "What closes a bar: time (interval), tick (threshold records), volume (threshold traded size), value (threshold traded price × size), tick_imbalance or volume_imbalance (López de Prado's imbalance bars, see expected_ticks)."},
			{Name: "interval", Type: component.Duration, Min: component.Bound(0.001),
				Description: "Bar length, 1ms or more; required for time bars, refused for the others.", Example: "1s"},
			{Name: "threshold", Type: component.Int, Min: component.Bound(1), Max: component.Bound(1e15),
				Description: "Tick, volume and value bars: records, traded size or traded value (price × size) per bar, a whole number; the bars' interval column holds it.", Example: 1000},
			{Name: "split_large_trades", Type: component.Bool, Default: false,
				Description: "Volume and value bars: a trade that overshoots the threshold is split, the part that fills the bar going in it and the rest into the next bar(s), so every bar but a symbol's last holds exactly the threshold. Off: the whole trade goes in the bar it closes."},
			{Name: "expected_ticks", Type: component.Int, Min: component.Bound(1), Max: component.Bound(1e15),
				Description: "Imbalance bars: the first estimate of ticks per bar, E0[T] (the symbol's first bar is a tick bar of this length); the bars' interval column holds it.", Example: 100},
			{Name: "min_expected_ticks", Type: component.Int, Min: component.Bound(1), Max: component.Bound(1e15),
				Description: "Imbalance bars: lower bound of the ticks-per-bar estimate. Default: expected_ticks / 10, at least 1."},
			{Name: "max_expected_ticks", Type: component.Int, Min: component.Bound(1), Max: component.Bound(1e15),
				Description: "Imbalance bars: upper bound of the ticks-per-bar estimate. Default: expected_ticks × 10."},
			{Name: "ewma_bars", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1 << 30),
				Description: "Imbalance bars: span of the exponentially weighted mean of bar lengths (alpha = 2 / (span + 1))."},
			{Name: "ewma_ticks", Type: component.Int, Min: component.Bound(1), Max: component.Bound(1 << 30),
				Description: "Imbalance bars: span of the exponentially weighted mean of the signed flow per tick. Default: expected_ticks."},
			{Name: "origin_offset", Type: component.Duration, Default: "0s",
				Description: "Shift of the interval grid from the Unix epoch (taken modulo interval; may be negative). With 1m bars and 15s, bars run from :15 to :15.", Example: "15s"},
			{Name: "label", Type: component.String, Default: "open", Enum: []string{"open", "close"},
				Description: "Which bound is the bar's ts in JSON and CSV output (sink.file, sink.stdout): open (start) or close (end). It changes nothing else: a bar always carries start, end and interval, and every store (SQLite, PostgreSQL, Parquet) keys a bar by its start."},
			{Name: "price", Type: component.String, Default: "mid", Enum: []string{"mid", "bid", "ask"},
				Description: "Price taken from a quote for quote bars; ignored for trades."},
			{Name: "skip_first_partial", Type: component.Bool, Default: false,
				Description: "Drop the first bar of each symbol, which may have started mid-interval (counted under skipped_partial)."},
			{Name: "emit_empty", Type: component.Bool, Default: false,
				Description: "Emit a flat bar at the previous close (volume 0, trades 0) for intervals without records after a symbol's first bar."},
			{Name: "build_delay", Type: component.Duration, Default: "0s", Min: component.Bound(0),
				Description: "Extra event time to wait after a bar's end before closing it: a bar closes when the watermark reaches end + build_delay.", Example: "250ms"},
			{Name: "late_policy", Type: component.String, Default: "drop", Enum: []string{"drop", "side_output", "update"},
				Description: "What happens to a record whose bar already closed: drop (counted under late), side_output (to the late port) or update (re-emit the corrected bar with update=true)."},
			{Name: "allowed_lateness", Type: component.Duration, Min: component.Bound(0),
				Description: "With late_policy update: how long after a bar closed (in event time) it is kept for correction; later records are dropped under too_late. Default: one interval.", Example: "5s"},
		},
		Validate: func(p *component.Params) error {
			if err := validateType(p); err != nil {
				return err
			}
			if p.Has("allowed_lateness") && p.String("late_policy") != "update" {
				return p.Errorf("allowed_lateness", "allowed_lateness applies only with late_policy: update (drop and side_output keep no closed bars)")
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			if p.String("bar_type") != "time" {
				return newActivity(p)
			}
			return newBars(p)
		},
	})
}

// timeOnly and activityOnly are the params that apply to one family of bar
// types; setting one for the other family is a config error, not ignored.
var (
	timeOnly      = []string{"interval", "origin_offset", "skip_first_partial", "emit_empty", "build_delay", "allowed_lateness"}
	sizedOnly     = []string{"threshold", "split_large_trades"}
	imbalanceOnly = []string{"expected_ticks", "min_expected_ticks", "max_expected_ticks", "ewma_bars", "ewma_ticks"}
)

func validateType(p *component.Params) error {
	typ := p.String("bar_type")
	refuse := func(names []string, what string) error {
		for _, n := range names {
			if p.Has(n) {
				return p.Errorf(n, "%s applies only to %s bars, not bar_type %s", n, what, typ)
			}
		}
		return nil
	}
	var err error
	switch typ {
	case "time":
		if !p.Has("interval") {
			return p.Errorf("interval", "time bars need an interval (bar length, 1ms or more)")
		}
		if err = refuse(sizedOnly, "tick, volume and value"); err == nil {
			err = refuse(imbalanceOnly, "imbalance")
		}
	case "tick", "volume", "value":
		if !p.Has("threshold") {
			return p.Errorf("threshold", "%s bars need a threshold (%s per bar, a whole number)", typ, map[string]string{"tick": "records", "volume": "traded size", "value": "traded value"}[typ])
		}
		if err = refuse(timeOnly, "time"); err == nil {
			err = refuse(imbalanceOnly, "imbalance")
		}
		if err == nil && typ == "tick" && p.Has("split_large_trades") {
			err = p.Errorf("split_large_trades", "split_large_trades applies only to volume and value bars, not bar_type tick")
		}
	default:
		if !p.Has("expected_ticks") {
			return p.Errorf("expected_ticks", "%s bars need expected_ticks (the first estimate of ticks per bar)", typ)
		}
		if err = refuse(timeOnly, "time"); err == nil {
			err = refuse(sizedOnly, "tick, volume and value")
		}
	}
	if err == nil && typ != "time" && p.String("late_policy") == "update" {
		err = p.Errorf("late_policy", "late_policy update applies only to time bars: a late record would shift every later %s bar; use drop or side_output", typ)
	}
	return err
}

var barTypes = map[string]md.BarType{"tick": md.BarTick, "volume": md.BarVolume, "value": md.BarValue,
	"tick_imbalance": md.BarTickImbalance, "volume_imbalance": md.BarVolumeImbalance}

func newActivity(p *component.Params) (*Activity, error) {
	cfg := ActivityConfig{
		Type:             barTypes[p.String("bar_type")],
		Threshold:        float64(p.Int("threshold")),
		SplitLargeTrades: p.Bool("split_large_trades"),
		ExpectedTicks:    float64(p.Int("expected_ticks")),
		BarSpan:          float64(p.Int("ewma_bars")),
		LabelClose:       p.String("label") == "close",
		SideOutput:       p.String("late_policy") == "side_output",
	}
	switch p.String("price") {
	case "bid":
		cfg.Price = PriceBid
	case "ask":
		cfg.Price = PriceAsk
	}
	cfg.MinTicks = max(1, math.Floor(cfg.ExpectedTicks/10))
	if p.Has("min_expected_ticks") {
		cfg.MinTicks = float64(p.Int("min_expected_ticks"))
	}
	cfg.MaxTicks = cfg.ExpectedTicks * 10
	if p.Has("max_expected_ticks") {
		cfg.MaxTicks = float64(p.Int("max_expected_ticks"))
	}
	cfg.TickSpan = cfg.ExpectedTicks
	if p.Has("ewma_ticks") {
		cfg.TickSpan = float64(p.Int("ewma_ticks"))
	}
	return NewActivity(cfg)
}

func newBars(p *component.Params) (*Bars, error) {
	iv := p.Duration("interval").Nanoseconds()
	cfg := Config{
		Interval:         iv,
		OriginOffset:     p.Duration("origin_offset").Nanoseconds(),
		LabelClose:       p.String("label") == "close",
		SkipFirstPartial: p.Bool("skip_first_partial"),
		EmitEmpty:        p.Bool("emit_empty"),
		BuildDelay:       p.Duration("build_delay").Nanoseconds(),
		AllowedLateness:  iv,
	}
	switch p.String("price") {
	case "bid":
		cfg.Price = PriceBid
	case "ask":
		cfg.Price = PriceAsk
	}
	switch p.String("late_policy") {
	case "side_output":
		cfg.Late = LateSideOutput
	case "update":
		cfg.Late = LateUpdate
	}
	if p.Has("allowed_lateness") {
		cfg.AllowedLateness = p.Duration("allowed_lateness").Nanoseconds()
	}
	return New(cfg)
}
