package resample

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the resampler's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the resampler's state in a checkpoint: the watermark, what
// has closed, the input bars' source and, per symbol by stable identity,
// the open coarse bars with the fine bars they hold (their Sym is
// rewritten on restore). Timers are rebuilt, one per open coarse bar.
type snapshot struct {
	V      int          `json:"v"`
	WM     int64        `json:"wm"`
	Closed int64        `json:"closed"`
	Seen   bool         `json:"seen"`
	Source md.BarSource `json:"source"`
	Keys   []keySnap    `json:"keys"`
}

type keySnap struct {
	Provider string       `json:"p"`
	Symbol   string       `json:"s"`
	Open     []bucketSnap `json:"open"`
}

type bucketSnap struct {
	Start int64    `json:"start"`
	End   int64    `json:"end"`
	Fine  []md.Bar `json:"fine"`
}

// Snapshot implements engine.Snapshotter.
func (r *Resample) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, WM: r.wm, Closed: r.closed, Seen: r.seen, Source: r.source}
	r.st.Range(func(_ md.SymID, k keyed.Key, s *symState) bool {
		if len(s.open) == 0 {
			return true
		}
		ks := keySnap{Provider: k.Provider, Symbol: k.Symbol}
		for _, b := range s.open {
			ks.Open = append(ks.Open, bucketSnap{Start: b.start, End: b.end, Fine: b.fine})
		}
		sn.Keys = append(sn.Keys, ks)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (r *Resample) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.resample_ohlc: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.resample_ohlc: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if first {
			r.wm, r.closed = sn.WM, sn.Closed
		} else {
			r.wm, r.closed = max(r.wm, sn.WM), max(r.closed, sn.Closed)
		}
		first = false
		if sn.Seen {
			r.seen, r.source = true, sn.Source
		}
		for _, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(r.instances) != r.instance {
				continue
			}
			sym := r.st.Restore(k, symState{})
			s := r.st.Get(sym)
			for _, b := range ks.Open {
				for j := range b.Fine {
					b.Fine[j].Sym = sym
				}
				s.open = append(s.open, bucket{start: b.Start, end: b.End, fine: b.Fine})
				r.timers.Set(b.End, sym)
			}
		}
	}
	return nil
}
