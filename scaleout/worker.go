package scaleout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
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

// Run reads until every partition has ended or ctx is cancelled.
func (r *reader) Run(ctx context.Context, out *engine.Output) error {
	subjects := make([]string, len(r.partitions))
	open := map[int]bool{}
	for i, p := range r.partitions {
		subjects[i] = r.n.subject(p)
		open[p] = true
	}
	if err := r.gaps.begin(ctx, r); err != nil {
		return err
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
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read stream %s: %w", r.n.stream, err)
		}
		p, err := r.n.partitionOf(m.Subject())
		if err != nil {
			return err
		}
		if err := r.gaps.next(m, p); err != nil {
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
				continue
			}
			if err := out.AdvanceWatermark(wm); err != nil {
				return stopErr(ctx, err)
			}
			continue
		}
		r.progress.message(p, false, false, 0)
		k, err := busfmt.Kind(data)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Subject(), err)
		}
		b := out.NewBatch(k)
		if err := r.dec.Decode(data, b); err != nil {
			b.Release()
			return fmt.Errorf("%s: %w", m.Subject(), err)
		}
		if err := out.Emit(b); err != nil {
			return stopErr(ctx, err)
		}
	}
	return nil
}

// stopErr turns an Emit error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
