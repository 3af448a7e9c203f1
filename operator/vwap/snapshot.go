package vwap

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the VWAP operator's checkpoint
// encoding.
const snapshotVersion = 1

// snapshot is the operator's state in a checkpoint: its watermark and
// input kind and, per symbol by stable identity, the records waiting for
// the watermark, the sums (exact float64 values, so the sums go on as if
// never interrupted), the session's end and, rolling, the window's
// entries. Timers are rebuilt from the waiting records.
type snapshot struct {
	V     int       `json:"v"`
	WM    int64     `json:"wm"`
	Input md.Kind   `json:"input"`
	Keys  []keySnap `json:"keys"`
}

type keySnap struct {
	Provider string     `json:"p"`
	Symbol   string     `json:"s"`
	Pending  [][4]int64 `json:"pending,omitempty"` // ts, price bits, size bits, trades
	SessEnd  int64      `json:"sess_end"`
	PV       float64    `json:"pv"`
	Vol      float64    `json:"vol"`
	N        int64      `json:"n"`
	Win      [][3]int64 `json:"win,omitempty"` // ts, pv bits, vol bits
}

func bits(f float64) int64  { return int64(math.Float64bits(f)) }
func float(b int64) float64 { return math.Float64frombits(uint64(b)) }

// Snapshot implements engine.Snapshotter.
func (o *VWAP) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, WM: o.wm, Input: o.input}
	o.st.Range(func(_ md.SymID, k keyed.Key, s *symState) bool {
		ks := keySnap{Provider: k.Provider, Symbol: k.Symbol, SessEnd: s.sessEnd, PV: s.pv, Vol: s.vol, N: s.n}
		for _, p := range s.pending.Items() {
			ks.Pending = append(ks.Pending, [4]int64{p.TS, bits(p.Rec.p), bits(p.Rec.sz), p.Rec.trades})
		}
		for _, e := range s.win[s.head:] {
			ks.Win = append(ks.Win, [3]int64{e.ts, bits(e.pv), bits(e.vol)})
		}
		sn.Keys = append(sn.Keys, ks)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (o *VWAP) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.vwap: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.vwap: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
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
			st := symState{sessEnd: ks.SessEnd, pv: ks.PV, vol: ks.Vol, n: ks.N}
			for _, w := range ks.Win {
				st.win = append(st.win, entry{ts: w[0], pv: float(w[1]), vol: float(w[2])})
			}
			sym := o.st.Restore(k, st)
			s := o.st.Get(sym)
			for _, p := range ks.Pending {
				s.pending.Insert(p[0], point{p: float(p[1]), sz: float(p[2]), trades: p[3]})
			}
			s.pending.Rearm(&o.sched, sym)
		}
	}
	return nil
}
