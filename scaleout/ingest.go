package scaleout

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Publishing defaults.
const (
	// frameTarget is how many records of one symbol a data message carries
	// before it is published (a message per trade would cap the stream
	// near 10^5 trades/s on a small machine).
	frameTarget = 256
	// markerInterval is how often buffered records are published and every
	// partition is sent the current watermark, so idle partitions advance.
	markerInterval = 200 * time.Millisecond
	// maxBuffered bounds the records held across all symbols.
	maxBuffered = 1 << 16
	// maxPending bounds unacknowledged asynchronous publishes.
	maxPending = 4096
)

// publisher is the ingest's sink: it buffers records per symbol, publishes
// them as mdp frames to their partition's subject and sends watermark
// markers into the partitions.
//
// Order rules, which make the worker see each record with the watermark
// the single-process job would have given it (or, for a record that cannot
// be late there, one no newer):
//   - markers go out only when no record is buffered, so no marker
//     overtakes a record received before it, in any partition (a worker
//     reading several partitions takes its watermark from all of them);
//   - a record behind the current watermark (one that may be late) first
//     flushes everything and sends the watermark, so it is read right after
//     exactly that watermark. In-order data never pays for this.
type publisher struct {
	js         jetstream.JetStream
	n          names
	partitions int
	target     int

	nc   *engine.NodeContext
	enc  busfmt.Encoder
	buf  []byte
	syms []md.Instrument

	bySym    []*md.Batch // per SymID: records not yet published
	part     []int32     // per SymID: partition+1 (0: not computed)
	dirty    [][]md.SymID
	marked   int64 // the last watermark sent to every partition
	wm       int64
	buffered int
	last     time.Time

	mu  sync.Mutex
	err error // the first failed publish
}

func newPublisher(js jetstream.JetStream, n names, partitions int) *publisher {
	p := &publisher{js: js, n: n, partitions: partitions, target: frameTarget, wm: md.MinTime,
		dirty: make([][]md.SymID, partitions), marked: md.MinTime}
	return p
}

// Open keeps the node context.
func (p *publisher) Open(ctx context.Context, nc *engine.NodeContext) error {
	p.nc = nc
	p.last = time.Now()
	return nil
}

// failed records a publish the stream did not acknowledge.
func (p *publisher) failed(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *publisher) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// partitionOf returns a symbol's partition: md.Split at the instance level
// over the partition count, the split the engine uses for parallelism.
func (p *publisher) partitionOf(id md.SymID) int {
	if int(id) >= len(p.part) {
		p.syms = p.nc.Symbols.Snapshot()
		n := max(len(p.syms), int(id)+1)
		p.part = append(p.part, make([]int32, n-len(p.part))...)
		p.bySym = append(p.bySym, make([]*md.Batch, n-len(p.bySym))...)
	}
	if v := p.part[id]; v != 0 {
		return int(v - 1)
	}
	if int(id) >= len(p.syms) {
		p.syms = p.nc.Symbols.Snapshot()
	}
	k := md.Split(p.syms[id].Hash, md.SplitInstances, p.partitions)
	p.part[id] = int32(k + 1)
	return k
}

// Process buffers b's records by symbol.
func (p *publisher) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	n := b.Len()
	for i := 0; i < n; i++ {
		id, ts := recOf(b, i)
		k := p.partitionOf(id)
		if ts < p.wm && p.marked < p.wm {
			// This record may be late: it must follow exactly the
			// watermark the job has now.
			if err := p.flushAll(ctx, false); err != nil {
				return err
			}
		}
		sb := p.bySym[id]
		if sb == nil {
			sb = &md.Batch{Kind: b.Kind, Schema: b.Schema}
			p.bySym[id] = sb
		}
		if sb.Len() == 0 {
			if sb.Kind != b.Kind || sb.Schema != b.Schema {
				sb.Kind, sb.Schema = b.Kind, b.Schema
			}
			p.dirty[k] = append(p.dirty[k], id)
		} else if sb.Kind != b.Kind || sb.Schema != b.Schema {
			if err := p.flushSymbol(ctx, id, k); err != nil {
				return err
			}
			sb.Kind, sb.Schema = b.Kind, b.Schema
			p.dirty[k] = append(p.dirty[k], id)
		}
		copyRecord(sb, b, i)
		p.buffered++
		if sb.Len() >= p.target {
			if err := p.flushSymbol(ctx, id, k); err != nil {
				return err
			}
		}
	}
	if p.buffered >= maxBuffered {
		return p.flushAll(ctx, false)
	}
	return nil
}

// OnWatermark takes the job's new watermark; at most every markerInterval
// it publishes what is buffered and the watermark to every partition.
func (p *publisher) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	p.wm = wm
	if time.Since(p.last) < markerInterval {
		return nil
	}
	return p.flushAll(ctx, false)
}

// TimerInterval makes a quiet source's partitions advance too.
func (p *publisher) TimerInterval() time.Duration { return markerInterval }

// OnTimer publishes what is buffered and the watermark.
func (p *publisher) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	if time.Since(p.last) < markerInterval {
		return nil
	}
	return p.flushAll(ctx, false)
}

// Close publishes everything and the end marker to every partition, then
// waits until the stream has acknowledged every message.
func (p *publisher) Close(ctx context.Context, out *engine.Output) error {
	if err := p.flushAll(ctx, true); err != nil {
		return err
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("waiting for the stream's acknowledgements: %w", ctx.Err())
	}
	return p.firstErr()
}

// flushAll publishes every buffered record, then the watermark (the end
// marker when end) to every partition.
func (p *publisher) flushAll(ctx context.Context, end bool) error {
	p.last = time.Now()
	for k := range p.dirty {
		if err := p.flushPartition(ctx, k); err != nil {
			return err
		}
	}
	kind, wm := byte(markerWatermark), p.wm
	if end {
		kind, wm = markerEnd, md.MaxTime
	} else if p.marked >= p.wm {
		return p.firstErr()
	}
	p.marked = wm
	var b [markerSize]byte
	m := appendMarker(b[:0], kind, wm)
	for k := range p.dirty {
		if err := p.publish(ctx, k, m); err != nil {
			return err
		}
	}
	return p.firstErr()
}

func (p *publisher) flushPartition(ctx context.Context, k int) error {
	for _, id := range p.dirty[k] {
		if err := p.publishSymbol(ctx, id, k); err != nil {
			return err
		}
	}
	p.dirty[k] = p.dirty[k][:0]
	return nil
}

// flushSymbol publishes one symbol's records ahead of its partition's
// others (their order does not matter: records of different symbols never
// meet in a keyed operator).
func (p *publisher) flushSymbol(ctx context.Context, id md.SymID, k int) error {
	if err := p.publishSymbol(ctx, id, k); err != nil {
		return err
	}
	d := p.dirty[k]
	for i, x := range d {
		if x == id {
			p.dirty[k] = append(d[:i], d[i+1:]...)
			break
		}
	}
	return nil
}

func (p *publisher) publishSymbol(ctx context.Context, id md.SymID, k int) error {
	sb := p.bySym[id]
	if sb == nil || sb.Len() == 0 {
		return nil
	}
	if int(id) >= len(p.syms) {
		p.syms = p.nc.Symbols.Snapshot()
	}
	var err error
	p.buf, err = p.enc.AppendFrame(p.buf[:0], sb, p.syms)
	if err != nil {
		return fmt.Errorf("encode records of %s: %w", p.syms[id].Symbol, err)
	}
	p.buffered -= sb.Len()
	sb.Reset()
	return p.publish(ctx, k, p.buf)
}

// publish sends one message asynchronously; the client copies data. A
// failed acknowledgement fails the job at its next batch.
func (p *publisher) publish(ctx context.Context, k int, data []byte) error {
	msg := &nats.Msg{Subject: p.n.subject(k), Data: data}
	for {
		_, err := p.js.PublishMsgAsync(msg)
		if err == nil {
			return nil
		}
		if err != jetstream.ErrTooManyStalledMsgs {
			return fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// recOf returns record i's symbol and event time.
func recOf(b *md.Batch, i int) (md.SymID, int64) {
	switch b.Kind {
	case md.KindTrade:
		return b.Trades[i].Sym, b.Trades[i].TS
	case md.KindQuote:
		return b.Quotes[i].Sym, b.Quotes[i].TS
	case md.KindBar:
		return b.Bars[i].Sym, b.Bars[i].Start
	default:
		return b.Derived[i].Sym, b.Derived[i].TS
	}
}

// copyRecord appends record i of src to dst, of the same kind.
func copyRecord(dst, src *md.Batch, i int) {
	switch src.Kind {
	case md.KindTrade:
		dst.Trades = append(dst.Trades, src.Trades[i])
	case md.KindQuote:
		dst.Quotes = append(dst.Quotes, src.Quotes[i])
	case md.KindBar:
		dst.Bars = append(dst.Bars, src.Bars[i])
	default:
		dst.CopyDerived(src, i)
	}
}
