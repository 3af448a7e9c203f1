package bars

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
)

// TestAgainstAReferenceModel drives random streams (several symbols, records
// out of order within and beyond the tolerance, random batch sizes, a
// source-style watermark after each batch) through the operator and compares
// every bar and drop count with a naive model written from the definitions:
// bars group records by (symbol, interval); open is the record with the
// earliest ts and close the one with the latest, ties in input order; sums are
// taken in input order; a record is late
// when ts < the last closed boundary floor(watermark - build_delay).
func TestAgainstAReferenceModel(t *testing.T) {
	intervals := []time.Duration{time.Millisecond, 7 * time.Millisecond, 50 * time.Millisecond, time.Second}
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		iv := intervals[rng.IntN(len(intervals))].Nanoseconds()
		origin := rng.Int64N(iv)
		delay := []int64{0, iv / 3, 2 * iv}[rng.IntN(3)]
		ooo := []int64{0, iv / 2, 3 * iv, 40 * iv}[rng.IntN(4)]
		emitEmpty, skip := rng.IntN(2) == 0, rng.IntN(3) == 0
		policy := []string{"drop", "side_output"}[rng.IntN(2)]
		name := fmt.Sprintf("seed%d_iv%s_origin%d_delay%d_ooo%d_empty%v_skip%v_%s", seed, md.FormatInterval(iv), origin, delay, ooo, emitEmpty, skip, policy)
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, map[string]any{
				"interval": time.Duration(iv).String(), "origin_offset": time.Duration(origin).String(),
				"build_delay": time.Duration(delay).String(), "emit_empty": emitEmpty, "skip_first_partial": skip,
				"late_policy": policy,
			})
			nsym := 1 + rng.IntN(5)
			step := iv / int64(1+rng.IntN(20))
			nominal := t0 + rng.Int64N(iv)
			maxTS, wm := md.MinTime, md.MinTime
			closed := md.MinTime
			type key struct {
				sym   md.SymID
				start int64
			}
			model := map[key]*md.Bar{}
			openTS, closeTS := map[key]int64{}, map[key]int64{}
			var late, gotLate []md.Trade
			var got []md.Bar
			for range 1 + rng.IntN(60) {
				b := make([]md.Trade, 1+rng.IntN(40))
				for i := range b {
					nominal += rng.Int64N(step + 1)
					ts := nominal - rng.Int64N(ooo+1)
					if rng.IntN(25) == 0 { // beyond the tolerance
						ts = nominal - ooo - rng.Int64N(3*iv+1)
					}
					sym := md.SymID(rng.IntN(nsym))
					p := float64(100+rng.IntN(50)) / 4
					sz := float64(1 + rng.IntN(9))
					b[i] = tr(sym, ts, p, sz)
					maxTS = max(maxTS, ts)
					if ts < closed {
						late = append(late, b[i])
						continue
					}
					k := key{sym, md.FloorTo(ts, iv, origin)}
					if m := model[k]; m == nil {
						model[k] = &md.Bar{Sym: sym, Start: k.start, End: k.start + iv, Interval: iv, Open: p, High: p, Low: p, Close: p, Volume: sz, VWAP: float64(p * sz), Trades: 1}
						openTS[k], closeTS[k] = ts, ts
					} else {
						m.High, m.Low = max(m.High, p), min(m.Low, p)
						if ts < openTS[k] {
							m.Open, openTS[k] = p, ts
						}
						if ts >= closeTS[k] {
							m.Close, closeTS[k] = p, ts
						}
						m.Volume += sz
						m.VWAP += float64(p * sz)
						m.Trades++
					}
				}
				h.trades(b...)
				if w := maxTS - ooo; w > wm {
					wm = w
					h.wm(wm)
					closed = max(closed, md.FloorTo(wm-delay, iv, origin))
				}
				got = append(got, h.bars()...)
				for _, lb := range h.to.Drain("late") {
					if lb.Reason != "late" {
						t.Fatalf("late batch reason %q", lb.Reason)
					}
					gotLate = append(gotLate, lb.Trades...)
					lb.Release()
				}
			}
			h.wm(md.MaxTime)
			got = append(got, h.bars()...)

			// The model's bars, in (start, symbol) order, with flat bars and the
			// first bar of each symbol skipped as the options say.
			var keys []key
			for k := range model {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(a, b key) int {
				if a.start != b.start {
					return cmp.Compare(a.start, b.start)
				}
				return cmp.Compare(a.sym, b.sym)
			})
			var want []md.Bar
			skipped := int64(0)
			if len(keys) > 0 {
				first := map[md.SymID]int64{}
				for _, k := range keys {
					if _, ok := first[k.sym]; !ok {
						first[k.sym] = k.start
					}
				}
				lastClose := map[md.SymID]float64{}
				lastOwn := map[md.SymID]int64{}
				for _, k := range keys {
					lastOwn[k.sym] = k.start
				}
				// End of stream fills flat bars up to the interval of the
				// last watermark, and between a symbol's own bars.
				fillTo := md.MinTime
				if wm > md.MinTime {
					fillTo = md.FloorTo(wm, iv, origin) + iv
				}
				lastStart := keys[len(keys)-1].start
				for s := keys[0].start; s <= lastStart; s += iv {
					for sym := range md.SymID(nsym) {
						f, seen := first[sym]
						if !seen || f > s {
							continue
						}
						m := model[key{sym, s}]
						if m == nil {
							if emitEmpty && (s < fillTo || s < lastOwn[sym]) {
								c := lastClose[sym]
								want = append(want, flat(sym, s, iv, c))
							}
							continue
						}
						lastClose[sym] = m.Close
						if skip && s == f {
							skipped += m.Trades
							continue
						}
						bar := *m
						bar.VWAP /= bar.Volume
						want = append(want, bar)
					}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("bars differ (%d vs %d)\n got: %s\nwant: %s", len(got), len(want), fmtBars(got), fmtBars(want))
			}
			wantDrops := map[string]int64{}
			if policy == "drop" && len(late) > 0 {
				wantDrops["late"] = int64(len(late))
			}
			if policy == "side_output" && !reflect.DeepEqual(gotLate, late) {
				t.Fatalf("late port got %d records, want %d", len(gotLate), len(late))
			}
			if policy == "drop" && len(gotLate) > 0 {
				t.Fatalf("drop policy sent %d records to the late port", len(gotLate))
			}
			if skipped > 0 {
				wantDrops["skipped_partial"] = skipped
			}
			if d := h.drops(); !reflect.DeepEqual(d, wantDrops) {
				t.Fatalf("drops %v, want %v", d, wantDrops)
			}
		})
	}
}
