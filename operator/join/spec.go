package join

import (
	"errors"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/window"
)

// Type is the component's type id.
const Type = "operator.join"

const description = `Joins two streams on the symbol text (records of one instrument from two providers join), in event time, through the input ports left and right: wire them as [trades, join.left] and [quotes, join.right].

kind asof: each left record with the latest right record at or before its ts (ties: the last to arrive), if it is at most max_staleness older (no limit when unset), like kdb+'s aj. Every left record is emitted once: matched=1 with the right record's fields and right_ts, or matched=0 with those fields 0. With trades on the left and quotes on the right the output adds mid = (bid+ask)/2, spread = ask-bid and side by the quote rule: 1 (buy) when the price is above the mid, -1 (sell) below it, 0 at the mid.

kind interval: each left record with every right record whose ts is in [left.ts + lower, left.ts + upper] (both bounds inclusive; either may be negative), one output record per pair, in order of the right record's ts; a left record with no pair emits nothing.

Event time: a left record is held until the watermark (the minimum over both inputs) passes its ts (asof) or its ts + upper (interval); only then can no right record that pairs with it still arrive, so the output does not depend on how the two inputs interleave, on batch sizes or on parallelism. Right records are forgotten as soon as no left record still to come can pair with them (asof keeps the latest one at or before the watermark). A record behind the watermark when it arrives is late: late_policy drop counts it as dropped under "late"; side_output sends it unchanged to the "late" port, in a batch whose reason says which input it came in on (late_left or late_right). Output is released per symbol in order of release time, then symbol, then ts; the derived record's ts and symbol are the left record's. An interval join holds the forwarded watermark back by upper.

Output fields (schema named by param name, default the node id): asof: the left record's fields (trades: price, size, trade_side as 1 buy, -1 sell, 0 unknown; quotes: bid, ask, bid_size, ask_size), the right record's (prefixed right_ when both sides are the same kind), for right quotes mid and spread, for trades against quotes side, then right_ts and matched. interval: the same fields prefixed left_ and right_, then right_ts.`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "Stream-stream join on symbol: as-of (trades with the prevailing quote) or interval",
		Description: description,
		Inputs: []engine.Input{
			{Name: "left", Accepts: md.KindTrade | md.KindQuote},
			{Name: "right", Accepts: md.KindTrade | md.KindQuote},
		},
		Produces: md.KindDerived,
		Ports:    map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: []component.Field{
			{Name: "kind", Type: component.String, Required: true, Enum: []string{"asof", "interval"},
				Description: "asof: each left record with the latest right one at or before it; interval: every pair within [left.ts + lower, left.ts + upper]."},
			{Name: "left", Type: component.String, Default: "trade", Enum: []string{"trade", "quote"},
				Description: "The kind of the left input's records."},
			{Name: "right", Type: component.String, Enum: []string{"trade", "quote"},
				Description: "The kind of the right input's records. Default: quote for asof, trade for interval."},
			{Name: "max_staleness", Type: component.Duration, Min: component.Bound(0),
				Description: "asof: the oldest a right record may be, relative to the left one, to match. Default: no limit.", Example: "1s"},
			{Name: "lower", Type: component.Duration,
				Description: "interval: the start of the right records' range relative to left.ts (may be negative).", Example: "-100ms"},
			{Name: "upper", Type: component.Duration,
				Description: "interval: the end of the right records' range relative to left.ts, inclusive; at least lower.", Example: "100ms"},
			{Name: "late_policy", Type: component.String, Default: "drop", Enum: []string{"drop", "side_output"},
				Description: "What happens to a record behind the watermark when it arrives: drop (counted under late) or side_output (to the late port, batch reason late_left or late_right)."},
			{Name: "name", Type: component.String,
				Description: "Name of the output schema (the table or dataset a sink writes): a lower-case identifier. Default: the node id, lower-cased with other characters as _.", Example: "trades_quotes"},
		},
		Validate:     validate,
		SchemaFn:     func(p *component.Params) (*md.Schema, error) { return schemaOf(p) },
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) { return New(configOf(p)) },
	})
}

func validate(p *component.Params) error {
	var errs []error
	if p.String("kind") == "asof" {
		for _, k := range []string{"lower", "upper"} {
			if p.Has(k) {
				errs = append(errs, p.Errorf(k, "%s applies to kind interval, not asof", k))
			}
		}
	} else {
		if !p.Has("lower") || !p.Has("upper") {
			errs = append(errs, p.Errorf("upper", "kind interval needs lower and upper"))
		} else if p.Duration("lower") > p.Duration("upper") {
			errs = append(errs, p.Errorf("lower", "lower %s is after upper %s", p.Duration("lower"), p.Duration("upper")))
		}
		if p.Has("max_staleness") {
			errs = append(errs, p.Errorf("max_staleness", "max_staleness applies to kind asof, not interval"))
		}
	}
	return errors.Join(errs...)
}

func configOf(p *component.Params) Config {
	cfg := Config{Left: md.KindTrade, Right: md.KindQuote, Schema: p.Schema(), SideOutput: p.String("late_policy") == "side_output"}
	if p.String("left") == "quote" {
		cfg.Left = md.KindQuote
	}
	if p.String("kind") == "interval" {
		cfg.Kind, cfg.Right = Interval, md.KindTrade
		cfg.Lower, cfg.Upper = p.Duration("lower").Nanoseconds(), p.Duration("upper").Nanoseconds()
	} else {
		cfg.MaxStaleness = -1
		if p.Has("max_staleness") {
			cfg.MaxStaleness = p.Duration("max_staleness").Nanoseconds()
		}
	}
	switch p.String("right") {
	case "trade":
		cfg.Right = md.KindTrade
	case "quote":
		cfg.Right = md.KindQuote
	}
	return cfg
}

func schemaOf(p *component.Params) (*md.Schema, error) {
	fields, _ := Columns(configOf(p))
	name := window.SchemaName(p.NodeID(), "join")
	if p.Has("name") {
		name = p.String("name")
	}
	sc, err := md.NewSchema(name, fields...)
	if err != nil {
		return nil, p.Errorf("name", "%v", err)
	}
	return sc, nil
}
