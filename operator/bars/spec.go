package bars

import (
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.bars"

const description = `Builds time bars per symbol over [start, end) intervals aligned to the Unix epoch plus origin_offset.

Closing: a bar closes when the input watermark reaches end + build_delay, never on the wall clock and never because a later record arrived. When the watermark passes, every closable bar is emitted in order of start, then symbol id. The final watermark at end of stream (or on stop) flushes every open bar, so nothing is lost at shutdown.

Trade bars: open is the price of the trade with the earliest ts and close that of the trade with the latest ts (ties in arrival order), so out-of-order trades give the bar a time-sorted copy of them gives, as first(price, ts) and last(price, ts) in TimescaleDB or a pandas resample do; high and low are the extremes; volume is the sum of sizes; vwap = sum(price*size)/volume with the sums taken in input order (the close if volume is 0); trades is the number of trades.

Quote bars: the price of a quote is its mid (bid+ask)/2, its bid or its ask (param price); open and close follow ts as for trades. Volume is 0 because quoted size is not traded volume; trades counts the quotes; vwap is the plain mean of the prices. A node builds either trade bars or quote bars: receiving both kinds fails the batch.

Late data: a record is late when its bar has already closed, that is when its ts is before the last interval boundary the watermark has passed (minus build_delay). The engine gives every record the watermark of exactly the records before it in its source's stream (it cuts a source batch before a record behind the running watermark), so whether a record is late never depends on where a batch ends or on parallelism. Records within the source's max_out_of_orderness arrive before the watermark passes and go into the right open bar, even an older one; several bars per symbol can be open at once. late_policy drop counts late records as dropped under "late"; side_output sends them unchanged to the "late" port (batch reason "late"); update keeps each closed bar for allowed_lateness after it closed and re-emits the corrected bar with update=true (sinks upsert on the bar's key) at the end of the batch that changed it; a late record for an interval with no bar creates one. Records later than allowed_lateness are dropped under "too_late". Flat bars from emit_empty can be corrected this way but corrections never re-derive later flat bars.

skip_first_partial: the first bar each symbol closes is dropped (a feed or a symbol may start mid-interval, as in NautilusTrader); its records are counted as dropped under "skipped_partial", and so are late records at or before that bar.

emit_empty: for every interval with no records after a symbol's first bar, emit a flat bar: open = high = low = close = vwap = the previous bar's close, volume 0, trades 0. Live, flat bars follow the watermark. At end of stream every open bar is emitted and flat bars are filled up to the interval holding the last watermark before the final one (a value every instance of a parallel node shares, so parallelism never changes the output) and between a symbol's own bars.

Timestamps: every store (sink.sqlite, sink.postgres and sink.timescale, sink.parquet) keys and stores a bar by its start, whatever label says; label changes only the ts field of JSON and CSV output, which also always carries start and end.

Watermark: the watermark forwarded downstream is held at the start of the earliest bar that may still be emitted (the last closed boundary; under update, the start of the oldest bar still kept for correction), so downstream never receives a bar that starts before its watermark.`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "OHLCV time bars from trades or quotes, closed by watermark",
		Description: description,
		Accepts:     md.KindTrade | md.KindQuote,
		Produces:    md.KindBar,
		Ports:       map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: []component.Field{
			{Name: "interval", Type: component.Duration, Required: true, Min: component.Bound(0.001),
				Description: "Bar length, 1ms or more.", Example: "1s"},
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
			if p.Has("allowed_lateness") && p.String("late_policy") != "update" {
				return p.Errorf("allowed_lateness", "allowed_lateness applies only with late_policy: update (drop and side_output keep no closed bars)")
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) { return newBars(p) },
	})
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
