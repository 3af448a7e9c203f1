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
// stream order, through one ordered consumer, emits each data frame as a
// batch and each watermark marker as the source's watermark. It ends when
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
		rp.Parts[p] = pr
	}
	return json.Marshal(rp)
}

// Run reads until every partition has ended or ctx is cancelled.
func (r *reader) Run(ctx context.Context, out *engine.Output) error {
	var subjects []string
	open := map[int]bool{}
	r.ended = map[int]bool{}
	for _, p := range r.partitions {
		if r.restored[p].Ended {
			continue
		}
		subjects = append(subjects, r.n.subject(p))
		open[p] = true
	}
	if err := r.gaps.begin(ctx, r); err != nil {
		return err
	}
	for p, pr := range r.restored {
		if pr.Has {
			r.gaps.last[p], r.gaps.seq[p] = pr.Rec, pr.Data
		}
	}
	if len(open) == 0 {
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
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for len(open) > 0 {
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
			if kind == markerEnd {
				delete(open, p)
				r.ended[p] = true
				r.cursor = seq
				if err := out.Quiet(); err != nil {
					return stopErr(ctx, err)
				}
				continue
			}
			if err := out.AdvanceWatermark(wm); err != nil {
				return stopErr(ctx, err)
			}
			r.cursor = seq
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
			continue
		}
		r.progress.message(p, false, false, 0)
		r.cursor = seq
		if drop > 0 {
			// An ingest's re-read: records this partition has had.
			r.progress.duplicates(p, drop)
			if drop == n {
				continue
			}
		}
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
	return nil
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
