package storekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

// fatalCheckInterval is how often the sink's node goroutine looks for a
// fatal error raised by a worker while no data arrives, so a broken store
// fails the job promptly even when its input is quiet.
const fatalCheckInterval = 250 * time.Millisecond

// Sink is the engine.Processor of a store sink: it queues the batches it is
// given, and its workers write them through the Writer. Build it with New.
type Sink struct {
	w      Writer
	ticker Ticker
	cfg    Config
	stats  *Stats
	nc     *engine.NodeContext
	log    *slog.Logger
	name   string // feedback reporter id
	dl     deadLetter
	br     breaker

	mu      sync.Mutex
	queues  [][]*md.Batch // per worker, FIFO
	wake    []chan struct{}
	rows    int           // rows accepted and not yet written (queued or in flight)
	space   chan struct{} // closed and replaced whenever rows fall
	level   engine.Level
	closing bool
	fatal   error

	dest []uint8 // Process scratch: each row's worker

	workCtx  context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	released bool
}

// New returns a sink that writes through w.
func New(w Writer, cfg Config) *Sink {
	s := &Sink{w: w, cfg: cfg.withDefaults(), stats: newStats(nil)}
	s.ticker, _ = w.(Ticker)
	return s
}

// Stats are the sink's counters.
func (s *Sink) Stats() *Stats { return s.stats }

// Writer returns the store the sink writes to.
func (s *Sink) Writer() Writer { return s.w }

// Summary implements engine.Summarizer: the rows written and dead-lettered.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.stats.RowsWritten.Load(), "rows_dead_lettered": s.stats.RowsDeadLettered.Load()}
}

// Config returns the sink's settings, defaults filled in.
func (s *Sink) Config() Config { return s.cfg }

// DeadLetterPath is the file the sink dead-letters to (valid after Open).
func (s *Sink) DeadLetterPath() string { return s.dl.path }

// Open opens the store and starts the workers.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc = nc
	s.name = nc.Node
	if nc.Instances > 1 {
		s.name = fmt.Sprintf("%s#%d", nc.Node, nc.Instance)
	}
	path := s.cfg.DeadLetterPath
	if path == "" {
		path = s.cfg.DefaultDeadLetterPath
	}
	if path == "" {
		path = nc.Node + ".dead_letter.jsonl"
	}
	if nc.Instances > 1 {
		ext := filepath.Ext(path)
		path = fmt.Sprintf("%s.%d%s", strings.TrimSuffix(path, ext), nc.Instance, ext)
	}
	s.dl = deadLetter{path: path, job: nc.Job, node: nc.Node}
	s.stats = newStats(nc.Metrics())
	s.br = breaker{threshold: s.cfg.BreakerFailures, cooldown: s.cfg.BreakerCooldown, stats: s.stats}
	s.cfg.SoftAt, s.cfg.HardAt = levels(s.cfg, nc.Feedback)
	s.stats.QueueCapacity.Store(int64(s.cfg.QueueSize))
	if nc.Stats != nil {
		nc.Stats.Extra.Store(s.stats)
	}
	s.log = nc.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.openRetry(ctx, Env{Workers: s.cfg.Workers, Node: nc, Logger: s.log, Stats: s.stats}); err != nil {
		return err
	}
	s.queues = make([][]*md.Batch, s.cfg.Workers)
	s.wake = make([]chan struct{}, s.cfg.Workers)
	for i := range s.wake {
		s.wake[i] = make(chan struct{}, 1)
	}
	s.space = make(chan struct{})
	s.workCtx, s.cancel = context.WithCancel(context.Background())
	s.report(engine.LevelOK)
	for i := 0; i < s.cfg.Workers; i++ {
		s.wg.Add(1)
		go s.worker(i)
	}
	return nil
}

// openRetry opens the writer, retrying a transient failure (a refused
// connection: the database is still starting) with the backoff of mid-job
// writes, up to retry_max_attempts attempts in all, so a job started a
// moment before its database does not fail.
func (s *Sink) openRetry(ctx context.Context, env Env) error {
	for attempt := 1; ; attempt++ {
		err := s.w.Open(ctx, env)
		if err == nil {
			return nil
		}
		if attempt >= s.cfg.RetryMaxAttempts || s.w.Classify(err) != ClassTransient || ctx.Err() != nil {
			return err
		}
		d := retry.Backoff{Base: s.cfg.RetryBackoff, Max: s.cfg.RetryBackoffMax}.Delay(attempt)
		s.log.Warn("store not reachable at start-up; retrying", "attempt", attempt, "max_attempts", s.cfg.RetryMaxAttempts, "in", d, "err", err)
		if serr := retry.Sleep(ctx, d); serr != nil {
			return err
		}
	}
}

// levels resolves the soft and hard fractions: the sink's own, else the
// job's feedback settings, else 0.5 and 0.9.
func levels(c Config, fb *engine.Feedback) (soft, hard float64) {
	soft, hard = fb.Thresholds()
	if c.SoftAt > 0 {
		soft = c.SoftAt
	}
	if c.HardAt > 0 {
		hard = c.HardAt
	}
	return soft, hard
}

// release closes the store and the dead-letter file and frees what is still
// queued. It runs once, from Close or from Cleanup, after the workers have
// stopped; a later call returns nil.
func (s *Sink) release(ctx context.Context) error {
	if s.released {
		return nil
	}
	s.released = true
	var errs []error
	if err := s.w.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	if err := s.dl.close(); err != nil {
		errs = append(errs, fmt.Errorf("close dead-letter file: %w", err))
	}
	s.mu.Lock()
	for w := range s.queues { // left only after an abort or a fatal error
		for _, b := range s.queues[w] {
			b.Release()
		}
		s.queues[w] = nil
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Cleanup stops the workers at once and releases the store. The engine calls
// it on every way out; after Close it has nothing left to do, and after an
// abort, a failure or another node's failed Open it drops what is still
// queued (a later run writes it again: delivery is at least once).
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.cancel == nil { // never opened
		return nil
	}
	s.cancel()
	s.wg.Wait()
	return s.release(ctx)
}

// Process queues b for the workers, split by symbol hash. It blocks while
// the queue is full.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := s.fatalErr(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	n := s.cfg.Workers
	if n == 1 {
		b.Retain(1)
		return s.enqueue(ctx, 0, b)
	}
	// Split by symbol at the worker level (re-mixed, so that the engine's
	// split across instances does not leave workers idle); every row of one
	// symbol goes to the same worker, so its rows are written in arrival order. A first pass
	// assigns and counts, so each part is sized once.
	syms := s.nc.Symbols.Snapshot()
	rows := b.Len()
	if cap(s.dest) < rows {
		s.dest = make([]uint8, rows)
	}
	dest := s.dest[:rows]
	var count [maxWorkers]int
	switch b.Kind {
	case md.KindTrade:
		for i := range b.Trades {
			dest[i] = uint8(md.Split(syms[b.Trades[i].Sym].Hash, md.SplitWorkers, n))
		}
	case md.KindQuote:
		for i := range b.Quotes {
			dest[i] = uint8(md.Split(syms[b.Quotes[i].Sym].Hash, md.SplitWorkers, n))
		}
	case md.KindBar:
		for i := range b.Bars {
			dest[i] = uint8(md.Split(syms[b.Bars[i].Sym].Hash, md.SplitWorkers, n))
		}
	case md.KindDerived:
		for i := range b.Derived {
			dest[i] = uint8(md.Split(syms[b.Derived[i].Sym].Hash, md.SplitWorkers, n))
		}
	default:
		return nil
	}
	for _, w := range dest {
		count[w]++
	}
	if first := dest[0]; count[first] == rows {
		// All rows go to one worker: queue the batch itself.
		b.Retain(1)
		return s.enqueue(ctx, int(first), b)
	}
	var parts [maxWorkers]*md.Batch
	for w := 0; w < n; w++ {
		if count[w] > 0 {
			parts[w] = s.part(b.Kind, count[w])
			parts[w].Schema = b.Schema
		}
	}
	switch b.Kind {
	case md.KindTrade:
		for i, w := range dest {
			parts[w].Trades = append(parts[w].Trades, b.Trades[i])
		}
	case md.KindQuote:
		for i, w := range dest {
			parts[w].Quotes = append(parts[w].Quotes, b.Quotes[i])
		}
	case md.KindBar:
		for i, w := range dest {
			parts[w].Bars = append(parts[w].Bars, b.Bars[i])
		}
	case md.KindDerived:
		for i, w := range dest {
			parts[w].CopyDerived(b, i)
		}
	}
	var err error
	for w := 0; w < n; w++ {
		p := parts[w]
		if p == nil {
			continue
		}
		if err != nil {
			p.Release()
			continue
		}
		err = s.enqueue(ctx, w, p)
	}
	return err
}

// part returns a pooled batch with room for n records.
func (s *Sink) part(k md.Kind, n int) *md.Batch { return s.nc.Pool.GetCap(k, n) }

// enqueue hands b (and the caller's reference) to worker w's queue.
func (s *Sink) enqueue(ctx context.Context, w int, b *md.Batch) error {
	n := b.Len()
	if n == 0 {
		b.Release()
		return nil
	}
	s.mu.Lock()
	if s.rows > 0 && s.rows+n > s.cfg.QueueSize && s.fatal == nil {
		start := time.Now()
		for s.rows > 0 && s.rows+n > s.cfg.QueueSize && s.fatal == nil {
			ch := s.space
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				b.Release()
				return ctx.Err()
			}
			s.mu.Lock()
		}
		if s.nc.Stats != nil {
			s.nc.Stats.BlockedNs.Add(time.Since(start).Nanoseconds())
		}
	}
	if s.fatal != nil {
		err := s.fatal
		s.mu.Unlock()
		b.Release()
		return err
	}
	s.queues[w] = append(s.queues[w], b)
	s.rows += n
	s.setLevelLocked()
	s.mu.Unlock()
	select {
	case s.wake[w] <- struct{}{}:
	default:
	}
	return nil
}

// setLevelLocked recomputes the queue level and reports a change. Holding
// s.mu keeps reports in the order the levels were computed.
func (s *Sink) setLevelLocked() {
	s.stats.QueueRows.Store(int64(s.rows))
	l := engine.LevelOf(s.rows, s.cfg.QueueSize, s.cfg.SoftAt, s.cfg.HardAt)
	if l != s.level {
		s.level = l
		s.report(l)
	}
}

func (s *Sink) report(l engine.Level) {
	s.stats.Level.Store(int32(l))
	if s.nc.Feedback != nil {
		s.nc.Feedback.Report(s.name, l)
	}
}

// Level is the queue level the sink last reported.
func (s *Sink) Level() engine.Level { return engine.Level(s.stats.Level.Load()) }

// TimerInterval makes the engine call OnTimer, which surfaces a worker's
// fatal error while the input is quiet.
func (s *Sink) TimerInterval() time.Duration { return fatalCheckInterval }

// OnTimer returns the fatal error a worker hit, if any.
func (s *Sink) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	return s.fatalErr()
}

func (s *Sink) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

func (s *Sink) setFatal(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
		close(s.space)
		s.space = make(chan struct{})
	}
	s.mu.Unlock()
	s.log.Error("store failed", "err", err)
}

// Flush implements engine.Flusher: it returns once every row accepted so
// far is written (a checkpoint barrier passed the sink), or with the
// store's fatal error, or ctx's when the job is aborted.
func (s *Sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	for s.rows > 0 && s.fatal == nil {
		ch := s.space
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	err := s.fatal
	s.mu.Unlock()
	return err
}

// Close writes everything accepted, then closes the store. It returns the
// first fatal error, or ctx's error if the job was aborted first (then the
// workers stop at once).
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if s.cancel == nil { // never opened
		return nil
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	for _, ch := range s.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	drained := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		s.cancel()
		<-drained
	}
	s.cancel()
	var errs []error
	if err := s.fatalErr(); err != nil {
		errs = append(errs, err)
	} else if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := s.release(context.WithoutCancel(ctx)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// worker writes worker w's queue until Close drains it or the job aborts.
func (s *Sink) worker(w int) {
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.setFatal(fmt.Errorf("store worker %d panicked: %v", w, r))
		}
	}()
	var tickC <-chan time.Time
	if s.ticker != nil {
		if d := s.ticker.TickInterval(); d > 0 {
			t := time.NewTicker(d)
			defer t.Stop()
			tickC = t.C
		}
	}
	var (
		items []*md.Batch
		acc   Batch // reused buffers for joining several queued batches
	)
	for {
		s.mu.Lock()
		if s.fatal != nil || s.workCtx.Err() != nil {
			s.mu.Unlock()
			return
		}
		var rows int
		items, rows = s.takeLocked(w, items[:0])
		closing := s.closing
		s.mu.Unlock()
		if len(items) == 0 {
			if closing {
				return
			}
			select {
			case <-s.wake[w]:
			case now := <-tickC:
				s.tick(w, now)
			case <-s.workCtx.Done():
				return
			}
			continue
		}
		err := s.writeItems(w, items, &acc)
		for i, b := range items {
			b.Release()
			items[i] = nil
		}
		s.mu.Lock()
		s.rows -= rows
		s.setLevelLocked()
		close(s.space)
		s.space = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			if s.workCtx.Err() == nil {
				s.setFatal(err)
			}
			return
		}
		select {
		case now := <-tickC:
			s.tick(w, now)
		default:
		}
	}
}

// takeLocked moves the head of worker w's queue into items: consecutive
// batches of one kind (and one schema), up to batch_rows rows (at least one
// batch).
func (s *Sink) takeLocked(w int, items []*md.Batch) ([]*md.Batch, int) {
	q := s.queues[w]
	if len(q) == 0 {
		return items, 0
	}
	kind, schema := q[0].Kind, q[0].Schema
	rows, i := 0, 0
	for i < len(q) && q[i].Kind == kind && (i == 0 || rows+q[i].Len() <= s.cfg.BatchRows && q[i].Schema.Equal(schema)) {
		rows += q[i].Len()
		i++
	}
	items = append(items, q[:i]...)
	n := copy(q, q[i:])
	clear(q[n:])
	s.queues[w] = q[:n]
	return items, rows
}

// writeItems writes the taken batches as writes of at most batch_rows rows.
func (s *Sink) writeItems(w int, items []*md.Batch, acc *Batch) error {
	syms := s.nc.Symbols.Snapshot()
	kind := items[0].Kind
	var b *Batch
	if len(items) == 1 { // the common case: write straight from the queued batch
		it := items[0]
		b = &Batch{Kind: kind, Trades: it.Trades, Quotes: it.Quotes, Bars: it.Bars,
			Derived: it.Derived, Values: it.Values, Schema: it.Schema}
	} else {
		acc.Kind, acc.Schema = kind, items[0].Schema
		acc.Trades, acc.Quotes, acc.Bars = acc.Trades[:0], acc.Quotes[:0], acc.Bars[:0]
		acc.Derived, acc.Values = acc.Derived[:0], acc.Values[:0]
		for _, it := range items {
			acc.Trades = append(acc.Trades, it.Trades...)
			acc.Quotes = append(acc.Quotes, it.Quotes...)
			acc.Bars = append(acc.Bars, it.Bars...)
			acc.Derived = append(acc.Derived, it.Derived...)
			acc.Values = append(acc.Values, it.Values...)
		}
		b = acc
	}
	b.Symbols, b.Worker = syms, w
	n := b.Len()
	for i := 0; i < n; i += s.cfg.BatchRows {
		if err := s.writeRetry(b.slice(i, min(i+s.cfg.BatchRows, n))); err != nil {
			return err
		}
	}
	return nil
}

// writeRetry writes b with retries. It returns an error only when the job
// must stop: a fatal store error, a dead-letter file that cannot be written,
// or an abort.
func (s *Sink) writeRetry(b *Batch) error {
	ctx := s.workCtx
	n := int64(b.Len())
	for attempt := 1; ; attempt++ {
		if err := s.br.wait(ctx); err != nil {
			return err
		}
		b.Attempt = attempt
		t0 := time.Now()
		err := s.w.Write(ctx, b)
		if err == nil {
			s.stats.observe(time.Since(t0))
			s.stats.RowsWritten.Add(n)
			s.stats.BatchesWritten.Add(1)
			s.br.success()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.stats.RowsFailed.Add(n)
		s.stats.BatchesFailed.Add(1)
		switch class := s.w.Classify(err); class {
		case ClassFatal:
			return fmt.Errorf("write %d %s rows: %w", n, b.Kind, err)
		case ClassData:
			// The store answered, so it is healthy; some rows are bad.
			s.br.success()
			if n == 1 {
				return s.deadLetter(b, class, attempt, err)
			}
			mid := int(n / 2)
			if err := s.writeRetry(b.slice(0, mid)); err != nil {
				return err
			}
			return s.writeRetry(b.slice(mid, int(n)))
		default:
			s.br.failure()
			if attempt >= s.cfg.RetryMaxAttempts {
				return s.deadLetter(b, class, attempt, err)
			}
			s.stats.Retries.Add(1)
			s.log.Warn("store write failed; retrying", "rows", n, "attempt", attempt, "err", err)
			if err := retry.Sleep(ctx, retry.Backoff{Base: s.cfg.RetryBackoff, Max: s.cfg.RetryBackoffMax}.Delay(attempt)); err != nil {
				return err
			}
		}
	}
}

func (s *Sink) deadLetter(b *Batch, class ErrorClass, attempts int, cause error) error {
	n := int64(b.Len())
	if err := s.dl.write(b, class, attempts, cause); err != nil {
		return fmt.Errorf("%d %s rows could not be stored (%v) nor dead-lettered: %w", n, b.Kind, cause, err)
	}
	s.stats.RowsDeadLettered.Add(n)
	s.stats.BatchesDeadLettered.Add(1)
	reason, msg := "rejected", fmt.Sprintf("%d %s row(s) rejected by the store, written to %s: %v", n, b.Kind, s.dl.path, cause)
	if class == ClassTransient {
		reason, msg = "retries_exhausted", fmt.Sprintf("%d %s row(s) failed %d attempts, written to %s: %v", n, b.Kind, attempts, s.dl.path, cause)
	}
	if s.nc.Stats != nil {
		s.nc.Stats.Drop("dead_letter", n)
		s.nc.Stats.Error(reason, msg)
	}
	s.log.Error("rows dead-lettered", "rows", n, "kind", b.Kind.String(), "reason", reason, "file", s.dl.path, "err", cause)
	return nil
}

func (s *Sink) tick(w int, now time.Time) {
	err := s.ticker.Tick(s.workCtx, w, now)
	if err == nil || s.workCtx.Err() != nil {
		return
	}
	if s.w.Classify(err) == ClassFatal {
		s.setFatal(err)
		return
	}
	if s.nc.Stats != nil {
		s.nc.Stats.Error("tick", err.Error())
	}
	s.log.Warn("store tick failed", "worker", w, "err", err)
}

// breaker is a circuit breaker shared by a sink's workers. Closed: writes
// go through. After threshold consecutive failed attempts it opens: no write
// is tried for cooldown. Then it is half-open: one write probes; success
// closes it, failure opens it again.
type breaker struct {
	threshold int
	cooldown  time.Duration
	stats     *Stats

	mu        sync.Mutex
	fails     int
	openUntil time.Time // zero when closed
	probing   bool
}

func (b *breaker) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		if b.threshold <= 0 || b.openUntil.IsZero() {
			b.mu.Unlock()
			return ctx.Err()
		}
		now := time.Now()
		if now.Before(b.openUntil) {
			d := b.openUntil.Sub(now)
			b.mu.Unlock()
			if err := retry.Sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		if !b.probing {
			b.probing = true
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Unlock()
		// Another worker's probe is in flight; look again shortly.
		if err := retry.Sleep(ctx, min(max(b.cooldown/10, time.Millisecond), 100*time.Millisecond)); err != nil {
			return err
		}
	}
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails = 0
	if !b.openUntil.IsZero() {
		b.openUntil = time.Time{}
		b.probing = false
		b.stats.BreakerOpen.Store(false)
	}
	b.mu.Unlock()
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	if b.threshold <= 0 {
		return
	}
	if b.probing || (b.openUntil.IsZero() && b.fails >= b.threshold) {
		b.openUntil = time.Now().Add(b.cooldown)
		b.probing = false
		b.stats.BreakerOpens.Add(1)
		b.stats.BreakerOpen.Store(true)
	}
}
