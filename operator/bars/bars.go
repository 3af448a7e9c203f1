// Package bars is the operator.bars component: OHLCV time bars per symbol,
// built from trades or quotes, aligned to the epoch plus an origin offset and
// closed by the event-time watermark only, so a replay produces exactly the
// bars a live run produced. It supports several open bars per symbol
// (out-of-order records within the source's tolerance), late-data policies
// (drop, side output, update with allowed lateness), empty-interval bars,
// skipping each symbol's first partial bar, a build delay and open or close
// labels. Per-record work is a slice index and a fold; everything else
// (opening a bar, closing bars, late records) is off the hot path.
//
// Its state lives in the engine's keyed service (engine/keyed): per-symbol
// state addressed by SymID on the hot path and by stable symbol identity for
// snapshots, and one event-time timer per open bar, at its end plus
// build_delay, fired by the watermark.
package bars

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// PriceSource picks the price of a quote for quote bars.
type PriceSource uint8

// Quote prices.
const (
	PriceMid PriceSource = iota
	PriceBid
	PriceAsk
)

// LatePolicy says what happens to a record whose bar already closed.
type LatePolicy uint8

// Late policies.
const (
	// LateDrop counts late records as dropped under "late".
	LateDrop LatePolicy = iota
	// LateSideOutput sends late records to the "late" port.
	LateSideOutput
	// LateUpdate folds late records into the kept bar and re-emits it with
	// Update set; records later than AllowedLateness count as "too_late".
	LateUpdate
)

// Drop reasons this operator counts.
const (
	DropLate           = "late"
	DropTooLate        = "too_late"
	DropSkippedPartial = "skipped_partial"
	// DropMissingSide counts quotes that lack the side a quote bar is built
	// from (no bid for bid or mid bars, no ask for ask or mid bars): a
	// missing side is 0, and folding 0 in would make a bar no market had.
	DropMissingSide = "missing_side"
)

// Config is a bar builder's settings; times are ns.
type Config struct {
	Interval         int64 // bar length, > 0
	OriginOffset     int64 // grid shift from the epoch, taken modulo Interval
	LabelClose       bool  // bars are labelled by their end
	Price            PriceSource
	SkipFirstPartial bool
	EmitEmpty        bool
	BuildDelay       int64 // >= 0
	Late             LatePolicy
	AllowedLateness  int64 // >= 0; used with LateUpdate
}

// hot is the fold state of a symbol's newest open bar: exactly one cache
// line, in a dense per-symbol slice, and all the per-record fast path
// touches. A record is folded there when closeTS <= ts < end (two
// predictable comparisons); the zero hot (no open bar) takes no record.
type hot struct {
	end, closeTS     int64 // the bar's end; event time of the record that set close
	high, low, close float64
	vol, pv          float64
	count            int64
}

// add folds in a record no earlier than the close. pv uses an explicit
// conversion so the compiler cannot fuse the multiply-add, keeping sums
// bit-identical across platforms.
func (h *hot) add(ts int64, p, sz float64) {
	if p > h.high {
		h.high = p
	}
	if p < h.low {
		h.low = p
	}
	h.close, h.closeTS = p, ts
	h.vol += sz
	h.pv += float64(p * sz)
	h.count++
}

// addAt folds in a record in any event-time order; close is the record with
// the latest ts, ties in arrival order.
func (h *hot) addAt(ts int64, p, sz float64) {
	if ts >= h.closeTS {
		h.add(ts, p, sz)
		return
	}
	if p > h.high {
		h.high = p
	}
	if p < h.low {
		h.low = p
	}
	h.vol += sz
	h.pv += float64(p * sz)
	h.count++
}

// acc is a whole bar: the fold state, its start and its open, the record with
// the earliest ts (ties in arrival order). Older open bars and kept bars are
// accs; the newest open bar is split between the hot slice and its symbol's
// cold state.
type acc struct {
	hot
	start, openTS int64
	open          float64
}

func newAcc(start, end, ts int64, p, sz float64) acc {
	return acc{hot: newHot(end, ts, p, sz), start: start, openTS: ts, open: p}
}

func newHot(end, ts int64, p, sz float64) hot {
	return hot{end: end, closeTS: ts, high: p, low: p, close: p, vol: sz, pv: float64(p * sz), count: 1}
}

// addAt folds in a record in any event-time order.
func (a *acc) addAt(ts int64, p, sz float64) {
	if ts < a.openTS {
		a.open, a.openTS = p, ts
	}
	a.hot.addAt(ts, p, sz)
}

// kept is a closed bar kept for late updates.
type kept struct {
	acc
	dirty bool // changed in the current batch, to re-emit at its end
}

// symState is the cold per-symbol state.
type symState struct {
	open       float64 // the newest open bar's open,
	openTS     int64   // its event time
	older      []acc   // open bars older than the newest, oldest first
	retained   []kept  // closed bars kept for late_policy update, oldest first
	firstStart int64   // start of the symbol's first bar
	lastClose  float64
	seen       bool // has had an on-time record
	skipped    bool // skip_first_partial: the first bar has been dropped
	skipStart  int64
}

type barRef struct {
	start int64
	sym   md.SymID
}

// Bars is the bar builder. It implements engine.Processor, Opener,
// WatermarkHandler, WatermarkHolder and Snapshotter (checkpoints); one instance serves one partition of
// the symbols and runs on one goroutine.
type Bars struct {
	iv, origin, delay, lateness int64
	labelClose, skipFirst       bool
	emitEmpty                   bool
	price                       PriceSource
	policy                      LatePolicy

	cur    *keyed.State[hot]      // newest open bar per symbol (hot)
	syms   *keyed.State[symState] // the rest of the per-symbol state (cold)
	timers keyed.Timers           // one per open bar, at its end + build_delay

	active []md.SymID // emit_empty: symbols that have had a bar, sorted
	next   int64      // emit_empty: start of the next interval to close
	hasNxt bool

	input      md.Kind // kind of the first records; the other kind is refused
	wm         int64   // last input watermark
	closed     int64   // every bar starting before this has closed
	retainFrom int64   // update: kept bars start at or after this
	dirty      []barRef

	ob       *md.Batch // bar batch being filled
	batchMax int
	symtab   *md.SymbolTable // sizes' decimal places, for exact volumes
	stats    *engine.NodeStats

	instance, instances int // this instance of how many (restore takes the keys it owns)

	nLate, nTooLate, nSkipped, nMissing int64
}

// New returns a bar builder for cfg.
func New(cfg Config) (*Bars, error) {
	switch {
	case cfg.Interval <= 0:
		return nil, fmt.Errorf("bars: interval must be positive, got %dns", cfg.Interval)
	case cfg.BuildDelay < 0:
		return nil, fmt.Errorf("bars: build_delay must not be negative, got %dns", cfg.BuildDelay)
	case cfg.AllowedLateness < 0:
		return nil, fmt.Errorf("bars: allowed_lateness must not be negative, got %dns", cfg.AllowedLateness)
	}
	origin := cfg.OriginOffset % cfg.Interval
	if origin < 0 {
		origin += cfg.Interval
	}
	syms := md.NewSymbolTable() // replaced by the job's in Open
	return &Bars{
		cur: keyed.NewState[hot](syms), syms: keyed.NewState[symState](syms),
		iv: cfg.Interval, origin: origin, delay: cfg.BuildDelay, lateness: cfg.AllowedLateness,
		labelClose: cfg.LabelClose, skipFirst: cfg.SkipFirstPartial, emitEmpty: cfg.EmitEmpty,
		price: cfg.Price, policy: cfg.Late,
		wm: md.MinTime, closed: md.MinTime, retainFrom: md.MinTime,
		batchMax: md.DefaultBatchSize, instances: 1,
	}, nil
}

// Open implements engine.Opener.
func (o *Bars) Open(ctx context.Context, nc *engine.NodeContext) error {
	o.stats = nc.Stats
	o.instance, o.instances = nc.Instance, max(nc.Instances, 1)
	if nc.Pool != nil {
		o.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		o.cur, o.syms = keyed.NewState[hot](nc.Symbols), keyed.NewState[symState](nc.Symbols)
	}
	o.symtab = nc.Symbols
	return nil
}

// Process implements engine.Processor: it folds a batch of trades or quotes
// into the open bars. Closing happens only in OnWatermark.
func (o *Bars) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if b.Kind != md.KindTrade && b.Kind != md.KindQuote {
		return fmt.Errorf("operator.bars takes trades or quotes, got a batch of %s records", b.Kind)
	}
	if o.input == md.KindNone {
		o.input = b.Kind
	} else if b.Kind != o.input {
		return fmt.Errorf("operator.bars got %s records after %s records; one bars node builds either trade bars or quote bars, use one node per record kind", b.Kind, o.input)
	}
	var late *md.Batch
	if b.Kind == md.KindTrade {
		late = o.trades(b.Trades, out)
	} else {
		late = o.quotes(b.Quotes, out)
	}
	var err error
	if late != nil {
		late.Reason = DropLate
		err = out.EmitTo(engine.PortLate, late)
	}
	if len(o.dirty) > 0 && err == nil {
		err = o.emitDirty(out)
	}
	o.flushStats()
	return err
}

// trades folds a batch of trades. The hot loop is foldTrades, a leaf
// function that keeps everything in registers; it stops at the first record
// that needs the slow path, which is handled here before resuming.
func (o *Bars) trades(ts []md.Trade, out *engine.Output) *md.Batch {
	var late *md.Batch
	for i := 0; i < len(ts); i++ {
		i += foldTrades(o.cur.Slice(), ts[i:])
		if i == len(ts) {
			break
		}
		t := &ts[i]
		if o.slow(t.Sym, t.TS, t.Price, t.Size) {
			if late == nil {
				late = out.NewBatch(md.KindTrade)
			}
			late.Trades = append(late.Trades, *t)
		}
	}
	return late
}

// foldTrades is the fast path, taken by every trade that falls in its
// symbol's newest open bar no earlier than its close: a bounds check, a range
// check and a fold, with no call, map or allocation. It returns how many
// trades it folded.
func foldTrades(cur []hot, ts []md.Trade) int {
	for i := range ts {
		t := &ts[i]
		if int(t.Sym) >= len(cur) {
			return i
		}
		h := &cur[t.Sym]
		if t.TS < h.closeTS || t.TS >= h.end {
			return i
		}
		h.add(t.TS, t.Price, t.Size)
	}
	return len(ts)
}

// quotes is trades for quote bars: the price is the mid, bid or ask and each
// quote weighs 1, so pv/count is the mean price.
func (o *Bars) quotes(qs []md.Quote, out *engine.Output) *md.Batch {
	var late *md.Batch
	for i := 0; i < len(qs); i++ {
		i += foldQuotes(o.cur.Slice(), o.price, qs[i:])
		if i == len(qs) {
			break
		}
		q := &qs[i]
		if !hasPrice(q, o.price) {
			o.nMissing++
			continue
		}
		if o.slow(q.Sym, q.TS, quotePrice(q, o.price), 1) {
			if late == nil {
				late = out.NewBatch(md.KindQuote)
			}
			late.Quotes = append(late.Quotes, *q)
		}
	}
	return late
}

// hasPrice reports whether q has the side(s) that src needs; an absent side
// is 0 (md.CheckQuote lets a side be absent, never negative).
func hasPrice(q *md.Quote, src PriceSource) bool {
	switch src {
	case PriceBid:
		return q.Bid > 0
	case PriceAsk:
		return q.Ask > 0
	}
	return q.Bid > 0 && q.Ask > 0
}

func quotePrice(q *md.Quote, src PriceSource) float64 {
	switch src {
	case PriceBid:
		return q.Bid
	case PriceAsk:
		return q.Ask
	}
	return (q.Bid + q.Ask) / 2
}

// foldQuotes is foldTrades for quotes.
func foldQuotes(cur []hot, src PriceSource, qs []md.Quote) int {
	for i := range qs {
		q := &qs[i]
		if int(q.Sym) >= len(cur) {
			return i
		}
		h := &cur[q.Sym]
		if q.TS < h.closeTS || q.TS >= h.end || !hasPrice(q, src) {
			return i
		}
		h.add(q.TS, quotePrice(q, src), 1)
	}
	return len(qs)
}

// floor is the start of the interval holding ts.
func (o *Bars) floor(ts int64) int64 { return md.FloorTo(ts, o.iv, o.origin) }

// boundary is the last interval boundary at or before x, for watermark
// arithmetic; md.MinTime when x is too far in the past to mean anything.
func (o *Bars) boundary(x int64) int64 {
	if x <= md.MinTime/2 {
		return md.MinTime
	}
	return o.floor(x)
}

func satSub(a, b int64) int64 {
	if a < md.MinTime+b {
		return md.MinTime
	}
	return a - b
}

// slow handles a record the fast path did not take: a new symbol, a record
// opening a new bar, one for an older open bar or earlier than its bar's
// close, or a late one. It reports whether the record must go to the late
// port.
func (o *Bars) slow(sym md.SymID, ts int64, p, sz float64) bool {
	if ts < o.closed {
		return o.late(sym, ts, p, sz)
	}
	start := o.floor(ts)
	s := o.syms.Get(sym)
	if !s.seen {
		s.seen = true
		s.firstStart = start
		if o.emitEmpty {
			i, _ := slices.BinarySearch(o.active, sym)
			o.active = slices.Insert(o.active, i, sym)
		}
	} else if start < s.firstStart {
		s.firstStart = start
	}
	h := o.cur.Get(sym)
	cur := h.end - o.iv // the newest open bar's start, if it has one
	switch {
	case h.count == 0: // no open bar (then there is no older one either)
		o.open(sym, h, s, start, ts, p, sz)
	case start == cur:
		if ts < s.openTS {
			s.open, s.openTS = p, ts
		}
		h.addAt(ts, p, sz)
	case start > cur:
		s.older = append(s.older, o.newest(sym))
		o.open(sym, h, s, start, ts, p, sz)
	default: // an older open bar: out of order within the tolerance
		i, found := slices.BinarySearchFunc(s.older, start, func(x acc, t int64) int { return cmp.Compare(x.start, t) })
		if found {
			s.older[i].addAt(ts, p, sz)
			break
		}
		s.older = slices.Insert(s.older, i, newAcc(start, start+o.iv, ts, p, sz))
		o.schedule(start, sym)
	}
	return false
}

// open starts sym's newest open bar at start with one record.
func (o *Bars) open(sym md.SymID, h *hot, s *symState, start, ts int64, p, sz float64) {
	*h = newHot(start+o.iv, ts, p, sz)
	s.open, s.openTS = p, ts
	o.schedule(start, sym)
}

// newest returns sym's newest open bar as a whole.
func (o *Bars) newest(sym md.SymID) acc {
	s := o.syms.Get(sym)
	h := o.cur.Get(sym)
	return acc{hot: *h, start: h.end - o.iv, openTS: s.openTS, open: s.open}
}

// late applies the late policy to a record whose bar already closed.
func (o *Bars) late(sym md.SymID, ts int64, p, sz float64) bool {
	switch o.policy {
	case LateSideOutput:
		return true
	case LateDrop:
		o.nLate++
		return false
	}
	if ts < o.retainFrom {
		o.nTooLate++
		return false
	}
	start := o.floor(ts)
	s := o.syms.Get(sym)
	if o.skipFirst && (!s.skipped || start <= s.skipStart) {
		o.nSkipped++
		return false
	}
	o.prune(s)
	i, found := slices.BinarySearchFunc(s.retained, start, func(x kept, t int64) int { return cmp.Compare(x.start, t) })
	if !found {
		s.retained = slices.Insert(s.retained, i, kept{acc: acc{start: start}})
	}
	k := &s.retained[i]
	if k.count == 0 { // a new bar, or a flat one the record replaces
		k.acc = newAcc(start, start+o.iv, ts, p, sz)
	} else {
		k.addAt(ts, p, sz)
	}
	if !k.dirty {
		k.dirty = true
		o.dirty = append(o.dirty, barRef{start: start, sym: sym})
	}
	return false
}

// prune forgets kept bars that fell out of the allowed lateness.
func (o *Bars) prune(s *symState) {
	i := 0
	for i < len(s.retained) && s.retained[i].start < o.retainFrom {
		i++
	}
	if i > 0 {
		s.retained = append(s.retained[:0], s.retained[i:]...)
	}
}

// schedule sets the timer that closes sym's new open bar starting at start.
func (o *Bars) schedule(start int64, sym md.SymID) {
	if o.emitEmpty && (!o.hasNxt || start < o.next) {
		o.next, o.hasNxt = start, true
	}
	o.timers.Set(o.closeAt(start), sym)
}

// closeAt is the event time at which the bar starting at start closes: when
// the watermark reaches its end plus build_delay.
func (o *Bars) closeAt(start int64) int64 {
	if start > md.MaxTime-o.iv-o.delay {
		return md.MaxTime
	}
	return start + o.iv + o.delay
}

// popOldest removes and returns sym's oldest open bar.
func (o *Bars) popOldest(sym md.SymID) acc {
	s := o.syms.Get(sym)
	if len(s.older) > 0 {
		a := s.older[0]
		s.older = append(s.older[:0], s.older[1:]...)
		return a
	}
	a := o.newest(sym)
	*o.cur.Get(sym) = hot{}
	return a
}

// oldestStart is the start of sym's oldest open bar, if it has one.
func (o *Bars) oldestStart(sym md.SymID) (int64, bool) {
	if s, _ := o.syms.Lookup(sym); s != nil && len(s.older) > 0 {
		return s.older[0].start, true
	}
	if h, _ := o.cur.Lookup(sym); h != nil && h.count != 0 {
		return h.end - o.iv, true
	}
	return 0, false
}

// OnWatermark implements engine.WatermarkHandler: it closes every bar whose
// end + build_delay the watermark has reached, in order of start then
// symbol id. md.MaxTime flushes every open bar.
func (o *Bars) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= o.wm {
		return nil
	}
	lastData := o.wm
	o.wm = wm
	final := wm == md.MaxTime
	limit := md.MaxTime
	if !final {
		limit = o.boundary(satSub(wm, o.delay))
		if o.policy == LateUpdate {
			o.retainFrom = o.boundary(satSub(satSub(wm, o.delay), o.lateness))
		}
	}
	var err error
	if o.emitEmpty {
		err = o.closeFilling(limit, final, lastData, out)
	} else {
		err = o.closeDue(wm, out)
	}
	if err == nil {
		err = o.flush(out)
	}
	o.closed = max(o.closed, limit)
	o.flushStats()
	return err
}

// OutputWatermark implements engine.WatermarkHolder. Every bar still to come
// starts at or after the last closed boundary (records before it are late),
// and under late_policy update a corrected bar starts at or after the oldest
// kept one; forwarding that start means downstream never sees a bar older
// than its watermark.
func (o *Bars) OutputWatermark(wm int64) int64 {
	h := o.boundary(satSub(wm, o.delay))
	if o.policy == LateUpdate {
		h = o.boundary(satSub(satSub(wm, o.delay), o.lateness))
	}
	return min(h, wm)
}

// closeDue closes every open bar whose timer the watermark wm has reached,
// in order of start, then symbol id.
func (o *Bars) closeDue(wm int64, out *engine.Output) error {
	for at, syms, ok := o.timers.Pop(wm); ok; at, syms, ok = o.timers.Pop(wm) {
		for _, sym := range syms {
			a := o.popOldest(sym)
			if o.closeAt(a.start) != at {
				return fmt.Errorf("operator.bars: internal error: symbol %d closes the bar at %d with the timer at %d", sym, a.start, at)
			}
			if err := o.finish(sym, a, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeFilling is closeDue for emit_empty: it walks every interval up to
// limit and, per interval, every symbol that has had a bar, emitting its bar
// or a flat one.
//
// At end of stream (final) it emits every open bar and fills a symbol's flat
// bars up to the interval holding lastData, the last watermark before the
// final one, and between the symbol's own open bars. Every instance of a
// parallel node has seen the same lastData, so which symbols share an
// instance never changes the output.
func (o *Bars) closeFilling(limit int64, final bool, lastData int64, out *engine.Output) error {
	if !o.hasNxt {
		return nil
	}
	fillTo := limit // flat bars start before fillTo
	if final {
		fillTo = md.MinTime
		if lastData > md.MinTime/2 {
			fillTo = o.floor(lastData) + o.iv
		}
		limit = max(o.next, fillTo)
		for _, sym := range o.active {
			if h, _ := o.cur.Lookup(sym); h != nil && h.count != 0 {
				limit = max(limit, h.end)
			}
		}
	}
	for start := o.next; start < limit; start += o.iv {
		for _, sym := range o.active {
			first, open := o.oldestStart(sym)
			if open && first == start {
				if err := o.finish(sym, o.popOldest(sym), out); err != nil {
					return err
				}
				continue
			}
			s := o.syms.Get(sym)
			if s.firstStart >= start || (start >= fillTo && !open) {
				continue
			}
			c := s.lastClose
			flat := acc{hot: hot{end: start + o.iv, high: c, low: c, close: c}, start: start, open: c}
			if o.policy == LateUpdate {
				o.keep(s, flat)
			}
			if err := o.emit(out, &flat, sym, false); err != nil {
				return err
			}
		}
		// Every bar starting at start has closed: retire its timers.
		for _, _, ok := o.timers.Pop(o.closeAt(start)); ok; _, _, ok = o.timers.Pop(o.closeAt(start)) {
		}
		o.next = start + o.iv
	}
	return nil
}

// finish handles a bar that just closed: skip it if it is the symbol's first
// and skip_first_partial is set, keep it for late updates, emit it.
func (o *Bars) finish(sym md.SymID, a acc, out *engine.Output) error {
	s := o.syms.Get(sym)
	s.lastClose = a.close
	if o.skipFirst && !s.skipped {
		s.skipped, s.skipStart = true, a.start
		o.nSkipped += a.count
		return nil
	}
	if o.policy == LateUpdate {
		o.keep(s, a)
	}
	return o.emit(out, &a, sym, false)
}

// keep stores a closed bar for late updates if it is within the lateness.
func (o *Bars) keep(s *symState, a acc) {
	o.prune(s)
	if a.start >= o.retainFrom {
		s.retained = append(s.retained, kept{acc: a})
	}
}

// emitDirty re-emits the bars late records changed in this batch, with
// Update set, in order of start then symbol id.
func (o *Bars) emitDirty(out *engine.Output) error {
	slices.SortFunc(o.dirty, func(a, b barRef) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.sym, b.sym)
	})
	for _, r := range o.dirty {
		s := o.syms.Get(r.sym)
		i, found := slices.BinarySearchFunc(s.retained, r.start, func(x kept, t int64) int { return cmp.Compare(x.start, t) })
		if !found {
			return errors.New("operator.bars: internal error: a corrected bar was not kept")
		}
		s.retained[i].dirty = false
		if err := o.emit(out, &s.retained[i].acc, r.sym, true); err != nil {
			return err
		}
	}
	o.dirty = o.dirty[:0]
	return o.flush(out)
}

// emit appends a bar to the batch being filled, sending it when full.
func (o *Bars) emit(out *engine.Output, a *acc, sym md.SymID, update bool) error {
	if o.ob == nil {
		o.ob = out.NewBatch(md.KindBar)
	}
	b := md.Bar{
		Start: a.start, End: a.start + o.iv, Interval: o.iv,
		Open: a.open, High: a.high, Low: a.low, Close: a.close,
		Trades: a.count, Sym: sym, LabelEnd: o.labelClose, Update: update,
	}
	if o.input == md.KindQuote {
		b.Source = md.FromMid + md.BarSource(o.price) // mid, bid, ask in PriceSource order
	}
	if o.symtab != nil && o.symtab.Gapped(sym, b.Start, b.End) {
		// The source recorded a gap in this symbol's feed that the bar's
		// interval touches: records it should hold may be missing.
		b.Partial = true
	}
	switch {
	case a.count == 0: // flat bar
		b.VWAP = a.close
	case o.input == md.KindQuote:
		b.VWAP = a.pv / float64(a.count)
	default:
		b.Volume = a.vol
		if o.symtab != nil {
			// Sizes were exact decimals: give the sum as the nearest
			// double to the exact decimal sum (md.RoundSum), per bar.
			if d, ok := o.symtab.SizeDecimals(sym); ok {
				b.Volume = md.RoundSum(a.vol, a.count, d)
			}
		}
		b.VWAP = a.close
		if a.vol != 0 {
			b.VWAP = a.pv / a.vol
		}
	}
	o.ob.Bars = append(o.ob.Bars, b)
	if len(o.ob.Bars) >= o.batchMax {
		return o.flush(out)
	}
	return nil
}

func (o *Bars) flush(out *engine.Output) error {
	if o.ob == nil {
		return nil
	}
	b := o.ob
	o.ob = nil
	return out.Emit(b)
}

func (o *Bars) flushStats() {
	if o.stats == nil {
		return
	}
	if o.nLate != 0 {
		o.stats.Drop(DropLate, o.nLate)
		o.nLate = 0
	}
	if o.nTooLate != 0 {
		o.stats.Drop(DropTooLate, o.nTooLate)
		o.nTooLate = 0
	}
	if o.nSkipped != 0 {
		o.stats.Drop(DropSkippedPartial, o.nSkipped)
		o.nSkipped = 0
	}
	if o.nMissing != 0 {
		o.stats.Drop(DropMissingSide, o.nMissing)
		o.nMissing = 0
	}
}
