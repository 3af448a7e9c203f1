package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

// openWriter opens a writer on a fresh schema.
func openWriter(t *testing.T, conn *pgx.Conn, o Options, workers int) (*Writer, string) {
	t.Helper()
	if o.Schema == "" {
		o.Schema = newSchema(t, conn)
	}
	if o.DSN == "" {
		o.DSN = testDSN()
	}
	w := newWriter(o)
	ctx := context.Background()
	if err := w.Open(ctx, storekit.Env{Workers: workers}); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, pgx.Identifier{o.Schema, w.opts.BarsTable}.Sanitize()
}

// writePath is one way a batch can take: the array upsert, COPY into the
// temp stage and upsert, or direct COPY first.
type writePath struct {
	name      string
	threshold int
	direct    bool
}

// writePaths returns the three paths, COPY ones for batches of at least
// copyAt rows.
func writePaths(copyAt int) []writePath {
	return []writePath{{"array_upsert", 1 << 30, false}, {"copy_upsert", copyAt, false}, {"direct_copy", copyAt, true}}
}

func writeBars(t *testing.T, w *Writer, worker int, bars []md.Bar, syms []md.Instrument) {
	t.Helper()
	if err := w.Write(context.Background(), &storekit.Batch{Kind: md.KindBar, Bars: bars, Symbols: syms, Worker: worker, Attempt: 1}); err != nil {
		t.Fatalf("write %d bars: %v", len(bars), err)
	}
}

func TestWriteBarsExactValuesBothPaths(t *testing.T) {
	conn := connectTest(t)
	for _, tc := range []struct {
		name      string
		n         int
		threshold int
		direct    bool
	}{
		{"array_upsert", 300, 1000, false},
		{"copy_upsert", 2500, 1000, false},
		{"direct_copy", 2500, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, syms := testSymbols(7)
			w, table := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: tc.threshold, DirectCopy: tc.direct}, 2)
			bars := genBars(tc.n, 7)
			// One bar labelled by its end, one with a 5m interval, one
			// with extreme values: each must round-trip exactly.
			last := &bars[tc.n-1]
			last.LabelEnd = true
			bars[2].Interval, bars[2].End = int64(5*time.Minute), bars[2].Start+int64(5*time.Minute)
			bars[3].Open, bars[3].VWAP, bars[3].Trades = 1e-300, 123456789.123456789, 1<<62
			bars[5].Partial = true
			writeBars(t, w, 0, bars, syms)
			var partial []int64
			if err := conn.QueryRow(context.Background(), "SELECT array_agg(partial ORDER BY partial) FROM "+table).Scan(&partial); err != nil {
				t.Fatal(err)
			}
			if len(partial) != tc.n || partial[tc.n-1] != 1 || partial[tc.n-2] != 0 {
				t.Fatalf("partial column: %d rows, last two %v, want one 1", len(partial), partial[max(0, len(partial)-2):])
			}
			if got := w.RowsChanged(); got != int64(tc.n) {
				t.Fatalf("RowsChanged = %d, want %d", got, tc.n)
			}
			got := readBars(t, conn, table)
			compareBars(t, got, expectBars(bars, syms))
			// Spot-check the text forms of the special rows.
			var iv string
			var ts time.Time
			if err := conn.QueryRow(context.Background(), "SELECT interval, ts FROM "+table+
				" WHERE symbol = 'SYM002' AND ts = $1", time.Unix(0, bars[2].Start)).Scan(&iv, &ts); err != nil {
				t.Fatal(err)
			}
			if iv != "5m" || !ts.Equal(time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC)) {
				t.Fatalf("5m bar stored as interval %q ts %s", iv, ts)
			}
			if err := conn.QueryRow(context.Background(), "SELECT max(ts) FROM "+table+
				" WHERE symbol = $1", syms[last.Sym].Symbol).Scan(&ts); err != nil {
				t.Fatal(err)
			}
			if !ts.Equal(time.Unix(0, last.Start)) {
				t.Fatalf("bar labelled by its end stored at %s, want its start %s (ts is always the start)", ts.UTC(), md.FormatTime(last.Start))
			}
		})
	}
}

func TestDuplicateKeysInOneBatchLastWins(t *testing.T) {
	conn := connectTest(t)
	for _, pc := range writePaths(2) {
		t.Run(pc.name, func(t *testing.T) {
			_, syms := testSymbols(3)
			w, table := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: pc.threshold, DirectCopy: pc.direct}, 1)
			bars := genBars(9, 3)
			// Re-emit bar 4 twice with corrected values (late_policy:
			// update), and bar 0 once; the last emission must win.
			u1 := bars[4]
			u1.Close, u1.Volume, u1.Update = 555.5, 9999, true
			u2 := u1
			u2.Close, u2.Trades = 666.25, 77
			u0 := bars[0]
			u0.High, u0.Update = 1000, true
			batch := append(append([]md.Bar{}, bars...), u1, u0, u2)
			writeBars(t, w, 0, batch, syms)
			got := readBars(t, conn, table)
			compareBars(t, got, expectBars(batch, syms))
			if got := w.RowsChanged(); got != 9 {
				t.Fatalf("RowsChanged = %d, want 9 (one per key)", got)
			}
			var c float64
			var n int64
			if err := conn.QueryRow(context.Background(), "SELECT close, trades FROM "+table+" WHERE symbol = $1 AND ts = $2",
				syms[bars[4].Sym].Symbol, time.Unix(0, bars[4].Start)).Scan(&c, &n); err != nil {
				t.Fatal(err)
			}
			if c != 666.25 || n != 77 {
				t.Fatalf("updated bar: close %v trades %d, want 666.25 and 77", c, n)
			}
		})
	}
}

// xmins maps each row's key to its xmin (the transaction that wrote the row
// version): unchanged xmin means the row was not rewritten.
func xmins(t *testing.T, conn *pgx.Conn, table string) map[string]uint32 {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT symbol || '|' || interval || '|' || ts::text, xmin::text::bigint FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint32{}
	for rows.Next() {
		var k string
		var x int64
		if err := rows.Scan(&k, &x); err != nil {
			t.Fatal(err)
		}
		out[k] = uint32(x)
	}
	return out
}

func TestRerunRewritesNothingAndChangesOnlyWhatDiffers(t *testing.T) {
	conn := connectTest(t)
	for _, pc := range writePaths(10) {
		t.Run(pc.name, func(t *testing.T) {
			_, syms := testSymbols(5)
			w, table := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: pc.threshold, DirectCopy: pc.direct}, 2)
			bars := genBars(500, 5)
			writeBars(t, w, 0, bars, syms)
			before := xmins(t, conn, table)
			changed := w.RowsChanged()
			// The same rows again, from the other worker's connection.
			writeBars(t, w, 1, bars, syms)
			if d := w.RowsChanged() - changed; d != 0 {
				t.Fatalf("re-run changed %d rows, want 0", d)
			}
			after := xmins(t, conn, table)
			for k, x := range before {
				if after[k] != x {
					t.Fatalf("row %s rewritten by an identical re-run (xmin %d -> %d)", k, x, after[k])
				}
			}
			// One value differs: exactly that row is rewritten.
			bars2 := append([]md.Bar(nil), bars...)
			bars2[123].VWAP += 0.5
			writeBars(t, w, 0, bars2, syms)
			if d := w.RowsChanged() - changed; d != 1 {
				t.Fatalf("changing one bar changed %d rows, want 1", d)
			}
			after = xmins(t, conn, table)
			rewritten := 0
			for k, x := range before {
				if after[k] != x {
					rewritten++
				}
			}
			if rewritten != 1 {
				t.Fatalf("%d rows rewritten, want 1", rewritten)
			}
			compareBars(t, readBars(t, conn, table), expectBars(bars2, syms))
		})
	}
}

func TestTradesAndQuotesGoToTheirTables(t *testing.T) {
	conn := connectTest(t)
	for _, pc := range writePaths(1) {
		t.Run(pc.name, func(t *testing.T) {
			_, syms := testSymbols(2)
			w, _ := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: pc.threshold, DirectCopy: pc.direct,
				TradesTable: "tr_" + randSuffix(), QuotesTable: "qu_" + randSuffix()}, 1)
			ctx := context.Background()
			trades := []md.Trade{
				{TS: t0 + 1234567, Ingest: t0 + 2000000, Price: 101.25, Size: 3, TradeID: 77, Seq: 1, Sym: 0, Side: md.SideBuy},
				{TS: t0 + 1234567, Ingest: t0 + 2000001, Price: 99.5, Size: 0.125, TradeID: 78, Seq: 2, Sym: 1, Side: md.SideSell},
				{TS: t0 + 5000000, Ingest: t0 + 6000000, Price: 100, Size: 1, TradeID: 79, Seq: 3, Sym: 0},
				// A replay of trade 77 with a corrected size: same key.
				{TS: t0 + 1234567, Ingest: t0 + 7000000, Price: 101.25, Size: 4, TradeID: 77, Seq: 1, Sym: 0, Side: md.SideBuy},
			}
			if err := w.Write(ctx, &storekit.Batch{Kind: md.KindTrade, Trades: trades, Symbols: syms}); err != nil {
				t.Fatal(err)
			}
			quotes := []md.Quote{
				{TS: t0 + 1000, Ingest: t0 + 2000, Bid: 100.5, BidSize: 10, Ask: 100.75, AskSize: 12, Seq: 5, Sym: 1},
				{TS: t0 + 3000, Ingest: t0 + 4000, Bid: 100.25, BidSize: 1, Ask: 101, AskSize: 2, Seq: 6, Sym: 1},
			}
			if err := w.Write(ctx, &storekit.Batch{Kind: md.KindQuote, Quotes: quotes, Symbols: syms}); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.Query(ctx, "SELECT provider, symbol, ts, price, size, side, trade_id FROM "+
				w.targets[1].name+" ORDER BY trade_id")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var p, s, side string
				var ts time.Time
				var px, sz float64
				var id int64
				if err := rows.Scan(&p, &s, &ts, &px, &sz, &side, &id); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %s %s %v %v %s %d", p, s, ts.UTC().Format(time.RFC3339Nano), px, sz, side, id))
			}
			rows.Close()
			want := []string{
				"test SYM000 2024-01-02T14:30:00.001234Z 101.25 4 buy 77",
				"test SYM001 2024-01-02T14:30:00.001234Z 99.5 0.125 sell 78",
				"test SYM000 2024-01-02T14:30:00.005Z 100 1 unknown 79",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("trades:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			rows, err = conn.Query(ctx, "SELECT provider, symbol, ts, bid, bid_size, ask, ask_size, seq FROM "+
				w.targets[2].name+" ORDER BY seq")
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for rows.Next() {
				var p, s string
				var ts time.Time
				var bid, bs, ask, as float64
				var seq int64
				if err := rows.Scan(&p, &s, &ts, &bid, &bs, &ask, &as, &seq); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %s %s %v %v %v %v %d", p, s, ts.UTC().Format(time.RFC3339Nano), bid, bs, ask, as, seq))
			}
			rows.Close()
			want = []string{
				"test SYM001 2024-01-02T14:30:00.000001Z 100.5 10 100.75 12 5",
				"test SYM001 2024-01-02T14:30:00.000003Z 100.25 1 101 2 6",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("quotes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := count(t, conn, w.targets[0].name); n != 0 {
				t.Fatalf("bars table holds %d rows, want 0", n)
			}
		})
	}
}

func TestSchemaProblemsFailOpenWithClearMessage(t *testing.T) {
	conn := connectTest(t)
	ctx := context.Background()
	schema := newSchema(t, conn)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	open := func(o Options) error {
		o.DSN, o.Schema = testDSN(), schema
		w := newWriter(o)
		err := w.Open(ctx, storekit.Env{Workers: 1})
		_ = w.Close(ctx)
		return err
	}
	cfg, err := pgx.ParseConfig(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	prefix := serverName(cfg) + ": "
	if !strings.HasPrefix(prefix, "postgres ") || strings.Contains(prefix, "://") {
		t.Fatalf("server name %q", prefix)
	}

	// A missing table without create_tables: Open succeeds (the job may
	// never write that kind), the first write of the kind fails fatally.
	w := newWriter(Options{DSN: testDSN(), Schema: schema, BarsTable: "missing", CreateTables: false})
	if err := w.Open(ctx, storekit.Env{Workers: 1}); err != nil {
		t.Fatalf("open with missing tables: %v", err)
	}
	_, syms := testSymbols(1)
	err = w.Write(ctx, &storekit.Batch{Kind: md.KindBar, Bars: genBars(1, 1), Symbols: syms})
	_ = w.Close(ctx)
	want := prefix + `table "` + schema + `"."missing" does not exist and create_tables is false: create it or set create_tables: true`
	if err == nil || err.Error() != want || w.Classify(err) != storekit.ClassFatal {
		t.Fatalf("missing table:\n got  %v (%v)\n want %s", err, w.Classify(err), want)
	}

	if _, err := conn.Exec(ctx, "CREATE TABLE "+schema+`.wrongtype (provider TEXT, symbol TEXT, interval TEXT,
		ts TIMESTAMP, open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION, close REAL,
		volume DOUBLE PRECISION, trades BIGINT, PRIMARY KEY (provider, symbol, interval, ts))`); err != nil {
		t.Fatal(err)
	}
	err = open(Options{BarsTable: "wrongtype", CreateTables: true})
	want = prefix + `table "` + schema + `"."wrongtype" does not fit the bars schema: column ts is timestamp without time zone, want TIMESTAMPTZ; column close is real, want DOUBLE PRECISION; column vwap is missing (want DOUBLE PRECISION); column bar_type is missing (want TEXT); column source is missing (want TEXT); column partial is missing (want BIGINT) ` +
		`(bars tables made before mdp keyed bars by bar_type and source need both in the primary key: rename the table, or set table to a new one)`
	if err == nil || err.Error() != want {
		t.Fatalf("wrong types:\n got  %v\n want %s", err, want)
	}
	if c := newWriter(Options{}).Classify(err); c != storekit.ClassFatal {
		t.Fatalf("schema error classified %v, want fatal", c)
	}

	if _, err := conn.Exec(ctx, "CREATE TABLE "+schema+`.nokey (provider TEXT, symbol TEXT, interval TEXT,
		ts TIMESTAMPTZ, open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION,
		volume DOUBLE PRECISION, vwap DOUBLE PRECISION, trades BIGINT, bar_type TEXT, source TEXT, extra TEXT DEFAULT 'x')`); err != nil {
		t.Fatal(err)
	}
	err = open(Options{BarsTable: "nokey", CreateTables: true})
	want = prefix + `table "` + schema + `"."nokey" has no primary key or unique index on (provider, symbol, bar_type, source, interval, ts), which the upsert needs`
	if err == nil || err.Error() != want {
		t.Fatalf("no key:\n got  %v\n want %s", err, want)
	}
	// Adding the key makes the same table usable; extra columns are left
	// to their defaults. It predates the partial column: without
	// create_tables mdp says what to run, with it mdp adds the column.
	if _, err := conn.Exec(ctx, "ALTER TABLE "+schema+".nokey ADD PRIMARY KEY (ts, interval, source, bar_type, symbol, provider)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".nokey VALUES ('p', 's', '1s', now(), 1, 1, 1, 1, 0, 1, 1, 'time', 'trade')"); err != nil {
		t.Fatal(err)
	}
	err = open(Options{BarsTable: "nokey", CreateTables: false})
	want = prefix + `table "` + schema + `"."nokey" lacks column(s) this mdp writes and create_tables is false: run ALTER TABLE "` + schema + `"."nokey" ADD COLUMN IF NOT EXISTS "partial" BIGINT NOT NULL DEFAULT 0`
	if err == nil || err.Error() != want {
		t.Fatalf("old table without create_tables:\n got  %v\n want %s", err, want)
	}
	if err := open(Options{BarsTable: "nokey", CreateTables: true}); err != nil {
		t.Fatalf("table with key and an extra column: %v", err)
	}
	var partial int64
	if err := conn.QueryRow(ctx, "SELECT partial FROM "+schema+".nokey").Scan(&partial); err != nil || partial != 0 {
		t.Fatalf("partial of the old row: %d (%v)", partial, err)
	}
	if err := open(Options{BarsTable: "nokey", CreateTables: false}); err != nil {
		t.Fatalf("migrated table without create_tables: %v", err)
	}
}

func TestReconnectsAfterConnectionLoss(t *testing.T) {
	conn := connectTest(t)
	ctx := context.Background()
	app := "mdp_test_" + randSuffix()
	dsn := testDSN()
	if strings.Contains(dsn, "?") {
		dsn += "&application_name=" + app
	} else {
		dsn += "?application_name=" + app
	}
	_, syms := testSymbols(4)
	w, table := openWriter(t, conn, Options{DSN: dsn, CreateTables: true, CopyThreshold: 50}, 1)
	bars := genBars(200, 4)
	writeBars(t, w, 0, bars[:100], syms) // COPY path: the temp stage now exists on this connection
	var killed int
	if err := conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d backends, want 1", killed)
	}
	b := &storekit.Batch{Kind: md.KindBar, Bars: bars[100:], Symbols: syms}
	err := w.Write(ctx, b)
	if err == nil {
		t.Fatal("write on a terminated connection succeeded")
	}
	if c := w.Classify(err); c != storekit.ClassTransient {
		t.Fatalf("error after terminate classified %v, want transient: %v", c, err)
	}
	// The retry reconnects and recreates the temp stage.
	if err := w.Write(ctx, b); err != nil {
		t.Fatalf("retry after reconnect: %v", err)
	}
	compareBars(t, readBars(t, conn, table), expectBars(bars, syms))
}

func TestConcurrentOpenCreatesTablesOnce(t *testing.T) {
	conn := connectTest(t)
	schema := newSchema(t, conn)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			w := newWriter(Options{DSN: testDSN(), Schema: schema, CreateTables: true})
			err := w.Open(context.Background(), storekit.Env{Workers: 1})
			_ = w.Close(context.Background())
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d tables in %s, want 3 (bars, trades, quotes)", n, schema)
	}
}

// Direct COPY is tried on new data, falls back to the upsert when a key is
// stored, and backs off: after a conflict the next 1, then 2, 4, … batches
// skip the attempt; a successful attempt resets the back-off.
func TestDirectCopyFallsBackAndBacksOff(t *testing.T) {
	conn := connectTest(t)
	_, syms := testSymbols(4)
	w, table := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: 10, DirectCopy: true}, 1)
	wk := w.workers[0]
	bars := genBars(400, 4)
	a, b, c := bars[:100], bars[100:200], bars[200:300]

	writeBars(t, w, 0, a, syms) // new: direct
	if wk.staged[0] || wk.backoff[0] != 0 || w.RowsChanged() != 100 {
		t.Fatalf("new data: staged %v backoff %d changed %d; want the direct path", wk.staged[0], wk.backoff[0], w.RowsChanged())
	}
	writeBars(t, w, 0, a, syms) // stored: conflict, merged, nothing changed
	if !wk.staged[0] || wk.backoff[0] != 1 || wk.skip[0] != 1 || w.RowsChanged() != 100 {
		t.Fatalf("re-run: staged %v backoff %d skip %d changed %d", wk.staged[0], wk.backoff[0], wk.skip[0], w.RowsChanged())
	}
	writeBars(t, w, 0, b, syms) // new, but skipped: merged
	if wk.skip[0] != 0 || wk.backoff[0] != 1 || w.RowsChanged() != 200 {
		t.Fatalf("after skip: backoff %d skip %d changed %d", wk.backoff[0], wk.skip[0], w.RowsChanged())
	}
	writeBars(t, w, 0, c, syms) // new: direct again, back-off reset
	if wk.backoff[0] != 0 || w.RowsChanged() != 300 {
		t.Fatalf("direct again: backoff %d changed %d", wk.backoff[0], w.RowsChanged())
	}
	// Repeated conflicts double the back-off up to maxDirectSkip.
	want := []int{1, 2, 4, 8, 16, 32, 64, 64}
	for i, wb := range want {
		writeBars(t, w, 0, a, syms)
		if wk.backoff[0] != wb {
			t.Fatalf("conflict %d: backoff %d, want %d", i+1, wk.backoff[0], wb)
		}
		for wk.skip[0] > 0 {
			writeBars(t, w, 0, a, syms)
		}
	}
	if w.RowsChanged() != 300 {
		t.Fatalf("re-runs changed %d rows", w.RowsChanged()-300)
	}
	compareBars(t, readBars(t, conn, table), expectBars(bars[:300], syms))
}

// With TimescaleDB installable the tables become hypertables on ts; without
// it (as on the development machine) they stay plain tables and Open
// succeeds. Whichever the server offers is what the test checks.
func TestHypertableWhenTimescaleAvailable(t *testing.T) {
	conn := connectTest(t)
	ctx := context.Background()
	var available bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')").Scan(&available); err != nil {
		t.Fatal(err)
	}
	w, _ := openWriter(t, conn, Options{CreateTables: true}, 1)
	for _, tg := range w.targets {
		hyper, err := isHypertable(ctx, conn, tg)
		if err != nil {
			t.Fatal(err)
		}
		if available {
			// Enabling can still fail (not in shared_preload_libraries):
			// then the sink keeps a plain table, as it logs.
			var installed bool
			_ = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").Scan(&installed)
			if installed && !hyper {
				t.Fatalf("%s is not a hypertable although timescaledb is installed", tg.name)
			}
		} else if hyper {
			t.Fatalf("%s is a hypertable without timescaledb", tg.name)
		}
	}
	t.Logf("timescaledb available: %v", available)
}

// TestOlderVersionOfABarNeverReplacesANewerOne: a bar's version is its
// trade count (rowschema.Bar.Version); on every write path an older version
// (a replay after a restore from a checkpoint) leaves the stored row alone,
// while the same version with other values, or a newer one, replaces it.
func TestOlderVersionOfABarNeverReplacesANewerOne(t *testing.T) {
	conn := connectTest(t)
	for _, pc := range writePaths(10) {
		t.Run(pc.name, func(t *testing.T) {
			_, syms := testSymbols(5)
			w, table := openWriter(t, conn, Options{CreateTables: true, CopyThreshold: pc.threshold, DirectCopy: pc.direct}, 1)
			bars := genBars(100, 5)
			bars[7].Trades, bars[8].Trades = 10, 10
			writeBars(t, w, 0, bars, syms)
			changed := w.RowsChanged()
			next := append([]md.Bar(nil), bars...)
			next[7].Trades, next[7].Close = 9, 1.5 // older: ignored
			next[8].Close = 2.5                    // same version, other values: replaces
			next[9].Trades, next[9].Close = bars[9].Trades+1, 3.5
			writeBars(t, w, 0, next, syms)
			if d := w.RowsChanged() - changed; d != 2 {
				t.Errorf("changed %d rows, want 2", d)
			}
			want := append([]md.Bar(nil), next...)
			want[7] = bars[7]
			compareBars(t, readBars(t, conn, table), expectBars(want, syms))
		})
	}
}
