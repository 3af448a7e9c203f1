// Package throttle is the operator.throttle component: a token bucket in
// processing time, per symbol or global. A record passes when its bucket
// holds a token; otherwise, with mode drop, it is counted as dropped under
// throttled, and with mode conflate it is kept as its symbol's pending
// record, replacing (and counting under conflated) an older pending one,
// and emitted when a token frees. Freeing is driven by the engine's
// processing-time tick (engine.TimerHandler) through a keyed.Timers
// schedule, one timer per symbol with a pending record: no goroutine and
// no sleeping per record. Pending records are emitted at end of stream,
// and while any is held the forwarded watermark is held at the oldest
// pending event time, so downstream never sees it as late.
package throttle

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.throttle"

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Token-bucket rate limit per symbol or global; drop (counted) or conflate to the latest per symbol",
		Description: "A bucket holds up to burst tokens and gains rate tokens per second of wall-clock time; a record takes one. " +
			"per: symbol gives each symbol its bucket, global shares one. mode drop counts records without a token under " +
			"throttled; mode conflate keeps the latest one per symbol (an older pending record is counted under conflated) and " +
			"emits it when a token frees, on the engine's processing-time timer. Pending records are emitted at end of stream; " +
			"the forwarded watermark is held at the oldest pending record's event time.",
		Accepts: md.KindTrade | md.KindQuote | md.KindBar, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "rate", Type: component.Float, Required: true, Min: component.Bound(1e-6), Max: component.Bound(1e9),
				Description: "Tokens added per second.", Example: 10},
			{Name: "burst", Type: component.Int, Default: 1, Min: component.Bound(1), Max: component.Bound(1e9),
				Description: "Bucket size: most records passed at once after a quiet spell."},
			{Name: "per", Type: component.String, Default: "symbol", Enum: []string{"symbol", "global"},
				Description: "symbol: a bucket per symbol; global: one bucket for the node instance."},
			{Name: "mode", Type: component.String, Default: "drop", Enum: []string{"drop", "conflate"},
				Description: "drop: count records without a token; conflate: keep the latest per symbol and emit it when a token frees."},
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return New(Config{Rate: p.Float("rate"), Burst: float64(p.Int("burst")), Global: p.String("per") == "global",
				Conflate: p.String("mode") == "conflate"}), nil
		},
	})
}

// Config is the throttle's settings. Now, when set, replaces the wall
// clock (ns), for tests.
type Config struct {
	Rate     float64 // tokens per second
	Burst    float64
	Global   bool
	Conflate bool
	Now      func() int64
}

type bucket struct {
	tokens float64
	last   int64 // ns; 0 before the first record (a full bucket)
}

type pending struct {
	has bool
	ts  int64
	t   md.Trade
	q   md.Quote
	b   md.Bar
	k   md.Kind
}

// Throttle is the operator.
type Throttle struct {
	cfg      Config
	nc       *engine.NodeContext
	buckets  *keyed.State[bucket]
	global   bucket
	pend     *keyed.State[pending]
	npend    int
	timers   keyed.Timers
	outs     [3]*md.Batch
	throttle int64
	conflate int64
}

// New returns a throttle.
func New(cfg Config) *Throttle {
	if cfg.Now == nil {
		cfg.Now = func() int64 { return time.Now().UnixNano() }
	}
	return &Throttle{cfg: cfg}
}

// Open sets up the keyed state.
func (t *Throttle) Open(ctx context.Context, nc *engine.NodeContext) error {
	t.nc = nc
	t.buckets = keyed.NewState[bucket](nc.Symbols)
	t.pend = keyed.NewState[pending](nc.Symbols)
	return nil
}

func (t *Throttle) bucketOf(sym md.SymID) *bucket {
	if t.cfg.Global {
		return &t.global
	}
	return t.buckets.Get(sym)
}

// take refills bk to now and takes a token if there is one.
func (t *Throttle) take(bk *bucket, now int64) bool {
	if bk.last == 0 {
		bk.tokens, bk.last = t.cfg.Burst, now
	} else if now > bk.last {
		bk.tokens = math.Min(t.cfg.Burst, bk.tokens+float64(now-bk.last)*t.cfg.Rate/1e9)
		bk.last = now
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return true
	}
	return false
}

// freeAt is when bk will hold a token.
func (t *Throttle) freeAt(bk *bucket) int64 {
	return bk.last + int64(math.Ceil((1-bk.tokens)*1e9/t.cfg.Rate))
}

func slot(k md.Kind) int {
	switch k {
	case md.KindQuote:
		return 1
	case md.KindBar:
		return 2
	}
	return 0
}

func (t *Throttle) out(k md.Kind) *md.Batch {
	i := slot(k)
	if t.outs[i] == nil {
		t.outs[i] = t.nc.Pool.Get(k)
	}
	return t.outs[i]
}

// Process passes, drops or conflates b's records.
func (t *Throttle) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	now := t.cfg.Now()
	n := b.Len()
	for i := 0; i < n; i++ {
		var sym md.SymID
		var ts int64
		switch b.Kind {
		case md.KindTrade:
			sym, ts = b.Trades[i].Sym, b.Trades[i].TS
		case md.KindQuote:
			sym, ts = b.Quotes[i].Sym, b.Quotes[i].TS
		case md.KindBar:
			sym, ts = b.Bars[i].Sym, b.Bars[i].Start
		default:
			return fmt.Errorf("operator.throttle: cannot throttle %s records", b.Kind)
		}
		bk := t.bucketOf(sym)
		if t.take(bk, now) {
			if t.cfg.Conflate {
				if p, ok := t.pend.Lookup(sym); ok && p.has {
					p.has = false // superseded by a newer record that passes now
					t.npend--
					t.conflate++
				}
			}
			o := t.out(b.Kind)
			switch b.Kind {
			case md.KindTrade:
				o.Trades = append(o.Trades, b.Trades[i])
			case md.KindQuote:
				o.Quotes = append(o.Quotes, b.Quotes[i])
			default:
				o.Bars = append(o.Bars, b.Bars[i])
			}
			continue
		}
		if !t.cfg.Conflate {
			t.throttle++
			continue
		}
		p := t.pend.Get(sym)
		if p.has {
			t.conflate++
		} else {
			t.npend++
			t.timers.Set(t.freeAt(bk), sym)
		}
		p.has, p.ts, p.k = true, ts, b.Kind
		switch b.Kind {
		case md.KindTrade:
			p.t = b.Trades[i]
		case md.KindQuote:
			p.q = b.Quotes[i]
		default:
			p.b = b.Bars[i]
		}
	}
	return t.flush(out)
}

func (t *Throttle) flush(out *engine.Output) error {
	t.nc.Stats.Drop("throttled", t.throttle)
	t.nc.Stats.Drop("conflated", t.conflate)
	t.throttle, t.conflate = 0, 0
	for i, o := range t.outs {
		if o == nil {
			continue
		}
		t.outs[i] = nil
		if err := out.Emit(o); err != nil {
			for _, rest := range t.outs[i+1:] {
				rest.Release()
			}
			clear(t.outs[:])
			return err
		}
	}
	return nil
}

func (t *Throttle) emitPending(p *pending) {
	o := t.out(p.k)
	switch p.k {
	case md.KindTrade:
		o.Trades = append(o.Trades, p.t)
	case md.KindQuote:
		o.Quotes = append(o.Quotes, p.q)
	default:
		o.Bars = append(o.Bars, p.b)
	}
	p.has = false
	t.npend--
}

// TimerInterval is half the time one token takes, between 1ms and 100ms.
func (t *Throttle) TimerInterval() time.Duration {
	d := time.Duration(0.5e9 / t.cfg.Rate)
	return min(max(d, time.Millisecond), 100*time.Millisecond)
}

// OnTimer emits the pending records whose bucket has a token again.
func (t *Throttle) OnTimer(ctx context.Context, wall time.Time, out *engine.Output) error {
	if !t.cfg.Conflate {
		return nil
	}
	now := t.cfg.Now()
	for _, keys, ok := t.timers.Pop(now); ok; _, keys, ok = t.timers.Pop(now) {
		for _, sym := range keys {
			p, ok := t.pend.Lookup(sym)
			if !ok || !p.has {
				continue
			}
			bk := t.bucketOf(sym)
			if t.take(bk, now) {
				t.emitPending(p)
			} else {
				t.timers.Set(t.freeAt(bk), sym)
			}
		}
	}
	return t.flush(out)
}

// OutputWatermark holds the watermark at the oldest pending record.
func (t *Throttle) OutputWatermark(wm int64) int64 {
	if t.npend == 0 {
		return wm
	}
	t.pend.Range(func(_ md.SymID, _ keyed.Key, p *pending) bool {
		if p.has && p.ts < wm {
			wm = p.ts
		}
		return true
	})
	return wm
}

// OnWatermark emits every pending record at the final watermark.
func (t *Throttle) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm != md.MaxTime || t.npend == 0 {
		return nil
	}
	t.pend.Range(func(_ md.SymID, _ keyed.Key, p *pending) bool {
		if p.has {
			t.emitPending(p)
		}
		return true
	})
	return t.flush(out)
}
