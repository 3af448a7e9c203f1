package redissrc_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/md"
)

// perMsg is the trades per entry in the benchmark.
const perMsg = 64

func benchTrades(n int) ([]md.Trade, []string) {
	syms := enginetest.Symbols(100)
	tr := make([]md.Trade, n)
	for i := range tr {
		tr[i] = md.Trade{TS: 1_700_000_000_000_000_000 + int64(i)*1_000_000, Price: 100 + float64(i%100)/100, Size: 1, TradeID: int64(i), Seq: uint64(i + 1), Sym: md.SymID(i % len(syms))}
	}
	return tr, syms
}

// BenchmarkRedis measures, in one run against the machine's Redis, b.N
// entries of 64 trades each:
//
//   - sink/raw: go-redis alone adding pre-encoded frames, one XADD per
//     entry, each answered before the next (as the sink waits per batch);
//
//   - sink/mdp: a job, slice source -> sink.redis (encoding included);
//
//   - source/raw: XREADGROUP (COUNT 64) and XACK of each reply in a loop;
//
//   - source/mdp: provider.redis -> sink.null, decoding every frame.
//
//     go test ./source/redis -run '^$' -bench Redis -benchtime 20000x
func BenchmarkRedis(b *testing.B) {
	url, c := redisURL(b)
	ctx := context.Background()
	var filled string
	var n int
	outer := b
	b.Run("sink/raw", func(b *testing.B) {
		tr, syms := benchTrades(perMsg)
		st := md.NewSymbolTable()
		for _, s := range syms {
			st.Intern("test", s)
		}
		batch := md.NewBatch(md.KindTrade)
		batch.Trades = tr
		frame, _ := new(busfmt.Encoder).AppendFrame(nil, batch, st.Snapshot())
		key := stream(b, c)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"d", frame}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("sink/mdp", func(b *testing.B) {
		tr, syms := benchTrades(b.N * perMsg)
		key := stream(outer, c) // kept for the readers
		src := &enginetest.Source{Symbols: syms, Trades: tr, BatchSize: perMsg}
		g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src), bustest.Node(b, "sink.redis", "pub", map[string]any{"url": url, "stream": key})},
			Edges: []*engine.Edge{{From: "src", To: "pub"}}}
		j, err := engine.New(g, engine.Options{Job: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		if err := j.Run(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		filled, n = key, b.N
	})
	if filled == "" {
		return
	}
	b.Run("source/raw", func(b *testing.B) {
		group := bustest.Unique("raw")
		if err := c.XGroupCreate(ctx, filled, group, "0").Err(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		got := 0
		for got < min(b.N, n) {
			res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{filled, ">"}, Count: 64, Block: -1}).Result()
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, 0, 64)
			for _, m := range res[0].Messages {
				ids = append(ids, m.ID)
			}
			if err := c.XAck(ctx, filled, group, ids...).Err(); err != nil {
				b.Fatal(err)
			}
			got += len(ids)
		}
		b.ReportMetric(float64(got)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("source/mdp", func(b *testing.B) {
		want := int64(min(b.N, n)) * perMsg
		nodes := []*engine.Node{bustest.Node(b, "provider.redis", "bus", map[string]any{"url": url, "stream": filled, "group": bustest.Unique("mdp")}),
			bustest.Node(b, "sink.null", "null", map[string]any{})}
		j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: []*engine.Edge{{From: "bus", To: "null"}}}, engine.Options{Job: "bench"})
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
		for bustest.NodeStatus(j, "bus").EventsOut < want {
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		cancel()
		_ = j.Wait()
		b.ReportMetric(float64(want/perMsg)/el.Seconds(), "msgs/s")
	})
}
