package bars

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the bar builder's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the bar builder's state in a checkpoint: the watermark
// bookkeeping and, per symbol by stable identity, its open bars, the
// closed bars kept for late updates and what skip_first_partial and
// emit_empty remember. Timers are not stored: there is one per open bar,
// rebuilt on restore. The batch being filled and the dirty list are empty
// at a barrier (both are flushed at the end of every Process and
// OnWatermark).
type snapshot struct {
	V          int       `json:"v"`
	Input      md.Kind   `json:"input"`
	WM         int64     `json:"wm"`
	Closed     int64     `json:"closed"`
	RetainFrom int64     `json:"retain_from"`
	Next       int64     `json:"next"`
	HasNext    bool      `json:"has_next"`
	Keys       []keySnap `json:"keys"`
}

type keySnap struct {
	Provider   string    `json:"p"`
	Symbol     string    `json:"s"`
	Newest     *accSnap  `json:"newest,omitempty"`
	Older      []accSnap `json:"older,omitempty"`
	Retained   []accSnap `json:"retained,omitempty"`
	FirstStart int64     `json:"first_start"`
	LastClose  float64   `json:"last_close"`
	Seen       bool      `json:"seen,omitempty"`
	Skipped    bool      `json:"skipped,omitempty"`
	SkipStart  int64     `json:"skip_start,omitempty"`
	Active     bool      `json:"active,omitempty"`
}

type accSnap struct {
	Start, OpenTS, CloseTS int64
	Open, High, Low, Close float64
	Vol, PV                float64
	Count                  int64
}

func snapOf(a *acc) accSnap {
	return accSnap{Start: a.start, OpenTS: a.openTS, CloseTS: a.closeTS, Open: a.open, High: a.high, Low: a.low, Close: a.close, Vol: a.vol, PV: a.pv, Count: a.count}
}

func (s accSnap) acc(iv int64) acc {
	return acc{hot: hot{end: s.Start + iv, closeTS: s.CloseTS, high: s.High, low: s.Low, close: s.Close, vol: s.Vol, pv: s.PV, count: s.Count}, start: s.Start, openTS: s.OpenTS, open: s.Open}
}

// Snapshot implements engine.Snapshotter.
func (o *Bars) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Input: o.input, WM: o.wm, Closed: o.closed, RetainFrom: o.retainFrom, Next: o.next, HasNext: o.hasNxt}
	o.syms.Range(func(sym md.SymID, k keyed.Key, s *symState) bool {
		ks := keySnap{Provider: k.Provider, Symbol: k.Symbol, FirstStart: s.firstStart, LastClose: s.lastClose, Seen: s.seen, Skipped: s.skipped, SkipStart: s.skipStart}
		if h, ok := o.cur.Lookup(sym); ok && h.count != 0 {
			a := o.newest(sym)
			n := snapOf(&a)
			ks.Newest = &n
		}
		for i := range s.older {
			ks.Older = append(ks.Older, snapOf(&s.older[i]))
		}
		for i := range s.retained {
			ks.Retained = append(ks.Retained, snapOf(&s.retained[i].acc))
		}
		if o.emitEmpty {
			_, ks.Active = slices.BinarySearch(o.active, sym)
		}
		sn.Keys = append(sn.Keys, ks)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the keys this instance
// owns from every instance's snapshot, so a checkpoint restores into
// another parallelism.
func (o *Bars) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.bars: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.bars: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if first {
			o.wm, o.closed, o.retainFrom = sn.WM, sn.Closed, sn.RetainFrom
			first = false
		} else {
			o.wm, o.closed, o.retainFrom = max(o.wm, sn.WM), max(o.closed, sn.Closed), max(o.retainFrom, sn.RetainFrom)
		}
		if sn.Input != md.KindNone {
			o.input = sn.Input
		}
		took := false
		for _, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(o.instances) != o.instance {
				continue
			}
			took = true
			st := symState{firstStart: ks.FirstStart, lastClose: ks.LastClose, seen: ks.Seen, skipped: ks.Skipped, skipStart: ks.SkipStart}
			for _, a := range ks.Older {
				st.older = append(st.older, a.acc(o.iv))
			}
			for _, a := range ks.Retained {
				st.retained = append(st.retained, kept{acc: a.acc(o.iv)})
			}
			sym := o.syms.Restore(k, st)
			s := o.syms.Get(sym)
			for i := range s.older {
				o.timers.Set(o.closeAt(s.older[i].start), sym)
			}
			if ks.Newest != nil {
				a := ks.Newest.acc(o.iv)
				*o.cur.Get(sym) = a.hot
				s.open, s.openTS = a.open, a.openTS
				o.timers.Set(o.closeAt(a.start), sym)
			}
			if ks.Active {
				i, found := slices.BinarySearch(o.active, sym)
				if !found {
					o.active = slices.Insert(o.active, i, sym)
				}
			}
		}
		if took && sn.HasNext && (!o.hasNxt || sn.Next < o.next) {
			o.next, o.hasNxt = sn.Next, true
		}
	}
	return nil
}
