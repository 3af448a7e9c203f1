package busio

import "github.com/mdpio/mdp/md"

// Group is the records of one batch that go to one destination.
type Group struct {
	Sym       md.SymID // the group's symbol (by symbol)
	Partition int      // the group's partition (by partition)
	Batch     *md.Batch
}

// Splitter groups a batch's records by symbol or by partition, keeping
// their order within a group. It reuses its batches: a Split's groups are
// valid until the next Split. Not safe for concurrent use.
type Splitter struct {
	bySymbol   bool
	partitions int

	groups []Group
	bySym  map[md.SymID]int // group index of a symbol in the current split
	spare  []*md.Batch
	one    [1]Group // the pass-through group (not ours to reuse)
}

// NewSplitter returns a splitter by symbol (template has {symbol}), by
// partition (partitions > 0, template has {partition}) or none (one group,
// the batch itself).
func NewSplitter(t *Template, partitions int) *Splitter {
	s := &Splitter{bySymbol: t.Symbol}
	if t.Partition && partitions > 0 {
		s.partitions = partitions
	}
	if s.bySymbol {
		s.bySym = map[md.SymID]int{}
	}
	return s
}

// Splits reports whether Split divides batches at all.
func (s *Splitter) Splits() bool { return s.bySymbol || s.partitions > 0 }

// Split returns b's groups: one per symbol or partition that has records,
// in order of first appearance, or b itself as the one group.
func (s *Splitter) Split(b *md.Batch, syms []md.Instrument) []Group {
	for i := range s.groups {
		g := s.groups[i].Batch
		g.Reset()
		s.spare = append(s.spare, g)
	}
	s.groups = s.groups[:0]
	if !s.Splits() {
		s.one[0] = Group{Batch: b}
		return s.one[:]
	}
	clear(s.bySym)
	n := b.Len()
	for i := 0; i < n; i++ {
		var sym md.SymID
		switch b.Kind {
		case md.KindTrade:
			sym = b.Trades[i].Sym
		case md.KindQuote:
			sym = b.Quotes[i].Sym
		case md.KindBar:
			sym = b.Bars[i].Sym
		case md.KindDerived:
			sym = b.Derived[i].Sym
		}
		g := s.group(b, sym, syms)
		switch b.Kind {
		case md.KindTrade:
			g.Trades = append(g.Trades, b.Trades[i])
		case md.KindQuote:
			g.Quotes = append(g.Quotes, b.Quotes[i])
		case md.KindBar:
			g.Bars = append(g.Bars, b.Bars[i])
		case md.KindDerived:
			g.CopyDerived(b, i)
		}
	}
	return s.groups
}

func (s *Splitter) group(b *md.Batch, sym md.SymID, syms []md.Instrument) *md.Batch {
	key := sym
	p := 0
	if !s.bySymbol {
		p = md.Split(syms[sym].Hash, md.SplitInstances, s.partitions)
		key = md.SymID(p)
	} else if s.partitions > 0 {
		p = md.Split(syms[sym].Hash, md.SplitInstances, s.partitions)
	}
	if i, ok := s.bySym[key]; ok {
		return s.groups[i].Batch
	}
	if s.bySym == nil {
		s.bySym = map[md.SymID]int{}
	}
	var nb *md.Batch
	if k := len(s.spare); k > 0 {
		nb = s.spare[k-1]
		s.spare = s.spare[:k-1]
	} else {
		nb = &md.Batch{}
	}
	nb.Kind, nb.Reason, nb.Schema = b.Kind, b.Reason, b.Schema
	s.bySym[key] = len(s.groups)
	s.groups = append(s.groups, Group{Sym: sym, Partition: p, Batch: nb})
	return nb
}
