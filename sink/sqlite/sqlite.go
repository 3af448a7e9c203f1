// Package sqlite is the sink.sqlite component: mdp's default store, a local
// SQLite file written through modernc.org/sqlite (pure Go, no cgo, no
// server). Bars go to bars_ohlcv, trades to trades and quotes to quotes,
// chosen by record kind; every write is an upsert on the natural key that
// changes a row only when a value differs, one transaction per batch, in WAL
// mode, so re-running a job leaves the tables exactly as one run does and
// rewrites no row. Batching, workers, retries, the circuit breaker, the
// dead-letter file and store feedback come from package storekit.
//
// Tables (created if missing; WITHOUT ROWID, keyed on the natural key):
//
//	bars_ohlcv(provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades)
//	    primary key (provider, symbol, interval, ts)
//	trades(provider, symbol, ts, trade_id, price, size, side)
//	    primary key (provider, symbol, ts, trade_id)
//	quotes(provider, symbol, ts, seq, bid, bid_size, ask, ask_size)
//	    primary key (provider, symbol, ts, seq)
//
// interval is the bar's own interval as text (1s, 1m, 5m, 1h); ts is the
// bar's start (trades and quotes: their event time) in UTC as fixed-width
// RFC 3339 text with microseconds, "2024-01-02T14:30:00.000000Z", so text
// order is time order and SQLite's date functions read it. Microseconds match
// PostgreSQL timestamptz and the Parquet sink. side is buy, sell or unknown.
// A trade without a provider trade id has trade_id 0, so two such trades of
// one symbol in the same microsecond share a key: the later one wins.
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
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

func init() {
	component.Register(component.Spec{
		Type: "sink.sqlite", Kind: engine.KindSink,
		Summary: "Upsert bars, trades and quotes into a local SQLite file (default store; no server, no cgo).",
		Description: "Writes bars to bars_ohlcv(provider, symbol, interval, ts, open, high, low, close, volume, vwap, trades) " +
			"keyed on (provider, symbol, interval, ts), trades to trades(provider, symbol, ts, trade_id, price, size, side) and " +
			"quotes to quotes(provider, symbol, ts, seq, bid, bid_size, ask, ask_size), creating them if missing. Writes are " +
			"upserts that change a row only when a value differs, one transaction per batch, in WAL mode: a re-run leaves the " +
			"tables as one run does and rewrites no row. ts is UTC text with microseconds (2024-01-02T14:30:00.000000Z).",
		Accepts: md.KindBar | md.KindTrade | md.KindQuote,
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

// TimeLayout is how ts columns are written: RFC 3339 UTC, fixed width, with
// microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Writer is the SQLite storekit.Writer. Its exported fields are its
// settings; empty table names take the defaults.
type Writer struct {
	Path        string
	BarsTable   string // default bars_ohlcv
	TradesTable string // default trades
	QuotesTable string // default quotes
	Synchronous string // normal (default) or full

	db    *sql.DB
	mu    sync.Mutex // one writer at a time on the one connection
	conn  *sql.Conn
	stmts [3]kindStmts // bar, trade, quote
	args  []any
	order []int32 // row order of the current write
	rank  []int32 // by SymID: the instrument's place in (provider, symbol) order
	stats *storekit.Stats
}

// DSN returns the database/sql data source name for path: WAL, a generous
// busy timeout (another process reading the file) and immediate
// transactions, so a writer never fails half-way on a lock upgrade.
func DSN(path, synchronous string) string {
	if synchronous == "" {
		synchronous = "normal"
	}
	return path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=" + strings.ToUpper(synchronous) + "&_txlock=immediate"
}

// Quote quotes an SQL identifier.
func Quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// Schema returns the CREATE TABLE statements for the three tables.
func Schema(bars, trades, quotes string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + Quote(bars) + ` (
	provider TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, ts TEXT NOT NULL,
	open REAL, high REAL, low REAL, close REAL, volume REAL, vwap REAL, trades INTEGER,
	PRIMARY KEY (provider, symbol, interval, ts)) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + Quote(trades) + ` (
	provider TEXT NOT NULL, symbol TEXT NOT NULL, ts TEXT NOT NULL, trade_id INTEGER NOT NULL,
	price REAL, size REAL, side TEXT,
	PRIMARY KEY (provider, symbol, ts, trade_id)) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + Quote(quotes) + ` (
	provider TEXT NOT NULL, symbol TEXT NOT NULL, ts TEXT NOT NULL, seq INTEGER NOT NULL,
	bid REAL, bid_size REAL, ask REAL, ask_size REAL,
	PRIMARY KEY (provider, symbol, ts, seq)) WITHOUT ROWID`,
	}
}

// Upsert returns the upsert statement for table with the given key and
// value columns. The DO UPDATE runs only when some value differs (IS NOT
// treats NULLs as values), so an unchanged row is not rewritten.
func Upsert(table string, keys, values []string) string { return UpsertRows(table, keys, values, 1) }

// UpsertRows is Upsert for rows rows per statement (a multi-row VALUES
// list): fewer statement executions per transaction, the same effect as
// rows single-row upserts in order.
func UpsertRows(table string, keys, values []string, rows int) string {
	cols := append(append([]string{}, keys...), values...)
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	set := make([]string, len(values))
	diff := make([]string, len(values))
	for i, v := range values {
		set[i] = v + " = excluded." + v
		diff[i] = v + " IS NOT excluded." + v
	}
	return "INSERT INTO " + Quote(table) + " (" + strings.Join(cols, ", ") + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(tuple+",", rows), ",") +
		" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE " + strings.Join(diff, " OR ")
}

// chunkRows is how many rows one multi-row upsert carries: at most 11
// columns × 64 = 704 parameters, far below SQLite's limit of 32766.
const chunkRows = 64

var (
	barKeys     = []string{"provider", "symbol", "interval", "ts"}
	barValues   = []string{"open", "high", "low", "close", "volume", "vwap", "trades"}
	tradeKeys   = []string{"provider", "symbol", "ts", "trade_id"}
	tradeValues = []string{"price", "size", "side"}
	quoteKeys   = []string{"provider", "symbol", "ts", "seq"}
	quoteValues = []string{"bid", "bid_size", "ask", "ask_size"}
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

// Open creates the file, its directory and the tables, checks that existing
// tables have the columns and key the sink needs, and prepares the upserts.
func (w *Writer) Open(ctx context.Context, env storekit.Env) error {
	w.defaults()
	w.stats = env.Stats
	if dir := filepath.Dir(w.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sqlite %s: %w", w.Path, err)
		}
	}
	db, err := sql.Open("sqlite", DSN(w.Path, w.Synchronous))
	if err != nil {
		return fmt.Errorf("sqlite %s: %w", w.Path, err)
	}
	db.SetMaxOpenConns(1)
	w.db = db
	if err := w.prepare(ctx); err != nil {
		db.Close()
		w.db = nil
		if why := cantOpen(w.Path, err); why != "" {
			return fmt.Errorf("sqlite %s: cannot open the database file: %s (%w)", w.Path, why, err)
		}
		return fmt.Errorf("sqlite %s: %w", w.Path, err)
	}
	return nil
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

func (w *Writer) prepare(ctx context.Context) error {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	w.conn = conn
	for _, q := range Schema(w.BarsTable, w.TradesTable, w.QuotesTable) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	specs := []struct {
		table        string
		keys, values []string
	}{{w.BarsTable, barKeys, barValues}, {w.TradesTable, tradeKeys, tradeValues}, {w.QuotesTable, quoteKeys, quoteValues}}
	for i, s := range specs {
		if err := checkColumns(ctx, conn, s.table, append(append([]string{}, s.keys...), s.values...)); err != nil {
			return err
		}
		one, err := conn.PrepareContext(ctx, Upsert(s.table, s.keys, s.values))
		if err != nil {
			return fmt.Errorf("table %s: prepare upsert (the table needs a primary key or unique index on %s): %w",
				s.table, strings.Join(s.keys, ", "), err)
		}
		w.stmts[i].one = one
		many, err := conn.PrepareContext(ctx, UpsertRows(s.table, s.keys, s.values, chunkRows))
		if err != nil {
			return fmt.Errorf("table %s: prepare upsert: %w", s.table, err)
		}
		w.stmts[i].many = many
	}
	return nil
}

// checkColumns fails with a clear message when an existing table lacks a
// column the sink writes.
func checkColumns(ctx context.Context, conn *sql.Conn, table string, want []string) error {
	rows, err := conn.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return fmt.Errorf("table %s: read columns: %w", table, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("table %s: read columns: %w", table, err)
		}
		have[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("table %s: read columns: %w", table, err)
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
	w.mu.Lock()
	defer w.mu.Unlock()
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	changed, err := w.exec(ctx, tx, b)
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

// kindStmts are the prepared upserts of one table: one row, and chunkRows
// rows per statement.
type kindStmts struct {
	one, many *sql.Stmt
}

func (w *Writer) exec(ctx context.Context, tx *sql.Tx, b *storekit.Batch) (int64, error) {
	switch b.Kind {
	case md.KindBar:
		var ivNs int64
		var ivText string
		return w.upsert(ctx, tx, &w.stmts[0], b.Symbols, len(b.Bars), func(i int) md.SymID { return b.Bars[i].Sym }, func(args []any, i int) []any {
			x := &b.Bars[i]
			in := b.Instrument(x.Sym)
			if x.Interval != ivNs || ivText == "" {
				ivNs, ivText = x.Interval, md.FormatInterval(x.Interval)
			}
			return append(args, in.Provider, in.Symbol, ivText, FormatTS(x.Start),
				x.Open, x.High, x.Low, x.Close, x.Volume, x.VWAP, x.Trades)
		}, func(i, n int) string {
			x := &b.Bars[i]
			return fmt.Sprintf("bar %s %s %s", b.Instrument(x.Sym).Symbol, md.FormatInterval(x.Interval), md.FormatTime(x.Start))
		})
	case md.KindTrade:
		return w.upsert(ctx, tx, &w.stmts[1], b.Symbols, len(b.Trades), func(i int) md.SymID { return b.Trades[i].Sym }, func(args []any, i int) []any {
			x := &b.Trades[i]
			in := b.Instrument(x.Sym)
			return append(args, in.Provider, in.Symbol, FormatTS(x.TS), x.TradeID, x.Price, x.Size, x.Side.String())
		}, func(i, n int) string {
			x := &b.Trades[i]
			return fmt.Sprintf("trade %s %s id %d", b.Instrument(x.Sym).Symbol, md.FormatTime(x.TS), x.TradeID)
		})
	case md.KindQuote:
		return w.upsert(ctx, tx, &w.stmts[2], b.Symbols, len(b.Quotes), func(i int) md.SymID { return b.Quotes[i].Sym }, func(args []any, i int) []any {
			x := &b.Quotes[i]
			in := b.Instrument(x.Sym)
			return append(args, in.Provider, in.Symbol, FormatTS(x.TS), int64(x.Seq), x.Bid, x.BidSize, x.Ask, x.AskSize)
		}, func(i, n int) string {
			x := &b.Quotes[i]
			return fmt.Sprintf("quote %s %s seq %d", b.Instrument(x.Sym).Symbol, md.FormatTime(x.TS), x.Seq)
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
func (w *Writer) upsert(ctx context.Context, tx *sql.Tx, ks *kindStmts, syms []md.Instrument, n int, sym func(int) md.SymID,
	fill func([]any, int) []any, name func(i, n int) string) (int64, error) {
	var changed int64
	many := tx.StmtContext(ctx, ks.many)
	one := tx.StmtContext(ctx, ks.one)
	order := w.keyOrder(syms, n, sym)
	i := 0
	for ; i+chunkRows <= n; i += chunkRows {
		args := w.args[:0]
		for k := i; k < i+chunkRows; k++ {
			args = fill(args, int(order[k]))
		}
		w.args = args
		r, err := many.ExecContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("upsert %d rows from %s: %w", chunkRows, name(int(order[i]), chunkRows), err)
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

// FormatTS renders ns as the ts column's text.
func FormatTS(ns int64) string {
	var buf [len(TimeLayout) + 8]byte
	return string(time.Unix(0, ns).UTC().AppendFormat(buf[:0], TimeLayout))
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
	for _, ks := range w.stmts {
		for _, st := range []*sql.Stmt{ks.one, ks.many} {
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
