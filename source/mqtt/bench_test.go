package mqttsrc_test

import (
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/bustest"
)

// benchClient connects a paho client as the components do (ordered,
// QoS 1 acknowledgements by the client).
func benchClient(b *testing.B, url string) mqtt.Client {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(bustest.Unique("mdpbench-")).SetCleanSession(true).SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", url, tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	return c
}

// rawPublish publishes n pre-encoded frames at QoS 1 to prefix/trade/<symbol>
// as sink.mqtt does by default (64 awaiting their PUBACK at most) and
// waits for every acknowledgement. behind, when not nil, reports how many
// published messages the subscriber has not yet received; the publisher
// waits while that is 512 or more, since the broker drops QoS 1
// messages queued beyond 1000 for a client (mosquitto's
// max_queued_messages).
func rawPublish(b *testing.B, c mqtt.Client, prefix string, frames *bustest.BenchFrames, n int, received func() int) {
	w := bustest.NewWindow(64, func(tok mqtt.Token) {
		if tok.Wait(); tok.Error() != nil {
			b.Error(tok.Error())
		}
	})
	for i := 0; i < n; i++ {
		if received != nil && i%64 == 0 {
			for i-received() >= 512 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		w.Add(c.Publish(prefix+"/trade/"+frames.Key(i), 1, false, frames.Frame(i)))
	}
	w.Drain()
}

// BenchmarkMQTT measures, in one run against the machine's Mosquitto,
// b.N messages of 64 trades each (bustest.PerMsg, one symbol per
// message, topic <prefix>/trade/<symbol>), QoS 1:
//
//   - sink/raw: paho alone publishing pre-encoded frames, 64 awaiting
//     their PUBACK at most (sink.mqtt's max_pending), every one awaited
//     (the anchor);
//
//   - sink/mdp: a job, slice source -> sink.mqtt (encoding included);
//
//   - source/raw: a paho subscriber counting the messages a raw publisher
//     sends meanwhile (MQTT keeps no stream to read back; the publisher
//     stays at most 512 messages ahead of the reader, so the broker drops
//     none), decoding nothing (the anchor);
//
//   - source/raw-decode: the same subscriber decoding every frame with
//     busfmt;
//
//   - source/mdp: provider.mqtt -> sink.null under the same publisher,
//     decoding every frame.
//
// The source figures are bounded by the publisher's rate, which is the
// same for each. The parent logs each one's ratio to its anchor in the
// same run.
//
//	go test ./source/mqtt -run '^$' -bench MQTT -benchtime 5000x -count 3
func BenchmarkMQTT(b *testing.B) {
	url, _ := brokerURL(b)
	var r bustest.Rates
	defer r.Log(b, map[string]string{"sink/": "sink/raw", "source/": "source/raw"})
	frames := bustest.NewBenchFrames()
	b.Run("sink/raw", func(b *testing.B) {
		c := benchClient(b, url)
		prefix := bustest.Unique("mdpbench/")
		b.ResetTimer()
		start := bustest.StartClock()
		rawPublish(b, c, prefix, frames, b.N, nil)
		r.Report(b, b.N, start)
	})
	b.Run("sink/mdp", func(b *testing.B) {
		bustest.BenchSink(b, &r, "sink.mqtt", map[string]any{"url": url, "topic": bustest.Unique("mdpbench/") + "/{kind}/{symbol}",
			"client_id": bustest.Unique("mdpbench-pub-")}, b.N)
	})
	raw := func(b *testing.B, decode bool) {
		prefix := bustest.Unique("mdpbench/")
		sub := benchClient(b, url)
		d := bustest.NewRawDecoder()
		var got atomic.Int64
		done := make(chan struct{})
		tok := sub.Subscribe(prefix+"/#", 1, func(_ mqtt.Client, m mqtt.Message) {
			if decode {
				d.Decode(b, m.Payload())
			}
			if got.Add(1) == int64(b.N) {
				close(done)
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		pub := benchClient(b, url)
		b.ResetTimer()
		start := bustest.StartClock()
		published := make(chan struct{})
		go func() {
			defer close(published)
			rawPublish(b, pub, prefix, frames, b.N, func() int { return int(got.Load()) })
		}()
		<-done
		r.Report(b, b.N, start)
		<-published // its last acknowledgements, before its client goes
	}
	b.Run("source/raw", func(b *testing.B) { raw(b, false) })
	b.Run("source/raw-decode", func(b *testing.B) { raw(b, true) })
	b.Run("source/mdp", func(b *testing.B) {
		prefix := bustest.Unique("mdpbench/")
		pub := benchClient(b, url)
		src := bustest.Node(b, "provider.mqtt", "bus", source(url, prefix+"/#"))
		published := make(chan struct{})
		bustest.BenchSource(b, &r, src, b.N, false, func(j *engine.Job) {
			for !j.Ready() {
				time.Sleep(time.Millisecond)
			}
			go func() {
				defer close(published)
				rawPublish(b, pub, prefix, frames, b.N, func() int { return int(bustest.NodeStatus(j, "bus").EventsOut / bustest.PerMsg) })
			}()
		})
		<-published
	})
}
