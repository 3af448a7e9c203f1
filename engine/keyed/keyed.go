// Package keyed is the engine's keyed-state and timer service for operators
// that keep state per symbol (bars, windows, joins, dedupe, conflation).
//
// State is addressed two ways. On the hot path it is a dense slice indexed by
// the job's md.SymID, so reading or folding into a key's state is a bounds
// check and an index: no map, no hash, no allocation. For anything that must
// outlive the process (a checkpoint snapshot, a restore into another process
// with another symbol table, a restore with another parallelism) the same
// state is addressed by Key, the stable identity of a symbol: its provider and
// its text. A SymID means nothing outside the job that interned it; a Key
// means the same instrument everywhere.
//
// Timers fire per key at a time: event-time timers when the watermark reaches
// their time (an operator drives them from engine.WatermarkHandler), and
// processing-time timers when the wall clock does (driven from the engine's
// existing engine.TimerHandler tick, so there is one timer mechanism in the
// engine, not two). Both are the same Timers type; due timers come out in
// time order, and timers due at the same time in order of SymID, each (time,
// key) once.
//
// Every value here belongs to one node instance and is used from its
// goroutine only: no locks.
package keyed

import (
	"github.com/mdpio/mdp/md"
)

// Key is the stable identity of a symbol: the provider that named it and the
// symbol text. It is what snapshots store and what restores re-intern.
type Key struct {
	Provider string
	Symbol   string
}

// Hash is the key's partitioning hash (md.Instrument.Hash): it depends on the
// symbol text only, so it is the same in every process.
func (k Key) Hash() uint64 { return md.HashSymbol(k.Symbol) }

// Owner is the instance, of instances, that owns k: the engine routes every
// record of k's symbol to it (md.Split at md.SplitInstances). A restore into
// a job with another parallelism gives each instance the keys it owns.
func (k Key) Owner(instances int) int {
	return md.Split(k.Hash(), md.SplitInstances, max(instances, 1))
}

// KeyOf returns the stable key of sym in table t.
func KeyOf(t *md.SymbolTable, sym md.SymID) Key {
	in := t.Get(sym)
	return Key{Provider: in.Provider, Symbol: in.Symbol}
}

// State is per-key state of type T for one node instance: a dense slice of
// T indexed by SymID, and the set of keys that have state.
//
// The zero T is "no state". Get creates a key's state (marks it present);
// Slice hands the hot path the dense slice itself, whose entries for absent
// keys are zero. Range enumerates the present keys with their stable Key, for
// snapshots; Restore puts a value back under a Key, interning it into this
// job's table, so state moves between processes and symbol tables.
type State[T any] struct {
	table   *md.SymbolTable
	vals    []T
	present []bool
	n       int
}

// NewState returns empty state over the symbols of table t (the job's table,
// engine.NodeContext.Symbols).
func NewState[T any](t *md.SymbolTable) *State[T] {
	s := &State[T]{table: t}
	s.grow(t.Len())
	return s
}

// Symbols is the table the state's SymIDs come from.
func (s *State[T]) Symbols() *md.SymbolTable { return s.table }

// Slice returns the dense slice of values indexed by SymID, for the hot
// path. It may be shorter than a SymID seen in a batch (a symbol interned
// after the last growth): check the length and fall back to Get. The slice
// is valid until the next Get or Restore, which may reallocate it; writes
// through it are writes to the state of keys that are present.
func (s *State[T]) Slice() []T { return s.vals }

// Get returns sym's state, creating it (the zero T, marked present) if the
// key has none.
func (s *State[T]) Get(sym md.SymID) *T {
	if int(sym) >= len(s.vals) {
		s.grow(int(sym) + 1)
	}
	if !s.present[sym] {
		s.present[sym] = true
		s.n++
	}
	return &s.vals[sym]
}

// Lookup returns sym's state if it has any.
func (s *State[T]) Lookup(sym md.SymID) (*T, bool) {
	if int(sym) >= len(s.vals) || !s.present[sym] {
		return nil, false
	}
	return &s.vals[sym], true
}

// Has reports whether sym has state.
func (s *State[T]) Has(sym md.SymID) bool { return int(sym) < len(s.vals) && s.present[sym] }

// Delete drops sym's state (it becomes the zero T, absent).
func (s *State[T]) Delete(sym md.SymID) {
	if !s.Has(sym) {
		return
	}
	var zero T
	s.vals[sym] = zero
	s.present[sym] = false
	s.n--
}

// Len is the number of keys with state.
func (s *State[T]) Len() int { return s.n }

// Key returns the stable key of sym.
func (s *State[T]) Key(sym md.SymID) Key { return KeyOf(s.table, sym) }

// Range calls fn for every key with state, in SymID order, until fn returns
// false. fn may modify *v but must not call Get, Restore or Delete.
func (s *State[T]) Range(fn func(sym md.SymID, k Key, v *T) bool) {
	for i := range s.vals {
		if s.present[i] {
			sym := md.SymID(i)
			if !fn(sym, s.Key(sym), &s.vals[i]) {
				return
			}
		}
	}
}

// Restore puts v as the state of k, interning k into the state's table, and
// returns the SymID k has in this job. With a parallel node, restore only the
// keys this instance owns (Key.Owner).
func (s *State[T]) Restore(k Key, v T) md.SymID {
	sym := s.table.Intern(k.Provider, k.Symbol)
	*s.Get(sym) = v
	return sym
}

func (s *State[T]) grow(n int) {
	if n <= len(s.vals) {
		return
	}
	n = max(n, 2*len(s.vals), 8)
	s.vals = append(s.vals, make([]T, n-len(s.vals))...)
	s.present = append(s.present, make([]bool, n-len(s.present))...)
}
