// Package vwap is the operator.vwap component: per-symbol session VWAP
// (reset at each session start in a time zone) or rolling VWAP (over the
// trailing event-time window), one derived record per input trade or bar.
//
// As operator.features does, it takes each symbol's records in event-time
// order: records wait until the watermark passes them and are then folded in
// order of ts (ties in arrival order), so reordering within the source's
// max_out_of_orderness, batch sizes and parallelism never change the
// output. State is per symbol in engine/keyed; releases are event-time
// timers there.
package vwap

import (
	"context"
	"fmt"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/hold"
	"github.com/mdpio/mdp/operator/resample"
)

// Config is the operator's settings.
type Config struct {
	Rolling      bool
	Window       int64          // rolling: the trailing window, ns
	Location     *time.Location // session: whose midnight (plus SessionStart) starts a session
	SessionStart int64
	Schema       *md.Schema
}

// point is a held record: price, size and the trades it is over.
type point struct {
	p, sz  float64
	trades int64
}

type entry struct {
	ts      int64
	pv, vol float64
}

type symState struct {
	pending hold.Queue[point] // waiting for the watermark
	// session
	sessEnd int64
	// both: the sums; rolling: the entries in the window, oldest at head
	pv, vol float64
	n       int64
	win     []entry
	head    int
}

// VWAP is the operator.
type VWAP struct {
	cfg   Config
	days  *resample.Resample
	st    *keyed.State[symState]
	sched hold.Schedule
	wm    int64
	input md.Kind

	ob       *md.Batch
	batchMax int
	symtab   *md.SymbolTable
	stats    *engine.NodeStats
	nLate    int64

	instance, instances int // for a restore: which symbols are this instance's
}

// NewSchema declares the output: price and size of the record, vwap, and
// the volume and count of trades it is over.
func NewSchema(name string) (*md.Schema, error) {
	return md.NewSchema(name, md.Field{Name: "price", Type: md.Float}, md.Field{Name: "size", Type: md.Float},
		md.Field{Name: "vwap", Type: md.Float}, md.Field{Name: "volume", Type: md.Float}, md.Field{Name: "trades", Type: md.Int})
}

// New returns the operator for cfg.
func New(cfg Config) (*VWAP, error) {
	if cfg.Schema == nil {
		return nil, fmt.Errorf("vwap: no schema")
	}
	if cfg.Rolling && cfg.Window <= 0 {
		return nil, fmt.Errorf("vwap: window must be positive")
	}
	days, err := resample.New(resample.Config{Interval: int64(24 * time.Hour), Location: cfg.Location, SessionStart: cfg.SessionStart})
	if err != nil {
		return nil, err
	}
	return &VWAP{cfg: cfg, days: days, st: keyed.NewState[symState](md.NewSymbolTable()), wm: md.MinTime, batchMax: md.DefaultBatchSize}, nil
}

// Open implements engine.Opener.
func (o *VWAP) Open(ctx context.Context, nc *engine.NodeContext) error {
	o.stats = nc.Stats
	o.instance, o.instances = nc.Instance, nc.Instances
	if nc.Pool != nil {
		o.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		o.st = keyed.NewState[symState](nc.Symbols)
		o.symtab = nc.Symbols
	}
	return nil
}

// Process implements engine.Processor.
func (o *VWAP) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if b.Kind != md.KindTrade && b.Kind != md.KindBar {
		return fmt.Errorf("operator.vwap takes trades or bars (it needs traded size), got a batch of %s records", b.Kind)
	}
	if o.input == md.KindNone {
		o.input = b.Kind
	} else if b.Kind != o.input {
		return fmt.Errorf("operator.vwap got %s records after %s records; one node takes one record kind", b.Kind, o.input)
	}
	for i := 0; i < n; i++ {
		var (
			ts  int64
			sym md.SymID
			pt  point
		)
		if b.Kind == md.KindTrade {
			t := &b.Trades[i]
			ts, sym, pt = t.TS, t.Sym, point{p: t.Price, sz: t.Size, trades: 1}
		} else {
			r := &b.Bars[i]
			ts, sym, pt = r.TS(), r.Sym, point{p: r.VWAP, sz: r.Volume, trades: r.Trades}
		}
		if ts < o.wm {
			o.nLate++
			continue
		}
		o.st.Get(sym).pending.Add(&o.sched, sym, ts, pt)
	}
	if o.stats != nil && o.nLate != 0 {
		o.stats.Drop("late", o.nLate)
		o.nLate = 0
	}
	return nil
}

// OnWatermark implements engine.WatermarkHandler.
func (o *VWAP) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	for syms, ok := o.sched.Due(wm); ok; syms, ok = o.sched.Due(wm) {
		for _, sym := range syms {
			s := o.st.Get(sym)
			for _, it := range s.pending.Release(&o.sched, sym, wm) {
				if err := o.fold(s, sym, it.TS, &it.Rec, out); err != nil {
					return err
				}
			}
		}
	}
	return o.flush(out)
}

func (o *VWAP) fold(s *symState, sym md.SymID, ts int64, pt *point, out *engine.Output) error {
	pv := float64(pt.p * pt.sz)
	if o.cfg.Rolling {
		// the window (ts - window, ts]
		for s.head < len(s.win) && s.win[s.head].ts <= ts-o.cfg.Window {
			e := &s.win[s.head]
			s.pv -= e.pv
			s.vol -= e.vol
			s.n--
			s.head++
		}
		if s.head == len(s.win) { // empty: restart the sums exactly
			s.win, s.head, s.pv, s.vol, s.n = s.win[:0], 0, 0, 0, 0
		} else if s.head > 64 && s.head*2 > len(s.win) {
			m := copy(s.win, s.win[s.head:])
			s.win, s.head = s.win[:m], 0
		}
		s.win = append(s.win, entry{ts: ts, pv: pv, vol: pt.sz})
	} else if ts >= s.sessEnd { // a new session
		_, s.sessEnd = o.days.Bucket(ts)
		s.pv, s.vol, s.n = 0, 0, 0
	}
	s.pv += pv
	s.vol += pt.sz
	s.n += pt.trades
	if o.ob == nil {
		o.ob = out.NewBatch(md.KindDerived)
		o.ob.Schema = o.cfg.Schema
	}
	row := o.ob.AddDerived(ts, sym)
	vol := s.vol
	if !o.cfg.Rolling && o.symtab != nil {
		if d, ok := o.symtab.SizeDecimals(sym); ok {
			vol = md.RoundSum(vol, s.n, d)
		}
	}
	v := pt.p
	if s.vol != 0 {
		v = s.pv / s.vol
	}
	row[0], row[1], row[2], row[3], row[4] = md.FloatValue(pt.p), md.FloatValue(pt.sz), md.FloatValue(v), md.FloatValue(vol), md.IntValue(s.n)
	if len(o.ob.Derived) >= o.batchMax {
		return o.flush(out)
	}
	return nil
}

// OutputWatermark implements engine.WatermarkHolder: records go out before
// the watermark that released them.
func (o *VWAP) OutputWatermark(wm int64) int64 { return wm }

func (o *VWAP) flush(out *engine.Output) error {
	if o.ob == nil {
		return nil
	}
	b := o.ob
	o.ob = nil
	return out.Emit(b)
}
