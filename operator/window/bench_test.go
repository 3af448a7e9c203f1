package window

import (
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

// benchWindow folds batches of 1024 in-order trades over 100 symbols (a
// trade every 10µs of event time) with the watermark after each batch, as
// a node instance sees them; it reports ns and allocations per record.
func benchWindow(b *testing.B, params map[string]any) {
	in := optest.NewInstance(b, Type, params, enginetest.Symbols(100), engine.PortLate)
	const n = 1024
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = make([]md.Trade, n)
	ts := t0
	optest.Bench(b, in, n, 64, func(int) {
		for j := range batch.Trades {
			ts += 10_000
			batch.Trades[j] = md.Trade{Sym: md.SymID(j % 100), TS: ts, Price: float64(100 + j%7), Size: float64(1 + j%3)}
		}
		in.Process(batch)
		in.Watermark(ts)
	})
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
