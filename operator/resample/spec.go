package resample

import (
	"errors"
	"time"
	_ "time/tzdata" // time zones for day bars, whatever the host has installed

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.resample_ohlc"

const description = `Resamples time bars to coarser time bars per symbol: 1s bars to 1m, 1m to 1h, 1h to 1d, or any interval that is a multiple of the input's on the same grid (an input bar that does not fit inside one output bar fails the batch).

A coarse bar equals the bar operator.bars builds from the same trades directly: open is the open of the earliest input bar, close the close of the latest, high and low the extremes, trades and volume the sums (volume rounded to the exact decimal sum of the input sizes, as operator.bars does), vwap the volume-weighted mean of the input vwaps (for quote bars the mean price over all updates); only vwap can differ from the direct one, by float rounding (relative 1e-12 or less). Type, source and label carry over; interval is the param.

Grid: intervals shorter than a day are aligned to the Unix epoch. An interval of whole days is aligned to midnight plus session_start in timezone, counting days from 1970-01-01 in that zone: a day bar runs from one local session start to the next (23 or 25 hours across a daylight-saving change) while its interval stays the nominal 1d, so every day shares one store key.

Closing: a coarse bar closes when the watermark reaches its end; operator.bars upstream holds its watermark at the start of bars still to come, so every input bar arrives first. Input bars are kept by start until their output bar closes, so a corrected input bar (update=true, from late_policy: update upstream) replaces the one it corrects. An input bar for an output bar that already closed is late: late_policy drop counts it under "late", side_output sends it to the "late" port. The forwarded watermark is held at the start of the output bar holding it.`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "Time bars to coarser time bars (1s → 1m → 1h → 1d in a time zone), exact",
		Description: description,
		Accepts:     md.KindBar,
		Produces:    md.KindBar,
		Ports:       map[string]md.Kind{engine.PortLate: md.KindBar},
		Fields: []component.Field{
			{Name: "interval", Type: component.Duration, Required: true, Min: component.Bound(0.001),
				Description: "The output bars' length: a multiple of the input bars'.", Example: "1m"},
			{Name: "timezone", Type: component.String, Default: "UTC",
				Description: "For intervals of whole days: the IANA time zone whose midnight (plus session_start) starts a day.", Example: "America/New_York"},
			{Name: "session_start", Type: component.Duration, Default: "0s", Min: component.Bound(0), Max: component.Bound(86399),
				Description: "For intervals of whole days: when the day starts after local midnight (17h for an FX day ending at 17:00 New York time).", Example: "17h"},
			{Name: "late_policy", Type: component.String, Default: "drop", Enum: []string{"drop", "side_output"},
				Description: "What happens to an input bar whose output bar already closed: drop (counted under late) or side_output (to the late port)."},
		},
		Validate: func(p *component.Params) error {
			var errs []error
			if _, err := time.LoadLocation(p.String("timezone")); err != nil {
				errs = append(errs, p.Errorf("timezone", "unknown time zone %q (want an IANA name such as America/New_York)", p.String("timezone")))
			}
			days := p.Duration("interval")%(24*time.Hour) == 0
			if !days && (p.Has("timezone") && p.String("timezone") != "UTC" || p.Duration("session_start") != 0) {
				errs = append(errs, p.Errorf("timezone", "timezone and session_start apply to intervals of whole days; %s bars are aligned to the Unix epoch", p.Duration("interval")))
			}
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			loc, err := time.LoadLocation(p.String("timezone"))
			if err != nil {
				return nil, err
			}
			return New(Config{Interval: p.Duration("interval").Nanoseconds(), Location: loc,
				SessionStart: p.Duration("session_start").Nanoseconds(), SideOutput: p.String("late_policy") == "side_output"})
		},
	})
}
