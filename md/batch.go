package md

import "sync/atomic"

// DefaultBatchSize is the record capacity of a batch when a component does not
// choose one. Large enough to amortise per-batch costs (queue operations,
// metric updates, interface calls), small enough to keep latency and memory low.
const DefaultBatchSize = 1024

// MaxBatchSize is the largest batch capacity a job or a component may ask
// for: batches are allocated at their capacity, so the bound keeps a
// setting from exhausting memory at start.
const MaxBatchSize = 1 << 20

// Batch carries records of one kind between nodes. Exactly one of Trades,
// Quotes, Bars or Derived is used, according to Kind. A KindDerived batch
// also sets Schema, and holds its records' field values in Values, flat,
// Schema.Len() per record (record i's are Values[i*stride:(i+1)*stride]), so
// a pooled batch carries any schema without allocating per record.
//
// Ownership: a batch is reference counted. Whoever holds a reference may read
// it; nobody mutates a batch after it has been emitted, because fan-out shares
// it between consumers. Release drops a reference; the last one returns the
// batch to its pool.
type Batch struct {
	Kind   Kind
	Trades []Trade
	Quotes []Quote
	Bars   []Bar
	// Derived records, their field values and the schema naming them.
	Derived []Derived
	Values  []Value
	Schema  *Schema
	// Reason explains why the records were diverted, on batches sent to a
	// "late" or "dead_letter" port; empty on the main flow.
	Reason string

	refs atomic.Int32
	pool *Pool
}

// Len is the number of records in the batch.
func (b *Batch) Len() int {
	switch b.Kind {
	case KindTrade:
		return len(b.Trades)
	case KindQuote:
		return len(b.Quotes)
	case KindBar:
		return len(b.Bars)
	case KindDerived:
		return len(b.Derived)
	}
	return 0
}

// Retain adds n references.
func (b *Batch) Retain(n int) { b.refs.Add(int32(n)) }

// Release drops one reference; the last returns the batch to its pool.
func (b *Batch) Release() {
	if b == nil {
		return
	}
	if n := b.refs.Add(-1); n == 0 && b.pool != nil {
		b.pool.put(b)
	}
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	b.Trades = b.Trades[:0]
	b.Quotes = b.Quotes[:0]
	b.Bars = b.Bars[:0]
	b.Derived = b.Derived[:0]
	b.Values = b.Values[:0]
	b.Schema = nil
	b.Reason = ""
}

// DropFront removes the batch's first n records (all of them when n is
// at least Len), keeping the rest in order and the capacity.
func (b *Batch) DropFront(n int) {
	n = min(max(n, 0), b.Len())
	switch b.Kind {
	case KindTrade:
		b.Trades = b.Trades[:copy(b.Trades, b.Trades[n:])]
	case KindQuote:
		b.Quotes = b.Quotes[:copy(b.Quotes, b.Quotes[n:])]
	case KindBar:
		b.Bars = b.Bars[:copy(b.Bars, b.Bars[n:])]
	case KindDerived:
		b.Derived = b.Derived[:copy(b.Derived, b.Derived[n:])]
		if b.Schema != nil {
			stride := b.Schema.Len()
			b.Values = b.Values[:copy(b.Values, b.Values[n*stride:])]
		}
	}
}

// Clone returns a new unpooled batch with a copy of b's records.
func (b *Batch) Clone() *Batch {
	c := &Batch{Kind: b.Kind, Reason: b.Reason, Schema: b.Schema}
	c.refs.Store(1)
	c.Trades = append([]Trade(nil), b.Trades...)
	c.Quotes = append([]Quote(nil), b.Quotes...)
	c.Bars = append([]Bar(nil), b.Bars...)
	c.Derived = append([]Derived(nil), b.Derived...)
	c.Values = append([]Value(nil), b.Values...)
	return c
}

// poolFree is how many idle batches of each kind a pool keeps. It bounds
// what a pool holds on to after a burst; in steady state the batches in
// flight (queued on edges or being filled) come back and are reused, so a
// running job allocates no batches at all.
const poolFree = 512

// Pool recycles batches of one job. It is safe for concurrent use.
//
// It is a bounded free list rather than a sync.Pool: sync.Pool drops its
// contents at every garbage collection, so a stream would reallocate its
// batches after each cycle, and those allocations trigger the next cycle;
// with a free list a steady stream allocates nothing and the collector
// stays idle, which keeps latency tails short.
//
// The free list is first in, first out. A stack (hand out the batch
// released last) looks friendlier to the caches but is not: in a pipeline the
// batch released last was just read by the consumer on another core, so the
// producer's writes into it pull every cache line back across cores. On the
// bench workload (docs/bench/WORKLOAD.md) a stack cost the single-instance job
// 5% of its rate against this queue, same run, quiet machine, and gained
// nothing at parallelism 2.
type Pool struct {
	size int
	free [4]chan *Batch // trade, quote, bar, derived
}

// NewPool returns a pool whose new batches have room for size records.
func NewPool(size int) *Pool {
	if size <= 0 {
		size = DefaultBatchSize
	}
	p := &Pool{size: size}
	for i := range p.free {
		p.free[i] = make(chan *Batch, poolFree)
	}
	return p
}

// Size is the default record capacity of the pool's batches.
func (p *Pool) Size() int { return p.size }

func kindIndex(k Kind) int {
	switch k {
	case KindQuote:
		return 1
	case KindBar:
		return 2
	case KindDerived:
		return 3
	}
	return 0
}

// Get returns an empty batch of kind k holding one reference. A KindDerived
// batch needs its Schema set before records are added; its Values keep the
// capacity they grew to while in use, so a steady stream of one schema
// allocates nothing.
func (p *Pool) Get(k Kind) *Batch {
	var b *Batch
	select {
	case b = <-p.free[kindIndex(k)]:
	default:
		b = &Batch{pool: p}
		switch k {
		case KindTrade:
			b.Trades = make([]Trade, 0, p.size)
		case KindQuote:
			b.Quotes = make([]Quote, 0, p.size)
		case KindBar:
			b.Bars = make([]Bar, 0, p.size)
		case KindDerived:
			b.Derived = make([]Derived, 0, p.size)
		}
	}
	b.Kind = k
	b.refs.Store(1)
	return b
}

// GetCap is Get with room for at least n records, so a batch that gathers up
// to n records never regrows. Pooled batches keep their capacity, so after
// warm-up the pool hands out batches that are already big enough.
func (p *Pool) GetCap(k Kind, n int) *Batch {
	b := p.Get(k)
	switch k {
	case KindTrade:
		if cap(b.Trades) < n {
			b.Trades = make([]Trade, 0, n)
		}
	case KindQuote:
		if cap(b.Quotes) < n {
			b.Quotes = make([]Quote, 0, n)
		}
	case KindBar:
		if cap(b.Bars) < n {
			b.Bars = make([]Bar, 0, n)
		}
	case KindDerived:
		if cap(b.Derived) < n {
			b.Derived = make([]Derived, 0, n)
		}
	}
	return b
}

func (p *Pool) put(b *Batch) {
	b.Reset()
	select {
	case p.free[kindIndex(b.Kind)] <- b:
	default: // the free list is full: let the collector have it
	}
}

// NewBatch returns an unpooled batch of kind k holding one reference; useful
// in tests and for rare control paths.
func NewBatch(k Kind) *Batch {
	b := &Batch{Kind: k}
	b.refs.Store(1)
	return b
}
