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
	// sizeDec is the most decimal places seen in the instrument's sizes,
	// -1 while unknown; shared by every copy of the Instrument.
	sizeDec *atomic.Int32
	// gaps are the instrument's feed gaps; shared like sizeDec.
	gaps *gapLog
}

// SizeDecimals is the most decimal places the instrument's sources have seen
// in its sizes, and false while no source has reported any.
func (in *Instrument) SizeDecimals() (int, bool) {
	if in.sizeDec == nil {
		return 0, false
	}
	d := in.sizeDec.Load()
	return int(d), d >= 0
}

type instKey struct{ provider, symbol string }

// SymbolTable interns instruments to dense integer ids. Sources intern once per
// new instrument; everyone else reads by id without locking. One table serves
// one job.
type SymbolTable struct {
	mu   sync.Mutex
	ids  map[instKey]SymID
	list atomic.Pointer[[]Instrument]
	wide atomic.Pointer[[]Gap] // gaps of every instrument (AddGapAll)
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
	dec := new(atomic.Int32)
	dec.Store(-1)
	l = append(l, Instrument{Provider: provider, Symbol: symbol, Hash: HashSymbol(symbol), sizeDec: dec, gaps: new(gapLog)})
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

// NoteSizeDecimals records that a size of instrument id was written with d
// decimal places; the instrument keeps the most seen. Sources call it when
// an instrument's count grows (see SizeDecimals), which is rare, so it may
// take the slow path of a compare-and-swap.
func (t *SymbolTable) NoteSizeDecimals(id SymID, d int) {
	l := *t.list.Load()
	if int(id) >= len(l) || l[id].sizeDec == nil {
		return
	}
	p := l[id].sizeDec
	for {
		cur := p.Load()
		if int32(d) <= cur || p.CompareAndSwap(cur, int32(d)) {
			return
		}
	}
}

// SizeDecimals is the most decimal places the sources have seen in the
// sizes of instrument id, and false while none has reported any.
func (t *SymbolTable) SizeDecimals(id SymID) (int, bool) {
	l := *t.list.Load()
	if int(id) >= len(l) {
		return 0, false
	}
	return l[id].SizeDecimals()
}

// SizeDecimals tracks, for one source, the decimal places of each
// instrument's sizes and reports growth to the symbol table. Note costs a
// slice index and a compare per record and never allocates once the
// instrument has been seen; it is for one goroutine.
type SizeDecimals struct {
	table *SymbolTable
	seen  []int8 // by SymID; -1 unknown
}

// NewSizeDecimals returns a tracker that reports to t.
func NewSizeDecimals(t *SymbolTable) *SizeDecimals { return &SizeDecimals{table: t} }

// Note records that a size of id had d decimal places. d above
// maxExactDecimals (a size with more places, or in a notation that is not a
// decimal) turns rounding off for the instrument; d < 0 is ignored.
func (s *SizeDecimals) Note(id SymID, d int) {
	if int(id) < len(s.seen) && int(s.seen[id]) >= d {
		return
	}
	s.grow(id, d)
}

func (s *SizeDecimals) grow(id SymID, d int) {
	for int(id) >= len(s.seen) {
		s.seen = append(s.seen, -1)
	}
	if d < 0 || int(s.seen[id]) >= d {
		return
	}
	d = min(d, maxExactDecimals+1)
	s.seen[id] = int8(d)
	s.table.NoteSizeDecimals(id, d)
}

// Gap is a stretch of an instrument's event time in which its source may
// have missed records: From is the newest event time the source had seen
// when its feed broke (or the wall clock, before any record), To the first
// event time after the feed resumed, MaxTime while the gap is still open.
// Both ends are included: a source with whole-second times may have seen
// only some of the records at From or To.
type Gap struct{ From, To int64 }

// maxGaps is how many gaps an instrument keeps, newest last; a bar still
// open or re-emitted that far back after so many disconnects is rare, and
// the bound keeps a flapping feed from growing the list forever.
const maxGaps = 64

// gapLog is an instrument's recent gaps. n is read without the lock, so an
// instrument that never had a gap costs one atomic load to ask about.
type gapLog struct {
	n    atomic.Int32
	mu   sync.Mutex
	list []Gap
}

func (t *SymbolTable) gapLog(id SymID) *gapLog {
	l := *t.list.Load()
	if int(id) >= len(l) {
		return nil
	}
	return l[id].gaps
}

// OpenGap records that the feed of instrument id broke after event time
// from: a source calls it when it loses its connection or the provider
// reports data lost. A gap already open stays as it is.
func (t *SymbolTable) OpenGap(id SymID, from int64) {
	g := t.gapLog(id)
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.list); n > 0 && g.list[n-1].To == MaxTime {
		return
	}
	g.list = appendGap(g.list, Gap{From: from, To: MaxTime})
	g.n.Store(int32(len(g.list)))
}

// CloseGap ends instrument id's open gap at event time to, the first
// record after the feed resumed. Without an open gap it does nothing.
func (t *SymbolTable) CloseGap(id SymID, to int64) {
	g := t.gapLog(id)
	if g == nil || g.n.Load() == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.list); n > 0 && g.list[n-1].To == MaxTime {
		g.list[n-1].To = max(to, g.list[n-1].From)
	}
}

// appendGap appends g to a gap log kept to its last maxGaps entries,
// dropping the oldest in place.
func appendGap(l []Gap, g Gap) []Gap {
	if len(l) == maxGaps {
		l = append(l[:0], l[1:]...)
	}
	return append(l, g)
}

// AddGapAll records the closed gap [from, to] for every instrument, those
// interned later included: the engine calls it when a restore resumes a
// source that cannot seek live, since the records between the checkpoint
// and the restart are missing whatever their symbol.
func (t *SymbolTable) AddGapAll(from, to int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var l []Gap
	if p := t.wide.Load(); p != nil {
		l = append(l, *p...)
	}
	l = appendGap(l, Gap{From: from, To: max(to, from)})
	t.wide.Store(&l)
}

// Gapped reports whether [start, end) touches one of instrument id's gaps,
// open or closed, or one every instrument has (AddGapAll): a bar over that
// interval may miss records and is partial. Bar builders call it once per
// bar they emit; an instrument that never had a gap costs two atomic
// loads.
func (t *SymbolTable) Gapped(id SymID, start, end int64) bool {
	if p := t.wide.Load(); p != nil {
		for _, x := range *p {
			if x.From < end && x.To >= start {
				return true
			}
		}
	}
	g := t.gapLog(id)
	if g == nil || g.n.Load() == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range g.list {
		if x.From < end && x.To >= start {
			return true
		}
	}
	return false
}

// Gaps returns a copy of instrument id's own recorded gaps, oldest first
// (not those AddGapAll gave every instrument).
func (t *SymbolTable) Gaps(id SymID) []Gap {
	g := t.gapLog(id)
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Gap(nil), g.list...)
}
