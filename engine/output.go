package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/md"
)

// message is what travels on an edge: an optional batch, the sender's
// watermark after it, and the end-of-stream mark.
type message struct {
	b       *md.Batch
	wm      int64
	eos     bool
	barrier int64 // a checkpoint barrier's id (no batch); 0 on every other message
}

// edgeState is a logical edge at run time.
type edgeState struct {
	e      *Edge
	queues []*queue // every physical queue of the edge
	// forward: instance i of the sender feeds only instance i of the
	// receiver (isForward), so every sender has one queue.
	forward   bool
	dropped   atomic.Int64
	blockedNs atomic.Int64
}

// queue is one physical queue: one sender instance to one receiver instance.
// With one sender per queue, watermarks on a queue only grow, so evicting a
// message never loses watermark progress.
type queue struct {
	ch   chan message
	edge *edgeState
	// A chained edge's queue (chain.go) is never used as a channel: a
	// push calls down, its receiver, on the goroutine of from, its sender.
	from, down *instance
}

func (q *queue) push(ctx context.Context, m message, st *NodeStats) error {
	// Once the job is aborted nothing more is sent, although the queue may
	// have room: the receiver would not handle it (inbox.recv).
	if err := ctx.Err(); err != nil {
		if m.b != nil {
			m.b.Release()
		}
		return err
	}
	if q.down != nil {
		return q.deliver(m, st)
	}
	select {
	case q.ch <- m:
		return nil
	default:
	}
	switch policy := q.edge.e.Policy; {
	case policy == Block || m.eos || m.barrier != 0:
		// End of stream and checkpoint barriers are never dropped; a
		// barrier that drop_oldest evicts later only fails its checkpoint
		// (it never completes at the receiver, and times out).
		return q.pushBlocking(ctx, m, st)
	case policy == DropNewest:
		if m.b != nil {
			n := int64(m.b.Len())
			q.edge.dropped.Add(n)
			st.Drop("queue_full", n)
			m.b.Release()
		}
		// A dropped watermark-only message loses nothing: every later message
		// carries a watermark at least as new, and end of stream always blocks.
		return nil
	default: // DropOldest
		for {
			select {
			case q.ch <- m:
				return nil
			default:
			}
			select {
			case old := <-q.ch:
				if old.b != nil {
					n := int64(old.b.Len())
					q.edge.dropped.Add(n)
					st.Drop("queue_full", n)
					old.b.Release()
				}
			default:
			}
		}
	}
}

func (q *queue) pushBlocking(ctx context.Context, m message, st *NodeStats) error {
	start := time.Now()
	select {
	case q.ch <- m:
	case <-ctx.Done():
		if m.b != nil {
			m.b.Release()
		}
		return ctx.Err()
	}
	d := time.Since(start).Nanoseconds()
	q.edge.blockedNs.Add(d)
	st.BlockedNs.Add(d)
	return nil
}

// target is one logical edge as seen by one sender instance: a queue per
// receiver instance. With several receivers, batches are split by symbol hash.
type target struct {
	edge *edgeState
	qs   []*queue
	tab  []uint16     // SymID -> queue index (splitTable); MaxParallelism fits
	key  PartitionKey // the receiver's, or nil (inputs.go)
}

type port struct {
	name    string
	targets []*target
	dropKey string
	tap     *tapPoint // nil for a port nobody can tap (one made up at emit)
}

// Output is how a node emits. Each node instance has its own; it is used only
// from the node's goroutine (a source's idle watermark advance takes the lock).
type Output struct {
	ctx    context.Context // the job's abort context
	nc     *NodeContext
	stats  *NodeStats
	ports  map[string]*port
	wm     int64
	closed bool

	// Source state.
	source    bool
	ooo       int64
	mu        *sync.Mutex // non-nil when an idle advancer shares this output
	ordered   bool        // the source emits in event-time order (OrderedSource)
	lastEmit  atomic.Int64
	firstSeen bool
	ck        *sourceCk // nil unless the job takes checkpoints
	in        *instance

	// Scratch of partition, reused from batch to batch.
	split  splitScratch
	trades [][]md.Trade
	quotes [][]md.Quote
	bars   [][]md.Bar
}

func newOutput(ctx context.Context, nc *NodeContext, ports map[string]*port) *Output {
	o := &Output{ctx: ctx, nc: nc, stats: nc.Stats, ports: ports, wm: minTime}
	if ports[PortMain] == nil {
		ports[PortMain] = &port{name: PortMain, dropKey: "unconnected_port"}
	}
	return o
}

// Checkpointing reports whether the job takes checkpoints. A bus source
// asks it once in Run: with checkpoints it acknowledges what it read only
// when a checkpoint covering it completes (CheckpointListener), without
// them once the records are handed downstream.
func (o *Output) Checkpointing() bool { return o.ck != nil }

// Quiet is called by a source that has nothing to emit for now (a bus
// source whose poll returned nothing): a requested checkpoint barrier is
// injected at once, with the position as of the last Emit, so a source
// waiting for data never holds a checkpoint back. Without checkpoints, or
// with no barrier requested, it costs one comparison.
func (o *Output) Quiet() error {
	ck := o.ck
	if ck == nil || !o.source || ck.want.Load() <= ck.done {
		return nil
	}
	if o.mu != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
	}
	if o.closed || ck.want.Load() <= ck.done {
		return nil
	}
	return o.injectBarrier(o.in)
}

// NewBatch returns an empty pooled batch of kind k to fill and emit.
func (o *Output) NewBatch(k md.Kind) *md.Batch { return o.nc.Pool.Get(k) }

// Symbols is the job's symbol table.
func (o *Output) Symbols() *md.SymbolTable { return o.nc.Symbols }

// Watermark is the watermark this output last forwarded.
func (o *Output) Watermark() int64 { return o.wm }

// Emit sends b on the main output, handing over the caller's reference. It
// blocks while a block-policy queue is full. An empty batch is released.
func (o *Output) Emit(b *md.Batch) error { return o.EmitTo(PortMain, b) }

// EmitTo sends b on the named port. Records sent to a port with no edge are
// counted as dropped under "unconnected_port_<name>", never lost silently.
func (o *Output) EmitTo(portName string, b *md.Batch) error {
	n := b.Len()
	if n == 0 {
		b.Release()
		return nil
	}
	if o.source {
		if o.mu != nil {
			o.mu.Lock()
			defer o.mu.Unlock()
		}
		if o.ck != nil {
			return o.emitCheckpointed(portName, b, noUpTo)
		}
		return o.sourceWatermark(portName, b, noUpTo)
	}
	return o.send(portName, b)
}

// noUpTo is EmitUpTo's upTo for an emit that says nothing about the
// records a source skipped.
const noUpTo = minTime

// EmitUpTo is Emit for a source that emits a share of a stream: an
// instance of a parallel source (Node.ParallelSource) that reads the whole
// input and emits the records of its own symbols. b holds the share's
// records among the stream's records up to event time upTo, all of which
// the source has read (the ones it skipped included); b may be empty. The
// watermark then moves as the one-instance source's would: past upTo, not
// only past b's records, and with an empty b too (a watermark alone is
// sent), so the receivers of every instance see the watermarks of the
// serial stream and a node whose output depends on them (bars filling
// flat bars up to the last watermark) builds the same output at every
// parallelism. On a processor's Output it is Emit.
func (o *Output) EmitUpTo(b *md.Batch, upTo int64) error {
	if !o.source {
		return o.Emit(b)
	}
	if o.mu != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
	}
	if b.Len() > 0 {
		if o.ck != nil {
			return o.emitCheckpointed(PortMain, b, upTo)
		}
		return o.sourceWatermark(PortMain, b, upTo)
	}
	b.Release()
	now := time.Now().UnixNano()
	o.lastEmit.Store(now)
	if err := o.moveWatermark(o.lessOoo(upTo), now); err != nil {
		return err
	}
	if ck := o.ck; ck != nil && ck.want.Load() > ck.done {
		return o.injectBarrier(o.in)
	}
	return nil
}

// moveWatermark moves a source's watermark to wm, if that is newer, and
// sends it on every port.
func (o *Output) moveWatermark(wm, now int64) error {
	if wm <= o.wm {
		return nil
	}
	o.stats.Watermark.Store(wm)
	o.stats.WatermarkAt.Store(now)
	return o.advance(wm)
}

// emitCheckpointed is a source's EmitTo when the job takes checkpoints: it
// counts what the source emits and injects a requested barrier after the
// batch.
func (o *Output) emitCheckpointed(portName string, b *md.Batch, upTo int64) error {
	ck := o.ck
	ck.emitted += int64(b.Len())
	if err := o.sourceWatermark(portName, b, upTo); err != nil {
		return err
	}
	if ck.want.Load() > ck.done {
		return o.injectBarrier(o.in)
	}
	return nil
}

// send emits a non-empty b on the named port with the current watermark.
func (o *Output) send(portName string, b *md.Batch) error {
	n := b.Len()
	p := o.ports[portName]
	if p == nil {
		p = &port{name: portName, dropKey: "unconnected_port_" + portName}
		o.ports[portName] = p
	}
	// One atomic load per batch while nobody listens.
	if tp := p.tap; tp != nil {
		if subs := tp.subs.Load(); subs != nil {
			tp.offer(b, *subs)
		}
	}
	if len(p.targets) == 0 {
		o.stats.Drop(p.dropKey, int64(n))
		b.Release()
		return nil
	}
	o.stats.EventsOut.Add(int64(n))
	o.stats.BatchesOut.Add(1)
	if len(p.targets) > 1 {
		b.Retain(len(p.targets) - 1)
	}
	for _, t := range p.targets {
		if len(t.qs) == 1 {
			if err := t.qs[0].push(o.ctx, message{b: b, wm: o.wm}, o.stats); err != nil {
				return err
			}
			continue
		}
		if err := o.partition(t, b); err != nil {
			return err
		}
	}
	return nil
}

// sourceWatermark advances a source's watermark past b's event times and
// sends b.
//
// The watermark after a record is the newest event time up to and including
// it minus max_out_of_orderness, so whether a record is late downstream must
// depend only on the records before it, not on where a batch ends. A record
// at or after the running watermark can never be late (every watermark a
// receiver has seen is at most that). A record behind it can, so the batch is
// cut before such a record: the records before it go out first, carrying the
// running watermark, and receivers see exactly that watermark before they see
// the record. Only batches with records behind the watermark are cut (one
// pooled batch per cut); an ordered source is never scanned.
//
// upTo (EmitUpTo; noUpTo otherwise) moves the watermark further, to upTo
// minus max_out_of_orderness: an ordered source's batch carries it, any
// other source sends it after the batch.
func (o *Output) sourceWatermark(portName string, b *md.Batch, upTo int64) error {
	now := time.Now().UnixNano()
	o.lastEmit.Store(now)
	if !o.firstSeen {
		o.firstSeen = true
		o.stats.FirstEventAt.Store(now)
	}
	switch {
	case o.ordered && b.Kind == md.KindTrade:
		o.setWatermark(max(b.Trades[len(b.Trades)-1].TS, upTo)-o.ooo, now)
		return o.send(portName, b)
	case o.ordered && b.Kind == md.KindQuote:
		o.setWatermark(max(b.Quotes[len(b.Quotes)-1].TS, upTo)-o.ooo, now)
		return o.send(portName, b)
	}
	if err := o.sourceCut(portName, b, now); err != nil || upTo == noUpTo {
		return err
	}
	return o.moveWatermark(o.lessOoo(upTo), now)
}

// lessOoo is the watermark after event time t: t minus
// max_out_of_orderness, no less than the least time.
func (o *Output) lessOoo(t int64) int64 {
	if t < minTime+o.ooo {
		return minTime
	}
	return t - o.ooo
}

// sourceCut sends b, cut before every record behind the running watermark
// (see sourceWatermark).
func (o *Output) sourceCut(portName string, b *md.Batch, now int64) error {
	n := b.Len()
	start, w, sent := 0, o.wm, o.wm
	for {
		i := n
		switch b.Kind {
		case md.KindTrade:
			i, w = cutTrades(b.Trades[start:], w, sent, o.ooo)
		case md.KindQuote:
			i, w = cutQuotes(b.Quotes[start:], w, sent, o.ooo)
		case md.KindBar:
			i, w = cutBars(b.Bars[start:], w, sent, o.ooo)
		case md.KindDerived:
			i, w = cutDerived(b.Derived[start:], w, sent, o.ooo)
		}
		end := start + i
		if end == n {
			break
		}
		// Records [start, end) go out with watermark w, before record end.
		if err := o.sendPart(portName, b, start, end, w, now); err != nil {
			b.Release()
			return err
		}
		start, sent = end, w
	}
	if start == 0 {
		o.setWatermark(w, now)
		return o.send(portName, b)
	}
	err := o.sendPart(portName, b, start, n, w, now)
	b.Release()
	return err
}

// sendPart sends b's records [from, to) in a pooled batch with watermark w.
func (o *Output) sendPart(portName string, b *md.Batch, from, to int, w, now int64) error {
	part := o.nc.Pool.GetCap(b.Kind, to-from)
	part.Reason, part.Schema = b.Reason, b.Schema
	switch b.Kind {
	case md.KindTrade:
		part.Trades = append(part.Trades, b.Trades[from:to]...)
	case md.KindQuote:
		part.Quotes = append(part.Quotes, b.Quotes[from:to]...)
	case md.KindBar:
		part.Bars = append(part.Bars, b.Bars[from:to]...)
	case md.KindDerived:
		for i := from; i < to; i++ {
			part.CopyDerived(b, i)
		}
	}
	o.setWatermark(w, now)
	return o.send(portName, part)
}

// setWatermark moves a source's watermark to wm if that is newer.
func (o *Output) setWatermark(wm, now int64) {
	if wm > o.wm {
		o.wm = wm
		o.stats.Watermark.Store(wm)
		o.stats.WatermarkAt.Store(now)
	}
}

// cutTrades scans rs with running watermark w (sent: the watermark receivers
// already have) and returns the index of the first record behind a
// watermark they have not seen, or len(rs), with the running watermark there.
func cutTrades(rs []md.Trade, w, sent, ooo int64) (int, int64) {
	for i := range rs {
		ts := rs[i].TS
		if ts < w && w > sent {
			return i, w
		}
		w = max(w, ts-ooo)
	}
	return len(rs), w
}

// cutQuotes is cutTrades for quotes.
func cutQuotes(rs []md.Quote, w, sent, ooo int64) (int, int64) {
	for i := range rs {
		ts := rs[i].TS
		if ts < w && w > sent {
			return i, w
		}
		w = max(w, ts-ooo)
	}
	return len(rs), w
}

// cutBars is cutTrades for bars, by their start.
func cutBars(rs []md.Bar, w, sent, ooo int64) (int, int64) {
	for i := range rs {
		ts := rs[i].Start
		if ts < w && w > sent {
			return i, w
		}
		w = max(w, ts-ooo)
	}
	return len(rs), w
}

// cutDerived is cutTrades for derived records.
func cutDerived(rs []md.Derived, w, sent, ooo int64) (int, int64) {
	for i := range rs {
		ts := rs[i].TS
		if ts < w && w > sent {
			return i, w
		}
		w = max(w, ts-ooo)
	}
	return len(rs), w
}

// splitTable returns, indexed by SymID, the queue of t each symbol goes to
// (md.Split at level md.SplitInstances), extended to every symbol interned so
// far. Symbols are interned before a batch carrying them is emitted, so the
// table covers every record of the batch being split; each symbol is hashed
// once per target, never per record.
func (t *target) splitTable(st *md.SymbolTable) []uint16 {
	if st.Len() > len(t.tab) {
		syms := st.Snapshot()
		for i := len(t.tab); i < len(syms); i++ {
			t.tab = append(t.tab, uint16(md.Split(t.hash(&syms[i]), md.SplitInstances, len(t.qs))))
		}
	}
	return t.tab
}

// splitScratch is a sender's reusable per-split state: the parts being
// filled and how many records each holds.
type splitScratch struct {
	parts []*md.Batch
	n     []int
}

func (sc *splitScratch) reset(n int) {
	if cap(sc.parts) < n {
		sc.parts, sc.n = make([]*md.Batch, n), make([]int, n)
	}
	sc.parts, sc.n = sc.parts[:n], sc.n[:n]
	clear(sc.n)
}

// partition splits b by symbol (md.Split at level md.SplitInstances) across
// t's queues and sends each part. Each part is sized for the whole batch, so
// the copy loop writes records by index with no capacity checks and no
// branch on the target: per record it is a table load and a copy.
func (o *Output) partition(t *target, b *md.Batch) error {
	n := len(t.qs)
	tab := t.splitTable(o.nc.Symbols)
	if k, ok := oneTarget(tab, b); ok {
		return o.forward(t, k, b)
	}
	m := b.Len()
	sc := &o.split
	sc.reset(n)
	parts, cnt := sc.parts, sc.n
	for i := range parts {
		parts[i] = o.nc.Pool.GetCap(b.Kind, m)
		parts[i].Reason, parts[i].Schema = b.Reason, b.Schema
	}
	switch b.Kind {
	case md.KindTrade:
		dst := o.tradeDst(parts, m)
		for i := range b.Trades {
			k := tab[b.Trades[i].Sym]
			dst[k][cnt[k]] = b.Trades[i]
			cnt[k]++
		}
		for i, p := range parts {
			p.Trades = p.Trades[:cnt[i]]
		}
	case md.KindQuote:
		dst := o.quoteDst(parts, m)
		for i := range b.Quotes {
			k := tab[b.Quotes[i].Sym]
			dst[k][cnt[k]] = b.Quotes[i]
			cnt[k]++
		}
		for i, p := range parts {
			p.Quotes = p.Quotes[:cnt[i]]
		}
	case md.KindBar:
		dst := o.barDst(parts, m)
		for i := range b.Bars {
			k := tab[b.Bars[i].Sym]
			dst[k][cnt[k]] = b.Bars[i]
			cnt[k]++
		}
		for i, p := range parts {
			p.Bars = p.Bars[:cnt[i]]
		}
	case md.KindDerived:
		for i := range b.Derived {
			parts[tab[b.Derived[i].Sym]].CopyDerived(b, i)
		}
	}
	b.Release()
	var firstErr error
	for i, p := range parts {
		parts[i] = nil
		if firstErr != nil {
			p.Release()
			continue
		}
		m := message{b: p, wm: o.wm}
		if p.Len() == 0 {
			p.Release()
			// A source's watermark moved with this batch: the instances
			// that got none of its records must see it too, or lateness and
			// end-of-stream filling would depend on which symbols share an
			// instance. (An operator forwards its watermark after Process,
			// to every queue.)
			if !o.source {
				continue
			}
			m.b = nil
		}
		if err := t.qs[i].push(o.ctx, m, o.stats); err != nil {
			firstErr = err
		}
	}
	return firstErr
}

// oneTarget reports whether every record of b goes to the same queue, and
// which. It stops at the first record that goes elsewhere, so a mixed batch
// costs a record or two; a batch from a source that splits its symbols the
// way the engine does (a parallel provider.synthetic feeding a node of the
// same parallelism) is then sent whole, without a copy.
func oneTarget(tab []uint16, b *md.Batch) (uint16, bool) {
	switch b.Kind {
	case md.KindTrade:
		rs := b.Trades
		k := tab[rs[0].Sym]
		for i := 1; i < len(rs); i++ {
			if tab[rs[i].Sym] != k {
				return 0, false
			}
		}
		return k, true
	case md.KindQuote:
		rs := b.Quotes
		k := tab[rs[0].Sym]
		for i := 1; i < len(rs); i++ {
			if tab[rs[i].Sym] != k {
				return 0, false
			}
		}
		return k, true
	}
	return 0, false
}

// forward sends all of b to queue k of t; a source's other queues get its
// watermark (see partition).
func (o *Output) forward(t *target, k uint16, b *md.Batch) error {
	var firstErr error
	for i, q := range t.qs {
		m := message{wm: o.wm}
		if i == int(k) {
			m.b = b
		} else if !o.source {
			continue
		}
		if firstErr != nil {
			if m.b != nil {
				m.b.Release()
			}
			continue
		}
		if err := q.push(o.ctx, m, o.stats); err != nil {
			firstErr = err
		}
	}
	return firstErr
}

// tradeDst returns each part's trades at full length m, to be written by
// index (the parts were got with room for m records).
func (o *Output) tradeDst(parts []*md.Batch, m int) [][]md.Trade {
	if cap(o.trades) < len(parts) {
		o.trades = make([][]md.Trade, len(parts))
	}
	dst := o.trades[:len(parts)]
	for i, p := range parts {
		dst[i] = p.Trades[:m]
	}
	return dst
}

// quoteDst is tradeDst for quotes.
func (o *Output) quoteDst(parts []*md.Batch, m int) [][]md.Quote {
	if cap(o.quotes) < len(parts) {
		o.quotes = make([][]md.Quote, len(parts))
	}
	dst := o.quotes[:len(parts)]
	for i, p := range parts {
		dst[i] = p.Quotes[:m]
	}
	return dst
}

// barDst is tradeDst for bars.
func (o *Output) barDst(parts []*md.Batch, m int) [][]md.Bar {
	if cap(o.bars) < len(parts) {
		o.bars = make([][]md.Bar, len(parts))
	}
	dst := o.bars[:len(parts)]
	for i, p := range parts {
		dst[i] = p.Bars[:m]
	}
	return dst
}

// advance forwards watermark wm on every port if it is newer.
func (o *Output) advance(wm int64) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	return o.broadcast(message{wm: wm})
}

func (o *Output) broadcast(m message) error {
	for _, p := range o.ports {
		for _, t := range p.targets {
			for _, q := range t.qs {
				if err := q.push(o.ctx, m, o.stats); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// close sends the final watermark and end of stream on every port.
func (o *Output) close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	o.wm = md.MaxTime
	return o.broadcast(message{wm: md.MaxTime, eos: true})
}

// idleAdvance moves a quiet source's watermark to event-time now minus the
// allowed out-of-orderness, so windows close on time without new data.
func (o *Output) idleAdvance(eventNow int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	if ck := o.ck; ck != nil && ck.seeker == nil && ck.want.Load() > ck.done {
		// A quiet source still joins a checkpoint: its position is its
		// count, which this lock guards.
		if err := o.injectBarrier(o.in); err != nil {
			return err
		}
	}
	return o.moveWatermark(eventNow-o.ooo, time.Now().UnixNano())
}

// Blocked reports whether emitting on the named port now would wait on a
// full block-policy queue. A node that must not stall its input (a buffer
// with a drop policy) checks it before Emit and holds or drops records
// instead. Only the node's own goroutine sends on its queues, so a false
// answer stays true until that goroutine sends again.
func (o *Output) Blocked(portName string) bool {
	p := o.ports[portName]
	if p == nil {
		return false
	}
	for _, t := range p.targets {
		if t.edge.e.Policy != Block {
			continue
		}
		for _, q := range t.qs {
			if len(q.ch) == cap(q.ch) {
				return true
			}
		}
	}
	return false
}
