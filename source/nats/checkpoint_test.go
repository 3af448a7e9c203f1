package natssrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/md"
)

// TestCheckpointsWhileIdle: checkpoints keep completing while nothing
// arrives, for each way of reading (a source with nothing to emit lets
// the barrier through), and every record arrives once.
func TestCheckpointsWhileIdle(t *testing.T) {
	url := natsURL(t)
	syms := []string{"A", "B", "C"}
	want := bustest.Trades(1000, syms)
	for _, mode := range []string{"ordered", "durable", "core"} {
		t.Run(mode, func(t *testing.T) {
			name, subj := stream(t, url)
			params := map[string]any{"url": url, "subject": subj, "stream": name}
			n := len(want)
			switch mode {
			case "durable":
				params["durable"] = bustest.Unique("dur")
			case "core":
				delete(params, "stream")
				n = 0
			}
			if n > 0 {
				publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "subject": subj})
			}
			store := &bustest.Store{}
			r := bustest.Start(t, []*engine.Node{bustest.Node(t, "provider.nats", "sub", params)}, md.KindTrade,
				engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: 10 * time.Millisecond, Store: store}})
			r.WaitLen(t, n, 30*time.Second)
			store.WaitSaved(t, store.Len()+20, 30*time.Second)
			r.Stop(t)
			bustest.CheckTrades(t, r.Sink, want[:n], syms)
		})
	}
}

// TestCheckpointResume: a job saves a checkpoint, reads on and ends
// before acknowledging anything (a crash between saving and
// acknowledging); the job restored from the checkpoint hands on exactly
// what came after it. An ordered consumer starts after the checkpoint's
// sequence; a durable one is delivered everything again and skips (and
// acknowledges) what the checkpoint covers.
func TestCheckpointResume(t *testing.T) {
	url := natsURL(t)
	syms := []string{"A", "B", "C"}
	want := bustest.Trades(2000, syms)
	for _, durable := range []bool{false, true} {
		name := map[bool]string{false: "ordered", true: "durable"}[durable]
		t.Run(name, func(t *testing.T) {
			st, subj := stream(t, url)
			params := map[string]any{"url": url, "subject": subj, "stream": st}
			dur := bustest.Unique("dur")
			if durable {
				// The messages the first job read come again once this has
				// passed.
				params["durable"], params["ack_wait"] = dur, "1s"
			}
			pub := func(tr []md.Trade) {
				publish(t, &enginetest.Source{Symbols: syms, Trades: tr, BatchSize: 100}, map[string]any{"url": url, "subject": subj})
			}
			pub(want[:1000])
			store := &bustest.Store{}
			store.Hold.Store(true)
			first := bustest.Start(t, []*engine.Node{bustest.Node(t, "provider.nats", "sub", params)}, md.KindTrade,
				engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: time.Hour, Store: store}})
			first.WaitLen(t, 1000, 30*time.Second)
			go func() { _, _ = first.Job.Checkpoint(context.Background()) }()
			store.WaitSaved(t, 1, 30*time.Second)
			pub(want[1000:])
			first.WaitLen(t, 2000, 30*time.Second)
			first.Crash()
			bustest.CheckTrades(t, first.Sink, want, syms)

			after := &bustest.Store{}
			second := bustest.Start(t, []*engine.Node{bustest.Node(t, "provider.nats", "sub", params)}, md.KindTrade,
				engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: 20 * time.Millisecond, Store: after, Restore: store.Last()}})
			second.WaitLen(t, 1000, 30*time.Second)
			after.WaitSaved(t, after.Len()+3, 30*time.Second)
			second.Stop(t)
			bustest.CheckTrades(t, second.Sink, want[1000:], syms)
			skipped := bustest.NodeStatus(second.Job, "sub").Counters["redelivered_skipped"]
			if !durable {
				if skipped != 0 {
					t.Fatalf("an ordered consumer skipped %d messages", skipped)
				}
				return
			}
			// 1000 trades in batches of 100: the checkpoint covered 10 messages.
			if skipped != 10 {
				t.Fatalf("%d messages skipped as covered by the checkpoint, want 10", skipped)
			}
			c, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			js, _ := jetstream.New(c)
			cons, err := js.Consumer(context.Background(), st, dur)
			if err != nil {
				t.Fatal(err)
			}
			info, err := cons.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.AckFloor.Stream != 20 || info.NumAckPending != 0 {
				t.Fatalf("durable after the resumed run: ack floor %d, %d pending; want 20, 0", info.AckFloor.Stream, info.NumAckPending)
			}
		})
	}
}
