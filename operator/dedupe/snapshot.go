package dedupe

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the deduplicator's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the deduplicator's state in a checkpoint: its watermark and
// the keys it remembers, oldest first (the order they are forgotten and
// evicted in), each with its symbol by stable identity and its expiry.
type snapshot struct {
	V       int         `json:"v"`
	WM      int64       `json:"wm"`
	Symbols []keyed.Key `json:"symbols"`
	Keys    []keySnap   `json:"keys"`
}

type keySnap struct {
	Sym    int    `json:"s"` // index into Symbols
	ID     uint64 `json:"id"`
	Expire int64  `json:"e"`
}

// Snapshot implements engine.Snapshotter.
func (d *Dedupe) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, WM: d.wm}
	idx := map[md.SymID]int{}
	for n := d.head; n < d.next; n++ {
		e := *d.at(n)
		if at, ok := d.seen.find(e.k); !ok || at != n {
			continue // forgotten or superseded: a stale ring entry
		}
		i, ok := idx[e.k.sym]
		if !ok {
			i = len(sn.Symbols)
			idx[e.k.sym] = i
			sn.Symbols = append(sn.Symbols, keyed.KeyOf(d.nc.Symbols, e.k.sym))
		}
		sn.Keys = append(sn.Keys, keySnap{Sym: i, ID: e.k.id, Expire: e.expire})
	}
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it remembers the keys of the
// symbols this instance owns from every instance's snapshot (so the
// parallelism may change), each instance's oldest first.
func (d *Dedupe) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.deduplicate: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.deduplicate: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if first || sn.WM > d.wm {
			d.wm = sn.WM
		}
		first = false
		syms := make([]md.SymID, len(sn.Symbols))
		owned := make([]bool, len(sn.Symbols))
		for k, key := range sn.Symbols {
			if owned[k] = key.Owner(d.nc.Instances) == d.nc.Instance; owned[k] {
				syms[k] = d.nc.Symbols.Intern(key.Provider, key.Symbol)
			}
		}
		for _, ks := range sn.Keys {
			if ks.Sym < 0 || ks.Sym >= len(sn.Symbols) {
				return fmt.Errorf("operator.deduplicate: checkpoint state of instance %d: symbol index %d out of range", i, ks.Sym)
			}
			if owned[ks.Sym] {
				d.remember(key{ks.ID, syms[ks.Sym]}, ks.Expire)
			}
		}
	}
	return nil
}
