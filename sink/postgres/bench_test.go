package postgres_test

// Benchmarks: the sink end to end (trades -> operator.bars -> batching ->
// workers -> committed rows) against plain-pgx reference loops on the same
// server, in the same run. Run with
//
//	go test -run '^$' -bench . -benchtime 1x ./sink/postgres/
//
// Each iteration writes MDP_BENCH_ROWS bar rows (default 1,000,000) into a
// fresh table; "rerun" variants write the same rows again over the table a
// first run filled (nothing changes, the diff-aware upsert skips every row).

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/sink/postgres"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

func benchDSN() string {
	if s := os.Getenv("MDP_TEST_PG_DSN"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

const benchSyms = 1000

var benchT0 = int64(1704205800) * int64(time.Second)

// benchBars are n one-second bars over benchSyms symbols, second by second.
func benchBars(n int) []md.Bar {
	bars := make([]md.Bar, n)
	for i := range bars {
		sec := int64(i / benchSyms)
		p := 100 + float64(i%benchSyms) + float64(sec%61)/32
		bars[i] = md.Bar{Start: benchT0 + sec*int64(time.Second), End: benchT0 + (sec+1)*int64(time.Second),
			Interval: int64(time.Second), Open: p, High: p + 1, Low: p - 1, Close: p + 0.5, Volume: float64(1 + i%500),
			VWAP: p + 0.25, Trades: int64(1 + i%40), Sym: md.SymID(i % benchSyms)}
	}
	return bars
}

func benchConn(b *testing.B) *pgx.Conn {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), benchDSN())
	if err != nil {
		if os.Getenv("CI") == "" {
			b.Skipf("PostgreSQL not reachable: %v", err)
		}
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// onConn runs f on a new connection: the sink benchmarks survive a server
// restart by another test (the sink retries), so their own bookkeeping must
// not depend on one long-lived connection either.
func onConn(b *testing.B, f func(context.Context, *pgx.Conn) error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		var conn *pgx.Conn
		if conn, err = pgx.Connect(ctx, benchDSN()); err == nil {
			err = f(ctx, conn)
			_ = conn.Close(ctx)
			if err == nil {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatal(err)
}

// benchSchema creates a schema dropped at the end of the benchmark.
func benchSchema(b *testing.B, conn *pgx.Conn) string {
	b.Helper()
	s := fmt.Sprintf("mdp_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+s); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), benchDSN())
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+s+" CASCADE")
			_ = c.Close(context.Background())
		}
	})
	return s
}

const barsDDL = `(provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL,
	open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION,
	volume DOUBLE PRECISION, vwap DOUBLE PRECISION, trades BIGINT, PRIMARY KEY (provider, symbol, interval, ts))`

var barCols = []string{"provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume", "vwap", "trades"}

func freshTable(b *testing.B, conn *pgx.Conn, schema, table string) {
	b.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+schema+"."+table); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE "+schema+"."+table+" "+barsDDL); err != nil {
		b.Fatal(err)
	}
}

// rowSource feeds pgx.CopyFrom the way a plain pgx program would: one
// []any per row, values boxed, symbol text from a slice.
func rowSource(bars []md.Bar, names []string) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(bars), func(i int) ([]any, error) {
		x := &bars[i]
		return []any{"bench", names[x.Sym], "1s", time.Unix(0, x.Start), x.Open, x.High, x.Low, x.Close,
			x.Volume, x.VWAP, x.Trades}, nil
	})
}

func symNames() []string {
	names := make([]string, benchSyms)
	for i := range names {
		names[i] = fmt.Sprintf("SYM%04d", i)
	}
	return names
}

func reportRows(b *testing.B, rows int) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReferenceRawCopy: plain pgx CopyFrom of every row straight into
// the keyed table, one COPY. The ceiling for loading rows; not idempotent.
func BenchmarkReferenceRawCopy(b *testing.B) {
	conn := benchConn(b)
	schema := benchSchema(b, conn)
	n := storetest.BenchRows(b)
	bars, names := benchBars(n), symNames()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		freshTable(b, conn, schema, "raw")
		b.StartTimer()
		got, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "raw"}, barCols, rowSource(bars, names))
		if err != nil || got != int64(n) {
			b.Fatalf("copy: %d rows, %v", got, err)
		}
	}
	reportRows(b, n)
}

// referenceUpsert is the plain-pgx loop the sink is compared with: per
// 10,000 rows, one transaction of COPY into a temp table and one
// diff-aware upsert.
func referenceUpsert(b *testing.B, conn *pgx.Conn, schema string, bars []md.Bar, names []string) {
	ctx := context.Background()
	const chunk = 10000
	upsert := `INSERT INTO ` + schema + `.ref AS t SELECT DISTINCT ON (provider, symbol, interval, ts) * FROM ref_tmp
		ORDER BY provider, symbol, interval, ts
		ON CONFLICT (provider, symbol, interval, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,
		low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades
		WHERE (t.open, t.high, t.low, t.close, t.volume, t.vwap, t.trades) IS DISTINCT FROM
		(EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.vwap, EXCLUDED.trades)`
	for lo := 0; lo < len(bars); lo += chunk {
		hi := min(lo+chunk, len(bars))
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ref_tmp"}, barCols, rowSource(bars[lo:hi], names)); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, upsert); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReferenceTempUpsert: plain pgx, one connection, COPY into a temp
// table then one diff-aware upsert per 10,000 rows. fresh: into an empty
// table; rerun: the same rows again (nothing changes).
func BenchmarkReferenceTempUpsert(b *testing.B) {
	for _, mode := range []string{"fresh", "rerun"} {
		b.Run(mode, func(b *testing.B) {
			conn := benchConn(b)
			schema := benchSchema(b, conn)
			n := storetest.BenchRows(b)
			bars, names := benchBars(n), symNames()
			ctx := context.Background()
			freshTable(b, conn, schema, "ref")
			if _, err := conn.Exec(ctx, "CREATE TEMP TABLE ref_tmp (LIKE "+schema+".ref) ON COMMIT DELETE ROWS"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				freshTable(b, conn, schema, "ref")
				if mode == "rerun" {
					referenceUpsert(b, conn, schema, bars, names)
				}
				b.StartTimer()
				referenceUpsert(b, conn, schema, bars, names)
			}
			b.StopTimer()
			reportRows(b, n)
			var got int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".ref").Scan(&got); err != nil || got != int64(n) {
				b.Fatalf("ref holds %d rows: %v", got, err)
			}
		})
	}
}

// tradeSource emits one trade per bar to build, second by second, so that
// operator.bars (1s) produces exactly the benchmark's bars.
type tradeSource struct {
	trades []md.Trade
	names  []string
}

func (s *tradeSource) Run(ctx context.Context, out *engine.Output) error {
	in := md.NewInterner(out.Symbols(), "bench")
	ids := make([]md.SymID, len(s.names))
	for i, n := range s.names {
		ids[i] = in.ID(n)
	}
	for lo := 0; lo < len(s.trades); lo += md.DefaultBatchSize {
		b := out.NewBatch(md.KindTrade)
		for _, t := range s.trades[lo:min(lo+md.DefaultBatchSize, len(s.trades))] {
			t.Sym = ids[t.Sym]
			b.Trades = append(b.Trades, t)
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

func benchTrades(n int) []md.Trade {
	trades := make([]md.Trade, n)
	for i, x := range benchBars(n) {
		trades[i] = md.Trade{TS: x.Start + int64(i%benchSyms)*1000, Price: x.Open, Size: x.Volume, Sym: x.Sym}
	}
	return trades
}

// sinkJob runs trades -> operator.bars -> sink.postgres into schema.table
// and returns the sink's counters.
func sinkJob(b *testing.B, schema, table string, workers int, direct bool, trades []md.Trade, names []string) *storekit.Stats {
	b.Helper()
	barsSpec, ok := component.Lookup("operator.bars")
	if !ok {
		b.Fatal("operator.bars not registered")
	}
	sinkSpec, _ := component.Lookup("sink.postgres")
	bp, err := component.NewParams(barsSpec, map[string]any{"interval": "1s"})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := component.NewParams(sinkSpec, map[string]any{"dsn": benchDSN(), "schema": schema, "table": table,
		"workers": workers, "direct_copy": direct})
	if err != nil {
		b.Fatal(err)
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.bench", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return &tradeSource{trades: trades, names: names}, nil }},
			component.Node(barsSpec, bp, component.NodeOptions{ID: "bars"}),
			component.Node(sinkSpec, sp, component.NodeOptions{ID: "store"}),
		},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "store"}},
	}
	j, err := engine.New(g, engine.Options{Job: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	st, _ := j.NodeContexts("store")[0].Stats.Extra.Load().(*storekit.Stats)
	return st
}

// BenchmarkSink: the whole path from operator.bars through the sink's
// queue, symbol-hashed workers (one connection each), COPY + diff-aware
// upsert, to committed rows. fresh: new data, default settings (every batch
// goes through the temp table and the upsert); fresh_direct: new data with
// the opt-in direct_copy; rerun: the same data again, default settings.
func BenchmarkSink(b *testing.B) {
	n := storetest.BenchRows(b)
	trades, names := benchTrades(n), symNames()
	for _, c := range []struct {
		mode    string
		workers int
	}{
		{"fresh", 1}, {"fresh", 2}, {"fresh", 4},
		{"fresh_direct", 1}, {"fresh_direct", 2}, {"fresh_direct", 4},
		{"rerun", 1}, {"rerun", 2}, {"rerun", 4},
	} {
		b.Run(fmt.Sprintf("%s/workers_%d", c.mode, c.workers), func(b *testing.B) {
			schema := benchSchema(b, benchConn(b))
			direct := c.mode == "fresh_direct"
			var writes int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				onConn(b, func(ctx context.Context, conn *pgx.Conn) error {
					_, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+schema+".bars")
					return err
				})
				if c.mode == "rerun" {
					sinkJob(b, schema, "bars", c.workers, direct, trades, names)
				}
				b.StartTimer()
				st := sinkJob(b, schema, "bars", c.workers, direct, trades, names)
				writes += st.BatchesWritten.Load()
			}
			b.StopTimer()
			reportRows(b, n)
			b.ReportMetric(float64(n)*float64(b.N)/float64(writes), "rows/write")
			var got int64
			onConn(b, func(ctx context.Context, conn *pgx.Conn) error {
				return conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".bars").Scan(&got)
			})
			if got != int64(n) {
				b.Fatalf("table holds %d rows, want %d", got, n)
			}
		})
	}
}
