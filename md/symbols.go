package md

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Instrument is what a SymID stands for: a symbol as named by one provider.
type Instrument struct {
	Provider string
	Symbol   string
	// Hash is the stable xxhash64 of Symbol, identical across runs and
	// machines; partitioning by symbol uses it.
	Hash uint64
}

type instKey struct{ provider, symbol string }

// SymbolTable interns instruments to dense integer ids. Sources intern once per
// new instrument; everyone else reads by id without locking. One table serves
// one job.
type SymbolTable struct {
	mu   sync.Mutex
	ids  map[instKey]SymID
	list atomic.Pointer[[]Instrument]
}

// NewSymbolTable returns an empty table.
func NewSymbolTable() *SymbolTable {
	t := &SymbolTable{ids: make(map[instKey]SymID)}
	l := make([]Instrument, 0, 64)
	t.list.Store(&l)
	return t
}

// HashSymbol is the stable partitioning hash of a symbol's text.
func HashSymbol(symbol string) uint64 { return xxhash.Sum64String(symbol) }

// Intern returns the id of (provider, symbol), adding it if new.
func (t *SymbolTable) Intern(provider, symbol string) SymID {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := instKey{provider, symbol}
	if id, ok := t.ids[k]; ok {
		return id
	}
	l := *t.list.Load()
	id := SymID(len(l))
	// Appending never changes elements readers can already see: a reader holds
	// an older slice header whose length excludes the new element, and when
	// append reallocates the old array stays valid and unchanged.
	l = append(l, Instrument{Provider: provider, Symbol: symbol, Hash: HashSymbol(symbol)})
	t.list.Store(&l)
	t.ids[k] = id
	return id
}

// Lookup returns the id of (provider, symbol) if it was interned.
func (t *SymbolTable) Lookup(provider, symbol string) (SymID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.ids[instKey{provider, symbol}]
	return id, ok
}

// Get returns the instrument for id. An id the table never issued returns the
// zero Instrument.
func (t *SymbolTable) Get(id SymID) Instrument {
	l := *t.list.Load()
	if int(id) < len(l) {
		return l[id]
	}
	return Instrument{}
}

// Snapshot returns every instrument interned so far, indexed by id. The slice
// must not be modified. Any id seen in a batch received after the call is
// inside it.
func (t *SymbolTable) Snapshot() []Instrument { return *t.list.Load() }

// Len is the number of interned instruments.
func (t *SymbolTable) Len() int { return len(*t.list.Load()) }

// Interner is a single-goroutine cache in front of a SymbolTable for one
// provider, so a source can map symbol text to ids without taking the table's
// lock per record. Looking up a []byte key does not allocate.
type Interner struct {
	table    *SymbolTable
	provider string
	cache    map[string]SymID
}

// NewInterner returns an interner for provider's symbols.
func NewInterner(t *SymbolTable, provider string) *Interner {
	return &Interner{table: t, provider: provider, cache: make(map[string]SymID)}
}

// ID returns the id of symbol.
func (in *Interner) ID(symbol string) SymID {
	if id, ok := in.cache[symbol]; ok {
		return id
	}
	id := in.table.Intern(in.provider, symbol)
	in.cache[symbol] = id
	return id
}

// IDBytes returns the id of the symbol spelled by b.
func (in *Interner) IDBytes(b []byte) SymID {
	if id, ok := in.cache[string(b)]; ok {
		return id
	}
	return in.ID(string(b))
}
