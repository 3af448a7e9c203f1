// Package hold is the per-symbol event-time release queue of the
// operators that fold their input in event-time order rather than arrival
// order (operator.features, operator.vwap, operator.join's left input):
// records wait in a Queue per symbol, ordered by ts (ties in arrival
// order), until the watermark passes their release time, ts + Delay. Each
// queue's earliest release is one engine/keyed event-time timer in the
// operator's Schedule, so a watermark visits only the symbols it releases.
//
// Nothing here allocates per record in steady state: a queue's slice is
// reused (released records are skipped by a head index and compacted
// away), and in-order records are appended. Released records are not
// cleared: R should hold no pointers (the operators' records are plain
// values).
package hold

import (
	"cmp"
	"slices"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Item is a held record and its event time.
type Item[R any] struct {
	TS  int64
	Rec R
}

// Queue is one symbol's held records, in order of ts, ties in arrival
// order. Its zero value is empty and ready.
type Queue[R any] struct {
	items []Item[R] // live: items[head:]
	head  int
	timer int64 // the armed timer's time
	armed bool
}

// Schedule is an operator's timers for its queues: one per queue, at the
// earliest release time of the records it holds.
type Schedule struct {
	// Delay is how far past a record's ts the watermark must be before it
	// is released (0: as soon as the watermark is past ts).
	Delay  int64
	timers keyed.Timers
}

// ReleaseAt is the watermark at which a record at ts is released:
// ts + Delay + 1, saturating at md.MaxTime.
func (s *Schedule) ReleaseAt(ts int64) int64 {
	if ts == md.MaxTime || s.Delay > 0 && ts > md.MaxTime-s.Delay-1 {
		return md.MaxTime
	}
	return ts + s.Delay + 1
}

// Due returns the symbols whose queues the watermark wm releases records
// of, earliest release first and by symbol within one time, and true; or
// false when none is due. Call Release on each symbol's queue before the
// next call to Due (the list is reused).
func (s *Schedule) Due(wm int64) ([]md.SymID, bool) {
	_, syms, ok := s.timers.Pop(wm)
	return syms, ok
}

// Len is the number of armed timers.
func (s *Schedule) Len() int { return s.timers.Len() }

// Add holds r at ts in q, the queue of symbol sym, arming sym's timer if
// r is now the queue's earliest release.
func (q *Queue[R]) Add(s *Schedule, sym md.SymID, ts int64, r R) {
	q.Insert(ts, r)
	if at := s.ReleaseAt(q.items[q.head].TS); !q.armed || at < q.timer {
		q.armed, q.timer = true, at
		s.timers.Set(at, sym)
	}
}

// Insert holds r at ts in q without arming a timer: for records that only
// wait to be looked up (a join's right side), or for a restore, which
// calls Rearm after.
func (q *Queue[R]) Insert(ts int64, r R) {
	if q.head > 0 {
		q.compact()
	}
	n := len(q.items)
	if n == q.head || q.items[n-1].TS <= ts {
		if n < cap(q.items) {
			q.items = q.items[:n+1]
		} else {
			q.items = append(q.items, Item[R]{})
		}
		it := &q.items[n]
		it.TS, it.Rec = ts, r
		return
	}
	live := q.items[q.head:]
	i, _ := slices.BinarySearchFunc(live, ts+1, func(x Item[R], t int64) int { return cmp.Compare(x.TS, t) })
	q.items = slices.Insert(q.items, q.head+i, Item[R]{TS: ts, Rec: r})
}

// Release takes from q, the queue of symbol sym that Due returned, the
// records the watermark wm releases, in order, and re-arms sym's timer for
// the rest. The slice returned is valid until q's next Add, Insert,
// Release or Drop.
func (q *Queue[R]) Release(s *Schedule, sym md.SymID, wm int64) []Item[R] {
	q.armed = false
	q.compact()
	live := q.items[q.head:]
	k := 0
	for k < len(live) && s.ReleaseAt(live[k].TS) <= wm {
		k++
	}
	q.head += k
	q.Rearm(s, sym)
	return live[:k:k]
}

// Rearm arms sym's timer for q's earliest record if it has one and no
// timer is armed.
func (q *Queue[R]) Rearm(s *Schedule, sym md.SymID) {
	if q.head < len(q.items) && !q.armed {
		q.armed, q.timer = true, s.ReleaseAt(q.items[q.head].TS)
		s.timers.Set(q.timer, sym)
	}
}

// Items is what q holds, in order; the slice is valid until q changes.
func (q *Queue[R]) Items() []Item[R] { return q.items[q.head:] }

// Len is how many records q holds.
func (q *Queue[R]) Len() int { return len(q.items) - q.head }

// Drop forgets q's first n records (a join's right records nothing can
// pair with any more), without touching its timer.
func (q *Queue[R]) Drop(n int) {
	q.head += min(n, q.Len())
}

// compact moves the live records to the front of the slice once the
// released ones before them are at least as many: the copy costs no more
// than the records released since the last one, and the slice stays
// short (at most twice the live records), so a queue's records stay in
// few cache lines.
func (q *Queue[R]) compact() {
	if q.head == 0 || q.head < len(q.items)-q.head {
		return
	}
	n := copy(q.items, q.items[q.head:])
	q.items, q.head = q.items[:n], 0
}
