package natssrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/bustest"
)

// BenchmarkNATS measures, in one run against the machine's nats-server
// (JetStream, memory storage), b.N messages of 64 trades each
// (bustest.PerMsg, one symbol per message):
//
//   - sink/raw: the client alone publishing pre-encoded frames with
//     PublishMsgAsync (256 in flight, as sink.nats's max_pending, and
//     Nats-Msg-Id), waiting for every ack (the anchor);
//
//   - sink/mdp: a job, slice source -> sink.nats (encoding included);
//
//   - source/raw: an ordered consumer reading the messages in a plain
//     Next loop, decoding nothing (the anchor);
//
//   - source/raw-decode: the same loop decoding every frame with busfmt;
//
//   - source/mdp: provider.nats -> sink.null, decoding every frame;
//
//   - e2e/bars: provider.nats -> operator.bars (1s) -> sink.null.
//
// The parent logs each one's ratio to its anchor in the same run.
//
//	go test ./source/nats -run '^$' -bench NATS -benchtime 20000x -count 3
func BenchmarkNATS(b *testing.B) {
	url := natsURL(b)
	c, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	// A cleanup, not a defer: the streams' deletions (cleanups registered
	// later, so run earlier) need the connection still open. With a defer
	// every run left its memory streams on the server.
	b.Cleanup(c.Close)
	js, _ := jetstream.New(c, jetstream.WithPublishAsyncMaxPending(256))
	ctx := context.Background()
	mk := func() (string, string) {
		name, subj := bustest.Unique("MDPBENCH_"), bustest.Unique("mdpbench.")
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.MemoryStorage}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
		return name, subj
	}
	var r bustest.Rates
	defer r.Log(b, map[string]string{"sink/": "sink/raw", "source/": "source/raw"})
	frames := bustest.NewBenchFrames()
	var filled, filledSubj string // a stream holding n messages, for the readers
	var n int
	b.Run("sink/raw", func(b *testing.B) {
		_, subj := mk()
		b.ResetTimer()
		start := bustest.StartClock()
		for i := 0; i < b.N; i++ {
			m := &nats.Msg{Subject: subj, Data: frames.Frame(i), Header: nats.Header{jetstream.MsgIDHeader: []string{bustest.Unique("")}}}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		r.Report(b, b.N, start)
	})
	b.Run("sink/mdp", func(b *testing.B) {
		name, subj := mk()
		bustest.BenchSink(b, &r, "sink.nats", map[string]any{"url": url, "subject": subj}, b.N)
		filled, filledSubj, n = name, subj, b.N
	})
	if filled == "" {
		return
	}
	raw := func(b *testing.B, decode bool) {
		cons, err := js.OrderedConsumer(ctx, filled, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filledSubj}})
		if err != nil {
			b.Fatal(err)
		}
		it, _ := cons.Messages(jetstream.PullMaxMessages(1024))
		defer it.Stop()
		d := bustest.NewRawDecoder()
		// The clock starts at the first message, as the component's
		// (below): both measure the steady state, not the consumer's
		// creation and first pull.
		if _, err := it.Next(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := bustest.StartClock()
		for i := 1; i < min(b.N, n); i++ {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			if decode {
				d.Decode(b, m.Data())
			}
		}
		r.Report(b, min(b.N, n)-1, start)
	}
	read := func(b *testing.B, bars bool) {
		src := bustest.Node(b, "provider.nats", "bus", map[string]any{"url": url, "subject": filledSubj, "stream": filled})
		// The clock starts once the first messages are handed on (the
		// client connected, the consumer made), as the raw loops' after
		// their first message.
		bustest.BenchSource(b, &r, src, min(b.N, n), bars, func(j *engine.Job) {
			for bustest.NodeStatus(j, "bus").EventsOut == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	b.Run("source/raw", func(b *testing.B) { raw(b, false) })
	b.Run("source/raw-decode", func(b *testing.B) { raw(b, true) })
	b.Run("source/mdp", func(b *testing.B) { read(b, false) })
	b.Run("e2e/bars", func(b *testing.B) { read(b, true) })
}
