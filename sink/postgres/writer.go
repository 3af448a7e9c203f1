package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/sink/storekit"
)

// Options configure the PostgreSQL writer.
type Options struct {
	// DSN is a libpq connection string, URL or keyword/value form.
	DSN string
	// Schema holds the tables; created when CreateTables.
	Schema string
	// Tables per record kind.
	BarsTable, TradesTable, QuotesTable string
	// CreateTables creates the schema and tables if missing (and makes them
	// hypertables where TimescaleDB is available).
	CreateTables bool
	// CopyThreshold is the batch size from which rows go through COPY into
	// a temp table and one upsert; smaller batches use one array upsert.
	CopyThreshold int
	// DirectCopy makes a COPY batch first try COPY straight into the
	// table, which succeeds when none of its keys is stored yet (new
	// data); a unique violation rolls the attempt back and the batch takes
	// the temp table and upsert.
	DirectCopy bool
}

// Writer is the PostgreSQL storekit.Writer: one connection per worker, an
// idempotent diff-aware upsert per batch, errors classified by SQLSTATE.
type Writer struct {
	opts    Options
	cfg     *pgx.ConnConfig
	red     *redactor
	where   string // "postgres host:port/db", for messages: never the DSN
	log     *slog.Logger
	workers []*worker

	// mu guards targets: bars, trades and quotes at 0, 1, 2, then one per
	// derived schema met, in the order met; and each target's ensured.
	mu      sync.Mutex
	targets []*target
	inputs  md.Kind
	schemas []*md.Schema
	stats   *storekit.Stats // the sink's counters; nil when used without a storekit.Sink

	// rowsChanged counts rows the upserts inserted or updated; rows that
	// were already stored with the same values are not counted.
	rowsChanged atomic.Int64
}

// worker is one worker's connection and scratch space. Only that worker's
// goroutine touches it.
type worker struct {
	conn   *pgx.Conn
	staged []bool // temp table created on this connection, by target index
	// Direct COPY back-off, by target index: after a batch met stored
	// keys, the next skip[k] COPY batches go straight to the upsert; skip
	// doubles on each further conflict (up to maxDirectSkip), so a re-run
	// pays for one failed attempt in maxDirectSkip batches.
	skip, backoff []int
	cols          colset
	buf           []byte
	rd            bytes.Reader
	args          []any
	tbuf          [][]time.Time
	iv            intervalText
	keys          keySet
	drop          []bool
}

// newWriter returns a writer for o. It does not connect; Open does.
func newWriter(o Options) *Writer {
	if o.Schema == "" {
		o.Schema = "public"
	}
	if o.BarsTable == "" {
		o.BarsTable = defaultBarsTable
	}
	if o.TradesTable == "" {
		o.TradesTable = defaultTradesTable
	}
	if o.QuotesTable == "" {
		o.QuotesTable = defaultQuotesTable
	}
	if o.CopyThreshold <= 0 {
		o.CopyThreshold = defaultCopyThreshold
	}
	w := &Writer{opts: o, log: slog.New(slog.DiscardHandler)}
	w.targets = []*target{newTarget(barsDef, o.Schema, o.BarsTable), newTarget(tradesDef, o.Schema, o.TradesTable),
		newTarget(quotesDef, o.Schema, o.QuotesTable)}
	for i, t := range w.targets {
		t.idx = i
	}
	return w
}

// Defaults of the sink's own params.
const (
	defaultBarsTable     = "bars_ohlcv"
	defaultTradesTable   = "trades"
	defaultQuotesTable   = "quotes"
	defaultCopyThreshold = 1000
)

func kindIndex(k md.Kind) int {
	switch k {
	case md.KindTrade:
		return 1
	case md.KindQuote:
		return 2
	}
	return 0
}

// target returns the target of records of kind k (schema sc), making one
// for a derived schema met for the first time. Its table may not be
// ensured yet.
func (w *Writer) target(k md.Kind, sc *md.Schema) (*target, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k != md.KindDerived {
		return w.targets[kindIndex(k)], nil
	}
	if sc == nil {
		return nil, errors.New("derived records without a schema")
	}
	for _, t := range w.targets[3:] {
		if t.def.schema.Name() != sc.Name() {
			continue
		}
		if !t.def.schema.Equal(sc) {
			return nil, fmt.Errorf("table %s holds %s, got records of %s", t.name, t.def.schema, sc)
		}
		return t, nil
	}
	for _, t := range w.targets[:3] {
		if t.ident[1] == sc.Name() {
			return nil, fmt.Errorf("derived records %s would be stored in table %s, which holds another record kind: rename the schema or the table", sc.Name(), t.name)
		}
	}
	t := newTarget(newTableDef(rowschema.Derived(sc)), w.opts.Schema, sc.Name())
	t.idx = len(w.targets)
	w.targets = append(w.targets, t)
	return t, nil
}

// ensure creates (with create_tables) or checks t's table once, on conn.
func (w *Writer) ensure(ctx context.Context, conn *pgx.Conn, t *target) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.ensured {
		return nil
	}
	if err := ensureTables(ctx, conn, w.opts.Schema, []*target{t}, w.opts.CreateTables, w.log); err != nil {
		return storekit.Fatal(w.red.Wrap(fmt.Errorf("%s: %s", w.where, pgMessage(err))))
	}
	t.ensured = true
	return nil
}

// RowsChanged is the number of rows the writer's upserts inserted or
// changed. Rows rewritten with identical values do not count.
func (w *Writer) RowsChanged() int64 { return w.rowsChanged.Load() }

// Open parses the DSN, connects every worker, and creates or checks the
// tables.
func (w *Writer) Open(ctx context.Context, env storekit.Env) error {
	if env.Logger != nil {
		w.log = env.Logger
	}
	w.stats = env.Stats
	if env.Node != nil {
		w.inputs, w.schemas = env.Node.Inputs, env.Node.InputSchemas
	}
	cfg, err := pgx.ParseConfig(w.opts.DSN)
	if err != nil {
		// The parse error may quote the DSN; redact what pgx did not.
		w.red = newRedactor(w.opts.DSN, "")
		return storekit.Fatal(w.red.Wrap(fmt.Errorf("parse dsn: %w", err)))
	}
	w.red = newRedactor(w.opts.DSN, cfg.Password)
	w.where = serverName(cfg)
	if cfg.ConnectTimeout == 0 {
		// Without a timeout a connect to a host that drops packets waits
		// for the kernel's TCP timeout (minutes) before a retry can happen.
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "mdp"
	}
	w.cfg = cfg
	w.workers = make([]*worker, max(env.Workers, 1))
	for i := range w.workers {
		w.workers[i] = &worker{iv: intervalText{}}
	}
	first := w.workers[0]
	if err := w.connect(ctx, first); err != nil {
		w.closeConns(ctx)
		return w.wrap(err, "connect to %s", w.where)
	}
	// The tables of the kinds the graph sends (all three built-in kinds
	// when the writer runs outside a graph); others are created at the
	// first write of their kind.
	var open []*target
	for i, k := range []md.Kind{md.KindBar, md.KindTrade, md.KindQuote} {
		if w.inputs == md.KindNone || w.inputs&k != 0 {
			open = append(open, w.targets[i])
		}
	}
	for _, sc := range w.schemas {
		t, err := w.target(md.KindDerived, sc)
		if err != nil {
			w.closeConns(ctx)
			return storekit.Fatal(fmt.Errorf("%s: %w", w.where, err))
		}
		open = append(open, t)
	}
	if err := ensureTables(ctx, first.conn, w.opts.Schema, open, w.opts.CreateTables, w.log); err != nil {
		w.closeConns(ctx)
		return storekit.Fatal(w.red.Wrap(fmt.Errorf("%s: %s", w.where, pgMessage(err))))
	}
	for _, t := range open {
		t.ensured = true
	}
	for _, wk := range w.workers[1:] {
		if err := w.connect(ctx, wk); err != nil {
			w.closeConns(ctx)
			return w.wrap(err, "connect worker to %s", w.where)
		}
	}
	w.log.Info("postgres sink connected", "server", w.where, "schema", w.opts.Schema,
		"bars_table", w.opts.BarsTable, "workers", len(w.workers))
	return nil
}

// serverName names the server for messages without the DSN, whose
// parameters may hold secrets (and which the job's status masks whole).
func serverName(cfg *pgx.ConnConfig) string {
	host := cfg.Host
	if strings.Contains(host, ":") { // IPv6
		host = "[" + host + "]"
	}
	if strings.HasPrefix(cfg.Host, "/") { // unix socket directory
		return fmt.Sprintf("postgres %s/.s.PGSQL.%d/%s", cfg.Host, cfg.Port, cfg.Database)
	}
	return fmt.Sprintf("postgres %s:%d/%s", host, cfg.Port, cfg.Database)
}

func (w *Writer) connect(ctx context.Context, wk *worker) error {
	conn, err := pgx.ConnectConfig(ctx, w.cfg)
	if err != nil {
		return err
	}
	wk.conn = conn
	clear(wk.staged)
	return nil
}

// Write upserts one batch in one transaction. A worker whose connection
// broke reconnects here, so a retry after a server restart just works.
func (w *Writer) Write(ctx context.Context, b *storekit.Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	t, err := w.target(b.Kind, b.Schema)
	if err != nil {
		return storekit.Fatal(fmt.Errorf("%s: %w", w.where, err))
	}
	ki := t.idx
	wk := w.workers[b.Worker]
	for len(wk.staged) <= ki {
		wk.staged, wk.skip, wk.backoff = append(wk.staged, false), append(wk.skip, 0), append(wk.backoff, 0)
	}
	if wk.conn == nil || wk.conn.IsClosed() {
		if wk.conn != nil {
			_ = wk.conn.Close(ctx)
			wk.conn = nil
		}
		if err := w.connect(ctx, wk); err != nil {
			return w.wrap(err, "reconnect to %s", w.where)
		}
		w.log.Info("postgres sink reconnected", "worker", b.Worker, "attempt", b.Attempt)
	}
	if err := w.ensure(ctx, wk.conn, t); err != nil {
		return err
	}
	if t.missing != nil {
		return storekit.Fatal(fmt.Errorf("%s: %w", w.where, t.missing))
	}
	mb := &md.Batch{Kind: b.Kind, Bars: b.Bars, Trades: b.Trades, Quotes: b.Quotes, Derived: b.Derived, Values: b.Values, Schema: b.Schema}
	wk.cols.fill(mb, t.def, b.Symbols, wk.iv)
	wk.cols.dedupe(mb, &wk.keys, &wk.drop)

	var changed int64
	useCopy := wk.cols.n >= w.opts.CopyThreshold
	if useCopy {
		changed, err = w.copyUpsert(ctx, wk, t, ki)
	} else {
		changed, err = w.arrayUpsert(ctx, wk, t)
	}
	if err != nil {
		if c := classify(err); c == classTransient || c == classCanceled {
			// The connection may be half-broken (a lost socket, a server
			// shutting down); start the retry on a fresh one.
			_ = wk.conn.Close(context.WithoutCancel(ctx))
			wk.conn = nil
		}
		path := "upsert"
		if useCopy {
			path = "copy+upsert"
		}
		return w.wrap(err, "%s %d %s into %s", path, n, kindWord(b.Kind), t.name)
	}
	w.rowsChanged.Add(changed)
	if w.stats != nil {
		w.stats.RowsChanged.Add(changed)
	}
	return nil
}

// maxDirectSkip bounds the direct COPY back-off (in batches).
const maxDirectSkip = 64

// copyUpsert writes a large batch. With DirectCopy, new data is copied
// straight into the table: one statement, atomic, and the cheapest way
// into PostgreSQL. Otherwise, or when some key is already stored (a
// re-run, a corrected bar), the rows are streamed into the connection's temp
// stage and merged with one diff-aware upsert, all in one transaction; the
// stage empties itself at commit (ON COMMIT DELETE ROWS).
func (w *Writer) copyUpsert(ctx context.Context, wk *worker, t *target, ki int) (int64, error) {
	wk.buf = appendCopy(wk.buf[:0], t.def, &wk.cols, 0, wk.cols.n)
	if w.opts.DirectCopy {
		if wk.skip[ki] > 0 {
			wk.skip[ki]--
		} else {
			wk.rd.Reset(wk.buf)
			tag, err := wk.conn.PgConn().CopyFrom(ctx, &wk.rd, t.directSQL)
			if err == nil {
				wk.backoff[ki] = 0
				return tag.RowsAffected(), nil
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "23505" {
				return 0, fmt.Errorf("copy: %w", err)
			}
			// Some key is stored already: nothing was written (COPY is
			// one statement); merge instead, and stay on that path for
			// a while.
			wk.backoff[ki] = min(max(2*wk.backoff[ki], 1), maxDirectSkip)
			wk.skip[ki] = wk.backoff[ki]
		}
	}
	if !wk.staged[ki] {
		if _, err := wk.conn.Exec(ctx, t.stageSQL); err != nil {
			return 0, fmt.Errorf("create temp stage: %w", err)
		}
		wk.staged[ki] = true
	}
	tx, err := wk.conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	wk.rd.Reset(wk.buf)
	if _, err := wk.conn.PgConn().CopyFrom(ctx, &wk.rd, t.copySQL); err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	tag, err := tx.Exec(ctx, t.upsertStage)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// arrayUpsert sends the rows as one array per column to a single INSERT …
// SELECT FROM unnest(…): one statement, so one implicit transaction and one
// round trip.
func (w *Writer) arrayUpsert(ctx context.Context, wk *worker, t *target) (int64, error) {
	wk.args = arrayArgs(wk.args, t.def, &wk.cols, 0, wk.cols.n, &wk.tbuf)
	tag, err := wk.conn.Exec(ctx, t.upsertArray, wk.args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// wrap adds context to a driver error, redacts the password from the whole
// message, and marks the class storekit acts on.
func (w *Writer) wrap(err error, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...) + ": " + pgMessage(err)
	e := w.red.Wrap(&contextError{msg: msg, err: err})
	switch classify(err) {
	case classData:
		return storekit.DataError(e)
	case classFatal:
		return storekit.Fatal(e)
	}
	return e
}

type contextError struct {
	msg string
	err error
}

func (e *contextError) Error() string { return e.msg }
func (e *contextError) Unwrap() error { return e.err }

// Classify maps the writer's errors onto storekit's classes.
func (w *Writer) Classify(err error) storekit.ErrorClass {
	if c, ok := storekit.ClassOf(err); ok {
		return c
	}
	switch classify(err) {
	case classData:
		return storekit.ClassData
	case classFatal:
		return storekit.ClassFatal
	}
	return storekit.ClassTransient
}

// Close closes every worker's connection.
func (w *Writer) Close(ctx context.Context) error {
	w.closeConns(ctx)
	return nil
}

func (w *Writer) closeConns(ctx context.Context) {
	for _, wk := range w.workers {
		if wk != nil && wk.conn != nil {
			_ = wk.conn.Close(ctx)
			wk.conn = nil
		}
	}
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s from the environment,
// so a dsn of "${DATABASE_URL}" works even where the job file was not
// interpolated (params built in code, defaults).
func expandEnv(s string, getenv func(string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name, def, hasDef := strings.Cut(s[i+2:i+j], ":-")
		v := getenv(name)
		if v == "" && hasDef {
			v = def
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

var errEmptyDSN = errors.New("dsn is empty: set params.dsn or the DATABASE_URL environment variable")
