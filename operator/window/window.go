// Package window is the operator.window and operator.tumbling_window
// components: event-time tumbling, sliding and session windows per symbol
// over trades, quotes or bars, with count, sum, min, max, first, last, mean,
// stddev, vwap and quantile aggregations, closed by the watermark, with
// allowed lateness and a late policy. Each window is one derived record
// (md.KindDerived) of a schema declared from the params.
//
// Tumbling and sliding windows are built from panes: a pane is the records
// of one slide interval (of the whole window when tumbling), folded as they
// arrive; a window is the merge of its size/slide panes when it closes, so
// a record costs one fold however many windows it belongs to. Sessions are
// per-symbol runs of records closer than gap, merged as records arrive.
// State is per symbol in the engine's keyed service (engine/keyed) and every
// window closes on an event-time timer there; nothing here keeps its own
// key table or schedule.
package window

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Kind is a window's shape.
type Kind uint8

// Window kinds.
const (
	Tumbling Kind = iota
	Sliding
	Session
)

// LatePolicy says what happens to a record whose window already closed.
type LatePolicy uint8

// Late policies.
const (
	LateDrop LatePolicy = iota
	LateSideOutput
	LateUpdate
)

// Drop reasons this operator counts.
const (
	DropLate    = "late"
	DropTooLate = "too_late"
)

// Config is a window operator's settings; times are ns.
type Config struct {
	Kind            Kind
	Size            int64 // tumbling and sliding: window length
	Slide           int64 // sliding: step; Size must be a multiple of it
	Gap             int64 // session: inactivity that ends a session
	Offset          int64 // grid shift from the epoch (tumbling, sliding)
	Late            LatePolicy
	AllowedLateness int64 // with LateUpdate
	EveryRecord     bool  // emit the open window(s) after every record, marked early
	Aggs            []Agg
	Schema          *md.Schema // from NewSchema(name, cfg)
}

// pane is the folded records of one slide interval, or one session.
type pane struct {
	start, end int64 // [start, end): the pane's interval; for a session end is unused
	last       int64 // session: the latest record time
	timer      int64 // session: the time its pending close timer is set for
	n          int64
	cells      []cell
	vals       [][]float64 // per quantile aggregation
	fired      bool        // session: emitted on close (kept for update)
	emitted    bool        // session: emitted at least once (on close)
	dirty      bool        // session: changed by a late record in this batch
}

// symWin is one symbol's windows: its panes (or sessions) in order of start.
// cur is the newest, which the per-record fast path folds into.
type symWin struct {
	panes []*pane
	cur   *pane
	dirty bool // session: has a dirty session
}

type winRef struct {
	end int64
	sym md.SymID
}

// Window is the window operator. It implements engine.Processor, Opener,
// WatermarkHandler and WatermarkHolder.
type Window struct {
	kind                               Kind
	size, slide, gap, origin, lateness int64
	policy                             LatePolicy
	every                              bool
	aggs                               []Agg
	qidx                               []int // aggregation → index in pane.vals, or -1
	nq                                 int
	schema                             *md.Schema

	input md.Kind
	ops   []op // the aggregations compiled for the input kind
	sslot int  // vwap's size slot

	st     *keyed.State[symWin]
	timers keyed.Timers // window ends (tumbling, sliding), session closes
	gc     keyed.Timers // update: when kept panes and sessions expire

	wm, closed int64
	free       []*pane
	scratch    pane
	sortBuf    []float64
	dirty      []winRef
	dirtySyms  []md.SymID

	ob       *md.Batch
	batchMax int
	symtab   *md.SymbolTable
	stats    *engine.NodeStats

	nLate, nTooLate int64

	instance, instances int // for a restore: which symbols are this instance's
}

// NewSchema declares the output schema of windows with cfg's aggregations:
// end (int64, the window's exclusive end in ns), one field per aggregation
// (count is int64, the rest float64), early (1 on an every_record firing
// of a window still open) and update (1 on a re-emission after late data).
func NewSchema(name string, aggs []Agg) (*md.Schema, error) {
	fields := []md.Field{{Name: "end", Type: md.Int}}
	for _, a := range aggs {
		t := md.Float
		if a.Fn == FnCount {
			t = md.Int
		}
		fields = append(fields, md.Field{Name: a.Name, Type: t})
	}
	fields = append(fields, md.Field{Name: "early", Type: md.Int}, md.Field{Name: "update", Type: md.Int})
	return md.NewSchema(name, fields...)
}

// New returns a window operator for cfg.
func New(cfg Config) (*Window, error) {
	switch {
	case len(cfg.Aggs) == 0:
		return nil, fmt.Errorf("window: no aggregations")
	case cfg.Schema == nil:
		return nil, fmt.Errorf("window: no schema")
	case cfg.AllowedLateness < 0:
		return nil, fmt.Errorf("window: allowed_lateness must not be negative")
	}
	w := &Window{
		kind: cfg.Kind, size: cfg.Size, slide: cfg.Slide, gap: cfg.Gap, policy: cfg.Late,
		every: cfg.EveryRecord, aggs: cfg.Aggs, schema: cfg.Schema,
		st: keyed.NewState[symWin](md.NewSymbolTable()),
		wm: md.MinTime, closed: md.MinTime, batchMax: md.DefaultBatchSize,
	}
	switch cfg.Kind {
	case Tumbling:
		if cfg.Size <= 0 {
			return nil, fmt.Errorf("window: size must be positive")
		}
		w.slide = cfg.Size
	case Sliding:
		if cfg.Size <= 0 || cfg.Slide <= 0 {
			return nil, fmt.Errorf("window: size and slide must be positive")
		}
		if cfg.Size%cfg.Slide != 0 {
			return nil, fmt.Errorf("window: size %dns must be a multiple of slide %dns", cfg.Size, cfg.Slide)
		}
	case Session:
		if cfg.Gap <= 0 {
			return nil, fmt.Errorf("window: gap must be positive")
		}
	}
	if cfg.Kind != Session {
		w.origin = cfg.Offset % w.slide
		if w.origin < 0 {
			w.origin += w.slide
		}
	}
	if cfg.Late == LateUpdate {
		w.lateness = cfg.AllowedLateness
	}
	for _, a := range cfg.Aggs {
		if a.Fn == FnQuantile {
			w.qidx = append(w.qidx, w.nq)
			w.nq++
		} else {
			w.qidx = append(w.qidx, -1)
		}
	}
	w.scratch.cells = make([]cell, len(w.aggs))
	w.scratch.vals = make([][]float64, w.nq)
	return w, nil
}

// Open implements engine.Opener.
func (w *Window) Open(ctx context.Context, nc *engine.NodeContext) error {
	w.stats = nc.Stats
	w.instance, w.instances = nc.Instance, nc.Instances
	if nc.Pool != nil {
		w.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		w.st = keyed.NewState[symWin](nc.Symbols)
	}
	w.symtab = nc.Symbols
	return nil
}

// bind resolves the aggregations' fields for the input kind k.
func (w *Window) bind(k md.Kind) error {
	w.ops = w.ops[:0]
	for i, a := range w.aggs {
		s := 0
		switch a.Fn {
		case FnCount:
		case FnVWAP:
			switch k {
			case md.KindTrade:
				s, w.sslot = slot(k, "price"), slot(k, "size")
			case md.KindBar:
				s, w.sslot = slot(k, "vwap"), slot(k, "volume")
			default:
				return fmt.Errorf("operator.window: vwap needs traded size; %s records have none", k)
			}
		default:
			s = slot(k, a.Field)
			if s < 0 {
				return fmt.Errorf("operator.window: aggregation %s reads field %s, which %s records do not have (they have %v)", a.Name, a.Field, k, fieldsByKind[k])
			}
		}
		w.ops = append(w.ops, op{fn: a.Fn, slot: uint8(s), q: int16(w.qidx[i])})
	}
	w.input = k
	return nil
}

// Process implements engine.Processor.
func (w *Window) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if b.Kind != md.KindTrade && b.Kind != md.KindQuote && b.Kind != md.KindBar {
		return fmt.Errorf("operator.window takes trades, quotes or bars, got a batch of %s records", b.Kind)
	}
	if w.input == md.KindNone {
		if err := w.bind(b.Kind); err != nil {
			return err
		}
	} else if b.Kind != w.input {
		return fmt.Errorf("operator.window got %s records after %s records; one window node aggregates one record kind", b.Kind, w.input)
	}
	var late *md.Batch
	var v [maxSlots]float64
	var err error
	for i := 0; i < n && err == nil; i++ {
		var ts int64
		var sym md.SymID
		switch b.Kind {
		case md.KindTrade:
			t := &b.Trades[i]
			ts, sym = t.TS, t.Sym
			v[0], v[1], v[2] = t.Price, t.Size, float64(t.Price*t.Size)
		case md.KindQuote:
			q := &b.Quotes[i]
			ts, sym = q.TS, q.Sym
			v[0], v[1], v[2], v[3], v[4], v[5] = q.Bid, q.Ask, q.BidSize, q.AskSize, (q.Bid+q.Ask)/2, q.Ask-q.Bid
		default:
			r := &b.Bars[i]
			ts, sym = r.TS(), r.Sym
			v[0], v[1], v[2], v[3], v[4], v[5], v[6] = r.Open, r.High, r.Low, r.Close, r.Volume, r.VWAP, float64(r.Trades)
		}
		var p *pane
		if ws := w.st.Slice(); int(sym) < len(ws) {
			if c := ws[sym].cur; c != nil {
				if w.kind == Session {
					if !c.fired && ts >= c.start && ts < c.last+w.gap {
						p = c
						c.last = max(c.last, ts)
					}
				} else if ts >= c.start && ts < c.end && c.end > w.closed {
					p = c
				}
			}
		}
		if p == nil {
			var isLate bool
			p, isLate = w.slow(sym, ts)
			if isLate {
				if late == nil {
					late = out.NewBatch(b.Kind)
				}
				switch b.Kind {
				case md.KindTrade:
					late.Trades = append(late.Trades, b.Trades[i])
				case md.KindQuote:
					late.Quotes = append(late.Quotes, b.Quotes[i])
				default:
					late.Bars = append(late.Bars, b.Bars[i])
				}
			}
			if p == nil {
				continue
			}
		}
		w.fold(p, ts, &v)
		if w.every {
			err = w.early(sym, p, out)
		}
	}
	if late != nil && err == nil {
		late.Reason = DropLate
		err = out.EmitTo(engine.PortLate, late)
	}
	if err == nil && (len(w.dirty) > 0 || len(w.dirtySyms) > 0) {
		err = w.emitDirty(out)
	}
	if err == nil {
		err = w.flush(out)
	}
	w.flushStats()
	return err
}

// op is an aggregation compiled for the input kind: its function, the slot
// of its field (for vwap the price's; the size's is sslot) and, for a
// quantile, the index of its values in the pane.
type op struct {
	fn   Fn
	slot uint8
	q    int16
}

// fold adds one record's extracted values to pane p. The switch is inlined
// here (no call per aggregation): this is the per-record hot path.
func (w *Window) fold(p *pane, ts int64, v *[maxSlots]float64) {
	ops := w.ops
	cells := p.cells[:len(ops)]
	for i := range ops {
		o := &ops[i]
		c := &cells[i]
		x := v[o.slot&(maxSlots-1)]
		switch o.fn {
		case FnSum, FnMean:
			c.a += x
		case FnMin:
			if c.n == 0 || x < c.a {
				c.a = x
			}
		case FnMax:
			if c.n == 0 || x > c.a {
				c.a = x
			}
		case FnFirst:
			if c.n == 0 || ts < c.t {
				c.a, c.t = x, ts
			}
		case FnLast:
			if c.n == 0 || ts >= c.t {
				c.a, c.t = x, ts
			}
		case FnVWAP:
			sz := v[w.sslot&(maxSlots-1)]
			c.a += float64(x * sz)
			c.b += sz
			if c.n == 0 || ts >= c.t {
				c.c, c.t = x, ts
			}
		case FnStddev:
			d := x - c.a
			c.a += d / float64(c.n+1)
			c.b += float64(d * (x - c.a))
		case FnQuantile:
			p.vals[o.q] = append(p.vals[o.q], x)
		}
		c.n++
	}
	p.n++
}

func (w *Window) newPane(start, end int64) *pane {
	var p *pane
	if n := len(w.free); n > 0 {
		p = w.free[n-1]
		w.free = w.free[:n-1]
		clear(p.cells)
		for i := range p.vals {
			p.vals[i] = p.vals[i][:0]
		}
		cells, vals := p.cells, p.vals
		*p = pane{cells: cells, vals: vals}
	} else {
		p = &pane{cells: make([]cell, len(w.aggs)), vals: make([][]float64, w.nq)}
	}
	p.start, p.end, p.timer = start, end, md.MinTime
	return p
}

func (w *Window) recycle(p *pane) { w.free = append(w.free, p) }

func (w *Window) floor(ts int64) int64 { return md.FloorTo(ts, w.slide, w.origin) }

func (w *Window) boundary(x int64) int64 {
	if x <= md.MinTime/2 {
		return md.MinTime
	}
	return w.floor(x)
}

func satSub(a, b int64) int64 {
	if a < md.MinTime+b {
		return md.MinTime
	}
	return a - b
}

func satAdd(a, b int64) int64 {
	if a > md.MaxTime-b {
		return md.MaxTime
	}
	return a + b
}

// slow finds or makes the pane a record the fast path did not take belongs
// to, applying the late policy; it returns nil for a record not to fold and
// whether to send it to the late port.
func (w *Window) slow(sym md.SymID, ts int64) (*pane, bool) {
	if w.kind == Session {
		return w.sessionRecord(sym, ts)
	}
	start := w.floor(ts)
	lateRec := ts < w.closed
	if lateRec {
		switch w.policy {
		case LateDrop:
			w.nLate++
			return nil, false
		case LateSideOutput:
			return nil, true
		}
		if satAdd(satAdd(start, w.size), w.lateness) <= w.wm {
			w.nTooLate++
			return nil, false
		}
	}
	s := w.st.Get(sym)
	i, found := slices.BinarySearchFunc(s.panes, start, func(p *pane, t int64) int { return cmp.Compare(p.start, t) })
	var p *pane
	if found {
		p = s.panes[i]
	} else {
		p = w.newPane(start, satAdd(start, w.slide))
		s.panes = slices.Insert(s.panes, i, p)
		s.cur = s.panes[len(s.panes)-1]
		// the first window holding the pane that has not closed
		if e := w.firstOpenEnd(start); e != md.MinTime {
			w.timers.Set(e, sym)
		}
		if w.policy == LateUpdate {
			w.gc.Set(satAdd(satAdd(start, w.size), w.lateness), sym)
		}
	}
	if lateRec {
		// Re-emit every window holding the pane that already closed and
		// is still within its allowed lateness.
		for e := satAdd(start, w.slide); e <= satAdd(start, w.size); e = satAdd(e, w.slide) {
			if e <= w.wm && satAdd(e, w.lateness) > w.wm {
				w.dirty = append(w.dirty, winRef{end: e, sym: sym})
			}
		}
	}
	return p, false
}

// firstOpenEnd is the end of the earliest window holding the pane at start
// that the watermark has not closed, or md.MinTime if all have closed.
func (w *Window) firstOpenEnd(start int64) int64 {
	e := satAdd(start, w.slide)
	if e <= w.wm {
		k := (w.wm-e)/w.slide + 1
		e = satAdd(e, k*w.slide)
	}
	if e > satAdd(start, w.size) {
		return md.MinTime
	}
	return e
}

// sessionRecord places a record in its session: a new one, an existing one
// or the merge of the sessions it bridges.
func (w *Window) sessionRecord(sym md.SymID, ts int64) (*pane, bool) {
	s := w.st.Get(sym)
	// sessions overlapping [ts, ts+gap): i is the first whose last+gap > ts,
	// j one past the last whose start < ts+gap
	i, _ := slices.BinarySearchFunc(s.panes, ts, func(p *pane, t int64) int {
		if p.last+w.gap > t {
			return 1
		}
		return -1
	})
	j := i
	for j < len(s.panes) && s.panes[j].start < satAdd(ts, w.gap) {
		j++
	}
	start, last := ts, ts
	if j > i {
		start, last = min(ts, s.panes[i].start), max(ts, s.panes[j-1].last)
	}
	end := satAdd(last, w.gap)
	if end <= w.wm { // the session would already have closed: late
		switch w.policy {
		case LateDrop:
			w.nLate++
			return nil, false
		case LateSideOutput:
			return nil, true
		}
		if satAdd(end, w.lateness) <= w.wm {
			w.nTooLate++
			return nil, false
		}
	}
	var p *pane
	if j == i {
		p = w.newPane(ts, 0)
		p.last = ts
		s.panes = slices.Insert(s.panes, i, p)
	} else {
		p = s.panes[i]
		for _, q := range s.panes[i+1 : j] {
			w.mergeInto(p, q)
			p.emitted = p.emitted || q.emitted
			p.fired = p.fired || q.fired
			w.recycle(q)
		}
		s.panes = slices.Delete(s.panes, i+1, j)
		p.start, p.last = start, last
	}
	s.cur = s.panes[len(s.panes)-1]
	if end <= w.wm { // late, under update: re-emit at the end of the batch
		p.fired = true
		if !p.dirty {
			p.dirty = true
		}
		if !s.dirty {
			s.dirty = true
			w.dirtySyms = append(w.dirtySyms, sym)
		}
		w.gc.Set(satAdd(end, w.lateness), sym)
		return p, false
	}
	p.fired = false
	if p.timer == md.MinTime || p.timer > end {
		p.timer = end
		w.timers.Set(end, sym)
	}
	return p, false
}

// mergeInto folds pane q, of records no earlier than p's, into p.
func (w *Window) mergeInto(p, q *pane) {
	for i := range w.aggs {
		p.cells[i].merge(w.aggs[i].Fn, &q.cells[i])
	}
	for i := range p.vals {
		p.vals[i] = append(p.vals[i], q.vals[i]...)
	}
	p.n += q.n
}

// OnWatermark implements engine.WatermarkHandler: it emits every window
// whose end the watermark reached, in order of end, then symbol.
func (w *Window) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= w.wm {
		return nil
	}
	w.wm = wm
	var err error
	if w.kind == Session {
		err = w.closeSessions(wm, out)
	} else {
		err = w.closeWindows(wm, out)
	}
	if err == nil {
		w.expire(wm)
		err = w.flush(out)
	}
	if w.kind != Session {
		w.closed = max(w.closed, w.boundary(wm))
	}
	w.flushStats()
	return err
}

func (w *Window) closeWindows(wm int64, out *engine.Output) error {
	for e, syms, ok := w.timers.Pop(wm); ok; e, syms, ok = w.timers.Pop(wm) {
		for _, sym := range syms {
			s := w.st.Get(sym)
			if err := w.emitWindow(sym, s, e, false, false, out); err != nil {
				return err
			}
			if w.policy != LateUpdate { // panes whose last window this was
				k := 0
				for k < len(s.panes) && satAdd(s.panes[k].start, w.size) <= e {
					w.recycle(s.panes[k])
					k++
				}
				if k > 0 {
					s.panes = slices.Delete(s.panes, 0, k)
				}
			}
			// the next window end holding a pane still to be emitted
			for _, p := range s.panes {
				if satAdd(p.start, w.size) > e {
					w.timers.Set(max(satAdd(e, w.slide), satAdd(p.start, w.slide)), sym)
					break
				}
			}
			w.setCur(s)
		}
	}
	return nil
}

func (w *Window) setCur(s *symWin) {
	s.cur = nil
	if n := len(s.panes); n > 0 {
		s.cur = s.panes[n-1]
	}
}

// window merges sym's panes of the window ending at e into w.scratch.
func (w *Window) window(s *symWin, e int64) *pane {
	if w.slide == w.size { // tumbling: the window is its pane
		i, found := slices.BinarySearchFunc(s.panes, e-w.size, func(p *pane, t int64) int { return cmp.Compare(p.start, t) })
		if !found {
			return nil
		}
		return s.panes[i]
	}
	sc := &w.scratch
	clear(sc.cells)
	for i := range sc.vals {
		sc.vals[i] = sc.vals[i][:0]
	}
	sc.n = 0
	lo := satSub(e, w.size)
	for _, p := range s.panes {
		if p.start >= e {
			break
		}
		if p.start >= lo {
			w.mergeInto(sc, p)
		}
	}
	if sc.n == 0 {
		return nil
	}
	sc.start, sc.end = lo, e
	return sc
}

func (w *Window) emitWindow(sym md.SymID, s *symWin, e int64, early, update bool, out *engine.Output) error {
	p := w.window(s, e)
	if p == nil {
		return nil
	}
	return w.emit(sym, satSub(e, w.size), e, p, early, update, out)
}

// early emits the open window(s) holding pane p after a record, marked
// early.
func (w *Window) early(sym md.SymID, p *pane, out *engine.Output) error {
	if w.kind == Session {
		if p.fired { // late, under update: emitted as an update
			return nil
		}
		return w.emit(sym, p.start, satAdd(p.last, w.gap), p, true, p.emitted, out)
	}
	s := w.st.Get(sym)
	for e := satAdd(p.start, w.slide); e <= satAdd(p.start, w.size); e = satAdd(e, w.slide) {
		if e <= w.wm {
			continue // closed: a late record's corrections are emitted as updates
		}
		if err := w.emitWindow(sym, s, e, true, false, out); err != nil {
			return err
		}
	}
	return nil
}

func (w *Window) closeSessions(wm int64, out *engine.Output) error {
	for e, syms, ok := w.timers.Pop(wm); ok; e, syms, ok = w.timers.Pop(wm) {
		for _, sym := range syms {
			s := w.st.Get(sym)
			for k := 0; k < len(s.panes); k++ {
				p := s.panes[k]
				if p.fired || p.timer != e {
					continue
				}
				end := satAdd(p.last, w.gap)
				if end > e { // extended since the timer was set
					p.timer = end
					w.timers.Set(end, sym)
					continue
				}
				if err := w.emit(sym, p.start, end, p, false, p.emitted, out); err != nil {
					return err
				}
				p.emitted, p.fired, p.timer = true, true, md.MinTime
				if w.policy == LateUpdate {
					w.gc.Set(satAdd(end, w.lateness), sym)
					continue
				}
				w.recycle(p)
				s.panes = slices.Delete(s.panes, k, k+1)
				k--
			}
			w.setCur(s)
		}
	}
	return nil
}

// expire forgets, under late_policy update, the panes and sessions past
// their allowed lateness.
func (w *Window) expire(wm int64) {
	for _, syms, ok := w.gc.Pop(wm); ok; _, syms, ok = w.gc.Pop(wm) {
		for _, sym := range syms {
			s := w.st.Get(sym)
			s.panes = slices.DeleteFunc(s.panes, func(p *pane) bool {
				var gone bool
				if w.kind == Session {
					gone = p.fired && satAdd(satAdd(p.last, w.gap), w.lateness) <= wm
				} else {
					gone = satAdd(satAdd(p.start, w.size), w.lateness) <= wm
				}
				if gone {
					w.recycle(p)
				}
				return gone
			})
			w.setCur(s)
		}
	}
}

// emitDirty re-emits, with update set, the windows late records changed in
// this batch, in order of end then symbol (sessions: symbol, then start).
func (w *Window) emitDirty(out *engine.Output) error {
	if len(w.dirty) > 0 {
		slices.SortFunc(w.dirty, func(a, b winRef) int {
			if c := cmp.Compare(a.end, b.end); c != 0 {
				return c
			}
			return cmp.Compare(a.sym, b.sym)
		})
		w.dirty = slices.Compact(w.dirty)
		for _, r := range w.dirty {
			if err := w.emitWindow(r.sym, w.st.Get(r.sym), r.end, false, true, out); err != nil {
				return err
			}
		}
		w.dirty = w.dirty[:0]
	}
	if len(w.dirtySyms) > 0 {
		slices.Sort(w.dirtySyms)
		for _, sym := range w.dirtySyms {
			s := w.st.Get(sym)
			s.dirty = false
			for _, p := range s.panes {
				if p.dirty {
					p.dirty = false
					if err := w.emit(sym, p.start, satAdd(p.last, w.gap), p, false, true, out); err != nil {
						return err
					}
					p.emitted = true
				}
			}
		}
		w.dirtySyms = w.dirtySyms[:0]
	}
	return nil
}

// OutputWatermark implements engine.WatermarkHolder: it holds the
// watermark at the start of the earliest window that may still be emitted,
// so downstream never gets a window older than its watermark.
func (w *Window) OutputWatermark(wm int64) int64 {
	if w.kind == Session {
		h := wm
		for _, s := range w.st.Slice() {
			if len(s.panes) > 0 {
				h = min(h, s.panes[0].start)
			}
		}
		return h
	}
	b := w.boundary(satSub(wm, w.lateness))
	if b == md.MinTime {
		return md.MinTime
	}
	return min(wm, satSub(satAdd(b, w.slide), w.size))
}

// emit appends one window record.
func (w *Window) emit(sym md.SymID, start, end int64, p *pane, early, update bool, out *engine.Output) error {
	if w.ob == nil {
		w.ob = out.NewBatch(md.KindDerived)
		w.ob.Schema = w.schema
	}
	row := w.ob.AddDerived(start, sym)
	row[0] = md.IntValue(end)
	for i := range w.aggs {
		a := &w.aggs[i]
		var vals []float64
		if q := w.qidx[i]; q >= 0 {
			vals = append(w.sortBuf[:0], p.vals[q]...)
			slices.Sort(vals)
			w.sortBuf = vals
		}
		v := p.cells[i].value(a, vals)
		if a.Fn == FnSum && (a.Field == "size" || a.Field == "volume") && w.symtab != nil {
			if d, ok := w.symtab.SizeDecimals(sym); ok {
				v = md.FloatValue(md.RoundSum(v.Float(), p.cells[i].n, d))
			}
		}
		row[1+i] = v
	}
	if early {
		row[len(row)-2] = 1
	}
	if update {
		row[len(row)-1] = 1
	}
	if len(w.ob.Derived) >= w.batchMax {
		return w.flush(out)
	}
	return nil
}

func (w *Window) flush(out *engine.Output) error {
	if w.ob == nil {
		return nil
	}
	b := w.ob
	w.ob = nil
	return out.Emit(b)
}

func (w *Window) flushStats() {
	if w.stats == nil {
		return
	}
	if w.nLate != 0 {
		w.stats.Drop(DropLate, w.nLate)
		w.nLate = 0
	}
	if w.nTooLate != 0 {
		w.stats.Drop(DropTooLate, w.nTooLate)
		w.nTooLate = 0
	}
}
