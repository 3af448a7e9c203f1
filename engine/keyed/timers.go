package keyed

import (
	"cmp"
	"slices"

	"github.com/mdpio/mdp/md"
)

// Timers is a set of per-key timers in one time domain, for one node
// instance: event time (drive it with the watermark from OnWatermark, so a
// timer at t fires once the watermark is at or past t; the final watermark
// md.MaxTime fires them all) or processing time (drive it with the wall clock
// from the engine's TimerHandler tick, so a timer fires on the first tick at
// or after its time).
//
// Timers with the same time share a bucket; the buckets are kept sorted by
// time, so setting a timer at or after the newest one (the usual case for
// event time) is an append, and advancing costs O(timers due), never a scan
// of every key. Due timers come out in time order, timers due at the same
// time in SymID order, and each (time, key) once however often it was set.
// There is no delete: a timer whose work was done early still fires, and the
// handler finds nothing to do.
//
// The zero Timers is empty and ready to use.
type Timers struct {
	sched  []bucket // pending buckets sorted by time; the live part is sched[head:]
	head   int
	free   [][]md.SymID // recycled key lists
	popped []md.SymID   // the list Pop returned last, recycled on the next Pop
	n      int          // pending registrations
}

type bucket struct {
	at   int64
	syms []md.SymID
}

// Set registers a timer for sym at time at.
func (t *Timers) Set(at int64, sym md.SymID) {
	t.n++
	n := len(t.sched)
	if n > t.head {
		last := &t.sched[n-1]
		if last.at == at {
			last.syms = append(last.syms, sym)
			return
		}
		if last.at > at {
			live := t.sched[t.head:]
			i, found := slices.BinarySearchFunc(live, at, func(b bucket, x int64) int { return cmp.Compare(b.at, x) })
			if found {
				live[i].syms = append(live[i].syms, sym)
				return
			}
			t.sched = slices.Insert(t.sched, t.head+i, bucket{at: at, syms: t.newList(sym)})
			return
		}
	}
	t.sched = append(t.sched, bucket{at: at, syms: t.newList(sym)})
}

// Next returns the time of the earliest pending timer.
func (t *Timers) Next() (int64, bool) {
	if t.head == len(t.sched) {
		return 0, false
	}
	return t.sched[t.head].at, true
}

// Last returns the time of the latest pending timer.
func (t *Timers) Last() (int64, bool) {
	if t.head == len(t.sched) {
		return 0, false
	}
	return t.sched[len(t.sched)-1].at, true
}

// Len is the number of pending registrations (a (time, key) set twice counts
// twice until it fires once).
func (t *Timers) Len() int { return t.n }

// Pop removes the earliest pending time if it is at or before now and returns
// it with its keys, sorted by SymID and without repeats. The keys slice is
// valid until the next Pop. Advancing to now is
//
//	for at, keys, ok := t.Pop(now); ok; at, keys, ok = t.Pop(now) { ... }
//
// Timers set while handling keys at or before now fire in the same loop, in
// time order.
func (t *Timers) Pop(now int64) (at int64, keys []md.SymID, ok bool) {
	if t.popped != nil {
		t.free = append(t.free, t.popped[:0])
		t.popped = nil
	}
	if t.head == len(t.sched) || t.sched[t.head].at > now {
		return 0, nil, false
	}
	b := &t.sched[t.head]
	at, keys = b.at, b.syms
	t.n -= len(keys)
	b.syms = nil
	t.head++
	switch {
	case t.head == len(t.sched):
		t.sched, t.head = t.sched[:0], 0
	case t.head >= 64 && t.head*2 >= len(t.sched):
		n := copy(t.sched, t.sched[t.head:])
		clear(t.sched[n:])
		t.sched, t.head = t.sched[:n], 0
	}
	if len(keys) > 1 {
		slices.Sort(keys)
		keys = slices.Compact(keys)
	}
	t.popped = keys
	return at, keys, true
}

// Range calls fn for every pending timer in firing order (time, then SymID;
// a repeated registration once), until fn returns false; for snapshots, with
// KeyOf giving each SymID's stable key. It sorts each bucket in place and
// allocates nothing. fn must not call Set or Pop.
func (t *Timers) Range(fn func(at int64, sym md.SymID) bool) {
	for i := t.head; i < len(t.sched); i++ {
		b := &t.sched[i]
		slices.Sort(b.syms)
		for j, s := range b.syms {
			if j > 0 && s == b.syms[j-1] {
				continue
			}
			if !fn(b.at, s) {
				return
			}
		}
	}
}

func (t *Timers) newList(sym md.SymID) []md.SymID {
	if n := len(t.free); n > 0 {
		l := t.free[n-1]
		t.free = t.free[:n-1]
		return append(l[:0], sym)
	}
	return append(make([]md.SymID, 0, 16), sym)
}
