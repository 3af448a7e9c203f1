package join

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/hold"
)

// snapshotVersion is the version of the join's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the join's state in a checkpoint: its watermark and, per
// symbol text (the join's key, across providers), the left records
// waiting for the watermark and the right records they may still pair
// with, each with its own provider (an output record keeps its left
// record's). Timers are rebuilt from the waiting left records.
type snapshot struct {
	V      int         `json:"v"`
	WM     int64       `json:"wm"`
	Groups []groupSnap `json:"groups"`
}

type groupSnap struct {
	Symbol    string    `json:"s"`
	Providers []string  `json:"providers"` // [0] is the provider the group was first seen under
	Left      []recSnap `json:"left,omitempty"`
	Right     []recSnap `json:"right,omitempty"`
}

type recSnap struct {
	TS       int64      `json:"ts"`
	Provider int        `json:"p"` // index into Providers
	Side     md.Side    `json:"side,omitempty"`
	V        [4]float64 `json:"v"`
}

// Snapshot implements engine.Snapshotter.
func (j *Join) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, WM: j.wm}
	syms := j.groups.Symbols()
	j.groups.Range(func(sym md.SymID, k keyed.Key, g *group) bool {
		if g.left.Len() == 0 && g.right.Len() == 0 {
			return true
		}
		gs := groupSnap{Symbol: k.Symbol, Providers: []string{k.Provider}}
		conv := func(rs []item) []recSnap {
			out := make([]recSnap, len(rs))
			for i, it := range rs {
				r := &it.Rec
				p := syms.Get(r.sym).Provider
				pi := slices.Index(gs.Providers, p)
				if pi < 0 {
					pi = len(gs.Providers)
					gs.Providers = append(gs.Providers, p)
				}
				out[i] = recSnap{TS: it.TS, Provider: pi, Side: r.side, V: r.v}
			}
			return out
		}
		gs.Left, gs.Right = conv(g.left.Items()), conv(g.right.Items())
		sn.Groups = append(sn.Groups, gs)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (j *Join) Restore(ctx context.Context, states [][]byte) error {
	syms := j.groups.Symbols()
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.join: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.join: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if first || sn.WM > j.wm {
			j.wm = sn.WM
		}
		first = false
		for _, gs := range sn.Groups {
			if len(gs.Providers) == 0 {
				return fmt.Errorf("operator.join: checkpoint state of instance %d: group %s has no provider", i, gs.Symbol)
			}
			if (keyed.Key{Symbol: gs.Symbol}).Owner(j.instances) != j.instance {
				continue
			}
			ids := make([]md.SymID, len(gs.Providers))
			for p, prov := range gs.Providers {
				ids[p] = syms.Intern(prov, gs.Symbol)
			}
			k := ids[0] // a symbol text is in one instance's state only
			j.byText[gs.Symbol] = k
			for _, id := range ids {
				*j.canon.Get(id) = k + 1
			}
			g := j.groups.Get(k)
			for _, side := range []struct {
				recs []recSnap
				q    *hold.Queue[rec]
			}{{gs.Left, &g.left}, {gs.Right, &g.right}} {
				for _, r := range side.recs {
					if r.Provider < 0 || r.Provider >= len(ids) {
						return fmt.Errorf("operator.join: checkpoint state of instance %d: provider index %d out of range", i, r.Provider)
					}
					side.q.Insert(r.TS, rec{sym: ids[r.Provider], side: r.Side, v: r.V})
				}
			}
			g.left.Rearm(&j.sched, k)
		}
	}
	return nil
}
