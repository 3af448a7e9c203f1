package rabbitmqsrc_test

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/md"
)

// TestCheckpointsOnIdleQueue: checkpoints keep completing while the queue
// is idle, and none acknowledges a delivery twice (RabbitMQ closes the
// channel on an unknown delivery tag, and the broker would deliver the
// unacknowledged messages again): every record arrives once, with no
// reconnect and no failed acknowledgement.
func TestCheckpointsOnIdleQueue(t *testing.T) {
	url, ch := amqpURL(t)
	q := queue(t, ch, "")
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(2000, syms)
	bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"url": url, "routing_key": q})
	store := &bustest.Store{}
	r := bustest.Start(t, []*engine.Node{bustest.Node(t, "provider.rabbitmq", "sub", map[string]any{"url": url, "queue": q, "prefetch": 64})},
		md.KindTrade, engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: 10 * time.Millisecond, Store: store}})
	r.WaitLen(t, len(want), 30*time.Second)
	// The queue is empty now: checkpoints go on with nothing new read.
	store.WaitSaved(t, store.Len()+20, 30*time.Second)
	r.Stop(t)
	bustest.CheckTrades(t, r.Sink, want, syms)
	ns := bustest.NodeStatus(r.Job, "sub")
	if ns.Errors["ack_failed"] != 0 || ns.Errors["disconnected"] != 0 || ns.Counters["reconnects"] != 0 {
		t.Fatalf("errors %v counters %v", ns.Errors, ns.Counters)
	}
	if m, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil || m.Messages != 0 {
		t.Fatalf("queue after the run: %+v, %v (want every message acknowledged)", m, err)
	}
}

// TestCheckpointHeldNotRepeated: a job that saved a checkpoint and ended
// before acknowledging what it covered (a crash between the two) gets those
// messages again from the broker after the restore; the restored state
// holds their records, so they are not handed on again, while the messages
// read after the checkpoint are.
func TestCheckpointHeldNotRepeated(t *testing.T) {
	url, ch := amqpURL(t)
	q := queue(t, ch, "")
	second := bustest.CheckpointHeldNotRepeated(t, bustest.Held{
		Source: "provider.rabbitmq", SourceParams: map[string]any{"url": url, "queue": q},
		Sink: "sink.rabbitmq", SinkParams: map[string]any{"url": url, "routing_key": q},
	})
	if n := bustest.NodeStatus(second.Job, "sub").Counters["redelivered_duplicates"]; n != 100 {
		t.Fatalf("%d redelivered messages recognised as held by the checkpoint, want 100", n)
	}
}
