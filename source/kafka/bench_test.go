package kafkasrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mdpio/mdp/internal/bustest"
)

// BenchmarkKafka measures, in one run against an in-process kfake
// cluster (4-partition topics), b.N messages of 64 trades each
// (bustest.PerMsg, one symbol per message, keyed by it):
//
//   - sink/raw: a franz-go client alone producing pre-encoded frames
//     with Produce and sink.kafka's settings (acks=all, idempotence,
//     sticky key partitioner, 5ms linger, 4096 buffered records, no
//     compression: franz-go's default is snappy), then
//     Flush: every ack awaited (the anchor);
//
//   - sink/mdp: a job, slice source -> sink.kafka (encoding included);
//
//   - source/raw: a franz-go client polling them in a plain PollFetches
//     loop, decoding nothing (the anchor);
//
//   - source/raw-decode: the same loop decoding every frame with busfmt;
//
//   - source/mdp: provider.kafka -> sink.null, decoding every frame;
//
//   - e2e/bars: provider.kafka -> operator.bars (1s) -> sink.null.
//
// The parent logs each one's ratio to its anchor in the same run.
//
//	go test ./source/kafka -run '^$' -bench Kafka -benchtime 20000x -count 3
func BenchmarkKafka(b *testing.B) {
	var r bustest.Rates
	defer r.Log(b, map[string]string{"sink/": "sink/raw", "source/": "source/raw"})
	frames := bustest.NewBenchFrames()
	producer := func(b *testing.B, brokers []any, topic string) *kgo.Client {
		return client(b, brokers, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(4096),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	produce := func(b *testing.B, cl *kgo.Client, n int) {
		for i := 0; i < n; i++ {
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(frames.Key(i)), Value: frames.Frame(i)}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	// fill returns a topic holding n messages, for the readers.
	fill := func(b *testing.B, n int) (string, []any) {
		topic := unique("mdpbench.")
		_, brokers := cluster(b, 1, topic)
		produce(b, producer(b, brokers, topic), n)
		return topic, brokers
	}
	b.Run("sink/raw", func(b *testing.B) {
		topic := unique("mdpbench.")
		_, brokers := cluster(b, 1, topic)
		cl := producer(b, brokers, topic)
		b.ResetTimer()
		start := bustest.StartClock()
		produce(b, cl, b.N)
		r.Report(b, b.N, start)
	})
	b.Run("sink/mdp", func(b *testing.B) {
		topic := unique("mdpbench.")
		_, brokers := cluster(b, 1, topic)
		bustest.BenchSink(b, &r, "sink.kafka", map[string]any{"brokers": brokers, "topic": topic}, b.N)
	})
	raw := func(b *testing.B, decode bool) {
		topic, brokers := fill(b, b.N)
		cl := client(b, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		d := bustest.NewRawDecoder()
		b.ResetTimer()
		start := bustest.StartClock()
		n := 0
		for n < b.N {
			f := cl.PollFetches(context.Background())
			f.EachRecord(func(rec *kgo.Record) {
				n++
				if decode {
					d.Decode(b, rec.Value)
				}
			})
		}
		r.Report(b, n, start)
	}
	read := func(b *testing.B, bars bool) {
		topic, brokers := fill(b, b.N)
		src := node(b, "provider.kafka", "src", map[string]any{"brokers": brokers, "topics": []any{topic}})
		bustest.BenchSource(b, &r, src, b.N, bars, nil)
	}
	b.Run("source/raw", func(b *testing.B) { raw(b, false) })
	b.Run("source/raw-decode", func(b *testing.B) { raw(b, true) })
	b.Run("source/mdp", func(b *testing.B) { read(b, false) })
	b.Run("e2e/bars", func(b *testing.B) { read(b, true) })
}
