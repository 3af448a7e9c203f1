// Package sqlite is the sink.sqlite component: mdp's default store, a local
// SQLite file written through modernc.org/sqlite (pure Go, no cgo, no
// server). Bars go to bars_ohlcv, trades to trades, quotes to quotes and
// derived records to a table named by their schema, chosen by record kind;
// every write is an upsert on the natural key that changes a row only when
// a value differs, one transaction per batch, in WAL mode, so re-running a
// job leaves the tables exactly as one run does and rewrites no row.
// Batching, workers, retries, the circuit breaker, the dead-letter file and
// store feedback come from package storekit.
//
// Tables have package rowschema's stored columns (created if missing;
// WITHOUT ROWID, keyed on the natural key):
//
//	bars_ohlcv(provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades, bar_type, source, partial)
//	    primary key (provider, symbol, bar_type, source, interval, ts)
//	trades(provider, symbol, ts, price, size, side, trade_id, seq)
//	    primary key (provider, symbol, ts, trade_id)
//	quotes(provider, symbol, ts, bid, bid_size, ask, ask_size, seq)
//	    primary key (provider, symbol, ts, seq)
//	<schema name>(provider, symbol, ts, <fields: REAL or INTEGER>)
//	    primary key (provider, symbol, ts)
//
// interval is the bar's own interval as text (1s, 1m, 5m, 1h; the threshold
// for bars that are not time bars); bar_type is time, tick, volume, value,
// tick_imbalance or volume_imbalance; source is trade, mid, bid or ask, so trade bars and quote bars of one
// symbol are separate rows. ts is the bar's start (trades, quotes and
// derived records: their event time) in UTC as fixed-width RFC 3339 text
// with microseconds, "2024-01-02T14:30:00.000000Z", so text order is time
// order and SQLite's date functions read it. Microseconds match PostgreSQL
// timestamptz and the Parquet sink. side is buy, sell or unknown. A trade
// without a provider trade id has trade_id 0, so two such trades of one
// symbol in the same microsecond share a key: the later one wins.
//
// The file is created at the first write and each table at the first
// write of its kind; when the file exists already, Open creates or checks
// the tables of the kinds the graph sends, so a table that does not fit
// fails the job before data flows. A job that fails before any data leaves
// no file, and a bars-only job creates no trades or quotes table. A
// bars_ohlcv table made by an mdp before bar_type and source existed does
// not fit (its key lacks them): rename it or set table.
//
// SQLite allows one writer at a time, so the sink uses one connection and
// its workers take turns on it, one transaction each; workers: 1 and the
// default 2 write at about the same rate (BenchmarkSQLite reports both).
// Within a transaction rows are written grouped by instrument in key order,
// which keeps consecutive upserts on the same B-tree pages, and 64 rows per
// statement.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/recfmt"
	"github.com/mdpio/mdp/retry"
	"github.com/mdpio/mdp/sink/storekit"
)

func init() {
	component.Register(component.Spec{
		Type: "sink.sqlite", Kind: engine.KindSink,
		Summary: "Upsert bars, trades, quotes and derived records into a local SQLite file (default store; no server, no cgo).",
		Description: "Writes bars to bars_ohlcv(provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades, " +
			"bar_type, source, partial) keyed on (provider, symbol, bar_type, source, interval, ts), trades to trades(provider, symbol, ts, " +
			"price, size, side, trade_id, seq) keyed on (provider, symbol, ts, trade_id), quotes to quotes(provider, symbol, ts, " +
			"bid, bid_size, ask, ask_size, seq) keyed on (provider, symbol, ts, seq), and derived records to a table named by " +
			"their schema (provider, symbol, ts and the declared fields) keyed on (provider, symbol, ts). The file is created " +
			"at the first write and only the tables of the kinds received. Writes are upserts that change a row only when a " +
			"value differs, one transaction per batch, in WAL mode: a re-run leaves the tables as one run does and rewrites " +
			"no row. ts is UTC text with microseconds (2024-01-02T14:30:00.000000Z).",
		Accepts: md.KindAny,
		Fields: append([]component.Field{
			{Name: "path", Type: component.String, Required: true, Path: true, Description: "SQLite database file; created with its directory if missing.", Example: "data/bars.db"},
			{Name: "table", Type: component.String, Default: "bars_ohlcv", Description: "Table for bars."},
			{Name: "trades_table", Type: component.String, Default: "trades", Description: "Table for trades."},
			{Name: "quotes_table", Type: component.String, Default: "quotes", Description: "Table for quotes."},
			{Name: "synchronous", Type: component.String, Default: "normal", Enum: []string{"normal", "full"},
				Description: "SQLite synchronous mode. normal (WAL): a commit survives a crash of mdp; full: also a power loss, at some speed."},
		}, storekit.Fields(storekit.Defaults{Workers: 2, QueueSize: 100000, BatchRows: 10000, DeadLetter: "<path>.dead_letter.jsonl"})...),
		Validate: func(p *component.Params) error {
			var errs []error
			if strings.ContainsAny(p.String("path"), "?#") {
				errs = append(errs, p.Errorf("path", "path %q must not contain ? or #", p.String("path")))
			}
			for _, k := range []string{"table", "trades_table", "quotes_table"} {
				if p.String(k) == "" {
					errs = append(errs, p.Errorf(k, "%s must not be empty", k))
				}
			}
			errs = append(errs, storekit.Validate(p))
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			cfg, err := storekit.ConfigFrom(p)
			if err != nil {
				return nil, err
			}
			w := &Writer{Path: p.String("path"), BarsTable: p.String("table"), TradesTable: p.String("trades_table"),
				QuotesTable: p.String("quotes_table"), Synchronous: p.String("synchronous")}
			cfg.DefaultDeadLetterPath = w.Path + ".dead_letter.jsonl"
			return storekit.New(w, cfg), nil
		},
	})
}

// timeLayout is how ts columns are written: RFC 3339 UTC, fixed width, with
// microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Writer is the SQLite storekit.Writer. Its exported fields are its
// settings; empty table names take the defaults.
//
// The database file is created at the first write, and each table at the
// first write of its kind (or at Open, for the kinds the graph sends, when
// the file already exists, so a table that does not fit fails the job before
// data flows): a job that fails before any data leaves no file behind, and a
// bars-only job creates no trades or quotes table.
type Writer struct {
	Path        string
	BarsTable   string // default bars_ohlcv
	TradesTable string // default trades
	QuotesTable string // default quotes
	Synchronous string // normal (default) or full

	db     *sql.DB
	mu     sync.Mutex // one writer at a time on the one connection
	conn   *sql.Conn
	tables map[string]*sqlTable // by table name
	args   []any
	order  []int32 // row order of the current write
	rank   []int32 // by SymID: the instrument's place in (provider, symbol) order
	stats  *storekit.Stats
	inputs md.Kind
	scs    []*md.Schema
}

// sqlTable is one target table with its prepared upserts.
type sqlTable struct {
	def       *rowschema.Table
	name      string
	chunk     int // rows per multi-row upsert
	one, many *sql.Stmt
}

// busyTimeout is how long a connection waits for another one's lock
// (SQLite's busy_timeout), and how long open retries the one lock wait
// SQLite does not cover (see open).
const busyTimeout = 10 * time.Second

// DSN returns the database/sql data source name for path: WAL, a generous
// busy timeout (another process reading the file) and immediate
// transactions, so a writer never fails half-way on a lock upgrade. The
// switch of a new file to WAL is a lock upgrade SQLite's busy timeout does
// not wait for: a connection made with this DSN can fail with SQLITE_BUSY
// at once while another converts the same new file; retry the connection
// (the sink's open does).
func DSN(path, synchronous string) string {
	if synchronous == "" {
		synchronous = "normal"
	}
	ms := strconv.FormatInt(busyTimeout.Milliseconds(), 10)
	return path + "?_pragma=busy_timeout(" + ms + ")&_busy_timeout=" + ms + "&_journal_mode=WAL&_synchronous=" + strings.ToUpper(synchronous) + "&_txlock=immediate"
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// sqlType is the SQLite column type of a rowschema type.
func sqlType(t rowschema.Type) string {
	switch t {
	case rowschema.Float:
		return "REAL"
	case rowschema.Int, rowschema.Bool:
		return "INTEGER"
	}
	return "TEXT" // text, and times as fixed-width RFC 3339
}

// CreateTable returns the CREATE TABLE statement of table laid out as def:
// def's stored columns, key columns NOT NULL, the key as primary key,
// WITHOUT ROWID.
func CreateTable(table string, def *rowschema.Table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + quoteIdent(table) + " (")
	for _, c := range def.Stored() {
		b.WriteString(quoteIdent(c.Name) + " " + sqlType(c.Type))
		if def.IsKey(c.Name) {
			b.WriteString(" NOT NULL")
		}
		b.WriteString(", ")
	}
	q := make([]string, len(def.Key))
	for i, k := range def.Key {
		q[i] = quoteIdent(k)
	}
	b.WriteString("PRIMARY KEY (" + strings.Join(q, ", ") + ")) WITHOUT ROWID")
	return b.String()
}

// upsertSQL returns the upsert statement of one row into table laid out as def.
// The DO UPDATE runs only when some value differs (IS NOT treats NULLs as
// values), so an unchanged row is not rewritten, and, when def has a
// Version column, only when the new row's version is at least the stored
// one's.
func upsertSQL(table string, def *rowschema.Table) string { return upsertRowsSQL(table, def, 1) }

// upsertRowsSQL is upsertSQL for rows rows per statement (a multi-row VALUES
// list): fewer statement executions per transaction, the same effect as
// rows single-row upserts in order. Parameters are def's stored columns in
// order, row after row.
func upsertRowsSQL(table string, def *rowschema.Table, rows int) string {
	cols := def.StoredNames()
	values := def.ValueNames()
	quote := func(names []string) []string {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = quoteIdent(n)
		}
		return q
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	set := make([]string, len(values))
	diff := make([]string, len(values))
	for i, v := range quote(values) {
		set[i] = v + " = excluded." + v
		diff[i] = v + " IS NOT excluded." + v
	}
	return "INSERT INTO " + quoteIdent(table) + " (" + strings.Join(quote(cols), ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(tuple+",", rows), ",") +
		" ON CONFLICT (" + strings.Join(quote(def.Key), ", ") + ") DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (" + strings.Join(diff, " OR ") + ")" + monotone(def)
}

// monotone is the upsert condition that keeps a row's version from going
// down (def.Version): a replay of older output after a restore from a
// checkpoint never moves a row backwards.
func monotone(def *rowschema.Table) string {
	if def.Version == "" {
		return ""
	}
	v := quoteIdent(def.Version)
	return " AND (" + v + " IS NULL OR excluded." + v + " >= " + v + ")"
}

// chunkRows is how many rows one multi-row upsert carries, at most: a bar
// row has 13 columns, 13 × 64 = 832 parameters, far below SQLite's limit of
// 32766; a wide derived table gets fewer rows per statement.
const (
	chunkRows = 64
	maxParams = 32766
)

func (w *Writer) defaults() {
	if w.BarsTable == "" {
		w.BarsTable = "bars_ohlcv"
	}
	if w.TradesTable == "" {
		w.TradesTable = "trades"
	}
	if w.QuotesTable == "" {
		w.QuotesTable = "quotes"
	}
}

// tableOf returns the layout and table name of records of kind k (schema
// sc for derived records).
func (w *Writer) tableOf(k md.Kind, sc *md.Schema) (*rowschema.Table, string, error) {
	switch k {
	case md.KindBar:
		return rowschema.Bar, w.BarsTable, nil
	case md.KindTrade:
		return rowschema.Trade, w.TradesTable, nil
	case md.KindQuote:
		return rowschema.Quote, w.QuotesTable, nil
	case md.KindDerived:
		if sc == nil {
			return nil, "", errors.New("derived records without a schema")
		}
		for _, t := range []string{w.BarsTable, w.TradesTable, w.QuotesTable} {
			if strings.EqualFold(t, sc.Name()) {
				return nil, "", fmt.Errorf("derived records %s would be stored in table %s, which holds another record kind: rename the schema or the table", sc.Name(), t)
			}
		}
		return rowschema.Derived(sc), sc.Name(), nil
	}
	return nil, "", fmt.Errorf("no table for %s records", k)
}

// Open checks the settings and, when the database file exists already,
// creates or checks the tables of the kinds the graph sends to the sink, so
// a table that does not fit fails the job before data flows. A missing file
// is created at the first write.
func (w *Writer) Open(ctx context.Context, env storekit.Env) error {
	w.defaults()
	w.stats = env.Stats
	w.tables = map[string]*sqlTable{}
	if env.Node != nil {
		w.inputs, w.scs = env.Node.Inputs, env.Node.InputSchemas
	}
	for _, sc := range w.scs {
		if _, _, err := w.tableOf(md.KindDerived, sc); err != nil {
			return storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
		}
	}
	if _, err := os.Stat(w.Path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.open(ctx); err != nil {
		return err
	}
	for _, k := range []md.Kind{md.KindBar, md.KindTrade, md.KindQuote} {
		if w.inputs&k != 0 {
			if _, err := w.table(ctx, k, nil); err != nil {
				return err
			}
		}
	}
	for _, sc := range w.scs {
		if _, err := w.table(ctx, md.KindDerived, sc); err != nil {
			return err
		}
	}
	return nil
}

// open opens (creating it and its directory if missing) the database.
// Errors are fatal: retrying does not make a path writable.
func (w *Writer) open(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	if dir := filepath.Dir(w.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
		}
	}
	db, err := sql.Open("sqlite", DSN(w.Path, w.Synchronous))
	if err != nil {
		return storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
	}
	db.SetMaxOpenConns(1)
	conn, err := connect(ctx, db)
	if err != nil {
		db.Close()
		if why := cantOpen(w.Path, err); why != "" {
			return storekit.Fatal(fmt.Errorf("sqlite %s: cannot open the database file: %s (%w)", w.Path, why, err))
		}
		return storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
	}
	w.db, w.conn = db, conn
	return nil
}

// connect takes db's connection and runs its first statement, which
// creates the file and switches it to WAL (the DSN's journal_mode).
//
// Switching a new file to WAL rewrites its header: the connection takes a
// read lock, then upgrades it to a write lock, and SQLite's busy handler
// is never called for an upgrade (it could deadlock), so when another
// connection — a second sink on the same file, in this process or
// another — converts or first writes the same new file at that moment,
// the connection fails at once with SQLITE_BUSY instead of waiting
// busy_timeout. connect retries such a failure with retry's backoff until
// busyTimeout has passed; once the file is WAL the switch is a no-op and
// takes no write lock, so the retry succeeds.
func connect(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	backoff := retry.Backoff{Base: time.Millisecond, Max: 100 * time.Millisecond}
	deadline := time.Now().Add(busyTimeout)
	for attempt := 1; ; attempt++ {
		conn, err := db.Conn(ctx)
		if err == nil {
			if _, err = conn.ExecContext(ctx, "SELECT 1"); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			return conn, nil
		}
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return nil, err
		}
		if serr := retry.Sleep(ctx, backoff.Delay(attempt)); serr != nil {
			return nil, err
		}
	}
}

// cantOpen explains SQLite's bare "unable to open database file (14)"
// (SQLITE_CANTOPEN) by trying what SQLite tried: "" when err is something
// else or the file opens after all.
func cantOpen(path string, err error) string {
	if !strings.Contains(err.Error(), "unable to open database file") {
		return ""
	}
	if st, serr := os.Stat(path); serr == nil && st.IsDir() {
		return "it is a directory"
	}
	f, oerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if oerr != nil {
		var pe *fs.PathError
		if errors.As(oerr, &pe) {
			return pe.Err.Error()
		}
		return oerr.Error()
	}
	f.Close()
	// The database opens; its journal beside it may not (the directory is
	// read-only).
	dir := filepath.Dir(path)
	probe, perr := os.CreateTemp(dir, ".mdp-probe-*")
	if perr != nil {
		return fmt.Sprintf("cannot create files in %s (SQLite keeps its journal there): %v", dir, errors.Unwrap(perr))
	}
	probe.Close()
	os.Remove(probe.Name())
	return ""
}

// table returns the table of kind k (schema sc), creating it if missing,
// checking its columns and preparing its upserts the first time. The
// caller holds w.mu.
func (w *Writer) table(ctx context.Context, k md.Kind, sc *md.Schema) (*sqlTable, error) {
	def, name, err := w.tableOf(k, sc)
	if err != nil {
		return nil, storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
	}
	if t := w.tables[name]; t != nil {
		if t.def.Schema != nil && !t.def.Schema.Equal(sc) {
			return nil, storekit.Fatal(fmt.Errorf("sqlite %s: table %s holds %s, got records of %s", w.Path, name, t.def.Schema, sc))
		}
		return t, nil
	}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	t, err := w.prepare(ctx, def, name)
	if err != nil {
		return nil, storekit.Fatal(fmt.Errorf("sqlite %s: %w", w.Path, err))
	}
	w.tables[name] = t
	return t, nil
}

func (w *Writer) prepare(ctx context.Context, def *rowschema.Table, name string) (*sqlTable, error) {
	if _, err := w.conn.ExecContext(ctx, CreateTable(name, def)); err != nil {
		return nil, fmt.Errorf("create table %s: %w", name, err)
	}
	if err := addColumns(ctx, w.conn, name, def); err != nil {
		return nil, err
	}
	if err := checkColumns(ctx, w.conn, name, def.StoredNames()); err != nil {
		if def.Kind == md.KindBar && strings.Contains(err.Error(), "bar_type") {
			err = fmt.Errorf("%w (bars tables made before mdp keyed bars by bar_type and source need them in the primary key: rename the table, or set table to a new one)", err)
		}
		return nil, err
	}
	t := &sqlTable{def: def, name: name, chunk: min(chunkRows, maxParams/len(def.StoredNames()))}
	one, err := w.conn.PrepareContext(ctx, upsertSQL(name, def))
	if err != nil {
		return nil, fmt.Errorf("table %s: prepare upsert (the table needs a primary key or unique index on %s): %w",
			name, strings.Join(def.Key, ", "), err)
	}
	t.one = one
	many, err := w.conn.PrepareContext(ctx, upsertRowsSQL(name, def, t.chunk))
	if err != nil {
		one.Close()
		return nil, fmt.Errorf("table %s: prepare upsert: %w", name, err)
	}
	t.many = many
	return t, nil
}

// columnsOf returns the lower-cased column names of table.
func columnsOf(ctx context.Context, conn *sql.Conn, table string) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, fmt.Errorf("table %s: read columns: %w", table, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("table %s: read columns: %w", table, err)
		}
		have[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s: read columns: %w", table, err)
	}
	return have, nil
}

// addColumns migrates a table made by an earlier mdp: each column rowschema
// marks Added that the table lacks is added with its zero value as default
// (a bar's partial flag: 0), so existing rows read as they were written.
// A table that lacks other columns too is left alone for checkColumns to
// refuse.
func addColumns(ctx context.Context, conn *sql.Conn, table string, def *rowschema.Table) error {
	have, err := columnsOf(ctx, conn, table)
	if err != nil {
		return err
	}
	for _, c := range def.Stored() {
		if !c.Added && !have[c.Name] {
			return nil
		}
	}
	for _, c := range def.Stored() {
		if !c.Added || have[c.Name] {
			continue
		}
		zero := "''"
		if c.Type != rowschema.Text && c.Type != rowschema.Time {
			zero = "0"
		}
		if _, err := conn.ExecContext(ctx, "ALTER TABLE "+quoteIdent(table)+" ADD COLUMN "+quoteIdent(c.Name)+" "+sqlType(c.Type)+" NOT NULL DEFAULT "+zero); err != nil {
			return fmt.Errorf("table %s: add column %s: %w", table, c.Name, err)
		}
	}
	return nil
}

// checkColumns fails with a clear message when an existing table lacks a
// column the sink writes.
func checkColumns(ctx context.Context, conn *sql.Conn, table string, want []string) error {
	have, err := columnsOf(ctx, conn, table)
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range want {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s exists but has no column %s; it needs (%s)", table, strings.Join(missing, ", "), strings.Join(want, ", "))
	}
	return nil
}

// Write upserts the batch in one transaction.
func (w *Writer) Write(ctx context.Context, b *storekit.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t, err := w.table(ctx, b.Kind, b.Schema)
	if err != nil {
		return err
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	changed, err := w.exec(ctx, tx, t, b)
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if w.stats != nil {
		w.stats.RowsChanged.Add(changed)
	}
	return nil
}

// flag is a Bool column's stored value.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// exec writes b's rows: each row's parameters are its table's stored
// columns in rowschema order.
func (w *Writer) exec(ctx context.Context, tx *sql.Tx, t *sqlTable, b *storekit.Batch) (int64, error) {
	switch b.Kind {
	case md.KindBar:
		var ivText string
		lastIv, lastType := int64(-1), md.BarType(0)
		return w.upsert(ctx, tx, t, b.Symbols, len(b.Bars), func(i int) md.SymID { return b.Bars[i].Sym }, func(args []any, i int) []any {
			x := &b.Bars[i]
			in := b.Instrument(x.Sym)
			if x.Interval != lastIv || x.Type != lastType {
				lastIv, lastType, ivText = x.Interval, x.Type, string(recfmt.AppendBarInterval(nil, x))
			}
			return append(args, in.Provider, in.Symbol, ivText, formatTS(x.Start),
				x.Open, x.High, x.Low, x.Close, x.Volume, x.VWAP, x.Trades, x.Type.String(), x.Source.String(), flag(x.Partial))
		}, func(i, n int) string {
			x := &b.Bars[i]
			return fmt.Sprintf("bar %s %s %s %s %s", b.Instrument(x.Sym).Symbol, x.Source, string(recfmt.AppendBarInterval(nil, x)), x.Type, md.FormatTime(x.Start))
		})
	case md.KindTrade:
		return w.upsert(ctx, tx, t, b.Symbols, len(b.Trades), func(i int) md.SymID { return b.Trades[i].Sym }, func(args []any, i int) []any {
			x := &b.Trades[i]
			in := b.Instrument(x.Sym)
			return append(args, in.Provider, in.Symbol, formatTS(x.TS), x.Price, x.Size, x.Side.String(), x.TradeID, int64(x.Seq))
		}, func(i, n int) string {
			x := &b.Trades[i]
			return fmt.Sprintf("trade %s %s id %d", b.Instrument(x.Sym).Symbol, md.FormatTime(x.TS), x.TradeID)
		})
	case md.KindQuote:
		return w.upsert(ctx, tx, t, b.Symbols, len(b.Quotes), func(i int) md.SymID { return b.Quotes[i].Sym }, func(args []any, i int) []any {
			x := &b.Quotes[i]
			in := b.Instrument(x.Sym)
			return append(args, in.Provider, in.Symbol, formatTS(x.TS), x.Bid, x.BidSize, x.Ask, x.AskSize, int64(x.Seq))
		}, func(i, n int) string {
			x := &b.Quotes[i]
			return fmt.Sprintf("quote %s %s seq %d", b.Instrument(x.Sym).Symbol, md.FormatTime(x.TS), x.Seq)
		})
	case md.KindDerived:
		sc := b.Schema
		return w.upsert(ctx, tx, t, b.Symbols, len(b.Derived), func(i int) md.SymID { return b.Derived[i].Sym }, func(args []any, i int) []any {
			x := &b.Derived[i]
			in := b.Instrument(x.Sym)
			args = append(args, in.Provider, in.Symbol, formatTS(x.TS))
			for f, v := range b.Row(i) {
				if sc.Field(f).Type == md.Int {
					args = append(args, v.Int())
				} else {
					args = append(args, v.Float())
				}
			}
			return args
		}, func(i, n int) string {
			x := &b.Derived[i]
			return fmt.Sprintf("%s %s %s", sc.Name(), b.Instrument(x.Sym).Symbol, md.FormatTime(x.TS))
		})
	}
	return 0, nil
}

// upsert writes n rows, chunkRows per statement and the rest one by one.
// fill appends row i's parameters; name describes row i for errors.
//
// Rows are written grouped by instrument, in key order of the instruments
// (a stable sort, so one instrument's rows keep their order and a later
// version of a row still wins): consecutive upserts then land on the same
// B-tree pages, which saves about a tenth of the work over arrival order.
func (w *Writer) upsert(ctx context.Context, tx *sql.Tx, t *sqlTable, syms []md.Instrument, n int, sym func(int) md.SymID,
	fill func([]any, int) []any, name func(i, n int) string) (int64, error) {
	var changed int64
	many := tx.StmtContext(ctx, t.many)
	one := tx.StmtContext(ctx, t.one)
	order := w.keyOrder(syms, n, sym)
	chunk := t.chunk
	i := 0
	for ; i+chunk <= n; i += chunk {
		args := w.args[:0]
		for k := i; k < i+chunk; k++ {
			args = fill(args, int(order[k]))
		}
		w.args = args
		r, err := many.ExecContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("upsert %d rows from %s: %w", chunk, name(int(order[i]), chunk), err)
		}
		if c, err := r.RowsAffected(); err == nil {
			changed += c
		}
	}
	for ; i < n; i++ {
		args := fill(w.args[:0], int(order[i]))
		w.args = args
		r, err := one.ExecContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("upsert %s: %w", name(int(order[i]), 1), err)
		}
		if c, err := r.RowsAffected(); err == nil {
			changed += c
		}
	}
	return changed, nil
}

// keyOrder returns row indexes 0..n-1 stably sorted by the instrument's
// (provider, symbol) order.
func (w *Writer) keyOrder(syms []md.Instrument, n int, sym func(int) md.SymID) []int32 {
	if len(w.rank) != len(syms) { // new instruments since the last write
		ids := make([]int, len(syms))
		for i := range ids {
			ids[i] = i
		}
		sort.Slice(ids, func(a, b int) bool {
			x, y := &syms[ids[a]], &syms[ids[b]]
			return x.Provider < y.Provider || (x.Provider == y.Provider && x.Symbol < y.Symbol)
		})
		w.rank = make([]int32, len(syms))
		for r, id := range ids {
			w.rank[id] = int32(r)
		}
	}
	order := w.order[:0]
	for i := 0; i < n; i++ {
		order = append(order, int32(i))
	}
	rank := w.rank
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(rank[sym(int(a))], rank[sym(int(b))]) })
	w.order = order
	return order
}

// formatTS renders ns as the ts column's text.
func formatTS(ns int64) string {
	var buf [len(timeLayout) + 8]byte
	return string(time.Unix(0, ns).UTC().AppendFormat(buf[:0], timeLayout))
}

// Classify sorts SQLite errors: busy, locked, I/O and full-disk errors are
// transient; constraint, type and size errors reject the rows; anything
// else (a read-only or corrupt file, a dropped table) is fatal.
func (w *Writer) Classify(err error) storekit.ErrorClass {
	if c, ok := storekit.ClassOf(err); ok {
		return c
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		if errors.Is(err, context.DeadlineExceeded) {
			return storekit.ClassTransient
		}
		return storekit.ClassFatal
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_NOMEM:
		return storekit.ClassTransient
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE:
		return storekit.ClassData
	}
	return storekit.ClassFatal
}

// Close closes the statements and the database; every commit is already
// durable.
func (w *Writer) Close(ctx context.Context) error {
	var errs []error
	for _, t := range w.tables {
		for _, st := range []*sql.Stmt{t.one, t.many} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
	}
	if w.conn != nil {
		errs = append(errs, w.conn.Close())
	}
	if w.db != nil {
		errs = append(errs, w.db.Close())
	}
	return errors.Join(errs...)
}
