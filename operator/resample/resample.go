// Package resample is the operator.resample_ohlc component: time bars to
// coarser time bars (1s → 1m → 1h → 1d), per symbol, closed by the
// watermark, with day bars aligned to midnight (plus a session start) in a
// time zone.
//
// A coarse bar is built from the fine bars inside it as operator.bars would
// build it from their trades: open is the open of the earliest fine bar,
// close the close of the latest, high and low the extremes, volume and
// trades the sums (volume rounded to the exact decimal sum, md.RoundSum),
// vwap the volume-weighted mean of the fine vwaps. The fine bars of an open
// coarse bar are kept by start, so a corrected fine bar (update=true, from an
// upstream late_policy: update) replaces the one it corrects instead of
// being counted twice. State is per symbol in engine/keyed; each coarse bar
// closes on an event-time timer there.
package resample

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// DropLate is the reason late input bars are counted under.
const DropLate = "late"

const day = int64(24 * time.Hour)

// Config is a resampler's settings.
type Config struct {
	Interval     int64          // ns, > 0
	Location     *time.Location // day-multiple intervals: whose midnight starts a day
	SessionStart int64          // day-multiple intervals: offset of the day's start from local midnight
	SideOutput   bool           // late bars to the late port instead of dropped
}

// bucket is one open coarse bar: its fine bars in order of start.
type bucket struct {
	start, end int64
	fine       []md.Bar
}

type symState struct {
	open  []bucket   // in order of start
	spare [][]md.Bar // emptied fine slices of closed buckets, for reuse
}

// Resample is the operator. It implements engine.Processor, Opener,
// WatermarkHandler and WatermarkHolder.
type Resample struct {
	cfg    Config
	days   bool // interval is a whole number of days: align to local midnights
	st     *keyed.State[symState]
	timers keyed.Timers
	source md.BarSource
	seen   bool
	wm     int64
	closed int64 // every coarse bar starting before this has closed

	ob       *md.Batch
	batchMax int
	symtab   *md.SymbolTable
	stats    *engine.NodeStats
	nLate    int64

	instance, instances int // for a restore: which symbols are this instance's
}

// New returns a resampler for cfg.
func New(cfg Config) (*Resample, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("resample: interval must be positive")
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Resample{cfg: cfg, days: cfg.Interval%day == 0, st: keyed.NewState[symState](md.NewSymbolTable()),
		wm: md.MinTime, closed: md.MinTime, batchMax: md.DefaultBatchSize}, nil
}

// Open implements engine.Opener.
func (r *Resample) Open(ctx context.Context, nc *engine.NodeContext) error {
	r.stats = nc.Stats
	r.instance, r.instances = nc.Instance, nc.Instances
	if nc.Pool != nil {
		r.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		r.st = keyed.NewState[symState](nc.Symbols)
		r.symtab = nc.Symbols
	}
	return nil
}

// Bucket returns the coarse bar [start, end) holding ts: the Unix-epoch grid
// of the interval, or for a whole number of days, runs of that many local
// days (counted from 1970-01-01 in the zone) starting at local midnight plus
// the session start; such a day is 23 or 25 hours long across a daylight
// saving change.
func (r *Resample) Bucket(ts int64) (start, end int64) {
	if !r.days {
		s := md.FloorTo(ts, r.cfg.Interval, 0)
		return s, s + r.cfg.Interval
	}
	n := int(r.cfg.Interval / day)
	t := time.Unix(0, ts-r.cfg.SessionStart).In(r.cfg.Location)
	y, m, d := t.Date()
	mid := time.Date(y, m, d, 0, 0, 0, 0, r.cfg.Location)
	// days since 1970-01-01 in the zone, floored to a multiple of n
	k := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	off := ((k % n) + n) % n
	first := mid.AddDate(0, 0, -off)
	last := first.AddDate(0, 0, n)
	return first.UnixNano() + r.cfg.SessionStart, last.UnixNano() + r.cfg.SessionStart
}

// Process implements engine.Processor.
func (r *Resample) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if b.Len() == 0 {
		return nil
	}
	if b.Kind != md.KindBar {
		return fmt.Errorf("operator.resample_ohlc takes bars, got a batch of %s records", b.Kind)
	}
	var late *md.Batch
	for i := range b.Bars {
		fb := &b.Bars[i]
		if fb.Type != md.BarTime {
			return fmt.Errorf("operator.resample_ohlc resamples time bars, got a %s bar", fb.Type)
		}
		if !r.seen {
			r.seen, r.source = true, fb.Source
		} else if fb.Source != r.source {
			return fmt.Errorf("operator.resample_ohlc got %s bars after %s bars; one node resamples bars of one source", fb.Source, r.source)
		}
		start, end := r.Bucket(fb.Start)
		if fb.End > end {
			return fmt.Errorf("operator.resample_ohlc: the input bar [%s, %s) does not fit in the output bar [%s, %s): the interval must be a multiple of the input's, on the same grid",
				md.FormatTime(fb.Start), md.FormatTime(fb.End), md.FormatTime(start), md.FormatTime(end))
		}
		if start < r.closed {
			if r.cfg.SideOutput {
				if late == nil {
					late = out.NewBatch(md.KindBar)
				}
				late.Bars = append(late.Bars, *fb)
			} else {
				r.nLate++
			}
			continue
		}
		s := r.st.Get(fb.Sym)
		k := len(s.open) - 1
		if k < 0 || s.open[k].start != start {
			var found bool
			k, found = slices.BinarySearchFunc(s.open, start, func(x bucket, t int64) int { return cmp.Compare(x.start, t) })
			if !found {
				nb := bucket{start: start, end: end}
				if n := len(s.spare); n > 0 {
					nb.fine, s.spare = s.spare[n-1], s.spare[:n-1]
				}
				s.open = slices.Insert(s.open, k, nb)
				r.timers.Set(end, fb.Sym)
			}
		}
		bk := &s.open[k]
		n := len(bk.fine)
		switch {
		case n == 0 || bk.fine[n-1].Start < fb.Start:
			bk.fine = append(bk.fine, *fb)
		default:
			j, found := slices.BinarySearchFunc(bk.fine, fb.Start, func(x md.Bar, t int64) int { return cmp.Compare(x.Start, t) })
			if found {
				bk.fine[j] = *fb // a correction replaces the bar it corrects
			} else {
				bk.fine = slices.Insert(bk.fine, j, *fb)
			}
		}
	}
	var err error
	if late != nil {
		late.Reason = DropLate
		err = out.EmitTo(engine.PortLate, late)
	}
	r.flushStats()
	return err
}

// OnWatermark implements engine.WatermarkHandler: every coarse bar whose end
// the watermark reached is emitted, in order of end, then symbol.
func (r *Resample) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= r.wm {
		return nil
	}
	r.wm = wm
	for _, syms, ok := r.timers.Pop(wm); ok; _, syms, ok = r.timers.Pop(wm) {
		for _, sym := range syms {
			s := r.st.Get(sym)
			k := 0
			for k < len(s.open) && s.open[k].end <= wm {
				if err := r.emit(sym, &s.open[k], out); err != nil {
					return err
				}
				k++
			}
			if k > 0 {
				// keep the fine slices' capacity for reuse
				for i := 0; i < k; i++ {
					s.spare = append(s.spare, s.open[i].fine[:0])
				}
				n := copy(s.open, s.open[k:])
				for i := n; i < len(s.open); i++ {
					s.open[i] = bucket{}
				}
				s.open = s.open[:n]
			}
		}
	}
	if wm != md.MaxTime {
		if st, _ := r.Bucket(wm); st > r.closed {
			r.closed = st
		}
	}
	return r.flush(out)
}

// OutputWatermark implements engine.WatermarkHolder: the start of the coarse
// bar holding wm, before which no bar is still to come.
func (r *Resample) OutputWatermark(wm int64) int64 {
	if wm == md.MaxTime || wm <= md.MinTime/2 {
		return wm
	}
	st, _ := r.Bucket(wm)
	return min(wm, st)
}

func (r *Resample) emit(sym md.SymID, bk *bucket, out *engine.Output) error {
	if len(bk.fine) == 0 {
		return nil
	}
	f := bk.fine
	c := md.Bar{Start: bk.start, End: bk.end, Interval: r.cfg.Interval, Sym: sym, Type: md.BarTime, Source: r.source,
		Open: f[0].Open, Close: f[len(f)-1].Close, High: f[0].High, Low: f[0].Low, LabelEnd: f[0].LabelEnd}
	var pv, vol, qsum float64
	for i := range f {
		x := &f[i]
		c.High = max(c.High, x.High)
		c.Low = min(c.Low, x.Low)
		c.Trades += x.Trades
		vol += x.Volume
		pv += float64(x.VWAP * x.Volume)
		qsum += float64(x.VWAP * float64(x.Trades))
		c.Partial = c.Partial || x.Partial
	}
	// A fine bar that is partial makes the coarse one partial; so does a
	// gap in the interval with no fine bar at all.
	c.Partial = c.Partial || r.symtab != nil && r.symtab.Gapped(sym, c.Start, c.End)
	switch {
	case r.source != md.FromTrades: // quote bars: the mean price over all updates
		c.VWAP = qsum / float64(c.Trades)
	case vol != 0:
		c.VWAP = pv / vol
	default:
		c.VWAP = c.Close
	}
	c.Volume = vol
	if r.symtab != nil && r.source == md.FromTrades {
		if d, ok := r.symtab.SizeDecimals(sym); ok {
			c.Volume = md.RoundSum(vol, c.Trades, d)
		}
	}
	if r.ob == nil {
		r.ob = out.NewBatch(md.KindBar)
	}
	r.ob.Bars = append(r.ob.Bars, c)
	if len(r.ob.Bars) >= r.batchMax {
		return r.flush(out)
	}
	return nil
}

func (r *Resample) flush(out *engine.Output) error {
	if r.ob == nil {
		return nil
	}
	b := r.ob
	r.ob = nil
	return out.Emit(b)
}

func (r *Resample) flushStats() {
	if r.stats != nil && r.nLate != 0 {
		r.stats.Drop(DropLate, r.nLate)
		r.nLate = 0
	}
}
