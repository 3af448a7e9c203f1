package mqttsrc_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/crashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// session opens a persistent session of clientID subscribed to topic at
// QoS 1, so that the broker queues what is published before the source
// first connects, and removes the session when the test ends.
func session(t *testing.T, url, clientID, topic string) {
	t.Helper()
	connect := func(clean bool) mqtt.Client {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(clean).SetConnectTimeout(5 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", clientID, tok.Error())
		}
		return c
	}
	c := connect(false)
	if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	c.Disconnect(100)
	t.Cleanup(func() { connect(true).Disconnect(100) })
}

// TestCrashResume: the job killed with SIGKILL at seeded moments and
// resumed ends with the bars of a clean run. Messages are acknowledged
// only when a checkpoint covering them completes, so the persistent
// session delivers again what a kill lost; the ones a saved checkpoint
// covers come again too (DUP), and the source, which holds their sums
// from the checkpoint, does not hand them on twice. Mosquitto keeps 20
// messages in flight and queues 1000 per session by default, so the
// stream is 600 messages of 100 trades.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	url, _ := brokerURL(t)
	topic := bustest.Unique("mdptest/crash/")
	ids := map[string]string{"clean": bustest.Unique("mdptest-clean-"), "crash": bustest.Unique("mdptest-crash-")}
	for _, id := range ids {
		session(t, url, id, topic)
	}
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(60_000, syms)
	bustest.Publish(t, "sink.mqtt", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, sink(url, topic))
	bustest.CrashResume(t, func(run string) string {
		return fmt.Sprintf(`{id: bus, type: provider.mqtt, params: {url: %q, topics: [%q], client_id: %q}}`, url, topic, ids[run])
	}, len(want), 1883)
}

// TestCheckpointHeldNotRepeated: a job that saved a checkpoint and ended
// before acknowledging what it covered (a crash between the two) gets those
// messages again (DUP) from the persistent session after the restore; the
// restored state holds their records, so they are not handed on again,
// while the messages read after the checkpoint are.
func TestCheckpointHeldNotRepeated(t *testing.T) {
	url, _ := brokerURL(t)
	topic := bustest.Unique("mdptest/held/")
	id := bustest.Unique("mdptest-held-")
	session(t, url, id, topic)
	// Batches of 100 trades, one message each: the 8 messages stay within
	// the broker's in-flight window, though the first job acknowledges none.
	second := bustest.CheckpointHeldNotRepeated(t, bustest.Held{
		Source: "provider.mqtt", SourceParams: map[string]any{"url": url, "topics": []string{topic}, "client_id": id},
		Sink: "sink.mqtt", SinkParams: sink(url, topic), BatchSize: 100,
	})
	if n := bustest.NodeStatus(second.Job, "sub").Counters["redelivered_duplicates"]; n != 4 {
		t.Fatalf("%d redelivered messages recognised as held by the checkpoint, want 4", n)
	}
}
