package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/checkpoint"
	"github.com/mdpio/mdp/internal/crashtest"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/sink/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// tardisFiles writes three replay files made from the real tardis trades:
// BTCUSDT as recorded, ETHUSDT with its times shifted by 7ms and every 40th
// trade 3s early (late for 1s bars, so late_policy update re-emits bars),
// SOLUSDT shifted by 13ms.
func tardisFiles(t *testing.T, dir string) []string {
	t.Helper()
	return crashtest.TardisFiles(t, dir, []crashtest.TardisVariant{
		{Symbol: "BTCUSDT"}, {Symbol: "ETHUSDT", Shift: 7000, Scale: 0.05, Late: 40}, {Symbol: "SOLUSDT", Shift: 13000, Scale: 0.002}})
}

// crashJob writes the job: replay → 1s and 1m bars (late_policy update) →
// SQLite and PostgreSQL, checkpoints every 200ms.
func crashJob(t *testing.T, dir, name string, files []string, db, schema, ckdir string, parallelism int, speed float64) string {
	t.Helper()
	job := fmt.Sprintf(`name: crash
dag:
  nodes:
    - {id: src, type: provider.replay, params: {path: [%s], preset: tardis_trades, speed: %g}}
    - {id: b1s, type: operator.bars, params: {interval: 1s, late_policy: update, allowed_lateness: 1m}, parallelism: %d}
    - {id: b1m, type: operator.bars, params: {interval: 1m, late_policy: update, allowed_lateness: 5m}, parallelism: %d}
    - {id: lite, type: sink.sqlite, params: {path: %q}}
    - {id: pg, type: sink.postgres, params: {dsn: %q, schema: %s}, parallelism: %d}
  edges:
    - [src, b1s]
    - [src, b1m]
    - [b1s, lite]
    - [b1m, lite]
    - [b1s, pg]
    - [b1m, pg]
checkpoint: {interval: 200ms, store: %q, keep: 3}
`, strings.Join(files, ", "), speed, parallelism, parallelism, db, pgDSN(), schema, parallelism, ckdir)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const auditCols = "provider, symbol, bar_type, source, interval, ts, open, high, low, close, volume, vwap, trades"

// prepareSQLite creates the bars table with an audit trigger that logs
// every row version written.
func prepareSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	newRow := "NEW." + strings.ReplaceAll(auditCols, ", ", ", NEW.")
	stmts := []string{sqlite.CreateTable("bars_ohlcv", rowschema.Bar),
		"CREATE TABLE audit (" + auditCols + ")",
		"CREATE TRIGGER audit_ins AFTER INSERT ON bars_ohlcv BEGIN INSERT INTO audit VALUES (" + newRow + "); END",
		"CREATE TRIGGER audit_upd AFTER UPDATE ON bars_ohlcv BEGIN INSERT INTO audit VALUES (" + newRow + "); END",
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return db
}

// preparePG creates a fresh schema with the bars table and an audit trigger.
func preparePG(t *testing.T, conn *pgx.Conn, schema string) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgDSN())
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			_ = c.Close(context.Background())
		}
	})
	for _, s := range []string{
		"CREATE SCHEMA " + schema,
		"CREATE TABLE " + schema + `.bars_ohlcv (provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL,
			open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION, volume DOUBLE PRECISION,
			vwap DOUBLE PRECISION, trades BIGINT, bar_type TEXT NOT NULL, source TEXT NOT NULL,
			PRIMARY KEY (provider, symbol, bar_type, source, interval, ts))`,
		"CREATE TABLE " + schema + ".audit AS SELECT * FROM " + schema + ".bars_ohlcv WITH NO DATA",
		"ALTER TABLE " + schema + ".audit ADD COLUMN n BIGSERIAL",
		"CREATE FUNCTION " + schema + ".audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + schema + ".audit (" + auditCols + ") VALUES (" + strings.ReplaceAll("NEW."+auditCols, ", ", ", NEW.") + "); RETURN NEW; END $$",
		"CREATE TRIGGER audit AFTER INSERT OR UPDATE ON " + schema + ".bars_ohlcv FOR EACH ROW EXECUTE FUNCTION " + schema + ".audit_fn()",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func sqliteRows(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT " + auditCols + " FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p, s, bt, src, iv, ts string
		var o, h, l, c, v, w float64
		var n int64
		if err := rows.Scan(&p, &s, &bt, &src, &iv, &ts, &o, &h, &l, &c, &v, &w, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%d|%v|%v|%v|%v|%v|%v|%d", p, s, bt, src, iv, unixNano(t, ts), o, h, l, c, v, w, n))
	}
	sort.Strings(out)
	return out
}

func unixNano(t *testing.T, ts string) int64 {
	x, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("timestamp %q: %v", ts, err)
	}
	return x.UnixNano()
}

// pgRows reads a table sorted, or the audit in the order it was written
// (ordered: by its serial).
func pgRows(t *testing.T, conn *pgx.Conn, table string, ordered bool) []string {
	t.Helper()
	q := "SELECT " + auditCols + " FROM " + table
	if ordered {
		q += " ORDER BY n"
	}
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p, s, bt, src, iv string
		var ts time.Time
		var o, h, l, c, v, w float64
		var n int64
		if err := rows.Scan(&p, &s, &bt, &src, &iv, &ts, &o, &h, &l, &c, &v, &w, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%d|%v|%v|%v|%v|%v|%v|%d", p, s, bt, src, iv, ts.UnixNano(), o, h, l, c, v, w, n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !ordered {
		sort.Strings(out)
	}
	return out
}

// checkAgainst asserts the final table equals the clean one row for row,
// that every version the audit saw is one a clean run wrote (SQLite's
// audit has every version a run computes; PostgreSQL writes only the last
// of several versions of a row in one batch), and that no row's version
// (its trade count) ever went down.
func checkAgainst(t *testing.T, store string, final, clean, audit, cleanAudit []string) {
	t.Helper()
	if strings.Join(final, "\n") != strings.Join(clean, "\n") {
		t.Errorf("%s: final table differs from the clean run's: %d rows vs %d; first differences: %v", store, len(final), len(clean), firstDiff(final, clean))
	}
	seen := map[string]bool{}
	for _, r := range cleanAudit {
		seen[r] = true
	}
	last := map[string]int64{}
	for _, r := range audit {
		if !seen[r] {
			t.Errorf("%s: the audit has a row version the clean run never wrote: %s", store, r)
		}
		f := strings.Split(r, "|")
		key := strings.Join(f[:6], "|")
		n, _ := strconv.ParseInt(f[12], 10, 64)
		if n < last[key] {
			t.Errorf("%s: row %s went back from %d trades to %d", store, key, last[key], n)
		}
		last[key] = n
	}
}

func firstDiff(a, b []string) []string {
	in := map[string]int{}
	for _, r := range b {
		in[r]++
	}
	var out []string
	for _, r := range a {
		if in[r] == 0 && len(out) < 3 {
			out = append(out, "+"+r)
		}
		in[r]--
	}
	return out
}

// sqliteAuditOrdered reads the audit in the order it was written.
func sqliteAuditOrdered(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT " + auditCols + " FROM audit ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p, s, bt, src, iv, ts string
		var o, h, l, c, v, w float64
		var n int64
		if err := rows.Scan(&p, &s, &bt, &src, &iv, &ts, &o, &h, &l, &c, &v, &w, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%d|%v|%v|%v|%v|%v|%v|%d", p, s, bt, src, iv, unixNano(t, ts), o, h, l, c, v, w, n))
	}
	return out
}

// TestCheckpointKillResume is issue 11's crash test: the replay → bars →
// SQLite and PostgreSQL job killed with SIGKILL at 20 seeded moments and
// resumed each time ends with tables equal to a clean run's, and no row
// ever held values the clean run never wrote; then the same with the
// parallelism changed from 2 to 3 between kills.
func TestCheckpointKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes for about half a minute")
	}
	conn, err := pgx.Connect(context.Background(), pgDSN())
	if err != nil {
		testenv.Missing(t, "PostgreSQL", err.Error(), testenv.PostgresHint)
	}
	defer conn.Close(context.Background())
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	files := tardisFiles(t, dir)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)

	// The clean run: no kill.
	cleanDB := prepareSQLite(t, filepath.Join(dir, "clean.db"))
	preparePG(t, conn, "ck_clean_"+suffix)
	job := crashJob(t, dir, "clean.yaml", files, filepath.Join(dir, "clean.db"), "ck_clean_"+suffix, filepath.Join(dir, "ck-clean"), 1, 0)
	crashtest.Run(t, bin, dir, 2*time.Minute, "run", job)
	clean := sqliteRows(t, cleanDB, "bars_ohlcv")
	cleanAudit := sqliteRows(t, cleanDB, "audit")
	cleanPG := pgRows(t, conn, "ck_clean_"+suffix+".bars_ohlcv", false)
	cleanPGAudit := append(pgRows(t, conn, "ck_clean_"+suffix+".audit", false), cleanAudit...)
	if len(clean) < 100 || len(cleanAudit) <= len(clean) {
		t.Fatalf("the clean run wrote %d bars and %d row versions: the workload must have late updates", len(clean), len(cleanAudit))
	}

	for _, sc := range []struct {
		name       string
		kills      int
		from, to   int // parallelism before and after half the kills
		speed      float64
		minD, maxD time.Duration
	}{
		// Each run is killed a seeded moment after it saved its first
		// checkpoint (crashtest.Options.Store), so the moments fall
		// anywhere in the 200ms checkpoint cycle, kills mid-checkpoint
		// included. A run lives about 0.3-0.8s after its start-up
		// (longer on a loaded machine): the replay speeds leave at least
		// a third of the 3550s of trades for the last run.
		{"kill9x20", 20, 1, 1, 200, 0, 200 * time.Millisecond},
		{"parallelism2to3", 6, 2, 3, 500, 0, 300 * time.Millisecond},
	} {
		t.Run(sc.name, func(t *testing.T) {
			db := filepath.Join(dir, sc.name+".db")
			lite := prepareSQLite(t, db)
			schema := "ck_" + strings.ToLower(sc.name) + "_" + suffix
			preparePG(t, conn, schema)
			ck := filepath.Join(dir, "ck-"+sc.name)
			jobs := map[int]string{}
			for _, p := range []int{sc.from, sc.to} {
				jobs[p] = crashJob(t, dir, fmt.Sprintf("%s-p%d.yaml", sc.name, p), files, db, schema, ck, p, sc.speed)
			}
			res := crashtest.KillResume(t, crashtest.Options{
				Bin: bin, Dir: dir, Kills: sc.kills, Seed: 11, MinDelay: sc.minD, MaxDelay: sc.maxD, Timeout: 2 * time.Minute, Store: ck,
				Args: func(run int) []string {
					if run < sc.kills/2 {
						return []string{"run", jobs[sc.from]}
					}
					return []string{"run", jobs[sc.to]}
				},
			})
			if res.FinishedEarly || res.Kills != sc.kills {
				t.Fatalf("the job finished after %d of %d kills: make it longer", res.Kills, sc.kills)
			}
			// Every run but the first resumed from the checkpoint the one
			// before it saved; the first at the new parallelism from one
			// taken at the old.
			for i, stderr := range res.Stderr[1:] {
				if !strings.Contains(stderr, `"msg":"restored from checkpoint"`) {
					t.Errorf("run %d did not restore a checkpoint; stderr:\n%s", i+2, stderr)
				}
			}
			checkAgainst(t, "sqlite", sqliteRows(t, lite, "bars_ohlcv"), clean, sqliteAuditOrdered(t, lite), cleanAudit)
			checkAgainst(t, "postgres", pgRows(t, conn, schema+".bars_ohlcv", false), cleanPG, pgRows(t, conn, schema+".audit", true), cleanPGAudit)
			t.Logf("%d kills, %d runs", res.Kills, res.Runs)
		})
	}
}

// TestCheckpointTornAndForeign: a truncated latest checkpoint is skipped
// with a warning and the one before it is used; a checkpoint of another
// graph is refused with its message, and --allow-graph-change takes it.
func TestCheckpointTornAndForeign(t *testing.T) {
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "ck")
	job := func(name, extra string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf(`name: torn
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 10000000, step: 1ms}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
%s    - {id: out, type: sink.null}
  edges:
    - [src, bars]
    - [bars, out]
checkpoint: {interval: 20ms, store: %q, keep: 5}
`, extra, ck)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := job("a.yaml", "")
	crashtest.Run(t, bin, dir, time.Minute, "run", a)
	store, err := checkpoint.Open(ck, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := store.IDs()
	if err != nil || len(ids) < 2 {
		t.Fatalf("want at least 2 checkpoints, got %v (%v)", ids, err)
	}
	latest := filepath.Join(ck, checkpoint.FileName(ids[0]))
	data, err := os.ReadFile(latest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(latest, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := crashtest.Run(t, bin, dir, time.Minute, "run", a, "--resume")
	if !strings.Contains(stderr, "checkpoint unreadable; using the one before it") || !strings.Contains(stderr, fmt.Sprintf(`"id":%d`, ids[1])) {
		t.Errorf("a torn latest checkpoint: want a warning and checkpoint %d used; stderr:\n%s", ids[1], stderr)
	}

	// Another graph: a node added.
	b := job("b.yaml", "    - {id: extra, type: operator.bars, params: {interval: 1m}}\n    - {id: out2, type: sink.null}\n")
	bb, _ := os.ReadFile(b)
	bb = []byte(strings.Replace(string(bb), "    - [bars, out]\n", "    - [bars, out]\n    - [src, extra]\n    - [extra, out2]\n", 1))
	if err := os.WriteFile(b, bb, 0o644); err != nil {
		t.Fatal(err)
	}
	p := crashtest.Start(t, bin, dir, "run", b, "--resume")
	code, stderr := p.Wait(t, time.Minute)
	if code != 2 || !strings.Contains(stderr, "the checkpoint was taken from another graph") || !strings.Contains(stderr, "--allow-graph-change") {
		t.Errorf("foreign graph: exit %d, want 2 with the refusal; stderr:\n%s", code, stderr)
	}
	stderr = crashtest.Run(t, bin, dir, time.Minute, "run", b, "--resume", "--allow-graph-change")
	if !strings.Contains(stderr, "restored from checkpoint") || !strings.Contains(stderr, `"node":"extra"`) {
		t.Errorf("--allow-graph-change: want a restore with extra starting empty; stderr:\n%s", stderr)
	}
}

// TestCheckpointSuspend: SIGTERM of an unbounded synthetic job with open 1m
// bars suspends it after a final checkpoint (nothing partial written); the
// resumed run, stopped the same way, leaves exactly the bars an
// uninterrupted run has for every minute that closed.
func TestCheckpointSuspend(t *testing.T) {
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "ck")
	write := func(name, params, db string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf(`name: suspend
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], step: 1ms%s}}
    - {id: bars, type: operator.bars, params: {interval: 1m}, parallelism: 2}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges:
    - [src, bars]
    - [bars, store]
checkpoint: {interval: 100ms, store: %q}
`, params, db, ck)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	db := filepath.Join(dir, "run.db")
	job := write("job.yaml", "", db)
	for i, args := range [][]string{{"run", job}, {"run", job, "--resume"}} {
		p := crashtest.Start(t, bin, dir, args...)
		time.Sleep(700 * time.Millisecond)
		p.Signal(syscall.SIGTERM)
		code, stderr := p.Wait(t, time.Minute)
		if code != 0 || !strings.Contains(stderr, "job suspended") {
			t.Fatalf("run %d: exit %d, want 0 and a suspend; stderr:\n%s", i, code, stderr)
		}
	}
	store, err := checkpoint.Open(ck, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !last.Final {
		t.Errorf("the latest checkpoint %d is not the final one of a suspend", last.ID)
	}
	var emitted, wm int64
	for _, n := range last.Nodes {
		if n.ID == "src" {
			emitted, wm = n.Instances[0].Emitted, n.Instances[0].Watermark
		}
	}
	// The uninterrupted run: the same records and more (what flowed after
	// the final barrier until the suspend ended the process is written
	// too), bounded, drained.
	refDB := filepath.Join(dir, "ref.db")
	crashtest.Run(t, bin, dir, time.Minute, "run", write("ref.yaml", fmt.Sprintf(", count: %d", emitted+1_000_000), refDB))
	got := sqliteRowsAt(t, db)
	ref := map[string]string{}
	for _, r := range sqliteRowsAt(t, refDB) {
		ref[strings.Join(strings.Split(r, "|")[:6], "|")] = r
	}
	closed := time.Unix(0, wm).UTC()
	have := map[string]bool{}
	for _, r := range got {
		key := strings.Join(strings.Split(r, "|")[:6], "|")
		have[key] = true
		if ref[key] != r {
			t.Errorf("bar %s: suspended and resumed run wrote %s, the uninterrupted run %s", key, r, ref[key])
		}
	}
	n := 0
	for key, r := range ref {
		ns, _ := strconv.ParseInt(strings.Split(r, "|")[5], 10, 64)
		if time.Unix(0, ns).Add(time.Minute).After(closed) {
			continue
		}
		n++
		if !have[key] {
			t.Errorf("bar %s closed before the final checkpoint but the suspended run never wrote it", key)
		}
	}
	if n == 0 {
		t.Errorf("no bar closed before the final checkpoint (watermark %s): the test proves nothing", closed)
	}
}

func sqliteRowsAt(t *testing.T, path string) []string {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return sqliteRows(t, db, "bars_ohlcv")
}

// TestCheckpointClassicBatcher: a classic job's batcher holds bars until
// flush_interval; on a checkpoint barrier it emits them ahead of the
// barrier (engine.BarrierHandler), so a job killed after a checkpoint and
// resumed loses none of them.
func TestCheckpointClassicBatcher(t *testing.T) {
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	write := func(name, db string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf(`mode: classic
classic:
  spec:
    name: batcher
    source:    {type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], count: 45000000, step: 1ms}}
    operators: [{type: operator.bars, params: {interval: 1s}}]
    batcher:   {max_rows: 1000000, max_bytes: 100000000, flush_interval: 1h, drop_policy: block}
    sink:      {type: sink.sqlite, params: {path: %q}}
checkpoint: {interval: 50ms, store: %q}
`, db, filepath.Join(dir, "ck-"+name))
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crashtest.Run(t, bin, dir, time.Minute, "run", write("clean.yaml", filepath.Join(dir, "clean.db")))
	job := write("crash.yaml", filepath.Join(dir, "crash.db"))
	res := crashtest.KillResume(t, crashtest.Options{Bin: bin, Dir: dir, Kills: 2, Seed: 3, MinDelay: 0, MaxDelay: 100 * time.Millisecond,
		Timeout: time.Minute, Store: filepath.Join(dir, "ck-crash.yaml"), Args: func(int) []string { return []string{"run", job} }})
	if res.Kills != 2 {
		t.Fatalf("the job finished after %d of 2 kills", res.Kills)
	}
	if !strings.Contains(res.Stderr[1], `"msg":"restored from checkpoint"`) {
		t.Errorf("the second run did not restore a checkpoint; stderr:\n%s", res.Stderr[1])
	}
	got, want := sqliteRowsAt(t, filepath.Join(dir, "crash.db")), sqliteRowsAt(t, filepath.Join(dir, "clean.db"))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after %d kills: %d bars, want %d; missing: %v", res.Kills, len(got), len(want), firstDiff(want, got))
	}
}

// TestCheckpointFrom: mdp run --from restores the chosen checkpoint, by id
// in the job's store or by file: run into an empty database, it writes
// exactly the bars a clean run closed after that checkpoint (the ones
// before were in the stores when it was taken), each equal to the clean
// run's; an id the store does not hold is refused.
func TestCheckpointFrom(t *testing.T) {
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "ck")
	write := func(name, db string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf(`name: from
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 3000000, step: 1ms}}
    - {id: bars, type: operator.bars, params: {interval: 1s}, parallelism: 2}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges:
    - [src, bars]
    - [bars, store]
checkpoint: {interval: 20ms, store: %q, keep: 1000}
`, db, ck)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cleanDB := filepath.Join(dir, "clean.db")
	crashtest.Run(t, bin, dir, time.Minute, "run", write("clean.yaml", cleanDB))
	store, err := checkpoint.Open(ck, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := store.IDs()
	if err != nil || len(ids) < 3 {
		t.Fatalf("want at least 3 checkpoints, got %v (%v)", ids, err)
	}
	id := ids[len(ids)/2] // neither the first nor the latest
	cp, err := store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var wm int64
	for _, n := range cp.Nodes {
		if n.ID == "src" {
			wm = n.Instances[0].Watermark
		}
	}
	clean := map[string]string{}
	for _, r := range sqliteRowsAt(t, cleanDB) {
		clean[strings.Join(strings.Split(r, "|")[:6], "|")] = r
	}
	for _, from := range []string{strconv.FormatInt(id, 10), filepath.Join(ck, checkpoint.FileName(id))} {
		db := filepath.Join(dir, fmt.Sprintf("from-%d.db", len(from)))
		stderr := crashtest.Run(t, bin, dir, time.Minute, "run", write("from.yaml", db), "--from", from)
		if !strings.Contains(stderr, "restored from checkpoint") || !strings.Contains(stderr, fmt.Sprintf(`"id":%d`, id)) {
			t.Errorf("--from %s: no restore of checkpoint %d in the log:\n%s", from, id, stderr)
		}
		got := map[string]bool{}
		for _, r := range sqliteRowsAt(t, db) {
			key := strings.Join(strings.Split(r, "|")[:6], "|")
			got[key] = true
			if clean[key] != r {
				t.Errorf("--from %s: bar %s is %s, the clean run's %s", from, key, r, clean[key])
			}
		}
		before, after := 0, 0
		for key, r := range clean {
			start, _ := strconv.ParseInt(strings.Split(r, "|")[5], 10, 64)
			end := start + int64(time.Second)
			switch {
			case end > wm:
				after++
				if !got[key] {
					t.Errorf("--from %s: bar %s closed after checkpoint %d (watermark %d) but was not written", from, key, id, wm)
				}
			case end < wm:
				before++
				if got[key] {
					t.Errorf("--from %s: bar %s closed before checkpoint %d (watermark %d) but was written again: the run did not resume there", from, key, id, wm)
				}
			}
		}
		if before == 0 || after == 0 {
			t.Fatalf("checkpoint %d splits the clean run's bars %d before / %d after: the test proves nothing", id, before, after)
		}
	}
	p := crashtest.Start(t, bin, dir, "run", write("none.yaml", filepath.Join(dir, "none.db")), "--from", "999999")
	if code, stderr := p.Wait(t, time.Minute); code == 0 || !strings.Contains(stderr, "checkpoint 999999") {
		t.Errorf("--from an id the store lacks: exit %d, want a failure naming it; stderr:\n%s", code, stderr)
	}
}
