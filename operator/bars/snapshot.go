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

// activitySnapshotVersion is the version of the activity bar builder's
// checkpoint encoding.
const activitySnapshotVersion = 1

// activitySnapshot is an activity bar builder's state in a checkpoint: the
// watermark, the records held until the watermark passes them (in arrival
// order) and, per symbol by stable identity, its open bar, where its last
// bar ended and its imbalance estimates. The batch being filled is empty at
// a barrier (it is flushed at the end of every OnWatermark).
type activitySnapshot struct {
	V     int          `json:"v"`
	Type  md.BarType   `json:"type"`
	Input md.Kind      `json:"input"`
	WM    int64        `json:"wm"`
	Pend  []pendSnap   `json:"pend,omitempty"`
	Keys  []actKeySnap `json:"keys"`
}

type pendSnap struct {
	Key   int     `json:"k"` // index into Keys
	TS    int64   `json:"ts"`
	Price float64 `json:"p"`
	Size  float64 `json:"sz"`
}

type actKeySnap struct {
	Provider                  string `json:"p"`
	Symbol                    string `json:"s"`
	N                         int64
	FirstTS, LastTS           int64
	Open, High, Low, Close    float64
	Vol, PV, Theta, Thresh    float64
	LastEnd                   int64
	Ended, HasPrev, HasImb    bool
	PrevPrice, Sign, ET, EImb float64
}

// Snapshot implements engine.Snapshotter.
func (o *Activity) Snapshot(ctx context.Context) ([]byte, error) {
	sn := activitySnapshot{V: activitySnapshotVersion, Type: o.cfg.Type, Input: o.input, WM: o.wm}
	index := map[md.SymID]int{}
	o.st.Range(func(sym md.SymID, k keyed.Key, s *actState) bool {
		index[sym] = len(sn.Keys)
		sn.Keys = append(sn.Keys, actKeySnap{Provider: k.Provider, Symbol: k.Symbol, N: s.n, FirstTS: s.firstTS, LastTS: s.lastTS,
			Open: s.open, High: s.high, Low: s.low, Close: s.close, Vol: s.vol, PV: s.pv, Theta: s.theta, Thresh: s.thresh,
			LastEnd: s.lastEnd, Ended: s.ended, HasPrev: s.hasPrev, HasImb: s.hasImb, PrevPrice: s.prevPrice, Sign: s.sign, ET: s.eT, EImb: s.eImb})
		return true
	})
	for _, r := range o.pend {
		i, ok := index[r.sym]
		if !ok { // a symbol with held records but no bar yet
			k := o.st.Key(r.sym)
			i = len(sn.Keys)
			index[r.sym] = i
			sn.Keys = append(sn.Keys, actKeySnap{Provider: k.Provider, Symbol: k.Symbol})
		}
		sn.Pend = append(sn.Pend, pendSnap{Key: i, TS: r.ts, Price: r.p, Size: r.sz})
	}
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the keys this instance
// owns, and their held records, from every instance's snapshot, so a
// checkpoint restores into another parallelism.
func (o *Activity) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn activitySnapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.bars: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != activitySnapshotVersion {
			return fmt.Errorf("operator.bars: checkpoint state version %d; this mdp reads version %d", sn.V, activitySnapshotVersion)
		}
		if sn.Type != o.cfg.Type {
			return fmt.Errorf("operator.bars: the checkpoint holds %v bars, this node builds %v bars", sn.Type, o.cfg.Type)
		}
		if first {
			o.wm, first = sn.WM, false
		} else {
			o.wm = max(o.wm, sn.WM)
		}
		if sn.Input != md.KindNone {
			o.input = sn.Input
		}
		syms := make([]md.SymID, len(sn.Keys))
		mine := make([]bool, len(sn.Keys))
		for j, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(o.instances) != o.instance {
				continue
			}
			mine[j] = true
			syms[j] = o.st.Restore(k, actState{n: ks.N, firstTS: ks.FirstTS, lastTS: ks.LastTS,
				open: ks.Open, high: ks.High, low: ks.Low, close: ks.Close, vol: ks.Vol, pv: ks.PV, theta: ks.Theta, thresh: ks.Thresh,
				lastEnd: ks.LastEnd, ended: ks.Ended, hasPrev: ks.HasPrev, hasImb: ks.HasImb, prevPrice: ks.PrevPrice, sign: ks.Sign, eT: ks.ET, eImb: ks.EImb})
		}
		for _, p := range sn.Pend {
			if p.Key < 0 || p.Key >= len(sn.Keys) {
				return fmt.Errorf("operator.bars: checkpoint state of instance %d: a held record names key %d of %d", i, p.Key, len(sn.Keys))
			}
			if mine[p.Key] {
				o.pend = append(o.pend, pendRec{ts: p.TS, p: p.Price, sz: p.Size, sym: syms[p.Key]})
			}
		}
	}
	o.hold = o.earliestOpen()
	return nil
}
