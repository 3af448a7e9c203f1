package window

import (
	"context"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// benchWindow folds batches of 1024 in-order trades over 100 symbols (a
// trade every 10µs of event time) with the watermark after each batch, as
// a node instance sees them; it reports ns and allocations per record.
func benchWindow(b *testing.B, params map[string]any) {
	h := newHarness(&testing.T{}, Type, params)
	for i := 2; i < 100; i++ {
		h.to.NC.Symbols.Intern("test", string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	const n = 1024
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = make([]md.Trade, n)
	ts := t0
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch.Trades {
			ts += 10_000
			batch.Trades[j] = md.Trade{Sym: md.SymID(j % 100), TS: ts, Price: float64(100 + j%7), Size: float64(1 + j%3)}
		}
		if err := h.w.Process(ctx, batch, h.to.Output); err != nil {
			b.Fatal(err)
		}
		if err := h.w.OnWatermark(ctx, ts, h.to.Output); err != nil {
			b.Fatal(err)
		}
		for _, o := range h.to.Drain(engine.PortMain) {
			o.Release()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

func BenchmarkTumbling1s5Aggs(b *testing.B) {
	benchWindow(b, map[string]any{"size": "1s", "aggregations": []string{"count", "sum(size)", "min(price)", "max(price)", "vwap"}})
}

func BenchmarkSliding10s1s5Aggs(b *testing.B) {
	benchWindow(b, map[string]any{"window": "sliding", "size": "10s", "slide": "1s", "aggregations": []string{"count", "sum(size)", "min(price)", "max(price)", "vwap"}})
}

func BenchmarkSession5Aggs(b *testing.B) {
	benchWindow(b, map[string]any{"window": "session", "gap": "5ms", "aggregations": []string{"count", "sum(size)", "min(price)", "max(price)", "vwap"}})
}
