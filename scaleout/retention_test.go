package scaleout

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

// TestRetentionOverrun checks that a worker never skips records the
// stream's limits removed: with retention max_age 1s and the worker
// starting after the messages expired it stops at once with a
// RetentionError naming the partition, the sequence it needed and the
// first the stream holds; and a data message missing in the middle of a
// partition stops it at that partition.
func TestRetentionOverrun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Expired before the worker starts.
	doc := synthJob(t, 20_000, ", retention: {max_age: 1s}")
	n := namesOf(doc.Name)
	pub := newPublisher(nil, n, doc.Scaleout.Partitions)
	_, js := testStream(t, doc, pub)
	stream, err := ensureStream(ctx, js, n, doc.Scaleout, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := stream.CachedInfo().Config; cfg.MaxAge != time.Second || cfg.Duplicates != time.Second || cfg.MaxBytes != -1 || cfg.Discard != jetstream.DiscardNew {
		t.Fatalf("stream config: max_age %s, duplicates %s, max_bytes %d, discard %v", cfg.MaxAge, cfg.Duplicates, cfg.MaxBytes, cfg.Discard)
	}
	runIngest(t, doc, pub)
	deadline := time.Now().Add(30 * time.Second)
	var info *jetstream.StreamInfo
	for {
		if info, err = stream.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if info.State.Msgs != 0 || info.State.FirstSeq < 2 {
		t.Fatalf("the stream still holds %d messages from %d", info.State.Msgs, info.State.FirstSeq)
	}
	r := newReader(js, n, []int{3, 5})
	r.start = 1
	err = workerRun(t, ctx, doc, r)
	var re *RetentionError
	if !errors.As(err, &re) || !errors.Is(err, ErrRetentionOverrun) {
		t.Fatalf("worker: %v, want a RetentionError", err)
	}
	if *re != (RetentionError{Stream: n.stream, Partition: 3, Needed: 1, First: info.State.FirstSeq}) {
		t.Fatalf("retention error %+v", *re)
	}
	want := "retention overrun: partition 3 of stream MDP_so-dedupe needs stream sequence 1, but the first available from there is "
	if got := re.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("message %q", got)
	}

	// A data message missing mid-partition (deleted, as a limit would
	// have): the worker stops there.
	doc = synthJob(t, 20_000, "")
	pub = newPublisher(nil, n, doc.Scaleout.Partitions)
	pub.setTarget(64)
	pub.interval = time.Hour
	_, js = testStream(t, doc, pub)
	if stream, err = ensureStream(ctx, js, n, doc.Scaleout, false); err != nil {
		t.Fatal(err)
	}
	runIngest(t, doc, pub)
	// The third data message of partition 2, and the one before it.
	var prev, gone uint64
	frames := 0
	for seq := uint64(1); gone == 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != n.subject(2) || m.Header.Get(jetstream.MsgIDHeader) == "" {
			continue
		}
		if frames++; frames == 3 {
			gone = seq
		} else {
			prev = seq
		}
	}
	if err := stream.DeleteMsg(ctx, gone); err != nil {
		t.Fatal(err)
	}
	next, err := stream.GetMsg(ctx, gone+1, jetstream.WithGetMsgSubject(n.subject(2)))
	if err != nil {
		t.Fatal(err)
	}
	for next.Header.Get(jetstream.MsgIDHeader) == "" { // a marker: not a gap by itself
		if next, err = stream.GetMsg(ctx, next.Sequence+1, jetstream.WithGetMsgSubject(n.subject(2))); err != nil {
			t.Fatal(err)
		}
	}
	err = workerRun(t, ctx, doc, newReader(js, n, []int{0, 1, 2, 3}))
	if !errors.As(err, &re) {
		t.Fatalf("worker: %v, want a RetentionError", err)
	}
	if *re != (RetentionError{Stream: n.stream, Partition: 2, Needed: prev + 1, First: next.Sequence}) {
		t.Fatalf("retention error %+v, want partition 2, needed %d, first %d", *re, prev+1, next.Sequence)
	}
	// Without the gap the same worker reads to the end.
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	pub = newPublisher(js, n, doc.Scaleout.Partitions)
	runIngest(t, doc, pub)
	if err := workerRun(t, ctx, doc, newReader(js, n, []int{0, 1, 2, 3, 4, 5, 6, 7})); err != nil {
		t.Fatal(err)
	}
}

// workerRun runs the job's worker graph over r to its end.
func workerRun(t *testing.T, ctx context.Context, doc *config.Document, r *reader) error {
	t.Helper()
	j, err := workerJob(doc, r, engine.NewFeedback(doc.Feedback), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return j.Run(ctx)
}
