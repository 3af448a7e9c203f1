package window

import (
	"errors"
	"strings"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type ids.
const (
	Type         = "operator.window"
	TypeTumbling = "operator.tumbling_window"
)

const commonDoc = `Aggregations (param aggregations, a list): count; vwap; sum(f), min(f), max(f), first(f), last(f), mean(f), stddev(f) and quantile(f, q) over a field f of the input records — trades: price, size, value (price × size); quotes: bid, ask, bid_size, ask_size, mid, spread; bars: open, high, low, close, volume, vwap, trades. Each is one output field, named fn_field (count, vwap, pNN_field for a quantile: quantile(price, 0.95) is p95_price) or as written after "as": "max(price) as high". first and last are the values of the records with the earliest and latest ts (ties in arrival order); stddev is the population standard deviation (0 for one record); quantile interpolates linearly between the closest ranks (NumPy's and pandas' default) over the window's exact values; vwap is sum(price × size) / sum(size) (for bars: of vwap × volume over volume), the last price when the size is 0; sum(size) and sum(volume) are rounded to the exact decimal sum of the inputs (as operator.bars volumes). vwap needs trades or bars.

Output: one derived record per window and symbol, of the schema named by param name (default: the node id): ts is the window's start, end its exclusive end, then the aggregations in order, early (1 on an every_record firing of a window still open) and update (1 on a re-emission after late data). An empty window emits nothing.

Closing: a window [start, end) closes when the input watermark reaches end, never on the wall clock; a record exactly at end belongs to the next window. Windows close in order of end, then symbol id; the final watermark at end of stream flushes every open window. The forwarded watermark is held at the start of the earliest window still to be emitted.

Late data: a record is late when a window holding it has already closed. late_policy drop counts it (under "late"); side_output sends it unchanged to the "late" port; update folds it in and re-emits, with update=1 at the end of the batch, every closed window holding it that is within allowed_lateness of its end (state is kept that long); a record later than that for all of its windows is dropped under "too_late".

emit: on_close emits each window once when it closes; every_record also emits, after each record, the open window(s) holding it with early=1 (the closing emission follows with early=0).`

var lateFields = []component.Field{
	{Name: "aggregations", Type: component.Strings, Required: true,
		Description: "The aggregations, each one output field: count, vwap, sum(f), min(f), max(f), first(f), last(f), mean(f), stddev(f), quantile(f, q), optionally followed by \"as name\".",
		Example:     []string{"count", "sum(size)", "min(price)", "max(price)", "vwap"}},
	{Name: "late_policy", Type: component.String, Default: "drop", Enum: []string{"drop", "side_output", "update"},
		Description: "What happens to a record whose window already closed: drop (counted under late), side_output (to the late port) or update (re-emit the corrected window with update=1)."},
	{Name: "allowed_lateness", Type: component.Duration, Min: component.Bound(0),
		Description: "With late_policy update: how long after a window's end (in event time) it is kept for correction; later records are dropped under too_late. Default 0.", Example: "5s"},
	{Name: "emit", Type: component.String, Default: "on_close", Enum: []string{"on_close", "every_record"},
		Description: "on_close: each window once, when it closes. every_record: also the open window(s) after every record, with early=1."},
	{Name: "name", Type: component.String,
		Description: "Name of the output schema (the table or dataset a sink writes): a lower-case identifier. Default: the node id, lower-cased with other characters as _.", Example: "trade_windows"},
}

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "Event-time tumbling, sliding and session window aggregations per symbol",
		Description: "Aggregates trades, quotes or bars per symbol over event-time windows: tumbling (size, epoch-aligned plus offset), sliding (size, slide; size a multiple of slide; each record is folded once into its slide-long pane and a window merges its panes when it closes) or session (a run of a symbol's records each less than gap after the one before; a session closes at its last record + gap and late records may merge sessions).\n\n" + commonDoc,
		Accepts:     md.KindTrade | md.KindQuote | md.KindBar,
		Produces:    md.KindDerived,
		Ports:       map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: append([]component.Field{
			{Name: "window", Type: component.String, Default: "tumbling", Enum: []string{"tumbling", "sliding", "session"},
				Description: "The window shape."},
			{Name: "size", Type: component.Duration, Min: component.Bound(0.001),
				Description: "Tumbling and sliding: the window length, 1ms or more.", Example: "1m"},
			{Name: "slide", Type: component.Duration, Min: component.Bound(0.001),
				Description: "Sliding: how far apart windows start; size must be a multiple of it.", Example: "10s"},
			{Name: "gap", Type: component.Duration, Min: component.Bound(0.001),
				Description: "Session: the inactivity that ends a session.", Example: "30s"},
			{Name: "offset", Type: component.Duration, Default: "0s",
				Description: "Tumbling and sliding: shift of the window grid from the Unix epoch (taken modulo the slide).", Example: "15s"},
		}, lateFields...),
		Validate: func(p *component.Params) error { return validate(p, true) },
		SchemaFn: schemaFn,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return fromParams(p, p.String("window"))
		},
	})
	component.Register(component.Spec{
		Type:        TypeTumbling,
		Kind:        engine.KindOperator,
		Summary:     "Event-time tumbling window aggregations per symbol, epoch-aligned",
		Description: "operator.window with window: tumbling: windows [start, start + size) aligned to the Unix epoch plus offset.\n\n" + commonDoc,
		Accepts:     md.KindTrade | md.KindQuote | md.KindBar,
		Produces:    md.KindDerived,
		Ports:       map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: append([]component.Field{
			{Name: "size", Type: component.Duration, Required: true, Min: component.Bound(0.001),
				Description: "The window length, 1ms or more.", Example: "1s"},
			{Name: "offset", Type: component.Duration, Default: "0s",
				Description: "Shift of the window grid from the Unix epoch (taken modulo size).", Example: "15s"},
		}, lateFields...),
		Validate:     func(p *component.Params) error { return validate(p, false) },
		SchemaFn:     schemaFn,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) { return fromParams(p, "tumbling") },
	})
}

// validate checks operator.window's params (full) or
// operator.tumbling_window's.
func validate(p *component.Params, full bool) error {
	var errs []error
	w := "tumbling"
	has := p.Has
	if full {
		w = p.String("window")
	} else {
		has = func(name string) bool { return name == "size" || name == "offset" && p.Has(name) }
	}
	switch w {
	case "tumbling":
		if !p.Has("size") {
			errs = append(errs, p.Errorf("size", "a tumbling window needs size"))
		}
		for _, k := range []string{"slide", "gap"} {
			if has(k) {
				errs = append(errs, p.Errorf(k, "%s applies to %s windows, not tumbling ones", k, map[string]string{"slide": "sliding", "gap": "session"}[k]))
			}
		}
	case "sliding":
		if !has("size") || !has("slide") {
			errs = append(errs, p.Errorf("slide", "a sliding window needs size and slide"))
		} else if p.Duration("size")%p.Duration("slide") != 0 {
			errs = append(errs, p.Errorf("slide", "size %s must be a multiple of slide %s", p.Duration("size"), p.Duration("slide")))
		} else if p.Duration("size")/p.Duration("slide") > maxPanes {
			errs = append(errs, p.Errorf("slide", "size %s is more than %d slides of %s", p.Duration("size"), maxPanes, p.Duration("slide")))
		}
		if has("gap") {
			errs = append(errs, p.Errorf("gap", "gap applies to session windows, not sliding ones"))
		}
	case "session":
		if !has("gap") {
			errs = append(errs, p.Errorf("gap", "a session window needs gap"))
		}
		for _, k := range []string{"size", "slide", "offset"} {
			if has(k) {
				errs = append(errs, p.Errorf(k, "%s does not apply to session windows (they are set by gap)", k))
			}
		}
	}
	if p.Has("allowed_lateness") && p.String("late_policy") != "update" {
		errs = append(errs, p.Errorf("allowed_lateness", "allowed_lateness applies only with late_policy: update (drop and side_output keep no closed windows)"))
	}
	for _, s := range p.Strings("aggregations") {
		if _, err := ParseAgg(s); err != nil {
			errs = append(errs, p.Errorf("aggregations", "%v", err))
		}
	}
	if len(p.Strings("aggregations")) == 0 {
		errs = append(errs, p.Errorf("aggregations", "at least one aggregation is needed"))
	}
	return errors.Join(errs...)
}

// maxPanes bounds size/slide: a sliding window merges that many panes when
// it closes.
const maxPanes = 10000

func aggsOf(p *component.Params) ([]Agg, error) {
	var aggs []Agg
	for _, s := range p.Strings("aggregations") {
		a, err := ParseAgg(s)
		if err != nil {
			return nil, p.Errorf("aggregations", "%v", err)
		}
		aggs = append(aggs, a)
	}
	return aggs, nil
}

// SchemaName is the default schema name for a node id: lower-cased, with
// every character other than a-z, 0-9 and _ as _, and "window" when that is
// not an identifier.
func SchemaName(node, fallback string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(node) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s[0] >= '0' && s[0] <= '9' || len(s) > 63 {
		return fallback
	}
	if _, err := md.NewSchema(s, md.Field{Name: "x"}); err != nil {
		return fallback
	}
	return s
}

func schemaFn(p *component.Params) (*md.Schema, error) {
	aggs, err := aggsOf(p)
	if err != nil {
		return nil, err
	}
	name := SchemaName(p.NodeID(), "window")
	if p.Has("name") {
		name = p.String("name")
	}
	sc, err := NewSchema(name, aggs)
	if err != nil {
		return nil, p.Errorf("aggregations", "%v", err)
	}
	return sc, nil
}

func fromParams(p *component.Params, shape string) (*Window, error) {
	aggs, err := aggsOf(p)
	if err != nil {
		return nil, err
	}
	cfg := Config{Aggs: aggs, Schema: p.Schema(), EveryRecord: p.String("emit") == "every_record"}
	switch shape {
	case "sliding":
		cfg.Kind, cfg.Size, cfg.Slide = Sliding, p.Duration("size").Nanoseconds(), p.Duration("slide").Nanoseconds()
	case "session":
		cfg.Kind, cfg.Gap = Session, p.Duration("gap").Nanoseconds()
	default:
		cfg.Kind, cfg.Size = Tumbling, p.Duration("size").Nanoseconds()
	}
	if cfg.Kind != Session {
		cfg.Offset = p.Duration("offset").Nanoseconds()
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
