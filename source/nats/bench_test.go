package natssrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/md"
)

// perMsg is the trades per message in the benchmarks.
const perMsg = 64

func benchTrades(n int) ([]md.Trade, []string) {
	syms := enginetest.Symbols(100)
	tr := make([]md.Trade, n)
	for i := range tr {
		tr[i] = md.Trade{TS: 1_700_000_000_000_000_000 + int64(i)*1_000_000, Price: 100 + float64(i%100)/100, Size: 1, TradeID: int64(i), Seq: uint64(i + 1), Sym: md.SymID(i % len(syms))}
	}
	return tr, syms
}

// BenchmarkNATS measures, in one run against the machine's nats-server
// (JetStream, memory storage), b.N messages of 64 trades each:
//
//   - sink/raw: the client alone publishing pre-encoded frames with
//     PublishMsgAsync (256 in flight, Nats-Msg-Id), waiting for every ack;
//
//   - sink/mdp: a job, slice source -> sink.nats (encoding included);
//
//   - source/raw: an ordered consumer reading the messages in a plain loop;
//
//   - source/mdp: provider.nats -> sink.null, decoding every frame;
//
//   - e2e/bars: provider.nats -> operator.bars (1s) -> sink.null.
//
//     go test ./source/nats -run '^$' -bench NATS -benchtime 20000x
func BenchmarkNATS(b *testing.B) {
	url := natsURL(b)
	c, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
	var filled, filledSubj string // a stream holding n messages, for the readers
	var n int
	b.Run("sink/raw", func(b *testing.B) {
		tr, syms := benchTrades(perMsg)
		st := md.NewSymbolTable()
		for _, s := range syms {
			st.Intern("test", s)
		}
		batch := md.NewBatch(md.KindTrade)
		batch.Trades = tr
		frame, _ := new(busfmt.Encoder).AppendFrame(nil, batch, st.Snapshot())
		_, subj := mk()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			m := &nats.Msg{Subject: subj, Data: frame, Header: nats.Header{jetstream.MsgIDHeader: []string{bustest.Unique("")}}}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("sink/mdp", func(b *testing.B) {
		tr, syms := benchTrades(b.N * perMsg)
		name, subj := mk()
		src := &enginetest.Source{Symbols: syms, Trades: tr, BatchSize: perMsg}
		b.ResetTimer()
		start := time.Now()
		g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src), bustest.Node(b, "sink.nats", "pub", map[string]any{"url": url, "subject": subj})},
			Edges: []*engine.Edge{{From: "src", To: "pub"}}}
		j, err := engine.New(g, engine.Options{Job: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Run(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		filled, filledSubj, n = name, subj, b.N
	})
	if filled == "" {
		return
	}
	b.Run("source/raw", func(b *testing.B) {
		cons, err := js.OrderedConsumer(ctx, filled, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filledSubj}})
		if err != nil {
			b.Fatal(err)
		}
		it, _ := cons.Messages(jetstream.PullMaxMessages(1024))
		defer it.Stop()
		b.ResetTimer()
		start := time.Now()
		bytes := 0
		for i := 0; i < min(b.N, n); i++ {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			bytes += len(m.Data())
		}
		b.ReportMetric(float64(min(b.N, n))/time.Since(start).Seconds(), "msgs/s")
		b.SetBytes(int64(bytes / max(min(b.N, n), 1)))
	})
	read := func(b *testing.B, withBars bool) {
		want := int64(min(b.N, n)) * perMsg
		var nodes []*engine.Node
		var edges []*engine.Edge
		nodes = append(nodes, bustest.Node(b, "provider.nats", "bus", map[string]any{"url": url, "subject": filledSubj, "stream": filled}))
		last := "bus"
		if withBars {
			nodes = append(nodes, bustest.Node(b, "operator.bars", "bars", map[string]any{"interval": "1s"}))
			edges = append(edges, &engine.Edge{From: "bus", To: "bars"})
			last = "bars"
		}
		nodes = append(nodes, bustest.Node(b, "sink.null", "null", map[string]any{}))
		edges = append(edges, &engine.Edge{From: last, To: "null"})
		j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: edges}, engine.Options{Job: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ResetTimer()
		start := time.Now()
		if err := j.Start(cctx); err != nil {
			b.Fatal(err)
		}
		for {
			var out int64
			for _, st := range j.Status().Nodes {
				if st.ID == "bus" {
					out = st.EventsOut
				}
			}
			if out >= want {
				break
			}
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		cancel()
		_ = j.Wait()
		b.ReportMetric(float64(want/perMsg)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(want)/el.Seconds(), "trades/s")
	}
	b.Run("source/mdp", func(b *testing.B) { read(b, false) })
	b.Run("e2e/bars", func(b *testing.B) { read(b, true) })
}
