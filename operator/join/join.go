// Package join is the operator.join component: a stream-stream join of two
// inputs, left and right, on the symbol text (so the same instrument from two
// providers joins), in event time.
//
// kind asof pairs each left record with the latest right record at or before
// its time (within max_staleness), as kdb+'s aj does: trades with the quote
// prevailing when they printed, adding bid, ask, mid, spread and the side by
// the quote rule. kind interval pairs each left record with every right
// record whose time is within [left.ts + lower, left.ts + upper], such as the
// same coin's trades on two venues.
//
// Both are event-time correct under out-of-order input: a left record is held
// until the watermark guarantees that every right record that could pair with
// it has arrived (past its ts for asof, past ts + upper for interval), so the
// output never depends on how the two inputs interleave, and right records
// are forgotten once no left record still to come can pair with them. State
// lives in the engine's keyed service per symbol and every release is an
// event-time timer there.
package join

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/hold"
)

// Kind is the join kind.
type Kind uint8

// Join kinds.
const (
	AsOf Kind = iota
	Interval
)

// Input ports, in the order of the spec's Inputs.
const (
	PortLeft  = 0
	PortRight = 1
)

// DropLate is the reason late records are counted under.
const DropLate = "late"

// Reasons of the batches on the late port (late_policy side_output): which
// input the late records came in on.
const (
	ReasonLateLeft  = "late_left"
	ReasonLateRight = "late_right"
)

// Config is a join's settings; times are ns.
type Config struct {
	Kind         Kind
	Left, Right  md.Kind // md.KindTrade or md.KindQuote
	Lower, Upper int64   // interval: bounds relative to left.ts
	MaxStaleness int64   // asof: negative means no limit
	Schema       *md.Schema
	// SideOutput sends late records to the late port (batch reason
	// late_left or late_right) instead of counting them as dropped.
	SideOutput bool
}

// rec is a buffered record (its ts is the hold.Item's): for a trade v is
// price, size; for a quote bid, ask, bid_size, ask_size.
type rec struct {
	sym  md.SymID
	side md.Side
	v    [4]float64
}

// item is a buffered record with its ts.
type item = hold.Item[rec]

// group is the state of one symbol text: left records waiting for the
// watermark, in order of ts (ties in arrival order), and the right records
// that may still pair, in the same order (never armed: they wait to be
// looked up, and are dropped when nothing can pair with them any more).
type group struct {
	left  hold.Queue[rec]
	right hold.Queue[rec]
}

// col is one output column's source.
type col uint8

const (
	cLeft0 col = iota // left v[0..3]
	cLeft1
	cLeft2
	cLeft3
	cRight0 // right v[0..3]
	cRight1
	cRight2
	cRight3
	cLeftSide  // left trade side: 1 buy, -1 sell, 0 unknown
	cRightSide // right trade side
	cMid       // right quote mid
	cSpread    // right quote ask - bid
	cQuoteSide // side of the left trade by the quote rule
	cRightTS
	cMatched
)

// Join is the join operator. It implements engine.PortProcessor, Opener,
// WatermarkHandler and WatermarkHolder.
type Join struct {
	cfg    Config
	cols   []col
	canon  *keyed.State[md.SymID] // SymID → canonical SymID + 1 of its symbol text
	byText map[string]md.SymID
	groups *keyed.State[group] // by canonical SymID
	sched  hold.Schedule       // left releases; Delay: interval upper, else 0

	wm       int64
	ob       *md.Batch
	batchMax int
	stats    *engine.NodeStats
	nLate    int64

	instance, instances int // for a restore: which symbols are this instance's
}

// Columns returns the output fields for cfg: asof: the left record's
// fields, the right record's (prefixed right_ where a name repeats), for a
// right quote mid and spread, for trades against quotes side (by the quote
// rule), right_ts and matched; interval: left_ and right_ fields and right_ts.
func Columns(cfg Config) ([]md.Field, []col) {
	names := map[md.Kind][]string{md.KindTrade: {"price", "size"}, md.KindQuote: {"bid", "ask", "bid_size", "ask_size"}}
	var fs []md.Field
	var cs []col
	add := func(name string, t md.FieldType, c col) {
		fs = append(fs, md.Field{Name: name, Type: t})
		cs = append(cs, c)
	}
	lp, rp := "", ""
	if cfg.Kind == Interval {
		lp, rp = "left_", "right_"
	} else if cfg.Left == cfg.Right {
		rp = "right_"
	}
	for i, n := range names[cfg.Left] {
		add(lp+n, md.Float, cLeft0+col(i))
	}
	if cfg.Left == md.KindTrade {
		add(lp+"trade_side", md.Int, cLeftSide)
	}
	for i, n := range names[cfg.Right] {
		add(rp+n, md.Float, cRight0+col(i))
	}
	if cfg.Right == md.KindTrade {
		add(rp+"trade_side", md.Int, cRightSide)
	}
	if cfg.Kind == AsOf && cfg.Right == md.KindQuote {
		add(rp+"mid", md.Float, cMid)
		add(rp+"spread", md.Float, cSpread)
		if cfg.Left == md.KindTrade {
			add("side", md.Int, cQuoteSide)
		}
	}
	add("right_ts", md.Int, cRightTS)
	if cfg.Kind == AsOf {
		add("matched", md.Int, cMatched)
	}
	return fs, cs
}

// New returns a join for cfg.
func New(cfg Config) (*Join, error) {
	if cfg.Kind == Interval && cfg.Lower > cfg.Upper {
		return nil, fmt.Errorf("join: lower %dns is after upper %dns", cfg.Lower, cfg.Upper)
	}
	if cfg.Schema == nil {
		return nil, fmt.Errorf("join: no schema")
	}
	_, cols := Columns(cfg)
	if len(cols) != cfg.Schema.Len() {
		return nil, fmt.Errorf("join: schema %s does not fit the join's columns", cfg.Schema)
	}
	t := md.NewSymbolTable()
	jn := &Join{cfg: cfg, cols: cols, canon: keyed.NewState[md.SymID](t), groups: keyed.NewState[group](t),
		byText: map[string]md.SymID{}, wm: md.MinTime, batchMax: md.DefaultBatchSize}
	if cfg.Kind == Interval {
		// a left record waits until no right record that could pair with
		// it can still arrive: past ts + upper
		jn.sched.Delay = cfg.Upper
	}
	return jn, nil
}

// Open implements engine.Opener.
func (j *Join) Open(ctx context.Context, nc *engine.NodeContext) error {
	j.stats = nc.Stats
	j.instance, j.instances = nc.Instance, nc.Instances
	if nc.Pool != nil {
		j.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		j.canon, j.groups = keyed.NewState[md.SymID](nc.Symbols), keyed.NewState[group](nc.Symbols)
	}
	return nil
}

// Process implements engine.Processor: a batch with no port is a left one.
func (j *Join) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return j.ProcessPort(ctx, PortLeft, b, out)
}

// key returns the canonical SymID of sym's symbol text.
func (j *Join) key(sym md.SymID) md.SymID {
	if c := j.canon.Slice(); int(sym) < len(c) && c[sym] != 0 {
		return c[sym] - 1
	}
	text := j.canon.Symbols().Get(sym).Symbol
	k, ok := j.byText[text]
	if !ok {
		k = sym
		j.byText[text] = k
	}
	*j.canon.Get(sym) = k + 1
	return k
}

// abortCheck is how many records ProcessPort handles between looks at its
// context (a power of two): a batch of 2^20 records takes seconds under the
// race detector, and an aborted job should not wait for it.
const abortCheck = 1 << 14

// ProcessPort implements engine.PortProcessor. When ctx ends during a batch
// it stops and returns ctx's error (the job was aborted).
func (j *Join) ProcessPort(ctx context.Context, port int, b *md.Batch, out *engine.Output) error {
	if b.Len() == 0 {
		return nil
	}
	want, side := j.cfg.Left, "left"
	if port == PortRight {
		want, side = j.cfg.Right, "right"
	}
	if b.Kind != want {
		return fmt.Errorf("operator.join: the %s input takes %s records (param %s), got %s", side, want, side, b.Kind)
	}
	n := b.Len()
	var late *md.Batch
	for i := 0; i < n; i++ {
		if i > 0 && i%abortCheck == 0 && ctx.Err() != nil {
			// an aborted job does not wait for the rest of a large batch
			if late != nil {
				late.Release()
			}
			j.flushStats()
			return ctx.Err()
		}
		var (
			r  rec
			ts int64
		)
		if b.Kind == md.KindTrade {
			t := &b.Trades[i]
			ts, r = t.TS, rec{sym: t.Sym, side: t.Side, v: [4]float64{t.Price, t.Size}}
		} else {
			q := &b.Quotes[i]
			ts, r = q.TS, rec{sym: q.Sym, v: [4]float64{q.Bid, q.Ask, q.BidSize, q.AskSize}}
		}
		if ts < j.wm {
			if !j.cfg.SideOutput {
				j.nLate++
				continue
			}
			if late == nil {
				late = out.NewBatch(b.Kind)
				late.Reason = ReasonLateLeft
				if port == PortRight {
					late.Reason = ReasonLateRight
				}
			}
			if b.Kind == md.KindTrade {
				late.Trades = append(late.Trades, b.Trades[i])
			} else {
				late.Quotes = append(late.Quotes, b.Quotes[i])
			}
			continue
		}
		k := j.key(r.sym)
		g := j.groups.Get(k)
		if port == PortRight {
			g.right.Insert(ts, r)
			continue
		}
		g.left.Add(&j.sched, k, ts, r)
	}
	j.flushStats()
	if late != nil {
		return out.EmitTo(engine.PortLate, late)
	}
	return nil
}

// OnWatermark implements engine.WatermarkHandler: it emits the left
// records the watermark released, with their pairs, in order of release
// time, then symbol, then ts; and forgets right records nothing can pair
// with any more.
func (j *Join) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= j.wm {
		return nil
	}
	j.wm = wm
	for keys, ok := j.sched.Due(wm); ok; keys, ok = j.sched.Due(wm) {
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return err // aborted: the job ends without the rest
			}
			g := j.groups.Get(k)
			if err := j.release(g, k, wm, out); err != nil {
				return err
			}
		}
	}
	return j.flush(out)
}

// release emits the left records of g (the group of key k) that wm
// released and trims g's right records.
func (j *Join) release(g *group, k md.SymID, wm int64, out *engine.Output) error {
	right := g.right.Items()
	i := 0
	left := g.left.Release(&j.sched, k, wm)
	for x := range left {
		l := &left[x]
		if j.cfg.Kind == AsOf {
			// the latest right at or before l.TS: the last with ts <= l.TS;
			// the left records come in order of ts, so i only moves on
			for i < len(right) && right[i].TS <= l.TS {
				i++
			}
			var r *item
			if i > 0 && (j.cfg.MaxStaleness < 0 || l.TS-right[i-1].TS <= j.cfg.MaxStaleness) {
				r = &right[i-1]
			}
			if err := j.emit(l, r, out); err != nil {
				return err
			}
		} else {
			lo, hi := l.TS+j.cfg.Lower, l.TS+j.cfg.Upper
			i, _ := slices.BinarySearchFunc(right, lo, func(x item, t int64) int { return cmp.Compare(x.TS, t) })
			for ; i < len(right) && right[i].TS <= hi; i++ {
				if err := j.emit(l, &right[i], out); err != nil {
					return err
				}
			}
		}
	}
	// Left records still to be emitted have ts >= cut.
	cut := wm
	if rest := g.left.Items(); len(rest) > 0 {
		cut = min(cut, rest[0].TS)
	}
	drop := 0
	if j.cfg.Kind == AsOf {
		// keep the last right at or before cut: it is the answer for a
		// left record at cut
		i, _ := slices.BinarySearchFunc(right, cut+1, func(x item, t int64) int { return cmp.Compare(x.TS, t) })
		drop = max(i-1, 0)
	} else if cut > md.MinTime/2 {
		drop, _ = slices.BinarySearchFunc(right, cut+j.cfg.Lower, func(x item, t int64) int { return cmp.Compare(x.TS, t) })
	}
	g.right.Drop(drop)
	return nil
}

// OutputWatermark implements engine.WatermarkHolder: an interval join
// holds the watermark back by upper, the time its left records wait.
func (j *Join) OutputWatermark(wm int64) int64 {
	if j.cfg.Kind == Interval && j.cfg.Upper > 0 && wm != md.MaxTime {
		if wm < md.MinTime+j.cfg.Upper {
			return md.MinTime
		}
		return wm - j.cfg.Upper
	}
	return wm
}

func sideValue(s md.Side) int64 {
	switch s {
	case md.SideBuy:
		return 1
	case md.SideSell:
		return -1
	}
	return 0
}

// emit appends the pair (l, r); r is nil for an unmatched asof record.
func (j *Join) emit(li, ri *item, out *engine.Output) error {
	l := &li.Rec
	var r *rec
	if ri != nil {
		r = &ri.Rec
	}
	if j.ob == nil {
		j.ob = out.NewBatch(md.KindDerived)
		j.ob.Schema = j.cfg.Schema
	}
	row := j.ob.AddDerived(li.TS, l.sym)
	for i, c := range j.cols {
		var v md.Value
		switch {
		case c <= cLeft3:
			v = md.FloatValue(l.v[c-cLeft0])
		case c == cLeftSide:
			v = md.IntValue(sideValue(l.side))
		case r == nil:
			// unmatched: right fields stay 0, matched 0
		case c <= cRight3:
			v = md.FloatValue(r.v[c-cRight0])
		case c == cRightSide:
			v = md.IntValue(sideValue(r.side))
		case c == cMid:
			v = md.FloatValue((r.v[0] + r.v[1]) / 2)
		case c == cSpread:
			v = md.FloatValue(r.v[1] - r.v[0])
		case c == cQuoteSide:
			mid := (r.v[0] + r.v[1]) / 2
			switch p := l.v[0]; {
			case p > mid:
				v = md.IntValue(1)
			case p < mid:
				v = md.IntValue(-1)
			}
		case c == cRightTS:
			v = md.IntValue(ri.TS)
		case c == cMatched:
			v = md.IntValue(1)
		}
		row[i] = v
	}
	if len(j.ob.Derived) >= j.batchMax {
		return j.flush(out)
	}
	return nil
}

func (j *Join) flush(out *engine.Output) error {
	if j.ob == nil {
		return nil
	}
	b := j.ob
	j.ob = nil
	return out.Emit(b)
}

func (j *Join) flushStats() {
	if j.stats != nil && j.nLate != 0 {
		j.stats.Drop(DropLate, j.nLate)
		j.nLate = 0
	}
}
