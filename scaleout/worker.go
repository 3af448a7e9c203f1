package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// inBandOutOfOrderness is the worker source's max_out_of_orderness: far
// beyond any data's span, so the records it emits never move its
// watermark; only the ingest's markers do (engine.Output.AdvanceWatermark).
const inBandOutOfOrderness = 100 * 365 * 24 * time.Hour

// pullMaxBytes bounds what the reader's consumer buffers ahead.
const pullMaxBytes = 16 << 20

// reader is the worker's source: it reads the partitions it owns, in
// stream order, through one ordered consumer, and emits each data frame as
// a batch. Its watermark is the lowest of its open partitions' latest
// markers (a marker message, or the one a data frame carries after its
// records), so it passes a record of one partition only once every other
// partition has had what was published before that marker. It ends when
// every partition it reads has delivered the ingest's end marker.
type reader struct {
	js         jetstream.JetStream
	n          names
	partitions []int
	// start is the stream sequence reading starts at (0: the first);
	// what the stream no longer holds of it is a RetentionError.
	start    uint64
	gaps     gapCheck
	progress *progress // per partition: what was read, for the lag

	// With checkpoints (a worker): what a restored piece covers per
	// partition, the last stream sequence delivered, and the partitions
	// whose end marker was read.
	restored map[int]partRead
	cursor   uint64
	// partitionCount is the job's partition count (for the symbols'
	// partitions in Position).
	partitionCount int
	ended          map[int]bool
	// wms holds the open partitions (those whose end marker has not been
	// read), each with its latest marker watermark; advanced is the
	// lowest of them the reader has emitted.
	wms      map[int]int64
	advanced int64

	nc  *engine.NodeContext
	dec *busfmt.Decoder
}

func newReader(js jetstream.JetStream, n names, partitions []int) *reader {
	return &reader{js: js, n: n, partitions: partitions, progress: newProgress(partitions)}
}

// Open keeps the node context.
func (r *reader) Open(ctx context.Context, nc *engine.NodeContext) error {
	r.nc = nc
	r.dec = busfmt.NewDecoder(nc.Symbols)
	return nil
}

// Seek implements engine.Seeker: pos holds, per partition with a
// checkpoint, what it covers. Reading starts after the lowest covered
// sequence, or at the start when a partition has none.
func (r *reader) Seek(ctx context.Context, pos []byte) error {
	var rp readerPos
	if err := json.Unmarshal(pos, &rp); err != nil {
		return fmt.Errorf("the reader's position: %w", err)
	}
	r.restored = rp.Parts
	for _, pr := range rp.Parts {
		for _, d := range pr.Dec {
			r.nc.Symbols.NoteSizeDecimals(r.nc.Symbols.Intern(d.Provider, d.Symbol), d.Dec)
		}
	}
	start := uint64(math.MaxUint64)
	for _, p := range r.partitions {
		pr, ok := rp.Parts[p]
		if !ok {
			start = 0
			break
		}
		if !pr.Ended {
			start = min(start, pr.Seq+1)
		}
	}
	if start != math.MaxUint64 && start > r.start {
		r.start = start
	}
	return nil
}

// Position implements engine.Seeker: per partition, the last stream
// sequence covered (everything of the partition up to it was emitted),
// the last record number and whether the end marker was read. It runs on
// the reader's goroutine (inside Emit or Quiet).
func (r *reader) Position(int64) ([]byte, error) {
	rp := readerPos{Parts: make(map[int]partRead, len(r.partitions))}
	decs := map[int][]symDec{}
	if r.partitionCount > 0 {
		for id, in := range r.nc.Symbols.Snapshot() {
			d, ok := r.nc.Symbols.SizeDecimals(md.SymID(id))
			if !ok {
				continue
			}
			p := md.Split(in.Hash, md.SplitInstances, r.partitionCount)
			decs[p] = append(decs[p], symDec{Provider: in.Provider, Symbol: in.Symbol, Dec: d})
		}
	}
	for _, p := range r.partitions {
		pr := r.restored[p]
		pr.Dec = decs[p]
		pr.Seq = max(pr.Seq, r.cursor)
		if last, ok := r.gaps.last[p]; ok {
			pr.Rec, pr.Data, pr.Has = last, r.gaps.seq[p], true
		}
		pr.Ended = pr.Ended || r.ended[p]
		if wm, ok := r.wms[p]; ok && wm != md.MinTime {
			pr.Wm = wm
		}
		rp.Parts[p] = pr
	}
	return json.Marshal(rp)
}

// Run reads until every partition has ended or ctx is cancelled.
func (r *reader) Run(ctx context.Context, out *engine.Output) error {
	var subjects []string
	r.ended = map[int]bool{}
	r.wms, r.advanced = map[int]int64{}, md.MinTime
	for _, p := range r.partitions {
		pr := r.restored[p]
		if pr.Ended {
			continue
		}
		subjects = append(subjects, r.n.subject(p))
		// A partition restored from a checkpoint starts at the
		// watermark it had then: the markers before its checkpoint are
		// not read again.
		r.wms[p] = md.MinTime
		if pr.Wm != 0 {
			r.wms[p] = pr.Wm
		}
	}
	// Partitions all restored with their watermarks start the reader at
	// the lowest of them, before it reads anything.
	if err := r.advance(out); err != nil {
		return stopErr(ctx, err)
	}
	if err := r.gaps.begin(ctx, r); err != nil {
		return err
	}
	for p, pr := range r.restored {
		if pr.Has {
			r.gaps.last[p], r.gaps.seq[p] = pr.Rec, pr.Data
		}
	}
	if len(r.wms) == 0 {
		return nil
	}
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if r.start > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.start
	}
	cons, err := r.js.OrderedConsumer(ctx, r.n.stream, cc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read stream %s: %w", r.n.stream, err)
	}
	// Bound the client's buffer by bytes: a data message holds up to
	// frameRecords records (209 KiB of trades), so 1024 messages could
	// be 200 MiB.
	it, err := cons.Messages(jetstream.PullMaxBytes(pullMaxBytes))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", r.n.stream, err)
	}
	defer r.dropConsumer(cons)
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for len(r.wms) > 0 {
		m, err := it.Next(jetstream.NextMaxWait(quietWait))
		if errors.Is(err, nats.ErrTimeout) {
			// Nothing to read: a requested checkpoint still completes.
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A closed iterator without a stop (the connection closed) is
			// an error too: ending here would drain, writing open bars.
			return fmt.Errorf("read stream %s: %w", r.n.stream, err)
		}
		p, err := r.n.partitionOf(m.Subject())
		if err != nil {
			return err
		}
		seq, err := streamSeq(m)
		if err != nil {
			return err
		}
		if pr, ok := r.restored[p]; ok && seq <= pr.Seq {
			continue // the partition's checkpoint covers it
		}
		drop, n, err := r.gaps.next(m, p, seq)
		if err != nil {
			return err
		}
		data := m.Data()
		if isMarker(data) {
			kind, wm, err := parseMarker(data)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Subject(), err)
			}
			r.progress.message(p, true, kind == markerEnd, wm)
			if err := r.mark(p, seq, mark{set: true, kind: kind, wm: wm}, out); err != nil {
				return stopErr(ctx, err)
			}
			continue
		}
		mk, err := markOf(m.Headers())
		if err != nil {
			return fmt.Errorf("%s: %w", m.Subject(), err)
		}
		r.progress.message(p, mk.set, mk.set && mk.kind == markerEnd, mk.wm)
		// A frame that carries a marker is covered (cursor) only once
		// its marker is taken too (mark): a checkpoint taken while its
		// records are on their way has the reader read the frame again
		// after a restore, its records dropped by number (gaps), its
		// marker taken then.
		if !mk.set {
			r.cursor = seq
		}
		if drop > 0 {
			// An ingest's re-read: records this partition has had.
			r.progress.duplicates(p, drop)
		}
		if drop < n || n == 0 {
			k, err := busfmt.Kind(data)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Subject(), err)
			}
			b := out.NewBatch(k)
			if err := r.dec.Decode(data, b); err != nil {
				b.Release()
				return fmt.Errorf("%s: %w", m.Subject(), err)
			}
			if n > 0 && b.Len() != n {
				b.Release()
				return fmt.Errorf("%s: stream sequence %d holds %d records, its message id says %d", m.Subject(), seq, b.Len(), n)
			}
			b.DropFront(drop)
			if err := out.Emit(b); err != nil {
				return stopErr(ctx, err)
			}
		}
		if mk.set {
			// The marker after the frame's records.
			if err := r.mark(p, seq, mk, out); err != nil {
				return stopErr(ctx, err)
			}
		}
	}
	return nil
}

// mark takes partition p's marker mk, of stream sequence seq: the end
// marker closes the partition, a watermark marker raises its watermark.
// The reader has then read to seq (cursor), and its watermark goes to the
// lowest of its open partitions' when that is newer. Either way a
// requested checkpoint may complete here.
func (r *reader) mark(p int, seq uint64, mk mark, out *engine.Output) error {
	if mk.kind == markerEnd {
		delete(r.wms, p)
		r.ended[p] = true
	} else if mk.wm > r.wms[p] {
		// A re-read's markers start over from the beginning: a
		// partition's watermark does not go back with them.
		r.wms[p] = mk.wm
	}
	r.cursor = seq
	if err := r.advance(out); err != nil {
		return err
	}
	return out.Quiet()
}

// advance moves the reader's watermark to the lowest of its open
// partitions' when that is newer.
func (r *reader) advance(out *engine.Output) error {
	low := md.MaxTime
	for _, wm := range r.wms {
		low = min(low, wm)
	}
	if len(r.wms) == 0 || low <= r.advanced {
		return nil
	}
	r.advanced = low
	return out.AdvanceWatermark(low)
}

// dropConsumerTimeout bounds the deletion of the reader's consumer when
// it stops (a deletion takes about a millisecond; a worker handing its
// partitions over must not wait long on one that fails).
const dropConsumerTimeout = 500 * time.Millisecond

// dropConsumer deletes the reader's ordered consumer once the reader has
// stopped: left to its inactivity threshold (5 min), the ephemeral
// consumer would keep its pending pull request on the server, and
// nats-server's shutdown waits 50 ms whenever it has one to cancel (the
// embedded server's at the end of every `mdp run`). Without a connection
// there is nothing to delete; a failed deletion only leaves the consumer
// to expire.
func (r *reader) dropConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || !r.js.Conn().IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropConsumerTimeout)
	defer cancel()
	if err := r.js.DeleteConsumer(ctx, r.n.stream, info.Name); err != nil && r.nc != nil && r.nc.Logger != nil {
		r.nc.Logger.Debug("scale-out reader: its consumer is left to expire", "consumer", info.Name, "err", err)
	}
}

// quietWait is how long the reader waits for a message before it lets a
// requested checkpoint complete without one.
const quietWait = 100 * time.Millisecond

// streamSeq is m's stream sequence.
func streamSeq(m jetstream.Msg) (uint64, error) {
	meta, err := m.Metadata()
	if err != nil {
		return 0, fmt.Errorf("message metadata: %w", err)
	}
	return meta.Sequence.Stream, nil
}

// stopErr turns an Emit error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
