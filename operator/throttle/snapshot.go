package throttle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the throttle's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the throttle's state in a checkpoint: the buckets (tokens
// and the wall-clock time they were counted at: after a restore they
// refill for the time the job was down, capped at burst as always) and,
// with mode conflate, the record pending per symbol. Symbols are stored
// by stable identity; a pending record's Sym is rewritten on restore.
type snapshot struct {
	V      int       `json:"v"`
	Global bucketSn  `json:"global"`
	Keys   []keySnap `json:"keys"`
}

type bucketSn struct {
	Tokens float64 `json:"tokens"`
	Last   int64   `json:"last"`
}

func snapOf(b bucket) bucketSn { return bucketSn{Tokens: b.tokens, Last: b.last} }

func (b bucketSn) bucket() bucket { return bucket{tokens: b.Tokens, last: b.Last} }

type keySnap struct {
	Provider string    `json:"p"`
	Symbol   string    `json:"s"`
	Bucket   *bucketSn `json:"bucket,omitempty"`
	Kind     md.Kind   `json:"kind,omitempty"` // of the pending record; none when there is none
	Trade    *md.Trade `json:"trade,omitempty"`
	Quote    *md.Quote `json:"quote,omitempty"`
	Bar      *md.Bar   `json:"bar,omitempty"`
}

// Snapshot implements engine.Snapshotter.
func (t *Throttle) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Global: snapOf(t.global)}
	keys := map[keyed.Key]*keySnap{}
	var order []keyed.Key
	get := func(k keyed.Key) *keySnap {
		ks, ok := keys[k]
		if !ok {
			ks = &keySnap{Provider: k.Provider, Symbol: k.Symbol}
			keys[k] = ks
			order = append(order, k)
		}
		return ks
	}
	t.buckets.Range(func(_ md.SymID, k keyed.Key, b *bucket) bool {
		bs := snapOf(*b)
		get(k).Bucket = &bs
		return true
	})
	t.pend.Range(func(_ md.SymID, k keyed.Key, p *pending) bool {
		if !p.has {
			return true
		}
		ks := get(k)
		ks.Kind = p.k
		switch p.k {
		case md.KindTrade:
			r := p.t
			ks.Trade = &r
		case md.KindQuote:
			r := p.q
			ks.Quote = &r
		default:
			r := p.b
			ks.Bar = &r
		}
		return true
	})
	for _, k := range order {
		sn.Keys = append(sn.Keys, *keys[k])
	}
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change. With per: global each instance has its own bucket, so a
// restore into another parallelism starts every instance's bucket from
// the first instance's.
func (t *Throttle) Restore(ctx context.Context, states [][]byte) error {
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.throttle: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.throttle: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if i == t.nc.Instance || (i == 0 && t.nc.Instance >= len(states)) {
			t.global = sn.Global.bucket()
		}
		for _, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(t.nc.Instances) != t.nc.Instance {
				continue
			}
			if ks.Bucket != nil {
				t.buckets.Restore(k, ks.Bucket.bucket())
			}
			if ks.Kind == md.KindNone {
				continue
			}
			p := pending{has: true, k: ks.Kind}
			var sym md.SymID
			switch {
			case ks.Kind == md.KindTrade && ks.Trade != nil:
				p.t, p.ts = *ks.Trade, ks.Trade.TS
				sym = t.pend.Restore(k, p)
				t.pend.Get(sym).t.Sym = sym
			case ks.Kind == md.KindQuote && ks.Quote != nil:
				p.q, p.ts = *ks.Quote, ks.Quote.TS
				sym = t.pend.Restore(k, p)
				t.pend.Get(sym).q.Sym = sym
			case ks.Kind == md.KindBar && ks.Bar != nil:
				p.b, p.ts = *ks.Bar, ks.Bar.Start
				sym = t.pend.Restore(k, p)
				t.pend.Get(sym).b.Sym = sym
			default:
				return fmt.Errorf("operator.throttle: checkpoint state of instance %d: pending %s record of %s missing", i, ks.Kind, ks.Symbol)
			}
			t.npend++
			t.timers.Set(t.freeAt(t.bucketOf(sym)), sym)
		}
	}
	return nil
}
