package scaleout

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
)

// testStream starts an embedded server for doc (its store in a temp dir)
// and returns a JetStream client whose failed publishes fail pub.
func testStream(t *testing.T, doc *config.Document, pub *publisher) (*conn, jetstream.JetStream) {
	t.Helper()
	c, err := connect(doc.Scaleout, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	js, err := jetstream.New(c.nc, jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			pub.failed(fmt.Errorf("publish to %s: %w", m.Subject, err))
		}))
	if err != nil {
		t.Fatal(err)
	}
	pub.js = js
	return c, js
}

// synthJob is a synthetic-trades job with a scale-out section into dir.
func synthJob(t *testing.T, n int, extra string) *config.Document {
	t.Helper()
	src := fmt.Sprintf(`mode: dag
name: so-dedupe
dag:
  nodes:
    - id: src
      type: provider.synthetic
      params: {model: bench, symbol_count: 20, n: %d, seed: 5, max_out_of_orderness: 1s}
    - id: sink
      type: sink.null
  edges:
    - [src, sink]
scaleout: {nats: embedded, partitions: 8, store: %q, sync: interval%s}
`, n, filepath.Join(t.TempDir(), "nats"), extra)
	doc, err := config.LoadBytes("job.yaml", []byte(src), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// runIngest runs the job's source into pub until the source ends.
func runIngest(t *testing.T, doc *config.Document, pub *publisher) {
	t.Helper()
	j, err := ingestJob(doc, pub, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPublishTwiceStoresOnce publishes the same input twice into one
// stream, as an ingest that crashed and read its input again would: every
// data message of the second run carries the id of one of the first, so
// the stream stores only the second run's markers.
func TestPublishTwiceStoresOnce(t *testing.T) {
	doc := synthJob(t, 50_000, "")
	n := namesOf(doc.Name)
	var stored [2]uint64
	var frames [2]int64
	first := newPublisher(nil, n, doc.Scaleout.Partitions)
	_, js := testStream(t, doc, first)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := ensureStream(ctx, js, n, doc.Scaleout, false)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		pub := newPublisher(js, n, doc.Scaleout.Partitions)
		if run == 0 {
			pub = first
		}
		// Frames are cut by size and at the end only, so both runs cut
		// them alike (a marker every 200ms of wall clock would not).
		pub.interval = time.Hour
		runIngest(t, doc, pub)
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored[run], frames[run] = info.State.Msgs, pub.frames
		if pub.frames < 50_000/frameRecords {
			t.Fatalf("run %d published %d data messages", run, pub.frames)
		}
		if run == 0 && pub.dups != 0 {
			t.Fatalf("run 0: %d duplicates", pub.dups)
		}
		if run == 1 && pub.dups != pub.frames {
			t.Fatalf("run 1: %d of %d data messages were duplicates, want all", pub.dups, pub.frames)
		}
		if run == 1 && stored[1]-stored[0] != uint64(pub.markers) {
			t.Fatalf("the second run added %d messages to the stream, want its %d markers only", stored[1]-stored[0], pub.markers)
		}
	}
	if frames[0] != frames[1] {
		t.Fatalf("the runs published %d and %d data messages", frames[0], frames[1])
	}
	t.Logf("stored %d then %d messages; %d data messages a run", stored[0], stored[1], frames[0])
}
