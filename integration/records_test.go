package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pq "github.com/parquet-go/parquet-go"
	_ "modernc.org/sqlite"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/runtime"
)

// pgDSN is the test server's DSN (as sink/postgres's tests read it).
func pgDSN() string {
	if s := os.Getenv("MDP_TEST_PG_DSN"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgSchema connects to the test server and returns a connection and a
// fresh schema name, dropped at cleanup. Without a server the test skips
// (outside CI) with how to start one.
func pgSchema(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgDSN())
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("PostgreSQL not reachable (set MDP_TEST_PG_DSN; README: Fresh machine): %v", err)
		}
		t.Fatalf("PostgreSQL not reachable: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "mdp_it_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		_ = conn.Close(context.Background())
	})
	return conn, schema
}

func runRecordsJob(t *testing.T, doc string) {
	t.Helper()
	u, err := runtime.NewFromBytes("job.yaml", []byte(doc), runtime.Options{LoadOptions: config.LoadOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// parquetFiles returns every Parquet file under dir/dataset.
func parquetFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !strings.HasPrefix(fi.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no parquet files under %s", dir)
	}
	return out
}

func readParquet[T any](t *testing.T, dir string) []T {
	t.Helper()
	var all []T
	for _, p := range parquetFiles(t, dir) {
		rows, err := pq.ReadFile[T](p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		all = append(all, rows...)
	}
	return all
}

func parquetColumns(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(parquetFiles(t, dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := pq.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range pf.Schema().Columns() {
		cols = append(cols, strings.Join(c, "."))
	}
	return cols
}

func sqliteDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqlColumns lists a table's columns in order.
func sqliteColumns(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT name FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return cols
}

func pgColumns(t *testing.T, conn *pgx.Conn, schema, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// featuresOp is a test operator emitting one derived record per trade:
// price, twice the size, and the trade's index in its batch. Its schema's
// name comes from the params, as a real feature node's would.
type featuresOp struct{ sc *md.Schema }

func (o *featuresOp) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	ob := out.NewBatch(md.KindDerived)
	ob.Schema = o.sc
	for i := range b.Trades {
		t := &b.Trades[i]
		v := ob.AddDerived(t.TS, t.Sym)
		v[0], v[1], v[2] = md.FloatValue(t.Price), md.FloatValue(t.Size*2), md.IntValue(int64(i))
	}
	return out.Emit(ob)
}

func init() {
	component.Register(component.Spec{
		Type: "operator.test_features", Kind: engine.KindOperator,
		Summary: "test: one derived record per trade", Accepts: md.KindTrade, Produces: md.KindDerived,
		Fields: []component.Field{{Name: "name", Type: component.String, Required: true, Description: "schema name"}},
		SchemaFn: func(p *component.Params) (*md.Schema, error) {
			sc, err := md.NewSchema(p.String("name"),
				md.Field{Name: "price", Type: md.Float}, md.Field{Name: "size2", Type: md.Float}, md.Field{Name: "idx", Type: md.Int})
			if err != nil {
				return nil, p.Errorf("name", "%v", err)
			}
			return sc, nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return &featuresOp{sc: p.Schema()}, nil
		},
	})
}

// TestDerivedRecordsInEverySink: a derived record declared by a test
// operator from its params is written by every sink with its declared
// columns, and read back from SQLite, PostgreSQL and Parquet.
func TestDerivedRecordsInEverySink(t *testing.T) {
	conn, schema := pgSchema(t)
	dir := t.TempDir()
	doc := fmt.Sprintf(`
mode: dag
name: derived
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 400, symbols: [AAA, BBB], seed: 7}}
    - {id: feat, type: operator.test_features, parallelism: 2, params: {name: feat_x}}
    - {id: lite, type: sink.sqlite, params: {path: %[1]s/md.db}}
    - {id: pg, type: sink.postgres, params: {dsn: "%[2]s", schema: %[3]s}}
    - {id: pqt, type: sink.parquet, params: {dir: %[1]s/pq}}
    - {id: js, type: sink.file, params: {path: %[1]s/out.jsonl}}
    - {id: cs, type: sink.file, params: {path: %[1]s/out.csv}}
    - {id: trades, type: sink.file, params: {path: %[1]s/trades.jsonl}}
  edges: [[src, feat], [src, trades], [feat, lite], [feat, pg], [feat, pqt], [feat, js], [feat, cs]]
`, dir, pgDSN(), schema)
	runRecordsJob(t, doc)

	// The reference: the trades the source emitted, as JSON lines.
	type trade struct {
		Symbol string  `json:"symbol"`
		TS     string  `json:"ts"`
		Price  float64 `json:"price"`
		Size   float64 `json:"size"`
	}
	want := map[string]trade{} // by symbol + ts
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, dir+"/trades.jsonl"))))
	for sc.Scan() {
		var tr trade
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			t.Fatal(err)
		}
		want[tr.Symbol+" "+tr.TS] = tr
	}
	if len(want) != 400 {
		t.Fatalf("%d reference trades, want 400", len(want))
	}
	check := func(sink, sym string, ts time.Time, price, size2 float64, idx int64) {
		t.Helper()
		tr, ok := want[sym+" "+ts.UTC().Format(time.RFC3339Nano)]
		if !ok || tr.Price != price || tr.Size*2 != size2 || idx < 0 || idx >= 1024 {
			t.Fatalf("%s: row %s %s %v %v %d does not match trade %+v", sink, sym, ts, price, size2, idx, tr)
		}
	}

	// JSON lines: type is the schema's name, then provider, symbol, ts,
	// the declared fields.
	lines := strings.Split(strings.TrimSpace(string(readFile(t, dir+"/out.jsonl"))), "\n")
	if len(lines) != 400 || !strings.HasPrefix(lines[0], `{"type":"feat_x","provider":"synthetic","symbol":"`) {
		t.Fatalf("%d JSON lines, first %s", len(lines), lines[0])
	}
	for _, l := range lines {
		var r struct {
			Symbol, TS string
			Price      float64
			Size       float64 `json:"size2"`
			Idx        int64
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		ts, _ := time.Parse(time.RFC3339Nano, r.TS)
		check("json", r.Symbol, ts, r.Price, r.Size, r.Idx)
	}
	// CSV: the declared columns.
	recs, err := csv.NewReader(strings.NewReader(string(readFile(t, dir+"/out.csv")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 401 || strings.Join(recs[0], ",") != "provider,symbol,ts,price,size2,idx" {
		t.Fatalf("%d CSV rows, header %v", len(recs), recs[0])
	}

	// SQLite.
	db := sqliteDB(t, dir+"/md.db")
	if cols := sqliteColumns(t, db, "feat_x"); strings.Join(cols, ",") != "provider,symbol,ts,price,size2,idx" {
		t.Fatalf("sqlite columns %v", cols)
	}
	rows, err := db.Query("SELECT symbol, ts, price, size2, idx FROM feat_x")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var sym, ts string
		var p, s float64
		var idx int64
		if err := rows.Scan(&sym, &ts, &p, &s, &idx); err != nil {
			t.Fatal(err)
		}
		tm, _ := time.Parse("2006-01-02T15:04:05.000000Z", ts)
		check("sqlite", sym, tm, p, s, idx)
		n++
	}
	rows.Close()
	if n != 400 {
		t.Fatalf("sqlite: %d rows", n)
	}
	var tables []string
	trows, _ := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	for trows.Next() {
		var s string
		_ = trows.Scan(&s)
		tables = append(tables, s)
	}
	trows.Close()
	if strings.Join(tables, ",") != "feat_x" {
		t.Fatalf("sqlite tables %v, want only feat_x", tables)
	}

	// PostgreSQL.
	if cols := pgColumns(t, conn, schema, "feat_x"); strings.Join(cols, ",") != "provider,symbol,ts,price,size2,idx" {
		t.Fatalf("postgres columns %v", cols)
	}
	prow, err := conn.Query(context.Background(), "SELECT symbol, ts, price, size2, idx FROM "+schema+".feat_x")
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for prow.Next() {
		var sym string
		var ts time.Time
		var p, s float64
		var idx int64
		if err := prow.Scan(&sym, &ts, &p, &s, &idx); err != nil {
			t.Fatal(err)
		}
		check("postgres", sym, ts, p, s, idx)
		n++
	}
	prow.Close()
	if n != 400 {
		t.Fatalf("postgres: %d rows", n)
	}
	var pgTables []string
	tr, _ := conn.Query(context.Background(), "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema)
	pgTables, _ = pgx.CollectRows(tr, pgx.RowTo[string])
	if strings.Join(pgTables, ",") != "feat_x" {
		t.Fatalf("postgres tables %v, want only feat_x", pgTables)
	}

	// Parquet: dataset named by the schema, columns in declared order.
	if cols := parquetColumns(t, dir+"/pq/feat_x"); strings.Join(cols, ",") != "provider,symbol,ts,price,size2,idx" {
		t.Fatalf("parquet columns %v", cols)
	}
	type prow2 struct {
		Symbol string  `parquet:"symbol"`
		TS     int64   `parquet:"ts"`
		Price  float64 `parquet:"price"`
		Size2  float64 `parquet:"size2"`
		Idx    int64   `parquet:"idx"`
	}
	got := readParquet[prow2](t, dir+"/pq/feat_x")
	if len(got) != 400 {
		t.Fatalf("parquet: %d rows", len(got))
	}
	for _, r := range got {
		check("parquet", r.Symbol, time.UnixMicro(r.TS), r.Price, r.Size2, r.Idx)
	}
}

// TestTradeAndQuoteBarsKeepTheirOwnRows: 1m trade bars and 1m mid-quote bars
// of the same symbols into one SQLite file, one PostgreSQL schema and one
// Parquet directory are all present, each under its own source label.
func TestTradeAndQuoteBarsKeepTheirOwnRows(t *testing.T) {
	conn, schema := pgSchema(t)
	dir := t.TempDir()
	doc := fmt.Sprintf(`
mode: dag
name: both
dag:
  nodes:
    - {id: trades, type: provider.synthetic, params: {count: 3000, symbols: [AAA, BBB], step: 100ms}}
    - {id: quotes, type: provider.synthetic, params: {kind: quote, count: 3000, symbols: [AAA, BBB], step: 100ms}}
    - {id: tbars, type: operator.bars, params: {interval: 1m}}
    - {id: qbars, type: operator.bars, params: {interval: 1m, price: mid}}
    - {id: lite, type: sink.sqlite, params: {path: %[1]s/md.db}}
    - {id: pg, type: sink.postgres, params: {dsn: "%[2]s", schema: %[3]s}}
    - {id: pqt, type: sink.parquet, params: {dir: %[1]s/pq}}
    - {id: js, type: sink.file, params: {path: %[1]s/bars.jsonl}}
  edges: [[trades, tbars], [quotes, qbars], [tbars, lite], [qbars, lite], [tbars, pg], [qbars, pg], [tbars, pqt], [qbars, pqt], [tbars, js], [qbars, js]]
`, dir, pgDSN(), schema)
	runRecordsJob(t, doc)

	// The reference: the bars as JSON lines, by source.
	type bar struct {
		Symbol, TS, Source string
		Close              float64
		Trades             int64
		Bt                 string `json:"bar_type"`
	}
	ref := map[string]bar{}
	for _, l := range strings.Split(strings.TrimSpace(string(readFile(t, dir+"/bars.jsonl"))), "\n") {
		var b bar
		if err := json.Unmarshal([]byte(l), &b); err != nil {
			t.Fatal(err)
		}
		if b.Bt != "time" {
			t.Fatalf("bar_type %q in %s", b.Bt, l)
		}
		ref[b.Source+" "+b.Symbol+" "+b.TS] = b
	}
	// 3000 records 100ms apart over two symbols: 5 minutes, 5 bars each.
	counts := map[string]int{}
	for k := range ref {
		counts[strings.Fields(k)[0]]++
	}
	if counts["trade"] != 10 || counts["mid"] != 10 || len(ref) != 20 {
		t.Fatalf("reference bars by source %v", counts)
	}
	check := func(store, src, sym string, ts time.Time, cl float64, n int64) {
		t.Helper()
		b, ok := ref[src+" "+sym+" "+ts.UTC().Format(time.RFC3339Nano)]
		if !ok || b.Close != cl || b.Trades != n {
			t.Fatalf("%s: %s bar %s %s close %v n %d; reference %+v", store, src, sym, ts, cl, n, b)
		}
	}

	db := sqliteDB(t, dir+"/md.db")
	rows, err := db.Query("SELECT source, bar_type, symbol, ts, close, trades FROM bars_ohlcv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var src, bt, sym, ts string
		var cl float64
		var tr int64
		if err := rows.Scan(&src, &bt, &sym, &ts, &cl, &tr); err != nil {
			t.Fatal(err)
		}
		tm, _ := time.Parse("2006-01-02T15:04:05.000000Z", ts)
		check("sqlite", src, sym, tm, cl, tr)
		n++
	}
	rows.Close()
	if n != 20 {
		t.Fatalf("sqlite: %d bars, want 20 (10 trade, 10 mid)", n)
	}

	prow, err := conn.Query(context.Background(), "SELECT source, symbol, ts, close, trades FROM "+schema+".bars_ohlcv")
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	for prow.Next() {
		var src, sym string
		var ts time.Time
		var cl float64
		var tr int64
		if err := prow.Scan(&src, &sym, &ts, &cl, &tr); err != nil {
			t.Fatal(err)
		}
		check("postgres", src, sym, ts, cl, tr)
		n++
	}
	prow.Close()
	if n != 20 {
		t.Fatalf("postgres: %d bars, want 20", n)
	}

	type pbar struct {
		Symbol string  `parquet:"symbol"`
		TS     int64   `parquet:"ts"`
		Close  float64 `parquet:"close"`
		Trades int64   `parquet:"trades"`
		Source string  `parquet:"source"`
	}
	got := readParquet[pbar](t, dir+"/pq/bars")
	if len(got) != 20 {
		t.Fatalf("parquet: %d bars, want 20", len(got))
	}
	for _, b := range got {
		check("parquet", b.Source, b.Symbol, time.UnixMicro(b.TS), b.Close, b.Trades)
	}
}

// exactSums returns, per minute of the tardis sample, the exact decimal sum
// of the trade sizes, as the nearest float64 (big.Rat, no float arithmetic).
func exactSums(t *testing.T, path string) map[int64]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[int64]*big.Rat{}
	for _, r := range recs[1:] {
		var us int64
		fmt.Sscan(r[2], &us)
		m := us / 60e6 * 60e6 * 1000
		sz, ok := new(big.Rat).SetString(r[7])
		if !ok {
			t.Fatalf("size %q", r[7])
		}
		if sums[m] == nil {
			sums[m] = new(big.Rat)
		}
		sums[m].Add(sums[m], sz)
	}
	out := map[int64]float64{}
	for m, s := range sums {
		out[m], _ = s.Float64()
	}
	return out
}

// TestExactVolumeSumsFromRealData replays the Tardis trade sample (sizes
// with up to three decimals, whose float sums show noise in 51 of 60
// minutes: 35.712999999999994 for 35.713) into 1m bars, and checks that
// every sink stores each bar's volume as the exact decimal sum.
func TestExactVolumeSumsFromRealData(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Abs("../testdata/replay/tardis_trades.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := exactSums(t, src)
	doc := fmt.Sprintf(`
mode: dag
name: exact
dag:
  nodes:
    - {id: src, type: provider.replay, params: {path: %[2]s, preset: tardis_trades}}
    - {id: bars, type: operator.bars, params: {interval: 1m}}
    - {id: lite, type: sink.sqlite, params: {path: %[1]s/md.db}}
    - {id: pqt, type: sink.parquet, params: {dir: %[1]s/pq}}
    - {id: js, type: sink.file, params: {path: %[1]s/bars.jsonl}}
  edges: [[src, bars], [bars, lite], [bars, pqt], [bars, js]]
`, dir, src)
	runRecordsJob(t, doc)
	text := string(readFile(t, dir+"/bars.jsonl"))
	if !strings.Contains(text, `"volume":35.713,`) {
		t.Fatalf("JSON has no volume 35.713:\n%s", text[:min(len(text), 600)])
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d bars, want %d", len(lines), len(want))
	}
	for _, l := range lines {
		var b struct {
			Start  string
			Volume float64
		}
		_ = json.Unmarshal([]byte(l), &b)
		ts, _ := time.Parse(time.RFC3339Nano, b.Start)
		if w := want[ts.UnixNano()]; b.Volume != w {
			t.Fatalf("json: bar %s volume %v, exact sum %v", b.Start, b.Volume, w)
		}
	}
	db := sqliteDB(t, dir+"/md.db")
	rows, err := db.Query("SELECT ts, volume FROM bars_ohlcv")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var ts string
		var v float64
		_ = rows.Scan(&ts, &v)
		tm, _ := time.Parse("2006-01-02T15:04:05.000000Z", ts)
		if w := want[tm.UnixNano()]; v != w {
			t.Fatalf("sqlite: bar %s volume %v, exact sum %v", ts, v, w)
		}
		n++
	}
	rows.Close()
	if n != len(want) {
		t.Fatalf("sqlite: %d bars", n)
	}
	type pbar struct {
		TS     int64   `parquet:"ts"`
		Volume float64 `parquet:"volume"`
	}
	for _, b := range readParquet[pbar](t, dir+"/pq/bars") {
		if w := want[b.TS*1000]; b.Volume != w {
			t.Fatalf("parquet: bar %d volume %v, exact sum %v", b.TS, b.Volume, w)
		}
	}
}
