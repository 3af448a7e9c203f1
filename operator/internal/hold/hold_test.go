package hold

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mdpio/mdp/md"
)

// Random out-of-order records over a few symbols, with watermarks between
// them: what Due and Release hand out equals, symbol by symbol, the
// records a stable sort by ts puts first, exactly those with
// ts + Delay < wm, each once; and nothing is left at the end.
func TestReleaseEqualsStableSort(t *testing.T) {
	for _, delay := range []int64{0, 7, -3} {
		rng := rand.New(rand.NewPCG(uint64(delay+10), 1))
		const syms = 5
		s := &Schedule{Delay: delay}
		qs := make([]Queue[int], syms)
		type rec struct {
			ts int64
			id int
		}
		var want [syms][]rec
		got := [syms][]rec{}
		wm, newest := int64(md.MinTime), int64(0)
		release := func(w int64) {
			for due, ok := s.Due(w); ok; due, ok = s.Due(w) {
				if !slices.IsSorted(due) {
					t.Fatalf("due %v not in order", due)
				}
				for _, sym := range due {
					// a timer armed before an earlier record came may
					// find nothing left to release: harmless
					for _, it := range qs[sym].Release(s, sym, w) {
						if s.ReleaseAt(it.TS) > w {
							t.Fatalf("delay %d: ts %d released at watermark %d", delay, it.TS, w)
						}
						got[sym] = append(got[sym], rec{it.TS, it.Rec})
					}
				}
			}
			for sym := range qs {
				for _, it := range qs[sym].Items() {
					if s.ReleaseAt(it.TS) <= w {
						t.Fatalf("delay %d: ts %d still held at watermark %d", delay, it.TS, w)
					}
				}
			}
		}
		for id := range 5000 {
			newest += rng.Int64N(4)
			ts := newest - rng.Int64N(20)
			if ts < wm-delay {
				ts = wm - delay // not late
			}
			sym := md.SymID(rng.IntN(syms))
			qs[sym].Add(s, sym, ts, id)
			want[sym] = append(want[sym], rec{ts, id})
			if rng.IntN(10) == 0 {
				wm = max(wm, newest-20)
				release(wm)
			}
		}
		release(md.MaxTime)
		for sym := range syms {
			slices.SortStableFunc(want[sym], func(a, b rec) int { return cmp.Compare(a.ts, b.ts) })
			if !slices.Equal(got[sym], want[sym]) {
				t.Fatalf("delay %d: symbol %d: %d released, want %d in stable ts order", delay, sym, len(got[sym]), len(want[sym]))
			}
			if qs[sym].Len() != 0 {
				t.Fatalf("delay %d: symbol %d holds %d after the end", delay, sym, qs[sym].Len())
			}
		}
		if s.Len() != 0 {
			t.Fatalf("delay %d: %d timers left", delay, s.Len())
		}
	}
}

func TestReleaseAtSaturates(t *testing.T) {
	s := &Schedule{Delay: 10}
	for ts, want := range map[int64]int64{0: 11, md.MaxTime: md.MaxTime, md.MaxTime - 5: md.MaxTime, md.MaxTime - 11: md.MaxTime} {
		if got := s.ReleaseAt(ts); got != want {
			t.Errorf("ReleaseAt(%d) = %d, want %d", ts, got, want)
		}
	}
	if got := (&Schedule{}).ReleaseAt(md.MaxTime); got != md.MaxTime {
		t.Errorf("no delay: ReleaseAt(MaxTime) = %d", got)
	}
}

// Insert keeps arrival order among equal times; Drop forgets the first n
// and compacting keeps what is left.
func TestInsertDrop(t *testing.T) {
	var q Queue[int]
	for i, ts := range []int64{5, 3, 5, 1, 3, 9} {
		q.Insert(ts, i)
	}
	order := func() []int {
		var out []int
		for _, it := range q.Items() {
			out = append(out, it.Rec)
		}
		return out
	}
	if got := order(); !slices.Equal(got, []int{3, 1, 4, 0, 2, 5}) {
		t.Fatalf("order %v", got)
	}
	q.Drop(2)
	if got := order(); !slices.Equal(got, []int{4, 0, 2, 5}) || q.Len() != 4 {
		t.Fatalf("after drop %v", got)
	}
	for i := range 200 {
		q.Insert(int64(10+i), 100+i)
	}
	q.Drop(150)
	q.Insert(8, -1) // before the rest: compacts, then inserts in place
	if it := q.Items(); len(it) != 55 || it[0].Rec != -1 || it[1].Rec != 246 || it[54].Rec != 299 {
		t.Fatalf("after compaction: %d items, first %v", len(it), it[:2])
	}
	q.Drop(1000)
	if q.Len() != 0 {
		t.Fatalf("len %d after dropping all", q.Len())
	}
}
