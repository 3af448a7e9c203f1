package bustest

import (
	"fmt"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Formats are a bus's sink and source types and how to make a fresh
// destination for a CheckFormats case.
type Formats struct {
	Sink, Source string
	// Fresh returns the sink's and the source's params for a new
	// destination (stream, queue, topic) and a function publishing one
	// raw message to it.
	Fresh func(t *testing.T) (sink, source map[string]any, raw func(payload []byte))
}

// CheckFormats checks a bus's json and csv: trades and bars written by
// the sink in each come back equal through the source (symbol order kept),
// and foreign JSON lines are read through a mapping, a refused row counted
// while the message's other rows are kept.
func CheckFormats(t *testing.T, c Formats) {
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
	start := func(t *testing.T, src map[string]any, kind md.Kind) *Running {
		r := Start(t, []*engine.Node{Node(t, c.Source, "sub", src)}, kind, engine.Options{Job: "sub"})
		deadline := time.Now().Add(30 * time.Second)
		for !r.Job.Ready() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready within 30s", c.Source)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return r
	}
	finish := func(t *testing.T, r *Running, n int) {
		r.WaitLen(t, n, 30*time.Second)
		time.Sleep(100 * time.Millisecond) // anything more would be extra
		r.Stop(t)
	}
	for _, f := range []string{"json", "csv"} {
		t.Run("trades/"+f, func(t *testing.T) {
			sp, src, _ := c.Fresh(t)
			sp["format"], src["format"] = f, f
			want := Trades(600, syms)
			r := start(t, src, md.KindTrade)
			Publish(t, c.Sink, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, sp)
			finish(t, r, len(want))
			CheckPerSymbolOrder(t, r.Sink, want, syms)
		})
		t.Run("bars/"+f, func(t *testing.T) {
			sp, src, _ := c.Fresh(t)
			sp["format"], src["format"], src["kind"] = f, f, "bar"
			one := syms[:1] // one symbol: one destination, one order
			want := Bars(150, one)
			r := start(t, src, md.KindBar)
			Publish(t, c.Sink, &enginetest.Source{Symbols: one, Bars: want, BatchSize: 64}, sp)
			finish(t, r, len(want))
			CheckBars(t, r.Sink, want, one)
		})
	}
	t.Run("json/mapping", func(t *testing.T) {
		_, src, raw := c.Fresh(t)
		src["format"] = "json"
		src["mapping"] = map[string]any{"ts": "T", "symbol": "s", "price": "p", "size": "q", "trade_id": "id"}
		src["ts_format"] = "unix_ms"
		r := start(t, src, md.KindTrade)
		const t0 = 1_700_000_000_000
		raw([]byte(fmt.Sprintf(`{"T":%d,"s":"BTCUSDT","p":"100.5","q":"0.25","id":1}`+"\n"+`{"T":%d,"s":"ETHUSDT","p":"2000","q":"1","id":2}`, t0, t0+1)))
		raw([]byte(fmt.Sprintf(`{"T":%d,"s":"BTCUSDT","p":"-1","q":"1","id":3}`+"\n"+`{"T":%d,"s":"BTCUSDT","p":"101","q":"0.5","id":4}`, t0+2, t0+3)))
		finish(t, r, 3)
		type row struct {
			sym         string
			ts          int64
			price, size float64
			id          int64
		}
		want := []row{{"BTCUSDT", t0 * 1e6, 100.5, 0.25, 1}, {"ETHUSDT", (t0 + 1) * 1e6, 2000, 1, 2}, {"BTCUSDT", (t0 + 3) * 1e6, 101, 0.5, 4}}
		if len(r.Sink.Trades) != len(want) {
			t.Fatalf("%d trades, want %d", len(r.Sink.Trades), len(want))
		}
		for i, w := range want {
			g := r.Sink.Trades[i]
			if got := (row{r.Sink.Names[i], g.TS, g.Price, g.Size, g.TradeID}); got != w {
				t.Fatalf("trade %d: %+v, want %+v", i, got, w)
			}
		}
		ns := NodeStatus(r.Job, "sub")
		if ns.Drops["malformed"] != 1 || ns.Counters["malformed_bad_number"] != 1 {
			t.Fatalf("drops %v counters %v, want the negative price counted once", ns.Drops, ns.Counters)
		}
	})
}
