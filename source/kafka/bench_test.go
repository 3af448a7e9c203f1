package kafkasrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// BenchmarkKafka measures, in one run against an in-process kfake
// cluster, b.N messages of 64 trades each (mdp frames) in a 4-partition
// topic:
//
//   - source/raw: a franz-go client polling them in a plain loop, decoding
//     nothing (the anchor);
//
//   - source/mdp: provider.kafka -> sink.null, decoding every frame;
//
//   - e2e/bars: provider.kafka -> operator.bars (1s) -> sink.null.
//
//     go test ./source/kafka -run '^$' -bench Kafka -benchtime 20000x
func BenchmarkKafka(b *testing.B) {
	const perMsg = 64
	symbols := enginetest.Symbols(100)
	st := md.NewSymbolTable()
	for _, s := range symbols {
		st.Intern("bench", s)
	}
	fill := func(b *testing.B, n int) (string, []any) {
		topic := unique("mdpbench.")
		_, brokers := cluster(b, 1, topic)
		cl := client(b, brokers, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
		w := busfmt.NewWriter(busfmt.MDP)
		x := md.NewBatch(md.KindTrade)
		for i := 0; i < n; i++ {
			x.Trades = x.Trades[:0]
			for k := 0; k < perMsg; k++ {
				j := i*perMsg + k
				x.Trades = append(x.Trades, md.Trade{TS: 1_700_000_000_000_000_000 + int64(j)*1_000_000, Price: 100 + float64(j%100)/100, Size: 1,
					TradeID: int64(j), Seq: uint64(j + 1), Sym: md.SymID(i % len(symbols))})
			}
			msg, err := w.Message(x, st.Snapshot())
			if err != nil {
				b.Fatal(err)
			}
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(symbols[i%len(symbols)]), Value: append([]byte(nil), msg...)}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		return topic, brokers
	}
	b.Run("source/raw", func(b *testing.B) {
		b.StopTimer()
		topic, brokers := fill(b, b.N)
		cl := client(b, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		b.StartTimer()
		n := 0
		for n < b.N {
			f := cl.PollFetches(context.Background())
			f.EachRecord(func(*kgo.Record) { n++ })
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	})
	run := func(b *testing.B, bars bool) {
		b.StopTimer()
		topic, brokers := fill(b, b.N)
		b.StartTimer()
		src := node(b, "provider.kafka", "src", map[string]any{"brokers": brokers, "topics": []any{topic}})
		nodes := []*engine.Node{src, node(b, "sink.null", "null", nil)}
		edges := []*engine.Edge{{From: "src", To: "null"}}
		if bars {
			nodes = append(nodes, node(b, "operator.bars", "bars", map[string]any{"interval": "1s"}))
			edges = []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "null"}}
		}
		j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: edges}, engine.Options{Job: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := j.Start(ctx); err != nil {
			b.Fatal(err)
		}
		want := int64(b.N) * perMsg
		for {
			var out int64
			for _, n := range j.Status().Nodes {
				if n.ID == "src" {
					out = n.EventsOut
				}
			}
			if out >= want {
				break
			}
			time.Sleep(time.Millisecond)
		}
		el := b.Elapsed().Seconds()
		b.ReportMetric(float64(b.N)/el, "msgs/s")
		b.ReportMetric(float64(want)/el, "trades/s")
		cancel()
		_ = j.Wait()
	}
	b.Run("source/mdp", func(b *testing.B) { run(b, false) })
	b.Run("e2e/bars", func(b *testing.B) { run(b, true) })
}
