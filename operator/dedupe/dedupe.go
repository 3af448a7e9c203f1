// Package dedupe is the operator.deduplicate component: it drops a record
// whose key was already seen within ttl of event time, in bounded memory.
//
// Key: by default the record's symbol (its provider and symbol text, as
// the job interned them) and its trade id, or its sequence number when it
// has no trade id (quotes have only a sequence number; bars use their
// start). A record with neither passes unchecked and is counted under
// keyless. With key, an expression (integer or string) replaces the id;
// the symbol stays part of the key, and a string is hashed (xxhash64).
//
// Memory: at most max_keys keys per instance (the ring starts small and
// doubles up to it). Keys are kept in a ring in
// the order they were first seen; when it is full, the oldest key is
// forgotten and counted under evicted (a duplicate of it is then passed).
// A record is a duplicate when a record with its key and an event time at
// most ttl earlier (first ts <= ts < first ts + ttl) was seen, a rule on
// event times alone, so the result does not depend on batching or
// parallelism. Memory is freed by the watermark: once it reaches a key's
// first ts + ttl no record that is not late can match it, and OnWatermark
// pops such keys off the ring (the keyed operators' rule: event-time
// state expires when the watermark passes its end). A late record (behind
// the watermark) is checked against the keys still held and so may pass
// as new when its twin was already forgotten.
package dedupe

import (
	"context"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/filter"
	"github.com/mdpio/mdp/operator/internal/recexpr"
)

// Type is the component's type id.
const Type = "operator.deduplicate"

// MaxKeys bounds max_keys.
const MaxKeys = 1 << 28

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Drop records whose key was seen within ttl of event time; bounded memory (max_keys)",
		Description: "Key: the symbol plus, by default, the trade id (else the sequence number; quotes their sequence number, bars " +
			"their start), or plus the value of the key expression (integer or string). A record is a duplicate when one with its " +
			"key was seen at most ttl of event time earlier (first ts <= ts < first ts + ttl); duplicates are counted as dropped " +
			"under duplicate. Keys are forgotten when the watermark passes first ts + ttl, so a late record may pass. At most max_keys " +
			"keys per instance are kept: the oldest is forgotten when a new one arrives at the limit, counted under evicted. Records " +
			"without a trade id or sequence number (default key) pass and are counted under keyless.",
		Accepts: md.KindTrade | md.KindQuote | md.KindBar, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "ttl", Type: component.Duration, Required: true, Min: component.Bound(0.000001),
				Description: "How long (event time) a key is remembered after its first record.", Example: "1m"},
			{Name: "max_keys", Type: component.Int, Default: 1000000, Min: component.Bound(1), Max: component.Bound(MaxKeys),
				Description: "Most keys kept per instance; the oldest is evicted (counted) beyond it."},
			{Name: "key", Type: component.String,
				Description: "An expression (integer or string) identifying a record within its symbol, instead of trade id / sequence.",
				Example:     "trade_id"},
		},
		Validate: func(p *component.Params) error {
			if p.Has("key") {
				_, err := filter.Compile(p, "key", recexpr.Any)
				return err
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			cfg := Config{TTL: p.Duration("ttl").Nanoseconds(), MaxKeys: int(p.Int("max_keys"))}
			if p.Has("key") {
				prog, err := filter.Compile(p, "key", recexpr.Any)
				if err != nil {
					return nil, err
				}
				cfg.Key = prog
			}
			return New(cfg), nil
		},
	})
}

// Config is the operator's settings.
type Config struct {
	TTL     int64 // ns
	MaxKeys int
	Key     *recexpr.Program // nil: the default key
}

type key struct {
	id  uint64
	sym md.SymID
}

type entry struct {
	k      key
	expire int64
}

// Dedupe is the operator.
type Dedupe struct {
	cfg Config
	nc  *engine.NodeContext
	env *recexpr.Env
	// seen maps each remembered (symbol, id) to its ring number (n of
	// its entry).
	seen  *table
	ring  []entry // a power of two long
	mask  uint64  // len(ring) - 1
	head  uint64  // number of the oldest entry in the ring
	next  uint64  // number of the next entry
	wm    int64
	keep  []bool
	drops struct{ dup, evicted, keyless int64 }
}

// New returns a deduplicator.
func New(cfg Config) *Dedupe {
	size := 1
	for size < min(cfg.MaxKeys, 1024) {
		size <<= 1
	}
	return &Dedupe{cfg: cfg, seen: newTable(size), ring: make([]entry, size), mask: uint64(size - 1), wm: md.MinTime}
}

// Open checks the key expression against the input's kinds.
func (d *Dedupe) Open(ctx context.Context, nc *engine.NodeContext) error {
	if d.cfg.Key != nil && nc.Inputs != md.KindNone {
		if err := d.cfg.Key.CheckKinds(nc.Inputs); err != nil {
			return err
		}
	}
	d.nc = nc
	d.env = recexpr.NewEnv(nc.Symbols)
	return nil
}

// Len is the number of keys remembered.
func (d *Dedupe) Len() int { return d.seen.n }

// Summary reports the keys still remembered at the end.
func (d *Dedupe) Summary() map[string]int64 { return map[string]int64{"keys_held": int64(d.seen.n)} }

func (d *Dedupe) keyOf(b *md.Batch, i int, prog *recexpr.Compiled) (key, bool, error) {
	if prog != nil {
		var sym md.SymID
		switch b.Kind {
		case md.KindTrade:
			d.env.SetTrade(&b.Trades[i])
			sym = b.Trades[i].Sym
		case md.KindQuote:
			d.env.SetQuote(&b.Quotes[i])
			sym = b.Quotes[i].Sym
		default:
			d.env.SetBar(&b.Bars[i])
			sym = b.Bars[i].Sym
		}
		v, err := d.env.Run(prog, b.Kind)
		if err != nil {
			return key{}, false, fmt.Errorf("operator.deduplicate: key %q: %w", d.cfg.Key.Source, err)
		}
		switch x := v.(type) {
		case int:
			return key{uint64(x), sym}, true, nil
		case int64:
			return key{uint64(x), sym}, true, nil
		case string:
			return key{xxhash.Sum64String(x), sym}, true, nil
		}
		return key{}, false, fmt.Errorf("operator.deduplicate: key %q gave %T, want an integer or a string", d.cfg.Key.Source, v)
	}
	switch b.Kind {
	case md.KindTrade:
		t := &b.Trades[i]
		if t.TradeID != 0 {
			return key{uint64(t.TradeID), t.Sym}, true, nil
		}
		return key{t.Seq, t.Sym}, t.Seq != 0, nil
	case md.KindQuote:
		q := &b.Quotes[i]
		return key{q.Seq, q.Sym}, q.Seq != 0, nil
	}
	r := &b.Bars[i]
	return key{uint64(r.Start), r.Sym}, true, nil
}

func ts(b *md.Batch, i int) int64 {
	switch b.Kind {
	case md.KindTrade:
		return b.Trades[i].TS
	case md.KindQuote:
		return b.Quotes[i].TS
	}
	return b.Bars[i].Start
}

// seenBefore records k at event time t and reports whether it is a
// duplicate of a key still remembered.
func (d *Dedupe) seenBefore(k key, t int64) bool {
	i, ok := d.seen.lookup(k)
	if ok && t < d.at(d.seen.slots[i].ring).expire {
		return true
	}
	// new, or expired but not yet popped (its ring entry goes stale when
	// remember renumbers it)
	if ok || d.full() {
		d.remember(k, t+d.cfg.TTL)
		return false
	}
	// the common case: a new key and room in the ring, so the slot lookup
	// found is still k's
	n := d.next
	d.next++
	*d.at(n) = entry{k: k, expire: t + d.cfg.TTL}
	d.seen.putAt(i, k, n)
	return false
}

// remember adds k, forgotten at expire, as the newest key.
func (d *Dedupe) remember(k key, expire int64) {
	switch {
	case d.next-d.head >= uint64(d.cfg.MaxKeys):
		d.popHead(true)
	case d.next-d.head == uint64(len(d.ring)):
		d.grow()
	}
	n := d.next
	d.next++
	*d.at(n) = entry{k: k, expire: expire}
	d.seen.put(k, n)
}

// full reports whether remembering one more key needs room made first:
// the ring full or MaxKeys reached.
func (d *Dedupe) full() bool {
	live := d.next - d.head
	return live == uint64(len(d.ring)) || live >= uint64(d.cfg.MaxKeys)
}

// at is the ring entry numbered n.
func (d *Dedupe) at(n uint64) *entry { return &d.ring[n&d.mask] }

// grow doubles the ring (a power of two, so an entry's place is its number
// masked; it holds at most MaxKeys live entries, so it grows to less than
// 2·MaxKeys). Entries keep their numbers; the live window, shorter than
// the new ring, lands without collisions.
func (d *Dedupe) grow() {
	nr := make([]entry, 2*len(d.ring))
	mask := uint64(len(nr) - 1)
	for n := d.head; n < d.next; n++ {
		nr[n&mask] = *d.at(n)
	}
	d.ring, d.mask = nr, mask
	d.seen.grow(min(len(nr), d.cfg.MaxKeys))
}

// popHead forgets the oldest ring entry; evict says it is forced out by
// the bound (counted when it is still live and unexpired).
func (d *Dedupe) popHead(evict bool) {
	e := d.at(d.head)
	if d.seen.delIf(e.k, d.head) && evict && e.expire > d.wm {
		d.drops.evicted++
	}
	d.head++
}

// Process drops duplicates from b; a batch without any is forwarded whole.
func (d *Dedupe) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	var prog *recexpr.Compiled
	if d.cfg.Key != nil {
		p, err := d.cfg.Key.For(b.Kind)
		if err != nil {
			return fmt.Errorf("operator.deduplicate: %w", err)
		}
		prog = p
	}
	n := b.Len()
	d.keep = d.keep[:0]
	dups := 0
	for i := 0; i < n; i++ {
		k, ok, err := d.keyOf(b, i, prog)
		if err != nil {
			return err
		}
		dup := false
		if !ok {
			d.drops.keyless++
		} else {
			dup = d.seenBefore(k, ts(b, i))
		}
		if dup {
			dups++
		}
		d.keep = append(d.keep, !dup)
	}
	d.flushCounts()
	if dups == 0 {
		b.Retain(1)
		return out.Emit(b)
	}
	d.nc.Stats.Drop("duplicate", int64(dups))
	o := d.nc.Pool.GetCap(b.Kind, n-dups)
	for i, keep := range d.keep {
		if !keep {
			continue
		}
		switch b.Kind {
		case md.KindTrade:
			o.Trades = append(o.Trades, b.Trades[i])
		case md.KindQuote:
			o.Quotes = append(o.Quotes, b.Quotes[i])
		default:
			o.Bars = append(o.Bars, b.Bars[i])
		}
	}
	return out.Emit(o)
}

func (d *Dedupe) flushCounts() {
	if d.drops.evicted > 0 {
		d.nc.Stats.Count("evicted", d.drops.evicted)
		d.drops.evicted = 0
	}
	if d.drops.keyless > 0 {
		d.nc.Stats.Count("keyless", d.drops.keyless)
		d.drops.keyless = 0
	}
}

// OnWatermark forgets the keys whose time has passed, oldest first, up to
// the first one still live.
func (d *Dedupe) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	d.wm = wm
	for d.head < d.next && d.at(d.head).expire <= wm {
		d.popHead(false)
	}
	if wm == md.MaxTime {
		d.seen.reset()
		d.head = d.next
	}
	return nil
}
