package kafkasrc_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	_ "modernc.org/sqlite"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/sink/sqlite"
)

// TestShippedConfigOnKfake runs configs/dag/kafka_trades_to_bars.yaml
// against an in-process cluster (KAFKA_BROKERS points at it): trades
// produced to md.trades come out as the same 1s bars in md.bars.1s and
// in SQLite.
func TestShippedConfigOnKfake(t *testing.T) {
	_, brokers := cluster(t, 1, "md.trades", kfake.SeedTopics(4, "md.bars.1s"))
	addr := brokers[0].(string)
	base := int64(1_714_521_600_000_000_000) // 2024-05-01T00:00:00Z
	syms := []string{"BTCUSDT", "ETHUSDT"}
	in := []md.Trade{
		{TS: base + 100e6, Price: 60000, Size: 0.5, Sym: 0},
		{TS: base + 900e6, Price: 60100, Size: 0.25, Sym: 0},
		{TS: base + 950e6, Price: 3000, Size: 2, Sym: 1},
		{TS: base + 1200e6, Price: 59900, Size: 1, Sym: 0},
	}
	for i := range in {
		in[i].Ingest = in[i].TS
	}
	publish(t, &enginetest.Source{Symbols: syms, Trades: in, BatchSize: 2}, map[string]any{"brokers": brokers, "topic": "md.trades"})

	db := filepath.Join(t.TempDir(), "bars.db")
	env := func(k string) (string, bool) {
		if k == "KAFKA_BROKERS" {
			return addr, true
		}
		return "", false
	}
	doc, err := config.LoadFile("../../configs/dag/kafka_trades_to_bars.yaml", config.LoadOptions{Env: env, Sets: []string{"dag.nodes.store.params.path=" + db}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := doc.Graph()
	if err != nil {
		t.Fatal(err)
	}
	j, err := engine.New(g, engine.Options{Job: "kafka-trades-to-bars"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var in int64
		for _, n := range j.Status().Nodes {
			if n.ID == "trades" {
				in = n.EventsOut
			}
		}
		if in >= 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel() // stopping flushes the open bars to both sinks
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{ // symbol at start -> open, high, low, close, volume, trades
		"BTCUSDT@0": {60000, 60100, 60000, 60100, 0.75, 2},
		"ETHUSDT@0": {3000, 3000, 3000, 3000, 2, 1},
		"BTCUSDT@1": {59900, 59900, 59900, 59900, 1, 1},
	}
	sq, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	rows, err := sq.Query(`SELECT symbol, ts, open, high, low, close, volume, trades FROM bars_ohlcv`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for rows.Next() {
		var sym string
		var ts any
		var o, h, l, cl, v, n float64
		if err := rows.Scan(&sym, &ts, &o, &h, &l, &cl, &v, &n); err != nil {
			t.Fatal(err)
		}
		got[sym+"@"+secondOf(ts, base)] = []float64{o, h, l, cl, v, n}
	}
	rows.Close()
	if len(got) != 3 {
		t.Fatalf("sqlite bars %v, want %v", got, want)
	}
	for k, w := range want {
		if g := got[k]; len(g) != 6 || g[0] != w[0] || g[1] != w[1] || g[2] != w[2] || g[3] != w[3] || g[4] != w[4] || g[5] != w[5] {
			t.Fatalf("sqlite %s = %v, want %v (all: %v)", k, g, w, got)
		}
	}
	s, _ := read(t, map[string]any{"brokers": brokers, "topics": []any{"md.bars.1s"}, "kind": "bar"}, md.KindBar, 3, nil)
	if len(s.bars) != 3 {
		t.Fatalf("%d bars in md.bars.1s, want 3", len(s.bars))
	}
	for i, b := range s.bars {
		k := s.names[i] + "@" + secondOf(b.Start, base)
		w := want[k]
		if w == nil || b.Open != w[0] || b.High != w[1] || b.Low != w[2] || b.Close != w[3] || b.Volume != w[4] || float64(b.Trades) != w[5] || b.Interval != 1e9 {
			t.Fatalf("topic bar %s = %+v, want %v", k, b, w)
		}
	}
}

// secondOf renders a bar start (ns, or a stored time) as seconds after base.
func secondOf(ts any, base int64) string {
	switch v := ts.(type) {
	case int64:
		if v > 1e15 {
			return itoa((v - base) / 1e9)
		}
		return itoa(v/1e6 - base/1e9)
	case time.Time:
		return itoa(v.UnixNano()/1e9 - base/1e9)
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return v
		}
		return itoa(t.UnixNano()/1e9 - base/1e9)
	}
	return "?"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
