package bars

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Activity bars close on what traded instead of on the clock: tick bars
// after a number of records, volume bars after a traded size, value bars
// after a traded value (price × size), and López de Prado's tick and volume
// imbalance bars when the signed flow outgrows what was expected.
//
// Which records make up a bar depends on their order, so the builder folds
// them in event-time order (ties in arrival order), never in arrival order:
// it holds every record until the watermark passes it, then folds the
// released records sorted by time. Out-of-order records within the source's
// tolerance therefore land where a time-sorted copy of the stream puts them,
// and batch sizes and parallelism never change a bar. A record behind the
// watermark is late (counted, or sent to the late port); a late record can
// never be folded in, since every later bar would shift.

// ActivityConfig is the settings of a tick, volume, value or imbalance bar
// builder.
type ActivityConfig struct {
	Type md.BarType // BarTick, BarVolume, BarValue, BarTickImbalance or BarVolumeImbalance
	// Threshold is records (tick), size (volume) or value (value) per bar.
	Threshold float64
	// SplitLargeTrades splits a trade that overshoots a volume or value bar:
	// the part that fills the bar goes in it and the rest opens the next
	// bar(s), so every closed bar holds exactly the threshold.
	SplitLargeTrades bool
	// ExpectedTicks is an imbalance bar's first estimate of ticks per bar,
	// E0[T]; the symbol's first bar is a tick bar of that length.
	ExpectedTicks float64
	// MinTicks and MaxTicks bound the estimate of ticks per bar.
	MinTicks, MaxTicks float64
	// BarSpan and TickSpan are the spans of the exponentially weighted means
	// of bar lengths (over bars) and of the signed flow (over ticks):
	// alpha = 2 / (span + 1).
	BarSpan, TickSpan float64
	LabelClose        bool
	Price             PriceSource // quote tick bars
	SideOutput        bool        // late records to the late port (else dropped, counted)
}

// actState is one symbol's state: its open bar, where its last bar ended,
// and the imbalance estimates.
type actState struct {
	n               int64 // records in the open bar (0: none open)
	firstTS, lastTS int64
	open, high, low float64
	close, vol, pv  float64
	theta, thresh   float64 // imbalance so far; the bar's threshold, fixed when it opened

	lastEnd int64 // end of the symbol's previous bar
	ended   bool  // the symbol has closed a bar

	prevPrice float64 // tick rule: last price and sign
	sign      float64
	hasPrev   bool
	eT, eImb  float64 // E[T] over bars and E[b] or E[b·v] over ticks
	hasImb    bool
}

// pendRec is a record held until the watermark passes it.
type pendRec struct {
	ts    int64
	p, sz float64
	sym   md.SymID
}

// Activity is the tick, volume, value and imbalance bar builder. It
// implements engine.Processor, WatermarkHandler, WatermarkHolder and
// Snapshotter.
type Activity struct {
	cfg            ActivityConfig
	tol            float64 // a bar is full within this of the threshold
	alphaB, alphaT float64
	interval       int64 // the bars' interval column

	st   *keyed.State[actState]
	pend []pendRec // records at or after the watermark, in arrival order
	rel  []pendRec // scratch: the records a watermark releases

	input md.Kind
	wm    int64 // input watermark: records before it have been folded
	hold  int64 // start of the earliest open bar (md.MaxTime: none)

	ob       *md.Batch
	batchMax int
	symtab   *md.SymbolTable
	stats    *engine.NodeStats

	instance, instances int

	nLate, nMissing int64
}

// microsecond is the least span of an activity bar: stores key bars by their
// start to the microsecond, so bars of one symbol must start in distinct
// microseconds.
const microsecond = int64(1000)

// NewActivity returns a tick, volume, value or imbalance bar builder.
func NewActivity(cfg ActivityConfig) (*Activity, error) {
	o := &Activity{cfg: cfg, wm: md.MinTime, hold: md.MaxTime, batchMax: md.DefaultBatchSize, instances: 1}
	switch cfg.Type {
	case md.BarTick, md.BarVolume, md.BarValue:
		if !(cfg.Threshold >= 1) || cfg.Threshold != math.Trunc(cfg.Threshold) || cfg.Threshold > 1e15 {
			return nil, fmt.Errorf("bars: threshold must be a whole number from 1 to 10^15, got %v", cfg.Threshold)
		}
		if cfg.SplitLargeTrades && cfg.Type == md.BarTick {
			return nil, fmt.Errorf("bars: split_large_trades applies to volume and value bars, not tick bars")
		}
		o.interval = int64(cfg.Threshold)
		o.tol = cfg.Threshold * 1e-9
	case md.BarTickImbalance, md.BarVolumeImbalance:
		switch {
		case !(cfg.ExpectedTicks >= 1) || cfg.ExpectedTicks != math.Trunc(cfg.ExpectedTicks) || cfg.ExpectedTicks > 1e15:
			return nil, fmt.Errorf("bars: expected_ticks must be a whole number from 1 to 10^15, got %v", cfg.ExpectedTicks)
		case !(cfg.MinTicks >= 1) || !(cfg.MinTicks <= cfg.ExpectedTicks) || !(cfg.MaxTicks >= cfg.ExpectedTicks):
			return nil, fmt.Errorf("bars: want 1 <= min_expected_ticks (%v) <= expected_ticks (%v) <= max_expected_ticks (%v)", cfg.MinTicks, cfg.ExpectedTicks, cfg.MaxTicks)
		case !(cfg.BarSpan >= 1) || !(cfg.TickSpan >= 1):
			return nil, fmt.Errorf("bars: ewma_bars (%v) and ewma_ticks (%v) must be at least 1", cfg.BarSpan, cfg.TickSpan)
		case cfg.SplitLargeTrades:
			return nil, fmt.Errorf("bars: split_large_trades applies to volume and value bars, not imbalance bars")
		}
		o.interval = int64(cfg.ExpectedTicks)
		o.alphaB, o.alphaT = 2/(cfg.BarSpan+1), 2/(cfg.TickSpan+1)
	default:
		return nil, fmt.Errorf("bars: %v bars are not activity bars", cfg.Type)
	}
	o.st = keyed.NewState[actState](md.NewSymbolTable()) // replaced by the job's in Open
	return o, nil
}

// Open implements engine.Opener.
func (o *Activity) Open(ctx context.Context, nc *engine.NodeContext) error {
	o.stats = nc.Stats
	o.instance, o.instances = nc.Instance, max(nc.Instances, 1)
	if nc.Pool != nil {
		o.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		o.st = keyed.NewState[actState](nc.Symbols)
	}
	o.symtab = nc.Symbols
	return nil
}

// Process implements engine.Processor: it holds each record until the
// watermark passes it, or applies the late policy to a record already
// behind it.
func (o *Activity) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if b.Len() == 0 {
		return nil
	}
	switch {
	case b.Kind == md.KindQuote && o.cfg.Type != md.BarTick:
		return fmt.Errorf("operator.bars with bar_type %v takes trades, got quotes (quotes carry no traded size; tick bars take either)", o.cfg.Type)
	case b.Kind != md.KindTrade && b.Kind != md.KindQuote:
		return fmt.Errorf("operator.bars takes trades or quotes, got a batch of %s records", b.Kind)
	case o.input == md.KindNone:
		o.input = b.Kind
	case b.Kind != o.input:
		return fmt.Errorf("operator.bars got %s records after %s records; one bars node builds either trade bars or quote bars, use one node per record kind", b.Kind, o.input)
	}
	var late *md.Batch
	if b.Kind == md.KindTrade {
		for i := range b.Trades {
			t := &b.Trades[i]
			if t.TS < o.wm {
				if late = o.late(late, out, md.KindTrade); late != nil {
					late.Trades = append(late.Trades, *t)
				}
				continue
			}
			o.pend = append(o.pend, pendRec{ts: t.TS, p: t.Price, sz: t.Size, sym: t.Sym})
		}
	} else {
		for i := range b.Quotes {
			q := &b.Quotes[i]
			if !hasPrice(q, o.cfg.Price) {
				o.nMissing++
				continue
			}
			if q.TS < o.wm {
				if late = o.late(late, out, md.KindQuote); late != nil {
					late.Quotes = append(late.Quotes, *q)
				}
				continue
			}
			o.pend = append(o.pend, pendRec{ts: q.TS, p: quotePrice(q, o.cfg.Price), sz: 1, sym: q.Sym})
		}
	}
	var err error
	if late != nil {
		late.Reason = DropLate
		err = out.EmitTo(engine.PortLate, late)
	}
	o.flushStats()
	return err
}

// late counts a late record, or returns the batch it goes to on the late
// port.
func (o *Activity) late(b *md.Batch, out *engine.Output, k md.Kind) *md.Batch {
	if !o.cfg.SideOutput {
		o.nLate++
		return nil
	}
	if b == nil {
		b = out.NewBatch(k)
	}
	return b
}

// OnWatermark implements engine.WatermarkHandler: it folds every held record
// before wm, in event-time order (ties in arrival order). md.MaxTime folds
// everything and emits every open bar, partial ones included.
func (o *Activity) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	rel := o.rel[:0]
	keep := o.pend[:0]
	for _, r := range o.pend {
		if r.ts < wm {
			rel = append(rel, r)
		} else {
			keep = append(keep, r)
		}
	}
	o.pend = keep
	byTS := func(a, b pendRec) int { return cmp.Compare(a.ts, b.ts) }
	if !slices.IsSortedFunc(rel, byTS) {
		slices.SortStableFunc(rel, byTS)
	}
	var err error
	for i := range rel {
		if err = o.fold(&rel[i], out); err != nil {
			break
		}
	}
	o.rel = rel[:0]
	if err == nil && wm == md.MaxTime {
		err = o.flushOpen(out)
	}
	if err == nil {
		err = o.flush(out)
	}
	o.hold = o.earliestOpen()
	o.flushStats()
	return err
}

// OutputWatermark implements engine.WatermarkHolder: a bar still to come
// starts at or after the earliest open bar's start, or at or after the
// input watermark when no bar is open.
func (o *Activity) OutputWatermark(wm int64) int64 { return min(wm, o.hold) }

// earliestOpen is the start of the earliest open bar, md.MaxTime if none.
// It walks the dense state once per watermark, not per record.
func (o *Activity) earliestOpen() int64 {
	h := md.MaxTime
	for i := range o.st.Slice() {
		if s := &o.st.Slice()[i]; s.n != 0 {
			h = min(h, o.start(s))
		}
	}
	return h
}

// flushOpen emits every open bar, in symbol id order, at end of stream.
func (o *Activity) flushOpen(out *engine.Output) error {
	for i := range o.st.Slice() {
		if s := &o.st.Slice()[i]; s.n != 0 {
			if err := o.closeBar(md.SymID(i), s, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// fold adds one released record to its symbol's open bar, closing bars as
// they fill.
func (o *Activity) fold(r *pendRec, out *engine.Output) error {
	s := o.st.Get(r.sym)
	switch o.cfg.Type {
	case md.BarTick:
		o.add(s, r.ts, r.p, r.sz)
		if float64(s.n) >= o.cfg.Threshold {
			return o.closeBar(r.sym, s, out)
		}
		return nil
	case md.BarVolume, md.BarValue:
		return o.foldSized(r, s, out)
	}
	return o.foldImbalance(r, s, out)
}

// foldSized is fold for volume and value bars.
func (o *Activity) foldSized(r *pendRec, s *actState, out *engine.Output) error {
	value := o.cfg.Type == md.BarValue
	sz := r.sz
	dec, hasDec := 0, false
	if o.symtab != nil {
		dec, hasDec = o.symtab.SizeDecimals(r.sym)
	}
	for {
		filled, amount := s.vol, sz
		if value {
			filled, amount = s.pv, float64(r.p*sz)
		}
		room := o.cfg.Threshold - filled
		if !o.cfg.SplitLargeTrades || amount <= room+o.tol {
			o.add(s, r.ts, r.p, sz)
			if filled+amount >= o.cfg.Threshold-o.tol {
				return o.closeBar(r.sym, s, out)
			}
			return nil
		}
		// Split: the part that fills this bar, then the rest.
		part := room
		if value {
			part = room / r.p
		}
		if hasDec && !value {
			if p := roundTo(part, dec); p > 0 {
				part = p
			}
		}
		o.add(s, r.ts, r.p, part)
		if value {
			s.pv = o.cfg.Threshold
		} else {
			s.vol = o.cfg.Threshold
		}
		if err := o.closeBar(r.sym, s, out); err != nil {
			return err
		}
		sz -= part
		if hasDec {
			sz = roundTo(sz, dec)
		}
		if sz <= 0 {
			return nil
		}
	}
}

// roundTo rounds x to d decimal places.
func roundTo(x float64, d int) float64 {
	p := math.Pow10(d)
	return math.Round(x*p) / p
}

// foldImbalance is fold for imbalance bars. The tick rule signs each tick:
// +1 or -1 by the direction of the price change, the previous sign when the
// price did not change (0 until the symbol's price first changes). The
// imbalance θ of the open bar is the sum of the signs (tick imbalance) or
// of sign × size (volume imbalance). A bar closes at the first tick where
// |θ| reaches E[T]·|E[x]|, both estimates taken when the bar opened: E[T] is
// the exponentially weighted mean of the symbol's bar lengths in ticks
// (span ewma_bars, starting at expected_ticks, kept within
// [min_expected_ticks, max_expected_ticks]) and E[x] that of the signed
// flow x per tick (span ewma_ticks, starting at the first tick's x). The
// symbol's first bar, opened with no estimate, is a tick bar of
// expected_ticks ticks. A bar whose θ is 0 never closes, so a threshold of
// 0 (no flow yet) waits for the first signed tick.
func (o *Activity) foldImbalance(r *pendRec, s *actState, out *engine.Output) error {
	if s.eT == 0 {
		s.eT = o.cfg.ExpectedTicks
	}
	if s.hasPrev && r.p != s.prevPrice {
		s.sign = 1
		if r.p < s.prevPrice {
			s.sign = -1
		}
	}
	s.prevPrice, s.hasPrev = r.p, true
	x := s.sign
	if o.cfg.Type == md.BarVolumeImbalance {
		x = float64(s.sign * r.sz)
	}
	o.add(s, r.ts, r.p, r.sz) // opening a bar fixes its threshold first
	s.theta += x
	if s.hasImb {
		s.eImb += o.alphaT * (x - s.eImb)
	} else {
		s.eImb, s.hasImb = x, true
	}
	full := float64(s.n) >= o.cfg.ExpectedTicks
	if s.ended {
		full = s.theta != 0 && math.Abs(s.theta) >= s.thresh
	}
	if !full {
		return nil
	}
	s.eT += o.alphaB * (float64(s.n) - s.eT)
	s.eT = min(max(s.eT, o.cfg.MinTicks), o.cfg.MaxTicks)
	return o.closeBar(r.sym, s, out)
}

// add folds a record into the symbol's open bar, opening one if needed.
// Records come in event-time order, so the first is the open and the last
// the close.
func (o *Activity) add(s *actState, ts int64, p, sz float64) {
	if s.n == 0 {
		s.firstTS, s.open, s.high, s.low = ts, p, p, p
		s.vol, s.pv, s.theta = 0, 0, 0
		s.thresh = s.eT * math.Abs(s.eImb)
	}
	if p > s.high {
		s.high = p
	}
	if p < s.low {
		s.low = p
	}
	s.close, s.lastTS = p, ts
	s.vol += sz
	s.pv += float64(p * sz)
	s.n++
}

// start is the open bar's start: its first record's time, or the end of
// the symbol's previous bar if that is later (records sharing a microsecond
// with it).
func (o *Activity) start(s *actState) int64 {
	if s.ended && s.lastEnd > s.firstTS {
		return s.lastEnd
	}
	return s.firstTS
}

// closeBar emits the symbol's open bar. A bar spans [start, end): end is
// its last record's time plus 1 ns, and at least start + 1 µs, so the bars
// of a symbol tile event time and start in distinct microseconds, the
// resolution stores key bars at.
func (o *Activity) closeBar(sym md.SymID, s *actState, out *engine.Output) error {
	start := o.start(s)
	end := s.lastTS + 1
	if s.lastTS == md.MaxTime || end < start+microsecond {
		end = start + microsecond
	}
	b := md.Bar{
		Start: start, End: end, Interval: o.interval, Type: o.cfg.Type,
		Open: s.open, High: s.high, Low: s.low, Close: s.close,
		Trades: s.n, Sym: sym, LabelEnd: o.cfg.LabelClose,
	}
	if o.input == md.KindQuote {
		b.Source = md.FromMid + md.BarSource(o.cfg.Price)
		b.VWAP = s.pv / float64(s.n)
	} else {
		b.Volume = s.vol
		if o.symtab != nil {
			if d, ok := o.symtab.SizeDecimals(sym); ok {
				b.Volume = md.RoundSum(s.vol, s.n, d)
			}
		}
		b.VWAP = s.close
		if s.vol != 0 {
			b.VWAP = s.pv / s.vol
		}
	}
	s.lastEnd, s.ended, s.n = end, true, 0
	s.vol, s.pv, s.theta = 0, 0, 0
	if o.ob == nil {
		o.ob = out.NewBatch(md.KindBar)
	}
	o.ob.Bars = append(o.ob.Bars, b)
	if len(o.ob.Bars) >= o.batchMax {
		return o.flush(out)
	}
	return nil
}

func (o *Activity) flush(out *engine.Output) error {
	if o.ob == nil {
		return nil
	}
	b := o.ob
	o.ob = nil
	return out.Emit(b)
}

func (o *Activity) flushStats() {
	if o.stats == nil {
		return
	}
	if o.nLate != 0 {
		o.stats.Drop(DropLate, o.nLate)
		o.nLate = 0
	}
	if o.nMissing != 0 {
		o.stats.Drop(DropMissingSide, o.nMissing)
		o.nMissing = 0
	}
}
