// Package features is the operator.features component: per-symbol rolling
// features over a price series (trade prices, quote mids or bar closes) —
// SMA, EMA, rolling standard deviation, simple and log returns, z-score,
// RSI and realized volatility, each over its own window of records — one
// derived record per input record.
//
// The series is taken in event-time order, not arrival order: records wait
// until the watermark passes them and are then folded in order of ts (ties
// in arrival order), so the features never depend on how a source's records
// were reordered within its max_out_of_orderness, on batch sizes or on
// parallelism. State is per symbol in engine/keyed and each release is an
// event-time timer there.
package features

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/hold"
)

// Fn is a feature function.
type Fn uint8

// Feature functions.
const (
	SMA Fn = iota
	EMA
	Stddev
	Return
	LogReturn
	ZScore
	RSI
	RealizedVol
)

var fnNames = [...]string{"sma", "ema", "stddev", "return", "log_return", "zscore", "rsi", "realized_vol"}

// Feature is one output feature.
type Feature struct {
	Fn   Fn
	N    int // window in records (returns: 1)
	Name string
}

// MaxWindow bounds a feature's window.
const MaxWindow = 100000

// Parse parses "sma(20)", "ema(12)", "stddev(20)", "return", "log_return",
// "zscore(20)", "rsi(14)" or "realized_vol(30)".
func Parse(s string) (Feature, error) {
	text := strings.TrimSpace(s)
	name, arg := text, ""
	if i := strings.IndexByte(text, '('); i >= 0 {
		if !strings.HasSuffix(text, ")") {
			return Feature{}, fmt.Errorf("feature %q: missing closing parenthesis", s)
		}
		name, arg = strings.TrimSpace(text[:i]), strings.TrimSpace(text[i+1:len(text)-1])
	}
	fn := slices.Index(fnNames[:], name)
	if fn < 0 {
		return Feature{}, fmt.Errorf("feature %q: unknown function %q (want one of %s)", s, name, strings.Join(fnNames[:], ", "))
	}
	f := Feature{Fn: Fn(fn), N: 1, Name: name}
	if f.Fn == Return || f.Fn == LogReturn {
		if arg != "" {
			return f, fmt.Errorf("feature %q: %s takes no window", s, name)
		}
		return f, nil
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > MaxWindow {
		return f, fmt.Errorf("feature %q: %s needs a window of 1 to %d records, as %s(20)", s, name, MaxWindow, name)
	}
	if f.Fn == RSI && n < 1 {
		return f, fmt.Errorf("feature %q: rsi needs a window of at least 1", s)
	}
	f.N, f.Name = n, name+"_"+arg
	return f, nil
}

// NewSchema declares the output: price, then one float64 field per feature.
func NewSchema(name string, fs []Feature) (*md.Schema, error) {
	fields := []md.Field{{Name: "price", Type: md.Float}}
	for _, f := range fs {
		fields = append(fields, md.Field{Name: f.Name, Type: md.Float})
	}
	return md.NewSchema(name, fields...)
}

// roll is a window's running sums over its last n values.
type roll struct {
	sum, sumsq float64
}

// symState is one symbol's series state.
type symState struct {
	pending hold.Queue[float64] // prices waiting for the watermark
	ring    []float64           // the last len(ring) prices
	lr2     []float64           // the last len(lr2) squared log returns
	n       int64               // prices folded
	pos     int                 // n % len(ring): where the next price goes
	last    float64
	rolls   []roll    // per feature: sums over its window of prices or squared log returns
	ema     []float64 // per feature
	gain    []float64 // rsi: average gain, per feature
	loss    []float64
}

// Features is the operator.
type Features struct {
	fs   []Feature
	maxN int
	// logReturns: a feature needs log returns (math.Log is most of a
	// fold's cost, so it is skipped when none does)
	logReturns bool
	schema     *md.Schema
	st         *keyed.State[symState]
	sched      hold.Schedule
	wm         int64
	input      md.Kind

	ob       *md.Batch
	batchMax int
	stats    *engine.NodeStats
	nLate    int64

	instance, instances int // for a restore: which symbols are this instance's
}

// New returns the operator for features fs with output schema sc.
func New(fs []Feature, sc *md.Schema) (*Features, error) {
	if len(fs) == 0 || sc == nil || sc.Len() != len(fs)+1 {
		return nil, fmt.Errorf("features: no features or a schema that does not fit them")
	}
	m, lr := 1, false
	for _, f := range fs {
		m = max(m, f.N)
		lr = lr || f.Fn == LogReturn || f.Fn == RealizedVol
	}
	return &Features{fs: fs, maxN: m, logReturns: lr, schema: sc, st: keyed.NewState[symState](md.NewSymbolTable()), wm: md.MinTime, batchMax: md.DefaultBatchSize}, nil
}

// Open implements engine.Opener.
func (o *Features) Open(ctx context.Context, nc *engine.NodeContext) error {
	o.stats = nc.Stats
	o.instance, o.instances = nc.Instance, nc.Instances
	if nc.Pool != nil {
		o.batchMax = nc.Pool.Size()
	}
	if nc.Symbols != nil {
		o.st = keyed.NewState[symState](nc.Symbols)
	}
	return nil
}

// Process implements engine.Processor: records are buffered per symbol
// until the watermark passes them.
func (o *Features) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	switch b.Kind {
	case md.KindTrade, md.KindQuote, md.KindBar:
	default:
		return fmt.Errorf("operator.features takes trades, quotes or bars, got a batch of %s records", b.Kind)
	}
	if o.input == md.KindNone {
		o.input = b.Kind
	} else if b.Kind != o.input {
		return fmt.Errorf("operator.features got %s records after %s records; one node computes features of one record kind", b.Kind, o.input)
	}
	for i := 0; i < n; i++ {
		var (
			ts  int64
			p   float64
			sym md.SymID
		)
		switch b.Kind {
		case md.KindTrade:
			t := &b.Trades[i]
			ts, p, sym = t.TS, t.Price, t.Sym
		case md.KindQuote:
			q := &b.Quotes[i]
			ts, p, sym = q.TS, (q.Bid+q.Ask)/2, q.Sym
		default:
			r := &b.Bars[i]
			ts, p, sym = r.TS(), r.Close, r.Sym
		}
		if ts < o.wm {
			o.nLate++
			continue
		}
		o.st.Get(sym).pending.Add(&o.sched, sym, ts, p)
	}
	if o.stats != nil && o.nLate != 0 {
		o.stats.Drop("late", o.nLate)
		o.nLate = 0
	}
	return nil
}

// OnWatermark implements engine.WatermarkHandler: it folds and emits, in
// order of ts, every buffered record the watermark passed.
func (o *Features) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	for syms, ok := o.sched.Due(wm); ok; syms, ok = o.sched.Due(wm) {
		for _, sym := range syms {
			s := o.st.Get(sym)
			for _, it := range s.pending.Release(&o.sched, sym, wm) {
				if err := o.fold(s, sym, it.TS, it.Rec, out); err != nil {
					return err
				}
			}
		}
	}
	return o.flush(out)
}

// fold adds price x at ts to sym's series and emits its features.
func (o *Features) fold(s *symState, sym md.SymID, ts int64, x float64, out *engine.Output) error {
	if s.ring == nil {
		s.ring = make([]float64, o.maxN+1)
		s.lr2 = make([]float64, o.maxN+1)
		s.rolls = make([]roll, len(o.fs))
		s.ema = make([]float64, len(o.fs))
		s.gain = make([]float64, len(o.fs))
		s.loss = make([]float64, len(o.fs))
	}
	size := len(s.ring)
	first := s.n == 0
	prev := s.last
	var lr float64
	if !first && o.logReturns {
		lr = math.Log(x / prev)
	}
	// the values that leave each window: the price n back, the squared
	// log return n back (returns exist from the second price on); pos is
	// this price's place in the rings, s.n % len(ring)
	pos := s.pos
	s.ring[pos] = x
	s.lr2[pos] = lr * lr
	if s.pos++; s.pos == size {
		s.pos = 0
	}
	s.n++
	s.last = x
	back := func(n int) int { // the ring index n places before pos
		if i := pos - n; i >= 0 {
			return i
		}
		return pos - n + size
	}
	if o.ob == nil {
		o.ob = out.NewBatch(md.KindDerived)
		o.ob.Schema = o.schema
	}
	row := o.ob.AddDerived(ts, sym)
	row[0] = md.FloatValue(x)
	for i := range o.fs {
		f := &o.fs[i]
		n := int64(f.N)
		r := &s.rolls[i]
		var v float64
		switch f.Fn {
		case SMA, Stddev, ZScore:
			r.sum += x
			r.sumsq += x * x
			if s.n > n {
				old := s.ring[back(f.N)]
				r.sum -= old
				r.sumsq -= old * old
			}
			m := float64(min(s.n, n))
			mean := r.sum / m
			variance := r.sumsq/m - mean*mean
			if variance <= 1e-13*mean*mean { // rounding of a constant window: 0
				variance = 0
			}
			switch f.Fn {
			case SMA:
				v = mean
			case Stddev:
				v = math.Sqrt(variance)
			default:
				if sd := math.Sqrt(variance); sd > 0 {
					v = (x - mean) / sd
				}
			}
		case EMA:
			if first {
				s.ema[i] = x
			} else {
				s.ema[i] += 2 / float64(n+1) * (x - s.ema[i])
			}
			v = s.ema[i]
		case Return:
			if !first {
				v = x/prev - 1
			}
		case LogReturn:
			v = lr
		case RealizedVol:
			// over the last n log returns (the first price has none)
			if !first {
				r.sum += lr * lr
				if s.n-1 > n {
					r.sum -= s.lr2[back(f.N)]
				}
				if r.sum != 0 && r.sum < 1e-15 {
					// What the subtractions leave of large returns that
					// left the window is rounding, which the square root
					// makes ~1e-9: take the window's exact sum (a window of
					// zero returns gives exactly 0). An exact 0, a flat
					// market's steady state, needs no pass.
					r.sum = 0
					for k := range f.N {
						r.sum += s.lr2[back(k)]
					}
				}
			}
			v = math.Sqrt(max(r.sum, 0))
		case RSI:
			if !first {
				up, down := max(x-prev, 0), max(prev-x, 0)
				changes := s.n - 1
				if changes <= n { // the first n changes: their plain mean
					s.gain[i] += (up - s.gain[i]) / float64(changes)
					s.loss[i] += (down - s.loss[i]) / float64(changes)
				} else { // then Wilder's smoothing
					s.gain[i] = (s.gain[i]*float64(n-1) + up) / float64(n)
					s.loss[i] = (s.loss[i]*float64(n-1) + down) / float64(n)
				}
			}
			switch g, l := s.gain[i], s.loss[i]; {
			case l == 0 && g == 0:
				v = 50
			case l == 0:
				v = 100
			default:
				v = 100 - 100/(1+g/l)
			}
		}
		row[1+i] = md.FloatValue(v)
	}
	if len(o.ob.Derived) >= o.batchMax {
		return o.flush(out)
	}
	return nil
}

// OutputWatermark implements engine.WatermarkHolder: records are emitted
// before the watermark that released them, so it passes through.
func (o *Features) OutputWatermark(wm int64) int64 { return wm }

func (o *Features) flush(out *engine.Output) error {
	if o.ob == nil {
		return nil
	}
	b := o.ob
	o.ob = nil
	return out.Emit(b)
}
