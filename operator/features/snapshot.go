package features

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the features operator's checkpoint
// encoding.
const snapshotVersion = 1

// snapshot is the operator's state in a checkpoint: its watermark and
// input kind and, per symbol by stable identity, the records waiting for
// the watermark and the series state (the rings of recent prices and
// squared log returns, the running sums, EMAs and RSI averages) as exact
// float64 values, so every feature goes on as if never interrupted.
// Timers are rebuilt from the waiting records. The list of features comes
// from the job file; a restore into another list is refused.
type snapshot struct {
	V        int       `json:"v"`
	Features []string  `json:"features"`
	WM       int64     `json:"wm"`
	Input    md.Kind   `json:"input"`
	Keys     []keySnap `json:"keys"`
}

type keySnap struct {
	Provider string       `json:"p"`
	Symbol   string       `json:"s"`
	Pending  []pointSnap  `json:"pending,omitempty"`
	Ring     []float64    `json:"ring,omitempty"`
	LR2      []float64    `json:"lr2,omitempty"`
	N        int64        `json:"n"`
	Last     float64      `json:"last"`
	Rolls    [][2]float64 `json:"rolls,omitempty"`
	EMA      []float64    `json:"ema,omitempty"`
	Gain     []float64    `json:"gain,omitempty"`
	Loss     []float64    `json:"loss,omitempty"`
}

type pointSnap struct {
	TS int64   `json:"ts"`
	P  float64 `json:"p"`
}

func (o *Features) names() []string {
	out := make([]string, len(o.fs))
	for i, f := range o.fs {
		out[i] = f.Name
	}
	return out
}

// Snapshot implements engine.Snapshotter.
func (o *Features) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Features: o.names(), WM: o.wm, Input: o.input}
	o.st.Range(func(_ md.SymID, k keyed.Key, s *symState) bool {
		ks := keySnap{Provider: k.Provider, Symbol: k.Symbol, Ring: s.ring, LR2: s.lr2, N: s.n, Last: s.last, EMA: s.ema, Gain: s.gain, Loss: s.loss}
		for _, p := range s.pending.Items() {
			ks.Pending = append(ks.Pending, pointSnap{TS: p.TS, P: p.Rec})
		}
		for _, r := range s.rolls {
			ks.Rolls = append(ks.Rolls, [2]float64{r.sum, r.sumsq})
		}
		sn.Keys = append(sn.Keys, ks)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (o *Features) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.features: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.features: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if !slices.Equal(sn.Features, o.names()) {
			return fmt.Errorf("operator.features: the checkpoint has features %v, the job %v: restore it without this node's state (--allow-graph-change with another node id)", sn.Features, o.names())
		}
		if first || sn.WM > o.wm {
			o.wm = sn.WM
		}
		first = false
		if sn.Input != md.KindNone {
			o.input = sn.Input
		}
		for _, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(o.instances) != o.instance {
				continue
			}
			st := symState{n: ks.N, pos: int(ks.N % int64(o.maxN+1)), last: ks.Last}
			if ks.Ring != nil {
				if len(ks.Ring) != o.maxN+1 || len(ks.LR2) != o.maxN+1 || len(ks.Rolls) != len(o.fs) || len(ks.EMA) != len(o.fs) || len(ks.Gain) != len(o.fs) || len(ks.Loss) != len(o.fs) {
					return fmt.Errorf("operator.features: checkpoint state of instance %d: the series of %s have the wrong lengths", i, ks.Symbol)
				}
				st.ring, st.lr2, st.ema, st.gain, st.loss = ks.Ring, ks.LR2, ks.EMA, ks.Gain, ks.Loss
				st.rolls = make([]roll, len(ks.Rolls))
				for j, r := range ks.Rolls {
					st.rolls[j] = roll{sum: r[0], sumsq: r[1]}
				}
			}
			sym := o.st.Restore(k, st)
			s := o.st.Get(sym)
			for _, p := range ks.Pending {
				s.pending.Insert(p.TS, p.P)
			}
			s.pending.Rearm(&o.sched, sym)
		}
	}
	return nil
}
