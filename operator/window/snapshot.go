package window

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the window operator's checkpoint
// encoding.
const snapshotVersion = 1

// snapshot is the window operator's state in a checkpoint: watermark,
// closed boundary, input kind, the aggregations it was taken with (a
// restore into others is refused) and, per symbol by stable identity, its
// panes (tumbling and sliding) or sessions with their aggregation state as
// exact float64 values and the quantiles' values. Timers are rebuilt from
// the panes: window ends still to emit, session closes, and under
// late_policy update when kept panes expire. Nothing is dirty at a barrier
// (late re-emissions go out at the end of every batch).
type snapshot struct {
	V      int       `json:"v"`
	Aggs   []string  `json:"aggs"`
	WM     int64     `json:"wm"`
	Closed int64     `json:"closed"`
	Input  md.Kind   `json:"input"`
	Keys   []keySnap `json:"keys"`
}

type keySnap struct {
	Provider string     `json:"p"`
	Symbol   string     `json:"s"`
	Panes    []paneSnap `json:"panes"`
}

type paneSnap struct {
	Start   int64       `json:"start"`
	End     int64       `json:"end"`
	Last    int64       `json:"last"`
	Timer   int64       `json:"timer"`
	N       int64       `json:"n"`
	Cells   []cellSnap  `json:"cells"`
	Vals    [][]float64 `json:"vals,omitempty"`
	Fired   bool        `json:"fired,omitempty"`
	Emitted bool        `json:"emitted,omitempty"`
}

type cellSnap struct {
	N       int64   `json:"n"`
	A, B, C float64 `json:",omitempty"`
	T       int64   `json:"t,omitempty"`
}

func (w *Window) aggNames() []string {
	out := make([]string, len(w.aggs))
	for i, a := range w.aggs {
		out[i] = fmt.Sprintf("%s %s %g %s", fnNames[a.Fn], a.Field, a.Q, a.Name)
	}
	return out
}

// Snapshot implements engine.Snapshotter.
func (w *Window) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Aggs: w.aggNames(), WM: w.wm, Closed: w.closed, Input: w.input}
	w.st.Range(func(_ md.SymID, k keyed.Key, s *symWin) bool {
		if len(s.panes) == 0 {
			return true
		}
		ks := keySnap{Provider: k.Provider, Symbol: k.Symbol}
		for _, p := range s.panes {
			ps := paneSnap{Start: p.start, End: p.end, Last: p.last, Timer: p.timer, N: p.n, Vals: p.vals, Fired: p.fired, Emitted: p.emitted}
			for _, c := range p.cells {
				ps.Cells = append(ps.Cells, cellSnap{N: c.n, A: c.a, B: c.b, C: c.c, T: c.t})
			}
			ks.Panes = append(ks.Panes, ps)
		}
		sn.Keys = append(sn.Keys, ks)
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (w *Window) Restore(ctx context.Context, states [][]byte) error {
	first := true
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.window: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.window: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		if names := w.aggNames(); fmt.Sprint(sn.Aggs) != fmt.Sprint(names) {
			return fmt.Errorf("operator.window: the checkpoint has aggregations %q, the job %q", sn.Aggs, names)
		}
		if first {
			w.wm, w.closed = sn.WM, sn.Closed
		} else {
			w.wm, w.closed = max(w.wm, sn.WM), max(w.closed, sn.Closed)
		}
		first = false
		if sn.Input != md.KindNone && w.input == md.KindNone {
			if err := w.bind(sn.Input); err != nil {
				return err
			}
		}
		for _, ks := range sn.Keys {
			k := keyed.Key{Provider: ks.Provider, Symbol: ks.Symbol}
			if k.Owner(w.instances) != w.instance {
				continue
			}
			sym := w.st.Restore(k, symWin{})
			s := w.st.Get(sym)
			for _, ps := range ks.Panes {
				if len(ps.Cells) != len(w.aggs) || len(ps.Vals) != w.nq {
					return fmt.Errorf("operator.window: checkpoint state of instance %d: a pane of %s does not fit the aggregations", i, ks.Symbol)
				}
				p := w.newPane(ps.Start, ps.End)
				p.last, p.timer, p.n, p.fired, p.emitted = ps.Last, ps.Timer, ps.N, ps.Fired, ps.Emitted
				for j, c := range ps.Cells {
					p.cells[j] = cell{n: c.N, a: c.A, b: c.B, c: c.C, t: c.T}
				}
				for j := range ps.Vals {
					p.vals[j] = append(p.vals[j], ps.Vals[j]...)
				}
				s.panes = append(s.panes, p)
				w.rearm(sym, p)
			}
			w.setCur(s)
		}
	}
	return nil
}

// rearm sets the timers a restored pane needs.
func (w *Window) rearm(sym md.SymID, p *pane) {
	if w.kind == Session {
		if !p.fired && p.timer != md.MinTime {
			w.timers.Set(p.timer, sym)
		}
		if p.fired && w.policy == LateUpdate {
			w.gc.Set(satAdd(satAdd(p.last, w.gap), w.lateness), sym)
		}
		return
	}
	if e := w.firstOpenEnd(p.start); e != md.MinTime {
		w.timers.Set(e, sym)
	}
	if w.policy == LateUpdate {
		w.gc.Set(satAdd(satAdd(p.start, w.size), w.lateness), sym)
	}
}
