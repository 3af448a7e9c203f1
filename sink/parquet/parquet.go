// Package parquet is the sink.parquet component: bars, trades, quotes and
// derived records written as Parquet files
// (github.com/parquet-go/parquet-go, zstd) that DuckDB, Spark, pandas and
// Polars read directly. Files are laid out as
//
//	<dir>/<bars|trades|quotes|schema name>/date=YYYY-MM-DD/[symbol=SYM/]part-<first ts>-<job>-<fingerprint>-i<instance>w<worker>-<n>.parquet
//
// one dataset per record kind (and per derived schema: their columns
// differ), with package rowschema's stored columns, partitioned by the
// UTC date of each row's ts and optionally by symbol. A file is written
// under a hidden temporary name (.part-….parquet.tmp, which the readers
// above skip) and renamed into place when it is complete — on reaching
// max_rows, on reaching max_age, and at shutdown — so readers never see half
// a file. With checkpoints on, a complete file is published only when a
// checkpoint that covers its rows completes, so a job killed and resumed
// writes every row exactly once (checkpoint.go). Timestamps are TIMESTAMP(MICROS, isAdjustedToUTC=true) columns.
//
// File names derive from the data (the first row's ts), from the writer
// (the job's name and fingerprint, a hash of what the job computes: its
// sources and operators with their params) and from a counter. So two jobs
// writing into one dir — a backfill split by symbol or by day, say — never
// replace each other's files, while re-running a job over the same input
// with rolls by max_rows replaces the files it wrote before instead of
// adding copies; rolls by max_age depend on the wall clock, so such a re-run
// may add files.
//
// Batching, workers (each with its own files, so they write in parallel),
// retries and store feedback come from package storekit. Parquet write
// errors are fatal: a half-written row group cannot be retried safely.
//
// workers defaults to 2 as on every store sink. Encoding and zstd are
// CPU-bound, so on a 2-core machine a second encoder competes with the
// pipeline's own goroutines and workers: 1 is faster there
// (BenchmarkParquet reports both); machines with cores to spare gain from
// more.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/recfmt"
	"github.com/mdpio/mdp/sink/storekit"
)

func init() {
	component.Register(component.Spec{
		Type: "sink.parquet", Kind: engine.KindSink,
		Summary: "Write bars, trades, quotes and derived records as zstd Parquet files partitioned by date (and symbol).",
		Description: "Files go to <dir>/<bars|trades|quotes|schema name>/date=YYYY-MM-DD/[symbol=SYM/]part-<first ts>-<job>-<fingerprint>-*.parquet, written under a hidden " +
			"temporary name and renamed when complete (max_rows, max_age or shutdown), so readers never see half a file; with checkpoints on, " +
			"files are also cut at every checkpoint and published when it completes (a two-phase commit), so a killed and resumed job writes each row exactly once. " +
			"The fingerprint is a hash of what the job computes (its sources and operators with their params), so jobs sharing a dir " +
			"(a backfill split by symbol or day) never replace each other's files, while a re-run of the same job replaces its own. " +
			"Timestamps are TIMESTAMP(MICROS, UTC). Readable by DuckDB, Spark, pandas and Polars.",
		Accepts: md.KindAny,
		Fields: append([]component.Field{
			{Name: "dir", Type: component.String, Required: true, Path: true, Description: "Root directory of the datasets; created if missing.", Example: "data/parquet"},
			{Name: "partition_by", Type: component.String, Default: "date", Enum: []string{"date", "date_symbol"},
				Description: "date: date=YYYY-MM-DD/ directories; date_symbol: date=YYYY-MM-DD/symbol=SYM/."},
			{Name: "max_rows", Type: component.Int, Default: 1000000, Min: component.Bound(1), Max: component.Bound(1 << 30),
				Description: "Rows per file; the file is closed and a new one started when it is reached."},
			{Name: "max_age", Type: component.Duration, Default: "5m", Min: component.Bound(0),
				Description: "Longest a file stays open; it is then closed (made visible) even if not full. 0 disables."},
			{Name: "row_group_rows", Type: component.Int, Default: 131072, Min: component.Bound(1), Max: component.Bound(1 << 22),
				Description: "Rows per Parquet row group (bounds the memory a file buffers)."},
		}, storekit.Fields(storekit.Defaults{Workers: 2, QueueSize: 400000, BatchRows: 10000, DeadLetter: "<dir>/_dead_letter.jsonl"})...),
		Validate: storekit.Validate,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			cfg, err := storekit.ConfigFrom(p)
			if err != nil {
				return nil, err
			}
			w := &Writer{Dir: p.String("dir"), BySymbol: p.String("partition_by") == "date_symbol",
				MaxRows: int(p.Int("max_rows")), MaxAge: p.Duration("max_age"), RowGroupRows: int(p.Int("row_group_rows"))}
			cfg.DefaultDeadLetterPath = filepath.Join(w.Dir, "_dead_letter.jsonl")
			return storekit.NewCommitting(w, cfg), nil
		},
	})
}

// The row types of the built-in datasets have exactly package rowschema's
// stored columns, in order (a test holds them to it): text columns are
// dictionary-encoded strings, times TIMESTAMP(MICROS, UTC), floats DOUBLE,
// ints INT64. Derived datasets get their schema from rowschema.Derived at
// run time (derivedSchema).

// barRow is the schema of the bars dataset. ts is the bar's start.
type barRow struct {
	Provider string  `parquet:"provider,dict"`
	Symbol   string  `parquet:"symbol,dict"`
	Interval string  `parquet:"interval,dict"`
	TS       int64   `parquet:"ts,timestamp(microsecond:utc)"`
	Open     float64 `parquet:"open"`
	High     float64 `parquet:"high"`
	Low      float64 `parquet:"low"`
	Close    float64 `parquet:"close"`
	Volume   float64 `parquet:"volume"`
	VWAP     float64 `parquet:"vwap"`
	Trades   int64   `parquet:"trades"`
	BarType  string  `parquet:"bar_type,dict"`
	Source   string  `parquet:"source,dict"`
	Partial  bool    `parquet:"partial"`
}

// tradeRow is the schema of the trades dataset.
type tradeRow struct {
	Provider string  `parquet:"provider,dict"`
	Symbol   string  `parquet:"symbol,dict"`
	TS       int64   `parquet:"ts,timestamp(microsecond:utc)"`
	Price    float64 `parquet:"price"`
	Size     float64 `parquet:"size"`
	Side     string  `parquet:"side,dict"`
	TradeID  int64   `parquet:"trade_id"`
	Seq      int64   `parquet:"seq"`
}

// quoteRow is the schema of the quotes dataset.
type quoteRow struct {
	Provider string  `parquet:"provider,dict"`
	Symbol   string  `parquet:"symbol,dict"`
	TS       int64   `parquet:"ts,timestamp(microsecond:utc)"`
	Bid      float64 `parquet:"bid"`
	BidSize  float64 `parquet:"bid_size"`
	Ask      float64 `parquet:"ask"`
	AskSize  float64 `parquet:"ask_size"`
	Seq      int64   `parquet:"seq"`
}

// derivedSchema builds the Parquet schema of a derived dataset from
// rowschema: a struct type made at run time with one tagged field per
// column, so the file's columns keep rowschema's order (a parquet.Group
// would sort them by name).
func derivedSchema(t *rowschema.Table) *pq.Schema {
	fields := make([]reflect.StructField, len(t.Columns))
	for i, c := range t.Columns {
		f := reflect.StructField{Name: fmt.Sprintf("F%d", i)}
		switch c.Type {
		case rowschema.Text:
			f.Type, f.Tag = reflect.TypeFor[string](), reflect.StructTag(`parquet:"`+c.Name+`,dict"`)
		case rowschema.Time:
			f.Type, f.Tag = reflect.TypeFor[int64](), reflect.StructTag(`parquet:"`+c.Name+`,timestamp(microsecond:utc)"`)
		case rowschema.Int:
			f.Type, f.Tag = reflect.TypeFor[int64](), reflect.StructTag(`parquet:"`+c.Name+`"`)
		default:
			f.Type, f.Tag = reflect.TypeFor[float64](), reflect.StructTag(`parquet:"`+c.Name+`"`)
		}
		fields[i] = f
	}
	return pq.SchemaOf(reflect.New(reflect.StructOf(fields)).Elem().Interface())
}

// derivedFiles are one worker's open files of one derived schema.
type derivedFiles struct {
	schema *md.Schema
	pq     *pq.Schema
	files  map[partKey]*file[pq.Row]
}

// Writer is the Parquet storekit.Writer. Its exported fields are its
// settings.
type Writer struct {
	Dir          string
	BySymbol     bool          // partition by date and symbol
	MaxRows      int           // rows per file (default 1,000,000)
	MaxAge       time.Duration // 0: no age limit
	RowGroupRows int           // default 131072

	instance  int
	instances int
	writer    string // "-<job>-<fingerprint>" in file names, or ""
	workers   []*workerFiles
	codec     *zstd.Codec // shared by every file, so its pooled encoders are reused across files

	// ck is set when the job takes checkpoints: a completed file then
	// waits, hidden, for the checkpoint that covers it (checkpoint.go).
	ck        bool
	restoreID int64 // the checkpoint restored after Open, 0 for none
	log       *slog.Logger
	pmu       sync.Mutex // guards pending: PreCommit and Close run on the node's goroutine, NotifyCheckpointComplete on the coordinator's
	pending   []pendingSet
}

// workerFiles are one worker's open files; only that worker touches them,
// but for PreCommit, Snapshot and Close on the node's goroutine when the
// job takes checkpoints (then Write and Tick hold mu).
type workerFiles struct {
	mu      sync.Mutex
	closed  []string // checkpoints on: final paths of files completed since the last barrier, still under their temporary names
	idx     int
	bars    map[partKey]*file[barRow]
	trades  map[partKey]*file[tradeRow]
	quotes  map[partKey]*file[quoteRow]
	ordinal map[string]int // files started per partition directory
	ivNs    int64          // last bar interval and type seen, and the interval's text
	ivType  md.BarType
	ivText  string
	barBuf  []barRow
	trBuf   []tradeRow
	qBuf    []quoteRow
	derived map[string]*derivedFiles // by schema name
	rows    []pq.Row                 // derived rows of one run, over vals
	vals    []pq.Value
	text    map[md.SymID][2][]byte // provider and symbol bytes, for derived rows
}

type partKey struct {
	day int64 // days since the epoch
	sym md.SymID
}

const dayNs = 24 * int64(time.Hour)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// file is one open Parquet file of row type T.
type file[T any] struct {
	f      *os.File
	w      *pq.GenericWriter[T]
	n      int
	opened time.Time
	tmp    string
	final  string
}

// Open creates the root directory and per-worker state.
func (w *Writer) Open(ctx context.Context, env storekit.Env) error {
	if w.MaxRows <= 0 {
		w.MaxRows = 1000000
	}
	if w.RowGroupRows <= 0 {
		w.RowGroupRows = 131072
	}
	w.instances = 1
	if env.Node != nil {
		w.instance, w.instances = env.Node.Instance, max(env.Node.Instances, 1)
		w.writer = writerName(env.Node.Job, env.Node.Fingerprint)
		w.ck, w.restoreID = env.Node.Checkpointing, env.Node.RestoreID
	}
	w.log = env.Logger
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.codec = &zstd.Codec{Level: zstd.SpeedDefault}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return fmt.Errorf("parquet dir: %w", err)
	}
	if w.restoreID == 0 { // else Restore sorts the leftovers out
		if err := w.removeStale(); err != nil {
			return err
		}
	}
	w.workers = make([]*workerFiles, env.Workers)
	for i := range w.workers {
		w.workers[i] = &workerFiles{idx: i,
			bars: map[partKey]*file[barRow]{}, trades: map[partKey]*file[tradeRow]{},
			quotes: map[partKey]*file[quoteRow]{}, ordinal: map[string]int{},
			derived: map[string]*derivedFiles{}, text: map[md.SymID][2][]byte{},
		}
	}
	return nil
}

// removeStale removes the temporary and pending files a killed run of
// this job (same writer name, same instance) left under dir: they are
// named after the file they become, so the next run knows its
// predecessor's. A run that starts afresh writes their rows again.
func (w *Writer) removeStale() error {
	return w.walkMine(w.instance, func(path string, pf partFile) error {
		if pf.state == stateFinal {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("parquet: remove a stale temporary file: %w", err)
		}
		return nil
	})
}

func (w *Writer) key(ts int64, sym md.SymID) partKey {
	k := partKey{day: floorDiv(ts, dayNs)}
	if w.BySymbol {
		k.sym = sym
	}
	return k
}

// Write appends the batch to the files of its partitions.
func (w *Writer) Write(ctx context.Context, b *storekit.Batch) error {
	wf := w.workers[b.Worker]
	if w.ck {
		wf.mu.Lock()
		defer wf.mu.Unlock()
	}
	switch b.Kind {
	case md.KindBar:
		return writeRuns(w, wf, b, b.Bars, &wf.barBuf, wf.bars, "bars",
			func(r *md.Bar) (int64, md.SymID) { return r.Start, r.Sym },
			func(r *md.Bar) barRow {
				in := b.Instrument(r.Sym)
				if r.Interval != wf.ivNs || r.Type != wf.ivType || wf.ivText == "" {
					wf.ivNs, wf.ivType, wf.ivText = r.Interval, r.Type, string(recfmt.AppendBarInterval(nil, r))
				}
				return barRow{Provider: in.Provider, Symbol: in.Symbol, Interval: wf.ivText,
					TS: floorDiv(r.Start, 1000), Open: r.Open, High: r.High, Low: r.Low, Close: r.Close,
					Volume: r.Volume, VWAP: r.VWAP, Trades: r.Trades, BarType: r.Type.String(), Source: r.Source.String(), Partial: r.Partial}
			})
	case md.KindTrade:
		return writeRuns(w, wf, b, b.Trades, &wf.trBuf, wf.trades, "trades",
			func(r *md.Trade) (int64, md.SymID) { return r.TS, r.Sym },
			func(r *md.Trade) tradeRow {
				in := b.Instrument(r.Sym)
				return tradeRow{Provider: in.Provider, Symbol: in.Symbol, TS: floorDiv(r.TS, 1000),
					TradeID: r.TradeID, Price: r.Price, Size: r.Size, Side: r.Side.String(), Seq: int64(r.Seq)}
			})
	case md.KindQuote:
		return writeRuns(w, wf, b, b.Quotes, &wf.qBuf, wf.quotes, "quotes",
			func(r *md.Quote) (int64, md.SymID) { return r.TS, r.Sym },
			func(r *md.Quote) quoteRow {
				in := b.Instrument(r.Sym)
				return quoteRow{Provider: in.Provider, Symbol: in.Symbol, TS: floorDiv(r.TS, 1000),
					Seq: int64(r.Seq), Bid: r.Bid, BidSize: r.BidSize, Ask: r.Ask, AskSize: r.AskSize}
			})
	case md.KindDerived:
		return w.writeDerived(wf, b)
	}
	return nil
}

// writeDerived appends derived rows to the files of the schema's dataset,
// one run of a partition at a time, as writeRuns does for the built-in
// kinds. Rows are parquet.Rows over a reused value buffer.
func (w *Writer) writeDerived(wf *workerFiles, b *storekit.Batch) error {
	sc := b.Schema
	df := wf.derived[sc.Name()]
	if df == nil {
		df = &derivedFiles{schema: sc, pq: derivedSchema(rowschema.Derived(sc)), files: map[partKey]*file[pq.Row]{}}
		wf.derived[sc.Name()] = df
	} else if !df.schema.Equal(sc) {
		return storekit.Fatal(fmt.Errorf("parquet dataset %s holds %s, got records of %s", sc.Name(), df.schema, sc))
	}
	cols := 3 + sc.Len()
	for i := 0; i < len(b.Derived); {
		k := w.key(b.Derived[i].TS, b.Derived[i].Sym)
		j := i + 1
		for j < len(b.Derived) && w.key(b.Derived[j].TS, b.Derived[j].Sym) == k {
			j++
		}
		if need := (j - i) * cols; cap(wf.vals) < need {
			wf.vals = make([]pq.Value, need)
		}
		vals, rows := wf.vals[:(j-i)*cols], wf.rows[:0]
		for x := i; x < j; x++ {
			r := &b.Derived[x]
			txt, ok := wf.text[r.Sym]
			if !ok {
				in := b.Instrument(r.Sym)
				txt = [2][]byte{[]byte(in.Provider), []byte(in.Symbol)}
				wf.text[r.Sym] = txt
			}
			row := vals[(x-i)*cols : (x-i+1)*cols : (x-i+1)*cols]
			row[0] = pq.ByteArrayValue(txt[0]).Level(0, 0, 0)
			row[1] = pq.ByteArrayValue(txt[1]).Level(0, 0, 1)
			row[2] = pq.Int64Value(floorDiv(r.TS, 1000)).Level(0, 0, 2)
			for f, v := range b.Row(x) {
				if sc.Field(f).Type == md.Int {
					row[3+f] = pq.Int64Value(v.Int()).Level(0, 0, 3+f)
				} else {
					row[3+f] = pq.DoubleValue(v.Float()).Level(0, 0, 3+f)
				}
			}
			rows = append(rows, row)
		}
		wf.rows = rows
		if err := writeRows(w, wf, df.files, sc.Name(), k, b.Instrument(b.Derived[i].Sym).Symbol, rows, df.pq); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeRuns splits records into runs of one partition (at gives a record's
// ts and symbol), converts each run with conv into buf (reused across
// calls) and appends it to the run's file in files.
func writeRuns[R, T any](w *Writer, wf *workerFiles, b *storekit.Batch, rows []R, buf *[]T,
	files map[partKey]*file[T], dataset string, at func(*R) (int64, md.SymID), conv func(*R) T) error {
	for i := 0; i < len(rows); {
		ts, sym := at(&rows[i])
		k := w.key(ts, sym)
		j := i + 1
		for j < len(rows) && w.key(at(&rows[j])) == k {
			j++
		}
		out := (*buf)[:0]
		for x := i; x < j; x++ {
			out = append(out, conv(&rows[x]))
		}
		*buf = out
		if err := writeRows(w, wf, files, dataset, k, b.Instrument(sym).Symbol, out, nil); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeRows appends rows (all of partition k) to its open file, rolling
// files at max_rows and max_age. schema is the Parquet schema of rows of
// type parquet.Row (derived datasets), nil for the struct row types.
func writeRows[T any](w *Writer, wf *workerFiles, files map[partKey]*file[T], dataset string, k partKey, symbol string, rows []T, schema *pq.Schema) error {
	f := files[k]
	if f != nil && w.MaxAge > 0 && time.Since(f.opened) >= w.MaxAge {
		delete(files, k)
		if err := complete(w, wf, f); err != nil {
			return err
		}
		f = nil
	}
	for len(rows) > 0 {
		if f == nil {
			var err error
			if f, err = create(w, wf, dataset, k, symbol, &rows[0], schema); err != nil {
				return err
			}
			files[k] = f
		}
		n := min(len(rows), w.MaxRows-f.n)
		var err error
		if pr, ok := any(rows[:n]).([]pq.Row); ok {
			_, err = f.w.WriteRows(pr)
		} else {
			_, err = f.w.Write(rows[:n])
		}
		if err != nil {
			delete(files, k)
			f.discard()
			return fmt.Errorf("parquet write %s: %w", f.tmp, err)
		}
		f.n += n
		rows = rows[n:]
		if f.n >= w.MaxRows {
			delete(files, k)
			if err := complete(w, wf, f); err != nil {
				return err
			}
			f = nil
		}
	}
	return nil
}

// tsOf returns the ts column (µs) of a row, for the file name.
func tsOf(row any) int64 {
	switch r := row.(type) {
	case *barRow:
		return r.TS
	case *tradeRow:
		return r.TS
	case *quoteRow:
		return r.TS
	case *pq.Row:
		return (*r)[2].Int64() // derived rows: provider, symbol, ts, …
	}
	return 0
}

// create starts a file for partition k whose first row is first.
func create[T any](w *Writer, wf *workerFiles, dataset string, k partKey, symbol string, first *T, schema *pq.Schema) (*file[T], error) {
	dir := filepath.Join(w.Dir, dataset, "date="+time.Unix(k.day*86400, 0).UTC().Format("2006-01-02"))
	if w.BySymbol {
		dir = filepath.Join(dir, "symbol="+escapeSymbol(symbol))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("parquet dir: %w", err)
	}
	n := wf.ordinal[dir]
	wf.ordinal[dir] = n + 1
	ts := time.UnixMicro(tsOf(first)).UTC().Format("20060102T150405.000000Z")
	name := fmt.Sprintf("part-%s%s-i%dw%d-%04d.parquet", ts, w.writer, w.instance, wf.idx, n)
	fl := &file[T]{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".tmp"), opened: time.Now()}
	f, err := os.Create(fl.tmp)
	if err != nil {
		return nil, fmt.Errorf("parquet create: %w", err)
	}
	fl.f = f
	opts := []pq.WriterOption{
		pq.Compression(w.codec),
		pq.MaxRowsPerRowGroup(int64(w.RowGroupRows)),
		pq.CreatedBy("mdp", "", ""),
	}
	if schema != nil {
		opts = append(opts, schema)
	}
	fl.w = pq.NewGenericWriter[T](f, opts...)
	return fl, nil
}

// writerName is the part of a file name that says which job wrote it:
// "-<job>-<fingerprint>", the job name cut to 40 safe characters; "" for
// neither.
func writerName(job, fingerprint string) string {
	var b strings.Builder
	for _, r := range job {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := ""
	if b.Len() > 0 {
		out += "-" + b.String()
	}
	if fingerprint != "" {
		out += "-" + fingerprint
	}
	return out
}

// escapeSymbol makes a symbol safe as a directory name (BTC/USD → BTC%2FUSD),
// as Hive-style partitioning escapes partition values.
func escapeSymbol(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' || c == '\\' || c == '%' || c == '=' || c == ':' || c < 0x20 || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// discard closes and removes a file that cannot be completed (a failed
// write or close, a full disk): a failure leaves no temporary file behind.
func (f *file[T]) discard() {
	_ = f.f.Close()
	_ = os.Remove(f.tmp)
}

// complete closes a file that is full or old: with checkpoints off it is
// renamed into place at once; with them on it stays under its temporary
// name until the next barrier makes it pending.
func complete[T any](w *Writer, wf *workerFiles, f *file[T]) error {
	if !w.ck {
		return f.close()
	}
	if err := f.finish(); err != nil {
		return err
	}
	wf.closed = append(wf.closed, f.final)
	return nil
}

// close finishes the file, and renames it into place; on failure it
// removes the temporary file.
func (f *file[T]) close() error {
	if err := f.finish(); err != nil {
		return err
	}
	if err := os.Rename(f.tmp, f.final); err != nil {
		_ = os.Remove(f.tmp)
		return component.FileError("rename", f.tmp, err)
	}
	return syncDir(filepath.Dir(f.final))
}

// finish writes the file's footer, syncs it and closes it, under its
// temporary name; on failure it removes the temporary file.
func (f *file[T]) finish() error {
	if err := f.w.Close(); err != nil {
		f.discard()
		return fmt.Errorf("parquet close %s: %w", f.tmp, err)
	}
	if err := f.f.Sync(); err != nil {
		f.discard()
		return component.FileError("sync", f.tmp, err)
	}
	if err := f.f.Close(); err != nil {
		f.discard()
		return component.FileError("close", f.tmp, err)
	}
	return nil
}

// syncDir makes a rename durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("parquet sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("parquet sync dir %s: %w", dir, err)
	}
	return nil
}

// TickInterval checks file ages a few times per max_age.
func (w *Writer) TickInterval() time.Duration {
	if w.MaxAge <= 0 {
		return 0
	}
	return min(max(w.MaxAge/4, 10*time.Millisecond), time.Second)
}

// Tick closes the worker's files that reached max_age.
func (w *Writer) Tick(ctx context.Context, worker int, now time.Time) error {
	if w.MaxAge <= 0 || worker >= len(w.workers) {
		return nil
	}
	wf := w.workers[worker]
	if w.ck {
		wf.mu.Lock()
		defer wf.mu.Unlock()
	}
	return w.completeFiles(wf, func(opened time.Time) bool { return now.Sub(opened) >= w.MaxAge })
}

// completeFiles completes the worker's open files for which due reports
// true (given when each was opened).
func (w *Writer) completeFiles(wf *workerFiles, due func(opened time.Time) bool) error {
	errs := []error{completeOld(w, wf, wf.bars, due), completeOld(w, wf, wf.trades, due), completeOld(w, wf, wf.quotes, due)}
	for _, df := range wf.derived {
		errs = append(errs, completeOld(w, wf, df.files, due))
	}
	return errors.Join(errs...)
}

func completeOld[T any](w *Writer, wf *workerFiles, files map[partKey]*file[T], due func(time.Time) bool) error {
	var errs []error
	for k, f := range files {
		if due(f.opened) {
			delete(files, k)
			errs = append(errs, complete(w, wf, f))
		}
	}
	return errors.Join(errs...)
}

// Classify: every Parquet error is fatal (see the package doc).
func (w *Writer) Classify(err error) storekit.ErrorClass {
	if c, ok := storekit.ClassOf(err); ok {
		return c
	}
	return storekit.ClassFatal
}

// Close completes and renames every open file. With checkpoints on it also
// publishes the files completed since the last barrier and those pending
// for a checkpoint not yet notified: the job ends here (a finite job has
// drained; a failed or aborted one publishes what it wrote, as without
// checkpoints, and a resumed run removes what its checkpoint does not
// cover).
func (w *Writer) Close(ctx context.Context) error {
	var errs []error
	always := func(time.Time) bool { return true }
	for _, wf := range w.workers {
		if w.ck {
			wf.mu.Lock()
		}
		errs = append(errs, w.completeFiles(wf, always))
		if w.ck {
			errs = append(errs, publish(wf.closed, tmpName))
			wf.closed = nil
			wf.mu.Unlock()
		}
	}
	if w.ck {
		w.pmu.Lock()
		sets := w.pending
		w.pending = nil
		w.pmu.Unlock()
		errs = append(errs, w.commit(sets))
	}
	return errors.Join(errs...)
}
