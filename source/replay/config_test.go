package replay

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	_ "github.com/mdpio/mdp/sink/sqlite"
	_ "github.com/mdpio/mdp/sink/stdout"
)

// TestReplayConfigRuns loads configs/dag/replay_tardis_bars.yaml from the
// repository root, as `mdp run` would, runs it with the store moved to a
// temporary file and stdout silenced, and checks the bars in SQLite.
func TestReplayConfigRuns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bars.db")
	t.Chdir("../..")
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	stdout := os.Stdout
	os.Stdout = devnull // sink.stdout writes to os.Stdout
	defer func() { os.Stdout = stdout }()

	doc, err := config.LoadFile("configs/dag/replay_tardis_bars.yaml", config.LoadOptions{
		Sets: []string{"dag.nodes.store.params.path=" + db}, Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	g, err := doc.Graph()
	if err != nil {
		t.Fatal(err)
	}
	j, err := engine.New(g, engine.Options{Job: doc.Name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	os.Stdout = stdout

	ref := refBars(tardisRef(t, "testdata/replay/tardis_trades.csv"), int64(time.Minute))
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`select provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades from bars_ohlcv order by ts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var prov, sym, iv, ts string
		var o, h, l, c, v, vwap float64
		var n int64
		if err := rows.Scan(&prov, &sym, &iv, &ts, &o, &h, &l, &c, &v, &vwap, &n); err != nil {
			t.Fatal(err)
		}
		if i >= len(ref) {
			t.Fatalf("more bars than the %d expected", len(ref))
		}
		w := ref[i]
		wantTS := time.Unix(0, w.start).UTC().Format("2006-01-02T15:04:05.000000Z")
		if prov != "binance-futures" || sym != "BTCUSDT" || iv != "1m" || ts != wantTS || o != w.open || h != w.high ||
			l != w.low || c != w.close || v != w.exact() || vwap != w.pvs/w.volume || n != w.n {
			t.Fatalf("row %d: %s %s %s %s %v %v %v %v %v %v %d, want %+v at %s", i, prov, sym, iv, ts, o, h, l, c, v, vwap, n, w, wantTS)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(ref) {
		t.Fatalf("got %d bars, want %d", i, len(ref))
	}
}
