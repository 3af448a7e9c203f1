// Package quality is the operator.quality component: it checks every record
// and passes the good ones; the bad ones are counted by reason and dropped
// or sent to the dead_letter port (one batch per reason, its Reason
// "quality: <reason>"). A record breaking several rules counts once, under
// the first in this order:
//
//   - non_finite: a NaN or infinite price, size or bar value.
//   - non_positive_price: a trade price or bar price <= 0; a quote side
//     below 0, or both sides 0 (0 alone marks an absent side).
//   - non_positive_size: a trade size <= 0; a negative quote size or bar
//     volume.
//   - crossed_quote: a quote whose bid is above its ask (both present).
//   - ts_out_of_range: an event time before min_ts or at or after max_ts.
//   - ingest_skew: an event time more than max_ingest_skew away from the
//     record's ingest time (records without one are not checked).
//   - sequence: a sequence number not above the previous one of the same
//     symbol (0 means none); kept per symbol in the engine's keyed state,
//     so the result does not depend on parallelism.
package quality

import (
	"context"
	"fmt"
	"math"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.quality"

// Reason is why a record failed.
type Reason uint8

// Reasons, in checking order; ok is 0.
const (
	OK Reason = iota
	NonFinite
	NonPositivePrice
	NonPositiveSize
	Crossed
	TSRange
	IngestSkew
	Sequence
	nReasons
)

var reasonNames = [nReasons]string{"", "non_finite", "non_positive_price", "non_positive_size", "crossed_quote", "ts_out_of_range", "ingest_skew", "sequence"}

var deadLetterReasons = func() (out [nReasons]string) {
	for i := range out {
		out[i] = "quality: " + reasonNames[i]
	}
	return out
}()

// String returns the reason's counter name.
func (r Reason) String() string { return reasonNames[r] }

// checkNames are the names of the checks param, by the reason they enable.
var checkNames = map[string]Reason{"non_finite": NonFinite, "non_positive": NonPositivePrice, "crossed": Crossed,
	"ts_range": TSRange, "ingest_skew": IngestSkew, "sequence": Sequence}

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Check records (non-finite, non-positive, crossed, time, sequence); count by reason, drop or dead-letter",
		Description: "Checks, in order (a record counts once, under the first it breaks): non_finite (NaN or Inf), non_positive_price " +
			"(trade or bar price <= 0; a quote side < 0 or both 0), non_positive_size (trade size <= 0, negative quote size or bar " +
			"volume), crossed_quote (bid > ask, both present), ts_out_of_range (ts < min_ts or >= max_ts), ingest_skew (|ts - ingest| > " +
			"max_ingest_skew), sequence (seq not above the symbol's previous one; 0 means none). checks picks which run (non_positive " +
			"covers prices and sizes). action drop counts failed records as dropped by reason; dead_letter sends them to the " +
			"dead_letter port with reason \"quality: <reason>\" and counts them by reason.",
		Accepts: md.KindTrade | md.KindQuote | md.KindBar, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "checks", Type: component.Strings, Default: []any{"non_finite", "non_positive", "crossed", "ts_range", "ingest_skew", "sequence"},
				Enum:        []string{"non_finite", "non_positive", "crossed", "ts_range", "ingest_skew", "sequence"},
				Description: "The checks to run; ts_range needs min_ts or max_ts and ingest_skew needs max_ingest_skew to do anything."},
			{Name: "action", Type: component.String, Default: "drop", Enum: []string{"drop", "dead_letter"},
				Description: "drop: count failed records as dropped by reason; dead_letter: send them to the dead_letter port."},
			{Name: "min_ts", Type: component.Time, Description: "Earliest valid event time (inclusive).", Example: "2024-01-01T00:00:00Z"},
			{Name: "max_ts", Type: component.Time, Description: "End of valid event times (exclusive).", Example: "2030-01-01T00:00:00Z"},
			{Name: "max_ingest_skew", Type: component.Duration, Default: "0s", Min: component.Bound(0),
				Description: "Largest allowed distance between a record's event time and its ingest time; 0 disables.", Example: "5m"},
		},
		Validate: func(p *component.Params) error {
			for _, c := range p.Strings("checks") {
				if _, ok := checkNames[c]; !ok {
					return p.Errorf("checks", "unknown check %q (want non_finite, non_positive, crossed, ts_range, ingest_skew, sequence)", c)
				}
			}
			lo, okLo := p.Time("min_ts")
			hi, okHi := p.Time("max_ts")
			if okLo && okHi && hi <= lo {
				return p.Errorf("max_ts", "max_ts must be after min_ts")
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			cfg := Config{DeadLetter: p.String("action") == "dead_letter", MinTS: md.MinTime, MaxTS: md.MaxTime,
				MaxIngestSkew: p.Duration("max_ingest_skew").Nanoseconds()}
			if v, ok := p.Time("min_ts"); ok {
				cfg.MinTS = v
			}
			if v, ok := p.Time("max_ts"); ok {
				cfg.MaxTS = v
			}
			for _, c := range p.Strings("checks") {
				r := checkNames[c]
				cfg.Checks[r] = true
				if r == NonPositivePrice {
					cfg.Checks[NonPositiveSize] = true
				}
			}
			return New(cfg), nil
		},
	})
}

// Config is the checks to run and what to do with failures.
type Config struct {
	Checks        [nReasons]bool
	MinTS, MaxTS  int64 // valid event times [MinTS, MaxTS)
	MaxIngestSkew int64 // ns; 0 disables
	DeadLetter    bool
}

// Quality is the operator.
type Quality struct {
	cfg     Config
	nc      *engine.NodeContext
	lastSeq *keyed.State[uint64]
	reasons []Reason // per record of the current batch
	counts  [nReasons]int64
}

// New returns a checker.
func New(cfg Config) *Quality { return &Quality{cfg: cfg} }

// Open sets up the per-symbol sequence state.
func (q *Quality) Open(ctx context.Context, nc *engine.NodeContext) error {
	q.nc = nc
	q.lastSeq = keyed.NewState[uint64](nc.Symbols)
	return nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func (q *Quality) common(ts, ingest int64, seq uint64, sym md.SymID) Reason {
	c := &q.cfg.Checks
	if c[TSRange] && (ts < q.cfg.MinTS || ts >= q.cfg.MaxTS) {
		return TSRange
	}
	if c[IngestSkew] && q.cfg.MaxIngestSkew > 0 && ingest != 0 {
		d := ts - ingest
		if d < 0 {
			d = -d
		}
		if d > q.cfg.MaxIngestSkew {
			return IngestSkew
		}
	}
	if c[Sequence] && seq != 0 {
		last := q.lastSeq.Get(sym)
		if seq <= *last {
			return Sequence
		}
		*last = seq
	}
	return OK
}

func (q *Quality) trade(t *md.Trade) Reason {
	c := &q.cfg.Checks
	switch {
	case c[NonFinite] && !finite(t.Price, t.Size):
		return NonFinite
	case c[NonPositivePrice] && !(t.Price > 0):
		return NonPositivePrice
	case c[NonPositiveSize] && !(t.Size > 0):
		return NonPositiveSize
	}
	return q.common(t.TS, t.Ingest, t.Seq, t.Sym)
}

func (q *Quality) quote(x *md.Quote) Reason {
	c := &q.cfg.Checks
	switch {
	case c[NonFinite] && !finite(x.Bid, x.Ask, x.BidSize, x.AskSize):
		return NonFinite
	case c[NonPositivePrice] && (!(x.Bid >= 0) || !(x.Ask >= 0) || (x.Bid == 0 && x.Ask == 0)):
		return NonPositivePrice
	case c[NonPositiveSize] && (!(x.BidSize >= 0) || !(x.AskSize >= 0)):
		return NonPositiveSize
	case c[Crossed] && x.Bid > 0 && x.Ask > 0 && x.Bid > x.Ask:
		return Crossed
	}
	return q.common(x.TS, x.Ingest, x.Seq, x.Sym)
}

func (q *Quality) bar(b *md.Bar) Reason {
	c := &q.cfg.Checks
	switch {
	case c[NonFinite] && !finite(b.Open, b.High, b.Low, b.Close, b.Volume, b.VWAP):
		return NonFinite
	case c[NonPositivePrice] && !(b.Open > 0 && b.High > 0 && b.Low > 0 && b.Close > 0):
		return NonPositivePrice
	case c[NonPositiveSize] && !(b.Volume >= 0):
		return NonPositiveSize
	}
	return q.common(b.Start, 0, 0, b.Sym)
}

// Process checks b's records. A batch with no failures is forwarded whole.
func (q *Quality) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	q.reasons = q.reasons[:0]
	bad := 0
	for i := 0; i < n; i++ {
		var r Reason
		switch b.Kind {
		case md.KindTrade:
			r = q.trade(&b.Trades[i])
		case md.KindQuote:
			r = q.quote(&b.Quotes[i])
		case md.KindBar:
			r = q.bar(&b.Bars[i])
		default:
			return fmt.Errorf("operator.quality: cannot check %s records", b.Kind)
		}
		q.reasons = append(q.reasons, r)
		if r != OK {
			bad++
		}
	}
	if bad == 0 {
		b.Retain(1)
		return out.Emit(b)
	}
	good := q.nc.Pool.GetCap(b.Kind, n-bad)
	copyWhere(good, b, q.reasons, OK)
	if err := out.Emit(good); err != nil {
		return err
	}
	clear(q.counts[:])
	for _, r := range q.reasons {
		q.counts[r]++
	}
	for r := Reason(1); r < nReasons; r++ {
		c := q.counts[r]
		if c == 0 {
			continue
		}
		if !q.cfg.DeadLetter {
			q.nc.Stats.Drop(r.String(), c)
			continue
		}
		q.nc.Stats.Count(r.String(), c)
		dl := q.nc.Pool.GetCap(b.Kind, int(c))
		dl.Reason = deadLetterReasons[r]
		copyWhere(dl, b, q.reasons, r)
		if err := out.EmitTo(engine.PortDeadLetter, dl); err != nil {
			return err
		}
	}
	return nil
}

func copyWhere(dst, src *md.Batch, reasons []Reason, want Reason) {
	for i, r := range reasons {
		if r != want {
			continue
		}
		switch src.Kind {
		case md.KindTrade:
			dst.Trades = append(dst.Trades, src.Trades[i])
		case md.KindQuote:
			dst.Quotes = append(dst.Quotes, src.Quotes[i])
		case md.KindBar:
			dst.Bars = append(dst.Bars, src.Bars[i])
		}
	}
}
