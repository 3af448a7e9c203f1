package rabbitmqsrc_test

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/internal/bustest"
)

// channel is a channel on a connection of its own, closed at b's end.
func channel(b *testing.B, url string) *amqp.Channel {
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	return ch
}

// rawPublish publishes n pre-encoded frames to exchange ex as sink.rabbitmq
// does by default (confirm mode, persistent, routing key md.trade.<symbol>,
// 256 awaiting their confirmation at most) and waits for every
// confirmation.
func rawPublish(b *testing.B, url, ex string, frames *bustest.BenchFrames, n int) {
	ch := channel(b, url)
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w := bustest.NewWindow(256, func(dc *amqp.DeferredConfirmation) {
		if !dc.Wait() {
			b.Error("nack")
		}
	})
	for i := 0; i < n; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, ex, "md.trade."+frames.Key(i), false, false,
			amqp.Publishing{ContentType: "application/x-mdp-frame", DeliveryMode: amqp.Persistent, Body: frames.Frame(i)})
		if err != nil {
			b.Fatal(err)
		}
		w.Add(dc)
	}
	w.Drain()
}

// BenchmarkRabbitMQ measures, in one run against the machine's RabbitMQ,
// b.N messages of 64 trades each (bustest.PerMsg, one symbol per message)
// through a topic exchange into a durable queue:
//
//   - sink/raw: amqp091 alone publishing pre-encoded frames as
//     sink.rabbitmq does (confirm mode, persistent, 256 unconfirmed at
//     most), every confirmation awaited (the anchor);
//
//   - sink/mdp: a job, slice source -> sink.rabbitmq (encoding included);
//
//   - source/raw: amqp091 alone consuming the queue (prefetch 1024, as
//     provider.rabbitmq) and acknowledging every 64 messages at once,
//     decoding nothing (the anchor);
//
//   - source/raw-decode: the same loop decoding every frame with busfmt;
//
//   - source/mdp: provider.rabbitmq -> sink.null, decoding every frame.
//
// The parent logs each one's ratio to its anchor in the same run.
//
//	go test ./source/rabbitmq -run '^$' -bench RabbitMQ -benchtime 5000x -count 3
func BenchmarkRabbitMQ(b *testing.B) {
	url, ch := amqpURL(b)
	var r bustest.Rates
	defer r.Log(b, map[string]string{"sink/": "sink/raw", "source/": "source/raw"})
	frames := bustest.NewBenchFrames()
	b.Run("sink/raw", func(b *testing.B) {
		ex := exchange(b, ch)
		queue(b, ch, ex, "#")
		b.ResetTimer()
		start := bustest.StartClock()
		rawPublish(b, url, ex, frames, b.N)
		r.Report(b, b.N, start)
	})
	b.Run("sink/mdp", func(b *testing.B) {
		ex := exchange(b, ch)
		queue(b, ch, ex, "#")
		bustest.BenchSink(b, &r, "sink.rabbitmq", map[string]any{"url": url, "exchange": ex}, b.N)
	})
	// fill returns a queue holding n messages.
	fill := func(b *testing.B, n int) string {
		ex := exchange(b, ch)
		q := queue(b, ch, ex, "#")
		rawPublish(b, url, ex, frames, n)
		return q
	}
	raw := func(b *testing.B, decode bool) {
		q := fill(b, b.N)
		c := channel(b, url)
		if err := c.Qos(1024, 0, false); err != nil {
			b.Fatal(err)
		}
		d := bustest.NewRawDecoder()
		b.ResetTimer()
		start := bustest.StartClock()
		deliveries, err := c.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 1; i <= b.N; i++ {
			m := <-deliveries
			if decode {
				d.Decode(b, m.Body)
			}
			if i%64 == 0 || i == b.N {
				if err := m.Ack(true); err != nil {
					b.Fatal(err)
				}
			}
		}
		r.Report(b, b.N, start)
	}
	b.Run("source/raw", func(b *testing.B) { raw(b, false) })
	b.Run("source/raw-decode", func(b *testing.B) { raw(b, true) })
	b.Run("source/mdp", func(b *testing.B) {
		q := fill(b, b.N)
		src := bustest.Node(b, "provider.rabbitmq", "bus", map[string]any{"url": url, "queue": q})
		bustest.BenchSource(b, &r, src, b.N, false, nil)
	})
}
