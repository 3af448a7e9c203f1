// Package storekit is the machinery every store sink shares: sqlite,
// postgres, parquet and any other sink that writes batches of rows to a
// store. A concrete store implements Writer (open, write one batch, classify
// an error, close); storekit wraps it in a Sink, the engine.Processor that the
// component registers, and supplies the rest:
//
//   - workers (param workers, default 2), each fed by symbol
//     (md.Split at level md.SplitWorkers, independent of the engine's split
//     across instances), so every symbol's rows are written in
//     the order they arrived;
//   - a bounded queue per sink instance (queue_size rows); Process blocks
//     when the queue is full, so backpressure reaches the sources, and the
//     queue level (ok / soft / hard at soft_at / hard_at of capacity, by
//     default the job's feedback.soft_at / hard_at, 0.5 / 0.9) is reported
//     to the job's engine.Feedback, which scales the sources' rate;
//   - group commit: a worker takes whatever is queued for it, up to
//     batch_rows rows of one kind, and hands it to Writer.Write as one Batch
//     (one transaction, for a database);
//   - retries of transient errors with exponential backoff and full jitter
//     (retry_max_attempts, retry_backoff, retry_backoff_max) and a circuit
//     breaker shared by the workers (breaker_failures consecutive failed
//     attempts open it for breaker_cooldown; then one probe is let through);
//   - a dead-letter file (JSON lines, one record per line with the error) for
//     a batch that exhausts its retries and for every row the store rejects
//     permanently: a batch rejected as ClassData is split in halves until the
//     offending rows are isolated, so the good rows are still written;
//   - counters (Stats), registered at Open through the node context
//     (engine.NodeContext.Metrics) as the mdp_sink_* series, and the node's
//     own drop and error counters.
//
// Errors are classified by the Writer: ClassTransient is retried,
// ClassData (a row the store rejects: a constraint, a value out of range)
// goes to the dead-letter file and is recorded in the node's status, and
// ClassFatal (a wrong schema, bad credentials, a missing directory) fails the
// job with the Writer's message.
//
// Close drains every queue and writes everything that was accepted before it
// returns. On every other way out (an abort, a failure, another node's
// failed Open) the engine calls Cleanup instead, which stops the workers at
// once and releases the store and the dead-letter file. A sink built with storekit writes with at-least-once delivery; the
// Writer makes that effectively-once by writing idempotently (an upsert on
// the natural key, or files that are renamed into place only when complete).
//
// A concrete sink registers like this:
//
//	component.Register(component.Spec{
//		Type: "sink.sqlite", Kind: engine.KindSink, Accepts: md.KindBar | md.KindTrade | md.KindQuote,
//		Fields: append([]component.Field{ /* the store's own params */ }, storekit.Fields(storekit.Defaults{BatchRows: 10000})...),
//		Validate: storekit.Validate,
//		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
//			cfg, err := storekit.ConfigFrom(p)
//			if err != nil {
//				return nil, err
//			}
//			return storekit.New(&sqliteWriter{path: p.String("path")}, cfg), nil
//		},
//	})
package storekit

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Writer is what a concrete store implements. storekit calls Open once, then
// Write from up to Env.Workers goroutines at once (each call carries its
// worker index, so a Writer may keep per-worker state without locks), and
// Close once after every worker has stopped.
type Writer interface {
	// Open connects to the store and prepares it (creates tables, checks the
	// schema, makes directories). An error fails the job before data flows.
	Open(ctx context.Context, env Env) error
	// Write stores one batch of rows of one kind, all or nothing (one
	// transaction for a database). It may be called again with the same rows
	// after an error, so it must be idempotent.
	Write(ctx context.Context, b *Batch) error
	// Classify says what to do about an error returned by Write.
	Classify(err error) ErrorClass
	// Close releases the store. For stores that buffer (files), it makes
	// everything written so far durable.
	Close(ctx context.Context) error
}

// Ticker is implemented by Writers that act on wall-clock time, such as a
// file store that rolls files by age. Tick runs on each worker's goroutine
// every TickInterval, between writes, so per-worker state needs no locks.
// An error from Tick is classified and handled like a Write error of an
// empty batch: ClassFatal fails the job, anything else is logged and counted.
type Ticker interface {
	TickInterval() time.Duration
	Tick(ctx context.Context, worker int, now time.Time) error
}

// Env is what a Writer learns at Open.
type Env struct {
	// Workers is the number of worker goroutines that will call Write; the
	// worker index in a Batch is in [0, Workers).
	Workers int
	// Node is the node's context (job and node names, symbols, logger).
	Node   *engine.NodeContext
	Logger *slog.Logger
	// Stats are the sink's counters; a Writer that can tell how many rows
	// it really changed adds them to Stats.RowsChanged.
	Stats *Stats
}

// ErrorClass says how storekit treats a write error.
type ErrorClass uint8

// Error classes.
const (
	// ClassTransient errors (a lost connection, a lock timeout, a full
	// disk that may clear) are retried with backoff; a batch that exhausts
	// its retries goes to the dead-letter file.
	ClassTransient ErrorClass = iota
	// ClassData errors are a permanent rejection of some rows (a constraint
	// violation, a value the column cannot hold). The batch is split until
	// the rejected rows are isolated; they go to the dead-letter file with
	// the error and the node's status records it. The rest are written.
	ClassData
	// ClassFatal errors (the table has the wrong schema, authentication
	// failed, the path is not writable) fail the job with the error.
	ClassFatal
)

// String returns transient, data or fatal.
func (c ErrorClass) String() string {
	switch c {
	case ClassData:
		return "data"
	case ClassFatal:
		return "fatal"
	}
	return "transient"
}

// Batch is one write: rows of one kind, for one worker. Exactly one of
// Trades, Quotes, Bars or Derived is used, according to Kind; derived rows
// also set Schema and their field values in Values (Schema.Len() per row). The slices belong to
// storekit and are valid only during the Write call.
type Batch struct {
	Kind   md.Kind
	Trades []md.Trade
	Quotes []md.Quote
	Bars   []md.Bar
	// Derived records of one schema and their values.
	Derived []md.Derived
	Values  []md.Value
	Schema  *md.Schema
	// Symbols resolves every row's md.SymID to its provider and symbol text.
	Symbols []md.Instrument
	// Worker is the index of the worker writing the batch.
	Worker int
	// Attempt is 1 on the first try and counts up on retries.
	Attempt int
}

// Len is the number of rows in the batch.
func (b *Batch) Len() int {
	switch b.Kind {
	case md.KindTrade:
		return len(b.Trades)
	case md.KindQuote:
		return len(b.Quotes)
	case md.KindBar:
		return len(b.Bars)
	case md.KindDerived:
		return len(b.Derived)
	}
	return 0
}

// Row returns the field values of derived row i.
func (b *Batch) Row(i int) []md.Value {
	n := b.Schema.Len()
	return b.Values[i*n : (i+1)*n : (i+1)*n]
}

// Instrument returns the instrument of sym.
func (b *Batch) Instrument(sym md.SymID) md.Instrument {
	if int(sym) < len(b.Symbols) {
		return b.Symbols[sym]
	}
	return md.Instrument{}
}

// slice returns rows [i, j) as a new Batch header sharing the rows.
func (b *Batch) slice(i, j int) *Batch {
	c := &Batch{Kind: b.Kind, Symbols: b.Symbols, Worker: b.Worker, Schema: b.Schema}
	switch b.Kind {
	case md.KindTrade:
		c.Trades = b.Trades[i:j]
	case md.KindQuote:
		c.Quotes = b.Quotes[i:j]
	case md.KindBar:
		c.Bars = b.Bars[i:j]
	case md.KindDerived:
		n := b.Schema.Len()
		c.Derived, c.Values = b.Derived[i:j], b.Values[i*n:j*n]
	}
	return c
}

// Fatal wraps err so that the default classifier treats it as ClassFatal.
// Writers may return it from Write for conditions they detect themselves.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: ClassFatal}
}

// DataError wraps err so that the default classifier treats it as ClassData.
func DataError(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: ClassData}
}

type classified struct {
	err   error
	class ErrorClass
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// ClassOf returns the class given by Fatal or DataError anywhere in err's
// chain, and whether there was one. Writers call it first in Classify.
func ClassOf(err error) (ErrorClass, bool) {
	var c *classified
	if errors.As(err, &c) {
		return c.class, true
	}
	return ClassTransient, false
}
