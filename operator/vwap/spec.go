package vwap

import (
	"errors"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/window"
)

// Type is the component's type id.
const Type = "operator.vwap"

const description = `Computes the volume-weighted average price per symbol and emits one derived record per input trade (or bar: its vwap weighted by its volume): price, size, vwap, and the volume and number of trades the vwap is over.

mode session: sum(price × size) / sum(size) since the start of the record's session, a day starting at local midnight plus session_start in timezone (so 09:30 New York for a US equity session with session_start 9h30m, or 17:00 for an FX day with 17h); the first record of a session starts the sums afresh; volume is rounded to the exact decimal sum of the sizes, as operator.bars does. mode rolling: over the records with ts in (ts - window, ts], the sums kept incrementally (added as records enter, subtracted as they leave, restarted exactly whenever the window empties).

Records are taken per symbol in event-time order: each waits until the watermark passes its ts and they are folded in order of ts (ties in arrival order), so reordering within the source's max_out_of_orderness, batch sizes and parallelism never change the output; a record behind the watermark when it arrives is counted as dropped under "late". The schema is named by param name (default: the node id).`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "Session VWAP (from a session start in a time zone) or rolling VWAP per symbol",
		Description: description,
		Accepts:     md.KindTrade | md.KindBar,
		Produces:    md.KindDerived,
		Fields: []component.Field{
			{Name: "mode", Type: component.String, Default: "session", Enum: []string{"session", "rolling"},
				Description: "session: since the session start; rolling: over the trailing window."},
			{Name: "timezone", Type: component.String, Default: "UTC",
				Description: "Session: the IANA time zone of the session start.", Example: "America/New_York"},
			{Name: "session_start", Type: component.Duration, Default: "0s", Min: component.Bound(0), Max: component.Bound(86399),
				Description: "Session: the session's start after local midnight.", Example: "9h30m"},
			{Name: "window", Type: component.Duration, Min: component.Bound(0.001),
				Description: "Rolling: the trailing event-time window.", Example: "5m"},
			{Name: "name", Type: component.String,
				Description: "Name of the output schema: a lower-case identifier. Default: the node id, lower-cased with other characters as _.", Example: "vwap"},
		},
		Validate: func(p *component.Params) error {
			var errs []error
			if _, err := time.LoadLocation(p.String("timezone")); err != nil {
				errs = append(errs, p.Errorf("timezone", "unknown time zone %q (want an IANA name such as America/New_York)", p.String("timezone")))
			}
			if p.String("mode") == "rolling" {
				if !p.Has("window") {
					errs = append(errs, p.Errorf("window", "mode rolling needs window"))
				}
				if p.Has("timezone") || p.Has("session_start") {
					errs = append(errs, p.Errorf("timezone", "timezone and session_start apply to mode session"))
				}
			} else if p.Has("window") {
				errs = append(errs, p.Errorf("window", "window applies to mode rolling"))
			}
			return errors.Join(errs...)
		},
		SchemaFn: func(p *component.Params) (*md.Schema, error) {
			name := window.SchemaName(p.NodeID(), "vwap")
			if p.Has("name") {
				name = p.String("name")
			}
			sc, err := NewSchema(name)
			if err != nil {
				return nil, p.Errorf("name", "%v", err)
			}
			return sc, nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			loc, err := time.LoadLocation(p.String("timezone"))
			if err != nil {
				return nil, err
			}
			return New(Config{Rolling: p.String("mode") == "rolling", Window: p.Duration("window").Nanoseconds(),
				Location: loc, SessionStart: p.Duration("session_start").Nanoseconds(), Schema: p.Schema()})
		},
	})
}
