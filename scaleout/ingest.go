package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

// Publishing defaults.
const (
	// frameRecords is how many records of one partition a data message
	// carries before it is published (scaleout.records_per_message sets
	// another count). Trades and quotes go as packed frames (busfmt
	// version 3; about 18 bytes a trade, at most about 50: 16384 trades
	// make ~300 KB, 800 KB at most), other kinds as version 1 frames
	// (16384 bars make ~1.4 MB). Every message costs the stream a
	// store write, and with sync: always an fsync, whatever its size;
	// BenchmarkEmbeddedVsSingle measured the process's CPU time per
	// trade falling from 398 ns with 256 records to 252 with 4096
	// (version 1 frames); BenchmarkEmbeddedVsSingleReplay compares 4096,
	// 16384 and 65536 with sync: always (README, "Cost, measured").
	frameRecords = config.DefaultRecordsPerMessage
	// maxFrameBytes also ends a compact frame: raw floats (no decimal
	// scale fits) make a trade up to 59 bytes.
	maxFrameBytes = 512 << 10
	// payloadHeadroom is what a data message's headers (Nats-Msg-Id, the
	// watermark) may take of the server's max_payload: a frame is cut
	// to at most max_payload minus this.
	payloadHeadroom = 1 << 10
	// markerInterval is how often buffered records are published and every
	// partition is sent the current watermark, so idle partitions advance.
	markerInterval = 200 * time.Millisecond
	// maxBuffered bounds the records held across all partitions: the
	// publisher's bound is partitions × records a message (so full
	// frames, not the bound, end the messages) up to this, 2^20 records
	// (56 MiB of trades, 64 MiB of quotes, 112 MiB of bars). Reaching it
	// publishes every partition's records, without markers. Below
	// partitions × records a message the bound, not the frame size, ends
	// most frames: at 2^17 with 64 partitions of 4096 it cut them to 2710
	// trades and sent 64 markers with each flush (BenchmarkEmbeddedVsSingle).
	maxBuffered = 1 << 20
	// maxPending bounds unacknowledged asynchronous publishes: the
	// publisher keeps a copy of each until the stream acknowledged it.
	maxPending = 1024
	// maxWindowBytes also bounds the unacknowledged messages' copies.
	maxWindowBytes = 64 << 20
	// ackTimeout is how long the publisher waits for a message's
	// acknowledgement before it counts it as lost (and republishes it).
	ackTimeout = 30 * time.Second
)

// outageBackoff is the wait between the ingest's attempts to publish
// again during an outage (the project's one backoff rule).
var outageBackoff = retry.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}

// errNotConnected is the publisher finding its connection down before a
// publish.
var errNotConnected = errors.New("not connected to NATS")

// sent is a published message the stream has not acknowledged yet: what
// the publisher needs to publish it again, the same, after an outage.
type sent struct {
	subject string
	data    []byte // the publisher's copy
	id      string // Nats-Msg-Id; empty for a marker
	wm      int64  // the watermark header of a data message
	mk      mark   // the marker a data frame carries (headerMark)
	f       jetstream.PubAckFuture
}

// publisher is the ingest's sink: it buffers records per partition,
// publishes them as mdp frames to their partition's subject and sends
// watermark markers into the partitions.
//
// Order rules, which make the worker see each record with the watermark
// the single-process job would have given it (or, for a record that cannot
// be late there, one no newer):
//   - a marker round publishes every buffered record first, and gives each
//     partition the round's marker after its last record: on the
//     partition's last frame of the round (headerMark), or as a marker
//     message when the round published no frame of it. A worker's
//     watermark is the lowest of its partitions' (reader), so it reaches
//     the round's only once every partition it reads has had the round's
//     records;
//   - a record behind the current watermark (one that may be late) first
//     flushes everything and sends the watermark, so it is read right after
//     exactly that watermark. In-order data never pays for this.
//
// Every data message carries a Nats-Msg-Id naming its content, "e:k:a:b":
// the ingest's epoch (the stream sequence its run started at), the
// partition and the numbers of its first and last record among the
// partition's records (0, 1, … since the ingest started). The same input
// read again gives the same id to the same frame, and the stream's
// duplicate window stores it once; a frame cut differently gets another id
// and is stored. A worker that finds a frame starting past the record after
// the last it read knows the stream lost records (RetentionError).
type publisher struct {
	js         jetstream.JetStream
	n          names
	partitions int
	target     int           // records a message (setTarget)
	bound      int           // records buffered across the partitions at most (setTarget)
	maxFrame   int           // a frame's bytes at most: the server's max_payload less payloadHeadroom (Open)
	interval   time.Duration // markerInterval; tests set it longer
	// outageLimit bounds how long the ingest rides out NATS (or its
	// JetStream) not accepting publishes: past it, the ingest fails with
	// the last transient error (scaleout.outage_limit).
	outageLimit time.Duration
	epoch       uint64 // the stream sequence the ingest's run started at

	nc   *engine.NodeContext
	enc  busfmt.Encoder
	syms []md.Instrument

	byPart   []*md.Batch          // per partition: records not yet published (bars, derived)
	cols     [][2]*busfmt.Columns // per partition: trades, quotes not yet published
	next     []int64              // per partition: the number of its next record
	part     []int32              // per SymID: partition+1 (0: not computed)
	marked   int64                // the last watermark sent to every partition
	wm       int64
	buffered int
	last     time.Time
	// processBatch's scratch: per record its partition and the records
	// in partition order; per partition where its records start.
	parts, order, start []int32
	id                  []byte
	view                md.Batch // a run of a partition's records, encoded as one frame
	cut                 int64    // frames cut to fit the server's max_payload

	// The publishing connection (Open): the ingest's own, which buffers
	// nothing while it reconnects, so no message can reach the stream
	// ahead of one lost before it.
	pnc *nats.Conn
	pjs jetstream.JetStream
	log *slog.Logger

	window      []sent   // published, not acknowledged yet, in publish order
	windowBytes int      // their data's bytes
	free        [][]byte // copies' buffers to use again

	// During a marker round (flushAll): its marker, and per partition
	// whether a frame of the round carries it. A frame the stream reports
	// as a duplicate is this run's own, published again after an outage
	// (message ids carry the run's epoch), so the copy it kept carries the
	// same marker.
	round mark
	rode  []bool

	dups        int64 // data messages the stream had already stored
	frames      int64 // data messages published
	markers     int64 // marker messages published
	carried     int64 // markers published on a data frame (headerMark)
	outages     int64 // outages ridden out
	republished int64 // messages published again after an outage

	mu  sync.Mutex
	err error // the first failed publish
}

func newPublisher(js jetstream.JetStream, n names, partitions int) *publisher {
	p := &publisher{js: js, n: n, partitions: partitions, interval: markerInterval, outageLimit: config.DefaultOutageLimit, wm: md.MinTime,
		byPart: make([]*md.Batch, partitions), cols: make([][2]*busfmt.Columns, partitions), next: make([]int64, partitions), marked: md.MinTime,
		rode: make([]bool, partitions)}
	p.setTarget(frameRecords)
	// A symbol is in one partition: the builders of a kind share one
	// lookup table of the job's symbols.
	t0, q0 := busfmt.NewColumns(md.KindTrade), busfmt.NewColumns(md.KindQuote)
	for k := range p.byPart {
		p.byPart[k] = &md.Batch{}
		p.cols[k] = [2]*busfmt.Columns{busfmt.NewColumnsSharing(md.KindTrade, t0), busfmt.NewColumnsSharing(md.KindQuote, q0)}
	}
	return p
}

// configure applies the job's scaleout section: the records a message
// and the outage limit.
func (p *publisher) configure(so *config.ScaleoutConfig) {
	p.setTarget(so.MessageRecords())
	if so.OutageLimit > 0 {
		p.outageLimit = so.OutageLimit
	}
}

// setTarget sets the records a message, and with it the bound on the
// records buffered across the partitions: partitions × n, at most
// maxBuffered.
func (p *publisher) setTarget(n int) {
	p.target = n
	p.bound = min(p.partitions*n, maxBuffered)
}

// Open keeps the node context and opens the publishing connection: a
// second connection to p.js's server with the same options, except that
// it buffers nothing while reconnecting (a publish then fails at once).
func (p *publisher) Open(ctx context.Context, nc *engine.NodeContext) error {
	p.nc = nc
	p.log = nc.Logger
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.enc.Packed = frameVersion == busfmt.VersionPacked
	p.last = time.Now()
	o := p.js.Conn().Opts
	o.ReconnectBufSize = -1
	o.Name += " ingest"
	pnc, err := o.Connect()
	if err != nil {
		return fmt.Errorf("connect the ingest's publisher: %w", err)
	}
	p.maxFrame = int(pnc.MaxPayload()) - payloadHeadroom
	if p.maxFrame < payloadHeadroom {
		pnc.Close()
		return fmt.Errorf("the NATS server's max_payload, %d bytes, is too small for the ingest's messages", pnc.MaxPayload())
	}
	pjs, err := jetstream.New(pnc, jetstream.WithPublishAsyncMaxPending(maxPending), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		pnc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	p.pnc, p.pjs = pnc, pjs
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

// frameVersion is the frame trades and quotes are published as: packed
// (busfmt version 3: records gathered per partition, each frame encoded
// column by column), or for BenchmarkEmbeddedVsSingle's comparisons
// compact (version 2, built record by record) or version 1.
var frameVersion = busfmt.VersionPacked

// Process buffers b's records by partition.
func (p *publisher) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	var err error
	switch {
	case frameVersion == busfmt.VersionCompact && b.Kind == md.KindTrade:
		for i := range b.Trades {
			t := &b.Trades[i]
			k, c, err := p.columns(ctx, t.Sym, t.TS, 0)
			if err != nil {
				return err
			}
			if err := c.AddTrade(t); err != nil {
				return p.encodeErr(k, t.Sym, err)
			}
			if err := p.added(ctx, k, c); err != nil {
				return err
			}
		}
	case frameVersion == busfmt.VersionCompact && b.Kind == md.KindQuote:
		for i := range b.Quotes {
			q := &b.Quotes[i]
			k, c, err := p.columns(ctx, q.Sym, q.TS, 1)
			if err != nil {
				return err
			}
			if err := c.AddQuote(q); err != nil {
				return p.encodeErr(k, q.Sym, err)
			}
			if err := p.added(ctx, k, c); err != nil {
				return err
			}
		}
	default:
		err = p.processBatch(ctx, b)
	}
	if err != nil {
		return err
	}
	if p.buffered >= p.bound {
		return p.flushData(ctx)
	}
	return nil
}

// columns returns the partition of a trade (j 0) or quote (j 1) record
// and the frame it joins: a record that may be late first flushes
// everything, and a partition holding records of another kind is
// published first.
func (p *publisher) columns(ctx context.Context, id md.SymID, ts int64, j int) (int, *busfmt.Columns, error) {
	k := p.partitionOf(id)
	if ts < p.wm && p.marked < p.wm {
		// This record may be late: it must follow exactly the
		// watermark the job has now.
		if err := p.flushAll(ctx, false); err != nil {
			return k, nil, err
		}
	}
	if p.byPart[k].Len() > 0 || p.cols[k][1-j].Len() > 0 {
		if err := p.flushPartition(ctx, k); err != nil {
			return k, nil, err
		}
	}
	return k, p.cols[k][j], nil
}

// added counts a record added to partition k's frame c and publishes the
// frame when it is full.
func (p *publisher) added(ctx context.Context, k int, c *busfmt.Columns) error {
	p.buffered++
	if n := c.Len(); n >= p.target || n&255 == 0 && c.Bytes() >= maxFrameBytes {
		return p.flushPartition(ctx, k)
	}
	return nil
}

// encodeErr wraps a record the frame refused.
func (p *publisher) encodeErr(k int, id md.SymID, err error) error {
	if int(id) < len(p.syms) {
		return fmt.Errorf("encode records of %s: %w", p.syms[id].Symbol, err)
	}
	return fmt.Errorf("encode records of partition %d: %w", k, err)
}

// processBatch buffers copies of a batch's records by partition, for
// version 1 or packed frames. It copies them partition by partition (a
// stable counting sort of the batch by partition first): the partitions'
// buffers together (64 × 4096 trades, 14 MiB) are larger than the caches,
// and a record at a time, each to another partition, cost a cache miss
// per record; partition by partition the writes run in sequence.
func (p *publisher) processBatch(ctx context.Context, b *md.Batch) error {
	n := b.Len()
	for lo := 0; lo < n; {
		hi := n
		if p.marked < p.wm {
			// A record that may be late must follow exactly the
			// watermark the job has now: what comes before it is
			// buffered, then everything is flushed.
			for i := lo; i < n; i++ {
				if _, ts := recOf(b, i); ts < p.wm {
					hi = i
					break
				}
			}
		}
		if err := p.bufferRange(ctx, b, lo, hi); err != nil {
			return err
		}
		if hi < n {
			if err := p.flushAll(ctx, false); err != nil {
				return err
			}
		}
		lo = hi
	}
	return nil
}

// bufferRange buffers records lo…hi-1 of b, partition by partition.
func (p *publisher) bufferRange(ctx context.Context, b *md.Batch, lo, hi int) error {
	if cap(p.order) < hi-lo {
		p.order, p.parts = make([]int32, hi-lo), make([]int32, hi-lo)
	}
	if p.start == nil {
		p.start = make([]int32, p.partitions+1)
	}
	parts, order, start := p.parts[:hi-lo], p.order[:hi-lo], p.start
	clear(start)
	for i := lo; i < hi; i++ {
		id, _ := recOf(b, i)
		k := p.partitionOf(id)
		parts[i-lo] = int32(k)
		start[k+1]++
	}
	for k := 1; k <= p.partitions; k++ {
		start[k] += start[k-1]
	}
	for i, k := range parts {
		order[start[k]] = int32(lo + i)
		start[k]++
	}
	// start[k] is now where partition k+1's records begin.
	from := 0
	for k := 0; k < p.partitions; k++ {
		to := int(start[k])
		if from == to {
			continue
		}
		pb := p.byPart[k]
		if pb.Len() > 0 && (pb.Kind != b.Kind || pb.Schema != b.Schema) || p.cols[k][0].Len() > 0 || p.cols[k][1].Len() > 0 {
			if err := p.flushPartition(ctx, k); err != nil {
				return err
			}
		}
		for run := order[from:to]; len(run) > 0; {
			if pb.Len() == 0 {
				pb.Kind, pb.Schema = b.Kind, b.Schema
				reserve(pb, p.bound/p.partitions) // p.target, or less when the bound is below partitions × p.target
			}
			m := min(len(run), p.target-pb.Len())
			copyRecords(pb, b, run[:m])
			p.buffered += m
			run = run[m:]
			if pb.Len() >= p.target {
				if err := p.flushPartition(ctx, k); err != nil {
					return err
				}
			}
		}
		from = to
	}
	return nil
}

// OnWatermark takes the job's new watermark; at most every markerInterval
// it publishes what is buffered and the watermark to every partition.
func (p *publisher) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	p.wm = wm
	if time.Since(p.last) < p.interval {
		return nil
	}
	return p.flushAll(ctx, false)
}

// TimerInterval makes a quiet source's partitions advance too.
func (p *publisher) TimerInterval() time.Duration { return markerInterval }

// OnTimer publishes what is buffered and the watermark.
func (p *publisher) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	if time.Since(p.last) < p.interval {
		return nil
	}
	return p.flushAll(ctx, false)
}

// Close publishes everything and the end marker to every partition, then
// waits until the stream has acknowledged every message.
func (p *publisher) Close(ctx context.Context, out *engine.Output) error {
	if p.pnc == nil {
		return nil
	}
	defer p.pnc.Close()
	if err := p.flushAll(ctx, true); err != nil {
		return err
	}
	if err := p.reap(ctx, true); err != nil {
		return err
	}
	return p.firstErr()
}

// flushData publishes every partition's buffered records.
func (p *publisher) flushData(ctx context.Context) error {
	for k := range p.byPart {
		if err := p.flushPartition(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// flushAll is a marker round: it publishes every buffered record, then
// gives every partition the watermark (the end marker when end), on the
// partition's last frame of the round or, when the round published none,
// as a marker message. Without a newer watermark (and not at the end) it
// only publishes the records.
func (p *publisher) flushAll(ctx context.Context, end bool) error {
	p.last = time.Now()
	kind, wm := byte(markerWatermark), p.wm
	if end {
		kind, wm = markerEnd, md.MaxTime
	} else if p.marked >= p.wm {
		if err := p.flushData(ctx); err != nil {
			return err
		}
		return p.firstErr()
	}
	p.round = mark{set: true, kind: kind, wm: wm}
	clear(p.rode)
	err := p.flushData(ctx)
	p.round = mark{}
	if err != nil {
		return err
	}
	p.marked = wm
	var b [markerSize]byte
	m := appendMarker(b[:0], kind, wm)
	for k := range p.byPart {
		if p.rode[k] {
			continue
		}
		if err := p.publish(ctx, k, m, ""); err != nil {
			return err
		}
		p.markers++
	}
	return p.firstErr()
}

// flushPartition publishes partition k's buffered records as one frame,
// encoded into a buffer the window then keeps (no copy), or as several
// when one would be larger than the server's max_payload allows.
func (p *publisher) flushPartition(ctx context.Context, k int) error {
	pb := p.byPart[k]
	if n := pb.Len(); n > 0 {
		err := p.publishRun(ctx, k, pb, 0, n, true)
		pb.Reset()
		return err
	}
	c := p.cols[k][0]
	if c.Len() == 0 {
		c = p.cols[k][1]
	}
	n := c.Len()
	if n == 0 {
		return nil
	}
	buf, err := c.AppendFrame(p.freeBuf(), p.syms, "")
	if err != nil {
		p.free = append(p.free, buf[:0])
		return fmt.Errorf("encode records of partition %d: %w", k, err)
	}
	return p.publishFrame(ctx, k, buf, n, true)
}

// publishRun publishes records lo…hi-1 of partition k's buffer pb as one
// frame, or, when that frame would be larger than p.maxFrame, each half
// in turn the same way. The cut depends only on the records and the
// server's max_payload, so the same input read again is cut the same.
// last says that hi is the end of what the partition publishes now: its
// last frame carries a marker round's marker.
func (p *publisher) publishRun(ctx context.Context, k int, pb *md.Batch, lo, hi int, last bool) error {
	v := &p.view
	sliceBatch(v, pb, lo, hi)
	buf, err := p.enc.AppendFrame(p.freeBuf(), v, p.syms)
	if err != nil {
		p.free = append(p.free, buf[:0])
		id, _ := recOf(v, 0)
		return p.encodeErr(k, id, err)
	}
	if len(buf) <= p.maxFrame {
		return p.publishFrame(ctx, k, buf, hi-lo, last)
	}
	p.free = append(p.free, buf[:0])
	if hi-lo == 1 {
		return fmt.Errorf("a record of partition %d takes %d bytes in a frame, more than the NATS server's max_payload (%d bytes) allows", k, len(buf), p.maxFrame+payloadHeadroom)
	}
	if p.cut++; p.cut == 1 {
		p.log.Info("scale-out ingest: cutting frames to the NATS server's max_payload",
			"records_per_message", p.target, "max_payload", p.maxFrame+payloadHeadroom, "frame_bytes", len(buf))
	}
	mid := lo + (hi-lo)/2
	if err := p.publishRun(ctx, k, pb, lo, mid, false); err != nil {
		return err
	}
	return p.publishRun(ctx, k, pb, mid, hi, last)
}

// sliceBatch makes v a view of records lo…hi-1 of b (no copy).
func sliceBatch(v, b *md.Batch, lo, hi int) {
	v.Kind, v.Schema = b.Kind, b.Schema
	v.Trades, v.Quotes, v.Bars, v.Derived, v.Values = nil, nil, nil, nil, nil
	switch b.Kind {
	case md.KindTrade:
		v.Trades = b.Trades[lo:hi]
	case md.KindQuote:
		v.Quotes = b.Quotes[lo:hi]
	case md.KindBar:
		v.Bars = b.Bars[lo:hi]
	default:
		v.Derived = b.Derived[lo:hi]
		if b.Schema != nil {
			w := b.Schema.Len()
			v.Values = b.Values[lo*w : hi*w]
		}
	}
}

// publishFrame publishes buf, a frame of partition k's next n records,
// with the Nats-Msg-Id naming them; during a marker round the partition's
// last frame (last) carries the round's marker.
func (p *publisher) publishFrame(ctx context.Context, k int, buf []byte, n int, last bool) error {
	p.buffered -= n
	p.id = appendMsgID(p.id[:0], p.epoch, k, p.next[k], p.next[k]+int64(n)-1)
	p.next[k] += int64(n)
	p.frames++
	var mk mark
	if last && p.round.set {
		mk = p.round
		p.rode[k] = true
		p.carried++
	}
	return p.publishBuf(ctx, k, buf, string(p.id), mk)
}

// freeBuf returns an empty buffer for a message the window will keep: one
// of an acknowledged message's, or nil.
func (p *publisher) freeBuf() []byte {
	n := len(p.free)
	if n == 0 {
		return nil
	}
	buf := p.free[n-1][:0]
	p.free = p.free[:n-1]
	return buf
}

// appendMsgID appends a data message's Nats-Msg-Id: epoch, partition,
// first and last record number (frameRange parses it).
func appendMsgID(dst []byte, epoch uint64, k int, first, last int64) []byte {
	dst = strconv.AppendUint(dst, epoch, 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(k), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, first, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, last, 10)
}

// publish sends one message asynchronously, with id as its Nats-Msg-Id
// unless empty, and keeps a copy of it until the stream acknowledges it.
// It takes the acknowledgements that have arrived; while the window of
// unacknowledged messages is full, it waits for them (backpressure on the
// source). A transient failure of the publish or of an acknowledgement is
// ridden out (ride); any other fails the ingest.
func (p *publisher) publish(ctx context.Context, k int, data []byte, id string) error {
	return p.publishBuf(ctx, k, append(p.freeBuf(), data...), id, mark{})
}

// publishBuf is publish of data the window keeps as its copy, a data
// frame carrying mk when set.
func (p *publisher) publishBuf(ctx context.Context, k int, data []byte, id string, mk mark) error {
	p.window = append(p.window, sent{subject: p.n.subject(k), data: data, id: id, wm: p.marked, mk: mk})
	p.windowBytes += len(data)
	err := errNotConnected
	if p.pnc.IsConnected() {
		err = p.send(ctx, &p.window[len(p.window)-1])
	}
	if err != nil {
		if !publishTransient(err) {
			return err
		}
		if err := p.ride(ctx, err); err != nil {
			return err
		}
	}
	return p.reap(ctx, false)
}

// send publishes e and keeps its acknowledgement's future.
func (p *publisher) send(ctx context.Context, e *sent) error {
	for {
		msg := &nats.Msg{Subject: e.subject, Data: e.data}
		var opts []jetstream.PublishOpt
		if e.id != "" {
			opts = append(opts, jetstream.WithMsgID(e.id))
			// The partition's latest marker watermark, for the lag.
			msg.Header = nats.Header{headerWatermark: []string{strconv.FormatInt(e.wm, 10)}}
			if e.mk.set {
				msg.Header[headerMark] = []string{e.mk.header()}
			}
		}
		f, err := p.pjs.PublishMsgAsync(msg, opts...)
		if err == nil {
			e.f = f
			return nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return fmt.Errorf("publish to %s: %w", e.subject, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// reap takes the acknowledgements of the window's messages in publish
// order: those that have arrived, or while the window is full (or wait)
// until they arrive. A transient failure is ridden out; then the whole
// window has been published again and reaping goes on.
func (p *publisher) reap(ctx context.Context, wait bool) error {
	n := 0
	defer func() {
		if n > 0 {
			p.window = append(p.window[:0], p.window[n:]...)
		}
	}()
	for n < len(p.window) {
		e := &p.window[n]
		var a *jetstream.PubAck
		var err error
		if wait || len(p.window)-n >= maxPending || p.windowBytes >= maxWindowBytes {
			select {
			case a = <-e.f.Ok():
			case err = <-e.f.Err():
			case <-ctx.Done():
				return fmt.Errorf("waiting for the stream's acknowledgements: %w", ctx.Err())
			}
		} else {
			select {
			case a = <-e.f.Ok():
			case err = <-e.f.Err():
			default:
				return nil
			}
		}
		if err != nil {
			err = fmt.Errorf("publish to %s: %w", e.subject, err)
			if !publishTransient(err) {
				return err
			}
			p.window = append(p.window[:0], p.window[n:]...)
			n = 0
			if err := p.ride(ctx, err); err != nil {
				return err
			}
			continue
		}
		if a.Duplicate {
			p.dups++
		}
		p.windowBytes -= len(e.data)
		p.free = append(p.free, e.data)
		*e = sent{}
		n++
	}
	return nil
}

// ride rides out an outage that failed a publish with the transient
// error cause: it waits (outageBackoff) until the publishing connection is
// back and publishes every message of the window again, in order, with its
// Nats-Msg-Id (the stream's duplicate window drops the data messages it
// stored already; a marker again changes nothing). It gives up after
// p.outageLimit.
func (p *publisher) ride(ctx context.Context, cause error) error {
	start := time.Now()
	p.outages++
	p.count("outages", 1)
	p.log.Warn("scale-out ingest: publish failed; waiting for NATS to publish the unacknowledged messages again",
		"unacknowledged", len(p.window), "limit", p.outageLimit, "err", cause)
	for attempt := 1; ; attempt++ {
		if d := time.Until(start.Add(p.outageLimit)); d <= 0 {
			p.log.Error("scale-out ingest: NATS unavailable for too long", "for", time.Since(start).Round(time.Millisecond), "attempts", attempt-1, "err", cause)
			return fmt.Errorf("NATS did not take the ingest's messages for %s (outage limit): %w", p.outageLimit, cause)
		} else if err := retry.Sleep(ctx, min(outageBackoff.Delay(attempt), d)); err != nil {
			return fmt.Errorf("riding out a NATS outage: %w", err)
		}
		if !p.pnc.IsConnected() {
			cause = errNotConnected
			continue
		}
		var err error
		for i := range p.window {
			if err = p.send(ctx, &p.window[i]); err != nil {
				break
			}
		}
		if err == nil {
			p.republished += int64(len(p.window))
			p.count("republished", int64(len(p.window)))
			p.log.Info("scale-out ingest: publishing again after a NATS outage", "for", time.Since(start).Round(time.Millisecond),
				"attempts", attempt, "republished", len(p.window))
			return nil
		}
		if !publishTransient(err) {
			return err
		}
		cause = err
	}
}

// count adds to one of the publisher's counters in the job's status.
func (p *publisher) count(name string, n int64) {
	if p.nc != nil && p.nc.Stats != nil {
		p.nc.Stats.Count(name, n)
	}
}

// publishTransient reports whether a failed publish is one an outage of
// the NATS server explains: the worker's transient errors, the publishing
// connection down (it buffers nothing while reconnecting), JetStream not
// answering (no responders while the server restarts) or an
// acknowledgement lost.
func publishTransient(err error) bool {
	return transient(err) || errors.Is(err, errNotConnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrAsyncPublishTimeout)
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

// copyRecords appends records idx of src to dst, of the same kind: a
// loop per kind (the per-record cost of this copy is the publisher's
// largest after the encode).
func copyRecords(dst, src *md.Batch, idx []int32) {
	switch src.Kind {
	case md.KindTrade:
		dst.Trades = gather(dst.Trades, src.Trades, idx)
	case md.KindQuote:
		dst.Quotes = gather(dst.Quotes, src.Quotes, idx)
	case md.KindBar:
		dst.Bars = gather(dst.Bars, src.Bars, idx)
	default:
		for _, i := range idx {
			dst.CopyDerived(src, int(i))
		}
	}
}

// reserve gives a partition's empty buffer room for n records of its kind
// at once, the first time (n is its share of the bound on buffered
// records, so all of them together stay within it; a partition with more
// grows by appending): grown by appending from empty, 64 buffers of 16384
// trades allocated about twice their 56 MiB in each run, a cost a run of
// 3 M trades could not amortize (BenchmarkEmbeddedVsSingleReplay, README).
func reserve(pb *md.Batch, n int) {
	switch pb.Kind {
	case md.KindTrade:
		if cap(pb.Trades) < n {
			pb.Trades = make([]md.Trade, 0, n)
		}
	case md.KindQuote:
		if cap(pb.Quotes) < n {
			pb.Quotes = make([]md.Quote, 0, n)
		}
	case md.KindBar:
		if cap(pb.Bars) < n {
			pb.Bars = make([]md.Bar, 0, n)
		}
	}
}

// gather appends src[i] for each i of idx to dst.
func gather[T any](dst, src []T, idx []int32) []T {
	n0 := len(dst)
	dst = slices.Grow(dst, len(idx))[:n0+len(idx)]
	d := dst[n0:]
	for j, i := range idx {
		d[j] = src[i]
	}
	return dst
}
