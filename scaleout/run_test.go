package scaleout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/runtime"
)

func pgDSN() string {
	if s := os.Getenv("MDP_TEST_PG_DSN"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgSchemas connects to the test server and creates fresh schemas, dropped
// at the end of the test.
func pgSchemas(t *testing.T, names ...string) (*pgx.Conn, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgDSN())
	if err != nil {
		testenv.Missing(t, "PostgreSQL", err.Error(), testenv.PostgresHint)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("mdp_so_%s_%d", n, time.Now().UnixNano())
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+out[i]); err != nil {
			t.Fatal(err)
		}
		s := out[i]
		t.Cleanup(func() {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+s+" CASCADE")
		})
	}
	return conn, out
}

// writeTrades writes a seeded CSV of trades for the replay: symbols
// interleaved, event times jittered backwards so some trades arrive after
// the watermark passed them (late, dropped by the bars), and a few symbols
// silent for most of the file.
func writeTrades(t *testing.T, seed uint64, n, symbols int) string {
	t.Helper()
	return writeTradesSilent(t, seed, n, symbols, func(s, i int) bool { return s < 3 && i > n/10 && i < n*9/10 })
}

// writeTradesSilent is writeTrades with silent(s, i) saying whether
// symbol s sends nothing at trade i (another symbol trades instead).
func writeTradesSilent(t *testing.T, seed uint64, n, symbols int, silent func(s, i int) bool) string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var sb strings.Builder
	sb.WriteString("provider,symbol,ts,price,size,side,trade_id\n")
	base := time.Date(2024, 3, 1, 14, 30, 0, 0, time.UTC).UnixNano()
	ids := make([]int, symbols)
	for i := 0; i < n; i++ {
		s := r.IntN(symbols)
		for silent(s, i) {
			s = r.IntN(symbols)
		}
		ids[s]++
		ts := base + int64(i)*int64(2*time.Millisecond)
		if r.IntN(200) == 0 {
			ts -= int64(r.IntN(3000)) * int64(time.Millisecond)
		}
		side := [3]string{"buy", "sell", ""}[r.IntN(3)]
		fmt.Fprintf(&sb, "x,S%03d,%s,%.2f,%d.%03d,%s,%d\n", s, time.Unix(0, ts).UTC().Format(time.RFC3339Nano),
			100+float64(r.IntN(10000))/100, r.IntN(50), r.IntN(1000), side, ids[s])
	}
	path := filepath.Join(t.TempDir(), "trades.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// barsJob is a replay -> 1s bars -> PostgreSQL job.
func barsJob(trades, schema, extra string) string {
	return fmt.Sprintf(`mode: dag
name: so-bars
dag:
  nodes:
    - id: replay
      type: provider.replay
      params:
        path: %q
        kind: trade
        columns: {provider: provider, symbol: symbol, ts: ts, price: price, size: size, side: side, trade_id: trade_id}
        max_out_of_orderness: 500ms
    - id: bars
      type: operator.bars
      params: {interval: 1s, late_policy: drop}
      parallelism: 2
    - id: store
      type: sink.postgres
      params: {dsn: %q, schema: %s, table: bars, create_tables: true, workers: 2}
  edges:
    - [replay, bars]
    - [bars, store]
%s`, trades, pgDSN(), schema, extra)
}

// runOracle runs the job in one process, without scale-out.
func runOracle(t *testing.T, job string) {
	t.Helper()
	u, err := runtime.NewFromBytes("oracle.yaml", []byte(job), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var dropped int64
	for _, n := range u.Status().Nodes {
		if n.ID == "bars" {
			dropped = n.Drops["late"] + n.Drops["too_late"] // too_late: past allowed_lateness under late_policy update
		}
	}
	if dropped == 0 {
		t.Fatal("the oracle dropped no late trade: the data does not test lateness")
	}
}

// barRows returns every bar row of schema.bars, ordered, as text.
func barRows(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	return textRows(t, conn, "SELECT b::text FROM "+schema+".bars b ORDER BY provider, symbol, interval, ts")
}

// textRows returns the one text column of every row of query q.
func textRows(t *testing.T, conn *pgx.Conn, q string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameRows(t *testing.T, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the oracle wrote no bars")
	}
	if len(got) != len(want) {
		t.Errorf("%d bars, the oracle has %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("bar %d:\n got  %s\n want %s", i, got[i], want[i])
		}
	}
}

// TestEmbeddedEqualsOracle runs the job through the embedded server (an
// ingest, one worker, 16 partitions) and checks PostgreSQL holds exactly
// the bars of the single-process run, late drops included.
func TestEmbeddedEqualsOracle(t *testing.T) {
	conn, schemas := pgSchemas(t, "oracle", "scaled")
	trades := writeTrades(t, 1, 30000, 40)
	runOracle(t, barsJob(trades, schemas[0], ""))
	want := barRows(t, conn, schemas[0])

	store := filepath.Join(t.TempDir(), "nats")
	job := barsJob(trades, schemas[1], fmt.Sprintf("scaleout: {nats: embedded, partitions: 16, store: %q, sync: interval}\n", store))
	doc, err := config.LoadBytes("scaled.yaml", []byte(job), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for run := range 2 { // the second run starts from a stream holding the first's messages
		start := time.Now()
		if err := Run(ctx, doc, Options{}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		t.Logf("run %d: %s", run, time.Since(start))
		sameRows(t, barRows(t, conn, schemas[1]), want)
	}

	// The same job against a NATS server of its own (a test server on a
	// free loopback port), into a third schema.
	srv := loopbackServer(t)
	_, ext := pgSchemas(t, "external")
	url := srv.ClientURL()
	job = barsJob(trades, ext[0], fmt.Sprintf("scaleout: {nats: %q, partitions: 16}\n", url))
	doc, err = config.LoadBytes("external.yaml", []byte(job), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, doc, Options{}); err != nil {
		t.Fatalf("external server: %v", err)
	}
	sameRows(t, barRows(t, conn, ext[0]), want)

	// The partition count is fixed for the stream's life.
	doc.Scaleout.Partitions = 8
	err = Run(ctx, doc, Options{})
	if err == nil || !strings.Contains(err.Error(), "stream MDP_so-bars holds 16 partitions, the job says 8") {
		t.Fatalf("another partition count: %v", err)
	}
}
