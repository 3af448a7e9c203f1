package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrRetentionOverrun is wrapped by every RetentionError.
var ErrRetentionOverrun = errors.New("retention overrun")

// RetentionError says a worker needed a message of a partition that the
// stream's limits (scaleout.retention) have removed: going on would skip
// records, so the worker stops instead.
type RetentionError struct {
	Stream    string
	Partition int
	// Needed is the stream sequence the worker needed next: the one after
	// the last it read from the partition, or where it started.
	Needed uint64
	// First is the first sequence from Needed on that the stream still
	// holds (for the partition, when the gap showed mid-stream).
	First uint64
}

// Error names the partition and both sequences.
func (e *RetentionError) Error() string {
	return fmt.Sprintf("retention overrun: partition %d of stream %s needs stream sequence %d, but the first available from there is %d: "+
		"the stream's retention limits removed messages no worker had read; raise scaleout.retention, or start the job afresh", e.Partition, e.Stream, e.Needed, e.First)
}

// Unwrap makes errors.Is(err, ErrRetentionOverrun) hold.
func (e *RetentionError) Unwrap() error { return ErrRetentionOverrun }

// frameRange parses a data message's Nats-Msg-Id, "e:k:a:b": the numbers
// of its first and last record among its partition's records.
func frameRange(m jetstream.Msg) (a, b uint64, ok bool) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	_, id, _ = strings.Cut(id, ":")
	_, rest, ok1 := strings.Cut(id, ":")
	as, bs, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(as, 10, 64)
	b, err2 := strconv.ParseUint(bs, 10, 64)
	return a, b, err1 == nil && err2 == nil && a <= b
}

// firstSeq asks the stream for its first available sequence.
func firstSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return s.CachedInfo().State.FirstSeq, nil
}

// gapCheck follows, per partition a reader reads, the stream sequence of
// the last data message and the number of its last record. A data message
// whose first record is further on than the next is refused: records the
// reader needed that the stream no longer holds. A message starting at or
// before the last record read is an ingest's re-read (mdp ingest
// --reread), cut differently or not: next tells how many of its first
// records were read already, so the reader drops them. Markers carry no
// records; losing one loses nothing.
type gapCheck struct {
	n    names
	seq  map[int]uint64 // partition: stream sequence of the last data message read
	last map[int]uint64 // partition: number of the last record read
}

// begin refuses to start when the stream's first sequence is past the
// reader's start: the messages from start on are gone for every partition
// the reader owns (it names the first).
func (g *gapCheck) begin(ctx context.Context, r *reader) error {
	g.n, g.seq, g.last = r.n, map[int]uint64{}, map[int]uint64{}
	if r.start == 0 || len(r.partitions) == 0 {
		return nil
	}
	first, err := firstSeq(ctx, r.js, r.n.stream)
	if err != nil {
		return err
	}
	if first > r.start {
		return &RetentionError{Stream: g.n.stream, Partition: r.partitions[0], Needed: r.start, First: first}
	}
	return nil
}

// next checks data message m of partition p, at stream sequence seq,
// against the partition's last one. It returns how many of m's first
// records the reader has read already (all of them: m is a duplicate) and
// m's record count; both are 0 for a marker or a frame without an
// ingest's message id.
func (g *gapCheck) next(m jetstream.Msg, p int, seq uint64) (drop, n int, err error) {
	a, b, ok := frameRange(m)
	if !ok {
		return 0, 0, nil // a marker, or a frame from outside the ingest
	}
	n = int(b - a + 1)
	last, seen := g.last[p]
	switch {
	case !seen:
	case a > last+1:
		return 0, 0, &RetentionError{Stream: g.n.stream, Partition: p, Needed: g.seq[p] + 1, First: seq}
	case b <= last:
		return n, n, nil // read already, all of it
	default:
		drop = int(last + 1 - a)
	}
	g.last[p], g.seq[p] = b, seq
	return drop, n, nil
}
