package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dump returns every row of table as text, in key order.
func dump(t testing.TB, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + quoteIdent(table) + " ORDER BY 1, 2, 3, 4")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWritesEveryKindWithExactValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "md.db")
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(1000, 7), Trades: storetest.GenTrades(500, 3),
		Quotes: storetest.GenQuotes(300, 2), BatchSize: 64}
	j, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path, "workers": 3, "batch_rows": 100}, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var n int
	if err := db.QueryRow("SELECT count(*) FROM bars_ohlcv").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("bars: %d rows, err %v", n, err)
	}
	// Bar 8 is SYM001's second bar: sec 1, k 1, base 101.01.
	var prov, sym, iv, ts string
	var o, h, l, c, v, vw float64
	var tr int64
	err = db.QueryRow(`SELECT provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades
		FROM bars_ohlcv WHERE symbol = 'SYM001' AND ts = '2024-01-02T14:30:01.000000Z'`).Scan(&prov, &sym, &iv, &ts, &o, &h, &l, &c, &v, &vw, &tr)
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.GenBars(1000, 7)[8]
	if prov != "sim" || sym != "SYM001" || iv != "1s" || ts != "2024-01-02T14:30:01.000000Z" ||
		o != want.Open || h != want.High || l != want.Low || c != want.Close || v != want.Volume || vw != want.VWAP || tr != want.Trades {
		t.Fatalf("bar row = %s %s %s %s %v %v %v %v %v %v %d, want %+v", prov, sym, iv, ts, o, h, l, c, v, vw, tr, want)
	}
	var price, size float64
	var id int64
	var side string
	if err := db.QueryRow(`SELECT ts, trade_id, price, size, side FROM trades WHERE symbol = 'SYM002' ORDER BY ts LIMIT 1 OFFSET 1`).
		Scan(&ts, &id, &price, &size, &side); err != nil {
		t.Fatal(err)
	}
	wt := storetest.GenTrades(500, 3)[5]
	if ts != "2024-01-02T14:30:00.005000Z" || id != wt.TradeID || price != wt.Price || size != wt.Size || side != wt.Side.String() {
		t.Fatalf("trade row = %s %d %v %v %s, want %+v", ts, id, price, size, side, wt)
	}
	var bid, bs, ask, as float64
	var seq int64
	if err := db.QueryRow(`SELECT ts, seq, bid, bid_size, ask, ask_size FROM quotes WHERE symbol = 'SYM000' AND seq = 3`).
		Scan(&ts, &seq, &bid, &bs, &ask, &as); err != nil {
		t.Fatal(err)
	}
	wq := storetest.GenQuotes(300, 2)[2]
	if ts != "2024-01-02T14:30:00.002000Z" || bid != wq.Bid || bs != wq.BidSize || ask != wq.Ask || as != wq.AskSize {
		t.Fatalf("quote row = %s %d %v %v %v %v, want %+v", ts, seq, bid, bs, ask, as, wq)
	}
	for table, want := range map[string]int{"trades": 500, "quotes": 300} {
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != want {
			t.Fatalf("%s: %d rows, want %d (err %v)", table, n, want, err)
		}
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	st := storetest.Stats(t, j)
	if st.RowsWritten.Load() != 1800 || st.RowsChanged.Load() != 1800 || st.RowsDeadLettered.Load() != 0 || st.QueueRows.Load() != 0 {
		t.Fatalf("stats: written %d changed %d dead %d queued %d", st.RowsWritten.Load(), st.RowsChanged.Load(), st.RowsDeadLettered.Load(), st.QueueRows.Load())
	}
	if h := st.Latency(); h.Count != uint64(st.BatchesWritten.Load()) || h.Count == 0 {
		t.Fatalf("latency histogram count %d, batches %d", h.Count, st.BatchesWritten.Load())
	}
}

func TestRerunLeavesTableIdenticalAndRewritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	params := map[string]any{"path": path}
	run := func() *storekit.Stats {
		src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(2000, 10), Trades: storetest.GenTrades(100, 2), BatchSize: 500}
		j, err := storetest.Run(context.Background(), src, "sink.sqlite", params, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Stats(t, j)
	}
	first := run()
	db := openDB(t, path)
	before := dump(t, db, "bars_ohlcv")
	second := run()
	after := dump(t, db, "bars_ohlcv")
	if len(before) != 2000 || strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("table changed by the re-run (%d rows before, %d after)", len(before), len(after))
	}
	if first.RowsChanged.Load() != 2100 || second.RowsChanged.Load() != 0 || second.RowsWritten.Load() != 2100 {
		t.Fatalf("changed rows: first %d, second %d (written %d)", first.RowsChanged.Load(), second.RowsChanged.Load(), second.RowsWritten.Load())
	}
	// A changed value is rewritten, and only that row.
	bars := storetest.GenBars(2000, 10)
	bars[42].Close = 12345.5
	src := &storetest.Source{Provider: "sim", Bars: bars, BatchSize: 500}
	j, err := storetest.Run(context.Background(), src, "sink.sqlite", params, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := storetest.Stats(t, j).RowsChanged.Load(); got != 1 {
		t.Fatalf("changed rows after one edit: %d, want 1", got)
	}
	var c float64
	if err := db.QueryRow(`SELECT close FROM bars_ohlcv WHERE symbol = 'SYM002' AND ts = '2024-01-02T14:30:04.000000Z'`).Scan(&c); err != nil || c != 12345.5 {
		t.Fatalf("close = %v (%v)", c, err)
	}
}

func TestRejectedRowGoesToDeadLetterWithReason(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bars.db")
	db := openDB(t, path)
	// The same table the sink would create, plus a CHECK the bad row fails.
	if _, err := db.Exec(`CREATE TABLE bars_ohlcv (provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, ts TEXT NOT NULL,
		open REAL, high REAL, low REAL, close REAL, volume REAL, vwap REAL, trades INTEGER, bar_type TEXT NOT NULL, source TEXT NOT NULL,
		CHECK (high >= low), PRIMARY KEY (provider, symbol, bar_type, source, interval, ts)) WITHOUT ROWID`); err != nil {
		t.Fatal(err)
	}
	bars := storetest.GenBars(2000, 4)
	bars[777].High = bars[777].Low - 1
	src := &storetest.Source{Provider: "sim", Bars: bars, BatchSize: 1000}
	dl := filepath.Join(dir, "dl", "rejected.jsonl")
	j, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path, "dead_letter_path": dl}, engine.Options{})
	if err != nil {
		t.Fatalf("job failed: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM bars_ohlcv").Scan(&n); err != nil || n != 1999 {
		t.Fatalf("%d rows stored (%v), want 1999", n, err)
	}
	lines := storetest.ReadDeadLetters(t, dl)
	if len(lines) != 1 {
		t.Fatalf("%d dead-letter lines, want 1", len(lines))
	}
	r := lines[0]
	want := bars[777]
	if r.Symbol != want.Symbol || r.Provider != "sim" || r.Kind != "bar" || r.Class != "data" || r.Node != "store" ||
		r.Start != md.FormatTime(want.Start) || float64(*r.High) != want.High || float64(*r.Low) != want.Low ||
		!strings.Contains(r.Error, "CHECK constraint failed") || !strings.Contains(r.Error, "upsert bar SYM001 trade 1s time 2024-01-02T14:33:14Z") {
		t.Fatalf("dead-letter record %+v", r)
	}
	st := j.Status().Nodes[1]
	if st.Errors["rejected"] != 1 || st.Drops["dead_letter"] != 1 || !strings.Contains(st.LastError, "1 bar row(s) rejected by the store, written to "+dl) {
		t.Fatalf("status errors %v drops %v last %q", st.Errors, st.Drops, st.LastError)
	}
	if ss := storetest.Stats(t, j); ss.RowsDeadLettered.Load() != 1 || ss.BatchesDeadLettered.Load() != 1 || ss.RowsWritten.Load() != 1999 {
		t.Fatalf("stats: dead %d/%d written %d", ss.RowsDeadLettered.Load(), ss.BatchesDeadLettered.Load(), ss.RowsWritten.Load())
	}
}

func TestWrongSchemaFailsBeforeDataFlows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	db := openDB(t, path)
	if _, err := db.Exec(`CREATE TABLE bars_ohlcv (provider TEXT, symbol TEXT, ts TEXT, close REAL)`); err != nil {
		t.Fatal(err)
	}
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(10, 1)}
	_, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path}, engine.Options{})
	want := `node "store": open: sqlite ` + path + `: table bars_ohlcv exists but has no column interval, open, high, low, volume, vwap, trades, bar_type, source, partial; it needs (provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades, bar_type, source, partial) ` +
		`(bars tables made before mdp keyed bars by bar_type and source need them in the primary key: rename the table, or set table to a new one)`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// A table with the columns but no key on them cannot take upserts.
	path2 := filepath.Join(t.TempDir(), "bars.db")
	db2 := openDB(t, path2)
	if _, err := db2.Exec(`CREATE TABLE bars_ohlcv (provider TEXT, symbol TEXT, interval TEXT, ts TEXT, open REAL, high REAL, low REAL, close REAL, volume REAL, vwap REAL, trades INTEGER, bar_type TEXT, source TEXT)`); err != nil {
		t.Fatal(err)
	}
	_, err = storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path2}, engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "table bars_ohlcv: prepare upsert (the table needs a primary key or unique index on provider, symbol, bar_type, source, interval, ts)") {
		t.Fatalf("err = %v", err)
	}
}

// The kill test re-executes the test binary as a child that runs a paced
// job into the database; the parent kills it with SIGKILL part-way, re-runs
// the whole job, and compares the table with a clean run's.
const childEnv = "MDP_SQLITE_KILL_CHILD"

func killJobBars() []storetest.Bar { return storetest.GenBars(20000, 20) }

func TestKillMidJobThenRerunEqualsCleanRun(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		return // the child runs in TestMain
	}
	dir := t.TempDir()
	killed := filepath.Join(dir, "killed.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+killed)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child reports committed rows, then kill it.
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	var seen int64
	for sc.Scan() {
		if n, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "written "), 10, 64); err == nil && n >= 3000 {
			seen = n
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if seen == 0 {
		t.Fatal("the child never reported committed rows")
	}
	db := openDB(t, killed)
	var partial int
	if err := db.QueryRow("SELECT count(*) FROM bars_ohlcv").Scan(&partial); err != nil {
		t.Fatal(err)
	}
	if partial < 3000 || partial >= 20000 {
		t.Fatalf("after the kill the table has %d rows; want a partial run (>= 3000, < 20000)", partial)
	}
	// Re-run to the end over the killed file, and a clean run elsewhere.
	if _, err := storetest.Run(context.Background(), &storetest.Source{Provider: "sim", Bars: killJobBars(), BatchSize: 500},
		"sink.sqlite", map[string]any{"path": killed}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	clean := filepath.Join(dir, "clean.db")
	if _, err := storetest.Run(context.Background(), &storetest.Source{Provider: "sim", Bars: killJobBars(), BatchSize: 500},
		"sink.sqlite", map[string]any{"path": clean}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	a, b := dump(t, db, "bars_ohlcv"), dump(t, openDB(t, clean), "bars_ohlcv")
	if len(a) != 20000 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("re-run after kill: %d rows; clean run: %d rows; equal=%v", len(a), len(b), strings.Join(a, "\n") == strings.Join(b, "\n"))
	}
}

// runKillChild is the child side: a slow paced job that prints the rows
// committed so far.
func runKillChild(path string) {
	src := &storetest.Source{Provider: "sim", Bars: killJobBars(), BatchSize: 500, Rate: 10000}
	j, err := storetest.Job(src, "sink.sqlite", map[string]any{"path": path, "batch_rows": 1000}, 1, engine.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := j.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st := j.NodeContexts("store")[0].Stats.Extra.Load().(*storekit.Stats)
	for {
		select {
		case <-j.Done():
			fmt.Println("done")
			os.Exit(0)
		case <-time.After(20 * time.Millisecond):
			fmt.Printf("written %d\n", st.RowsWritten.Load())
		}
	}
}

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		runKillChild(path)
		return
	}
	os.Exit(m.Run())
}

func TestClassify(t *testing.T) {
	w := &Writer{}
	if c := w.Classify(storekit.DataError(errors.New("x"))); c != storekit.ClassData {
		t.Fatalf("DataError classified %s", c)
	}
	if c := w.Classify(errors.New("sql: database is closed")); c != storekit.ClassFatal {
		t.Fatalf("plain error classified %s", c)
	}
}

func TestLaterEmissionOfTheSameBarWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	bars := storetest.GenBars(200, 2)
	// An updated bar (late data, late_policy: update) in the same write as
	// the original, inside one multi-row statement and across statements.
	upd := bars[3]
	upd.Close, upd.Update = 999.25, true
	upd2 := bars[150]
	upd2.Volume, upd2.Update = 4242, true
	bars = append(bars[:10:10], append([]storetest.Bar{upd}, bars[10:]...)...)
	bars = append(bars, upd2)
	src := &storetest.Source{Provider: "sim", Bars: bars, BatchSize: 1000}
	j, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path, "workers": 1}, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path)
	var c, v float64
	var n int
	if err := db.QueryRow(`SELECT close FROM bars_ohlcv WHERE symbol = ? AND ts = ?`, upd.Symbol, formatTS(upd.Start)).Scan(&c); err != nil || c != 999.25 {
		t.Fatalf("close = %v (%v)", c, err)
	}
	if err := db.QueryRow(`SELECT volume FROM bars_ohlcv WHERE symbol = ? AND ts = ?`, upd2.Symbol, formatTS(upd2.Start)).Scan(&v); err != nil || v != 4242 {
		t.Fatalf("volume = %v (%v)", v, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM bars_ohlcv`).Scan(&n); err != nil || n != 200 {
		t.Fatalf("%d rows (%v)", n, err)
	}
	if ch := storetest.Stats(t, j).RowsChanged.Load(); ch != 202 {
		t.Fatalf("changed %d rows, want 202 (200 inserts, 2 updates)", ch)
	}
}

// TestCannotOpenSaysWhichPathAndWhy: SQLite's bare "unable to open database
// file (14)" now names the path and the reason.
func TestCannotOpenSaysWhichPathAndWhy(t *testing.T) {
	dir := t.TempDir()
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(1, 1)}
	_, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": dir}, engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "sqlite "+dir+": cannot open the database file: it is a directory (unable to open database file") {
		t.Fatalf("err = %v", err)
	}
}

// tables lists the tables in the database file at path.
func tables(t *testing.T, path string) []string {
	t.Helper()
	rows, err := openDB(t, path).Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// A bars-only job creates the bars table and no trades or quotes table,
// both into a new file and into an existing one.
func TestCreatesOnlyTheTablesOfTheKindsReceived(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(50, 2)}
	if _, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, path); strings.Join(got, ",") != "bars_ohlcv" {
		t.Fatalf("tables after a bars-only job: %v, want [bars_ohlcv]", got)
	}
	// A trades job into the same file adds the trades table only.
	tsrc := &storetest.Source{Provider: "sim", Trades: storetest.GenTrades(30, 2)}
	if _, err := storetest.Run(context.Background(), tsrc, "sink.sqlite", map[string]any{"path": path}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, path); strings.Join(got, ",") != "bars_ohlcv,trades" {
		t.Fatalf("tables after a trades job: %v, want [bars_ohlcv trades]", got)
	}
}

// failingSource fails before emitting anything.
type failingSource struct{}

func (failingSource) Run(ctx context.Context, out *engine.Output) error {
	return errors.New("feed unreachable")
}
func (failingSource) Kind() md.Kind { return md.KindBar }

// A job that fails before any data leaves no database file (nor the
// directory the sink would have made for it).
func TestJobFailingBeforeDataLeavesNoFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	path := filepath.Join(dir, "bars.db")
	_, err := storetest.Run(context.Background(), failingSource{}, "sink.sqlite", map[string]any{"path": path}, engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "feed unreachable") {
		t.Fatalf("err = %v, want the source's failure", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists after a job that wrote nothing (stat: %v)", dir, err)
	}
}

// TestOlderVersionOfABarNeverReplacesANewerOne: a bar's version is its
// trade count (rowschema.Bar.Version). A replay after a restore from a
// checkpoint may write a bar as it was before a late update; the stored,
// updated row must stay. A newer version, or the same version with other
// values, still replaces it.
func TestOlderVersionOfABarNeverReplacesANewerOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	bars := storetest.GenBars(50, 2)
	bars[7].Trades, bars[8].Trades = 10, 10
	write := func(bs []storetest.Bar) {
		t.Helper()
		src := &storetest.Source{Provider: "sim", Bars: bs, BatchSize: 1000}
		if _, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path, "workers": 1}, engine.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	write(bars)
	older := append([]storetest.Bar(nil), bars...)
	older[7].Trades, older[7].Close = 9, 1.5                // an older version: ignored
	older[8].Trades, older[8].Close = 10, 2.5               // the same version, other values: replaces
	older[9].Trades, older[9].Close = bars[9].Trades+1, 3.5 // a newer version: replaces
	write(older)
	db := openDB(t, path)
	for _, c := range []struct {
		b      storetest.Bar
		trades int64
		close  float64
	}{{bars[7], 10, bars[7].Close}, {bars[8], 10, 2.5}, {bars[9], bars[9].Trades + 1, 3.5}} {
		var n int64
		var cl float64
		if err := db.QueryRow(`SELECT trades, close FROM bars_ohlcv WHERE symbol = ? AND ts = ?`, c.b.Symbol, formatTS(c.b.Start)).Scan(&n, &cl); err != nil {
			t.Fatal(err)
		}
		if n != c.trades || cl != c.close {
			t.Errorf("bar %s %s: trades %d close %v, want %d %v", c.b.Symbol, formatTS(c.b.Start), n, cl, c.trades, c.close)
		}
	}
}

// TestPartialColumnAddedToOldTable: a bars table made before bars carried
// the partial flag gets the column (0 for the rows already there), and a
// partial bar is stored as 1.
func TestPartialColumnAddedToOldTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bars.db")
	db := openDB(t, path)
	if _, err := db.Exec(`CREATE TABLE bars_ohlcv (provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, ts TEXT NOT NULL,
		open REAL, high REAL, low REAL, close REAL, volume REAL, vwap REAL, trades INTEGER, bar_type TEXT NOT NULL, source TEXT NOT NULL,
		PRIMARY KEY (provider, symbol, bar_type, source, interval, ts)) WITHOUT ROWID`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO bars_ohlcv VALUES ('old', 'X', '1s', '2020-01-01T00:00:00.000000Z', 1, 1, 1, 1, 0, 1, 1, 'time', 'trade')`); err != nil {
		t.Fatal(err)
	}
	bars := storetest.GenBars(10, 2)
	bars[3].Partial = true
	src := &storetest.Source{Provider: "sim", Bars: bars}
	if _, err := storetest.Run(context.Background(), src, "sink.sqlite", map[string]any{"path": path}, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT provider, symbol, ts, partial FROM bars_ohlcv ORDER BY provider, symbol, ts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var partial []string
	n := 0
	for rows.Next() {
		var prov, sym, ts string
		var p int64
		if err := rows.Scan(&prov, &sym, &ts, &p); err != nil {
			t.Fatal(err)
		}
		n++
		if p != 0 {
			partial = append(partial, sym+" "+ts)
		}
	}
	want := bars[3].Symbol + " " + formatTS(bars[3].Start)
	if n != 11 || len(partial) != 1 || partial[0] != want {
		t.Fatalf("%d rows, partial %v, want 11 rows and only %s", n, partial, want)
	}
}

// TestTwoSinksCreateOneFile: two sinks writing their first rows into the
// same new file at the same moment (the ibkr_to_store example's trade and
// mid bar stores) both succeed. Switching the new file to WAL is a lock
// upgrade SQLite's busy timeout does not wait for, so one of them used to
// fail at once with SQLITE_BUSY (within tens of rounds here). Each round
// is a new file, both writers released together.
func TestTwoSinksCreateOneFile(t *testing.T) {
	ctx := context.Background()
	syms := []md.Instrument{{Provider: "p", Symbol: "X"}}
	dir := t.TempDir()
	for round := range 150 {
		path := filepath.Join(dir, fmt.Sprintf("%d.db", round))
		ws := []*Writer{{Path: path, BarsTable: "trade_bars"}, {Path: path, BarsTable: "mid_bars"}}
		for _, w := range ws {
			if err := w.Open(ctx, storekit.Env{}); err != nil {
				t.Fatal(err)
			}
		}
		start := make(chan struct{})
		errs := make(chan error, len(ws))
		for i, w := range ws {
			go func() {
				<-start
				b := &storekit.Batch{Kind: md.KindBar, Symbols: syms, Bars: []md.Bar{
					{Start: 60e9, End: 120e9, Interval: 60e9, Open: 1, High: 2, Low: 1, Close: float64(i + 1), Trades: 1}}}
				err := w.Write(ctx, b)
				if cerr := w.Close(ctx); err == nil {
					err = cerr
				}
				errs <- err
			}()
		}
		close(start)
		for range ws {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		db := openDB(t, path)
		for i, table := range []string{"trade_bars", "mid_bars"} {
			var n int
			var closePx float64
			if err := db.QueryRow("SELECT count(*), max(close) FROM "+table).Scan(&n, &closePx); err != nil || n != 1 || closePx != float64(i+1) {
				t.Fatalf("round %d: %s holds %d rows, close %v (%v), want 1 row, close %d", round, table, n, closePx, err, i+1)
			}
		}
		db.Close()
	}
}
