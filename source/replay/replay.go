// Package replay is the provider.replay source: it replays recorded trades or
// quotes from CSV, JSON-lines or Parquet files (optionally gzip or zstd
// compressed) so that a backfill or a test produces exactly the bars the live
// job produced. Several files are merged in event-time order. Replays run as
// fast as possible or paced against an absolute replay clock at k times real
// time; malformed rows are counted, logged with file and line, and dropped,
// dead-lettered to a JSON-lines file, or fatal, as configured.
//
// Known layouts have presets (tardis_trades, tardis_quotes, truefx,
// histdata); any other layout is described by kind, columns and ts_format.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"os"
	"runtime"
	"time"

	_ "time/tzdata" // timezone names must resolve on hosts without a zoneinfo database

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func init() {
	component.Register(component.Spec{
		Type:    "provider.replay",
		Kind:    engine.KindSource,
		Summary: "Replay recorded trades or quotes from CSV, JSON lines or Parquet files",
		Description: "Reads path (a file, a glob or a list) and merges several files in event-time order " +
			"(ties go to the earlier file). Formats CSV, JSON lines and Parquet, each optionally .gz or .zst, " +
			"are detected by extension. Use a preset for a known layout or kind + columns for any other. " +
			"speed 0 replays as fast as possible; speed k paces at k times real time against an absolute clock. " +
			"Records: ts and ingest_ts in ns (ingest_ts defaults to ts, so a replay is deterministic); seq numbers records " +
			"1, 2, 3... in emission order; a non-numeric trade id is hashed (xxhash64, top bit cleared); an unknown side is unknown. " +
			"A malformed row is counted (drops{reason=malformed}), logged with file and line, and dropped, " +
			"written to dead_letter_path, or fails the job, per on_error. " +
			"Store feedback: when paced, the feedback scale slows the replay clock (0 stops it); " +
			"at speed 0 a hard level pauses and a soft level duty-cycles the reader so throughput falls to the scale " +
			"(after each batch it idles for (1/scale - 1) x the time that batch took).",
		ProducesFn: func(p *component.Params) md.Kind {
			if k, ok := rowmap.PresetKind(p.String("preset")); ok {
				return k
			}
			if k, err := md.ParseKind(p.String("kind")); err == nil && k == md.KindQuote {
				return md.KindQuote
			}
			return md.KindTrade
		},
		Fields: []component.Field{
			{Name: "path", Type: component.Strings, Required: true, Path: true, Input: true,
				Description: "File, glob or list of files/globs; relative to the working directory. Globs expand in name order.",
				Example:     "testdata/replay/tardis_trades.csv"},
			{Name: "preset", Type: component.String, Enum: rowmap.PresetNames(),
				Description: "Known layout: tardis_trades, tardis_quotes (Tardis.dev CSV, µs epoch timestamp/local_timestamp, provider = exchange column), truefx (timestamp,bid,ask), histdata (HistData.com ticks in EST). Columns, ts_format, timezone and header override the preset's."},
			{Name: "kind", Type: component.String, Enum: []string{"trade", "quote"},
				Description: "Record kind for a generic layout (implied by preset)."},
			{Name: "columns", Type: component.Map,
				Description: "Record field -> column name (header name or JSON key) or zero-based index (CSV, Parquet). Fields: ts, ingest_ts, symbol, provider, price, size, side, trade_id (trades), bid, bid_size, ask, ask_size (quotes). Trades need ts, price, size; quotes need ts, bid, ask.",
				Example:     map[string]any{"ts": "time", "symbol": "sym", "price": "px", "size": "qty"}},
			{Name: "ts_format", Type: component.String,
				Description: "How ts and ingest_ts are written: unix_s, unix_ms, unix_us, unix_ns (fractions allowed), rfc3339 (also with a space for T and without offset), histdata, a Go time layout (slower), or auto: numbers by magnitude (<=11 digits s, <=14 ms, <=17 µs, else ns), text as RFC 3339. Default auto, or the preset's. Parquet TIMESTAMP columns use their own unit."},
			{Name: "timezone", Type: component.String,
				Description: "Zone of text timestamps that carry no offset: an IANA name (America/New_York) or an offset (+02:00). Default UTC (histdata: EST, UTC-5 all year). Epoch numbers are absolute and ignore it."},
			{Name: "symbol", Type: component.String,
				Description: "Constant symbol for files with no symbol column (required by truefx and histdata)."},
			{Name: "provider", Type: component.String,
				Description: "Provider the symbols are interned under. Default: the provider column if mapped (tardis: exchange), else the preset's name (truefx, histdata), else replay."},
			{Name: "header", Type: component.Bool,
				Description: "Whether a CSV file starts with a header line. Default true (histdata: false). Without a header, columns are indexes."},
			{Name: "delimiter", Type: component.String, Default: ",",
				Description: `CSV field separator: one character, or \t for tab.`},
			{Name: "format", Type: component.String, Default: "auto", Enum: []string{"auto", "csv", "jsonl", "parquet"},
				Description: "File format; auto detects it from the extension (.csv/.txt/.tsv, .jsonl/.ndjson/.json, .parquet/.pq)."},
			{Name: "compression", Type: component.String, Default: "auto", Enum: []string{"auto", "none", "gzip", "zstd"},
				Description: "Compression; auto detects .gz and .zst/.zstd."},
			{Name: "symbols", Type: component.Strings,
				Description: "Replay only these symbols (all when empty)."},
			{Name: "start", Type: component.Time,
				Description: "Replay only records with event time at or after this (RFC 3339)."},
			{Name: "end", Type: component.Time,
				Description: "Replay only records with event time before this (RFC 3339, exclusive)."},
			{Name: "speed", Type: component.Float, Default: 0, Min: component.Bound(0),
				Description: "0: as fast as possible; 1: real time; k: k times real time. Paced replays follow an absolute clock anchored at the first record, so they do not drift."},
			{Name: "progress", Type: component.String, Default: "auto", Enum: []string{"auto", "always", "never"},
				Description: "Progress (records handed on, share of the estimated total, rate, ETA): auto draws a bar when mdp runs on a terminal that no record data goes to; always also reports it as log records every 10s when there is no such terminal; never. mdp run --progress / --no-progress override it for one run."},
			{Name: "on_error", Type: component.String, Default: "drop", Enum: []string{"drop", "dead_letter", "fail"},
				Description: "Malformed rows: drop (count and log), dead_letter (also append file, line, reason and raw row as JSON lines to dead_letter_path), fail (stop the job at the first one)."},
			{Name: "max_line_bytes", Type: component.Int, Default: 1 << 20, Min: component.Bound(64), Max: component.Bound(1 << 30),
				Description: "Longest CSV or JSON line, in bytes. A longer line is a malformed row, read past in bounded memory; at most its first 4 KiB is dead-lettered."},
			{Name: "max_jump", Type: component.Duration, Default: "1h", Min: component.Bound(0),
				Description: "A row whose event time jumps more than this past the newest event time of its file so far is held back until the rows after it confirm the jump (2 of them land no more than max_jump before it: a weekend gap, a trading halt, replayed exactly as it is). A jump the next row contradicts is an outlier: a malformed row that never advances the watermark (an absurd timestamp would otherwise make every later row late). The first rows of a file are checked the same way; a jump on the very last row is malformed. 0 disables the check."},
			{Name: "decoders", Type: component.Int, Default: 0, Min: component.Bound(0), Max: component.Bound(256),
				Description: "How many files are decoded at once, each on its own goroutine feeding the event-time merge, which stays on one goroutine: the output (every record, its order, symbol ids), malformed-row reports and checkpoint positions are those of a serial replay. 0: GOMAXPROCS. 1: decode serially on the merge's goroutine; more (also with a single file, whose decoding then overlaps the merge and the operators chained to the source): each file on its own goroutine, at most this many decoding at once. See file_pieces for a single large file."},
			{Name: "file_pieces", Type: component.Bool, Default: false,
				Description: "Also cut each plain (not compressed) CSV or JSON-lines file of more than 512 KiB at line starts into pieces that decoders/files workers (at least 2) decode in parallel, taken back in file order: output, reports and checkpoint positions are still those of a serial replay. A gzip or zstd file cannot be cut without decompressing it up to the cut and is decoded whole; Parquet too. Off by default: measured on the loaded 2-core machine, it took more wall-clock time than one decoder goroutine per file (README, Performance)."},
			{Name: "dead_letter_path", Type: component.String, Path: true,
				Description: "JSON-lines file that on_error: dead_letter appends malformed rows to."},
		},
		Validate: validate,
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			return newSource(p)
		},
	})
}

func validate(p *component.Params) error {
	var errs []error
	if _, err := rowmap.ResolveLayout(p); err != nil {
		errs = append(errs, err)
	}
	if p.String("on_error") == "dead_letter" && p.String("dead_letter_path") == "" {
		errs = append(errs, p.Errorf("dead_letter_path", "on_error: dead_letter needs dead_letter_path (a JSON-lines file)"))
	}
	if p.Has("dead_letter_path") && p.String("on_error") != "dead_letter" {
		errs = append(errs, p.Errorf("dead_letter_path", "dead_letter_path applies only with on_error: dead_letter"))
	}
	start, hasStart := p.Time("start")
	end, hasEnd := p.Time("end")
	if hasStart && hasEnd && end <= start {
		errs = append(errs, p.Errorf("end", "end (%s) must be after start (%s)", md.FormatTime(end), md.FormatTime(start)))
	}
	return errors.Join(errs...)
}

// Source is a provider.replay instance.
type Source struct {
	paths    []string
	lay      *rowmap.Layout
	format   string
	comp     string
	filter   timeFilter
	symbols  []string
	speed    float64
	progress string
	policy   onError
	dlPath   string
	maxJump  int64
	maxLine  int64
	decoders int
	pieces   bool

	// progressEvery and progressLogEvery are how often progress is drawn
	// as a bar and logged as a record; tests shorten them.
	progressEvery    time.Duration
	progressLogEvery time.Duration

	nc    *engine.NodeContext
	files []string
	mal   *malformed
	clk   *replayClock
	seq   uint64
	// skipTo is the sequence a restored checkpoint of version 1 resumes
	// after (Seek); resumeAt is a version 2 one's place in each file.
	skipTo   uint64
	resumeAt *position
	readers  []*fileReader // for Position, on the source goroutine

	prog progressCounters
	// open counts the files not yet read to their end.
	open int
	// completed is set when every record was handed on (not stopped).
	completed bool
}

var (
	_ engine.Source     = (*Source)(nil)
	_ engine.Opener     = (*Source)(nil)
	_ engine.Cleaner    = (*Source)(nil)
	_ engine.EventClock = (*Source)(nil)
)

func newSource(p *component.Params) (*Source, error) {
	lay, err := rowmap.ResolveLayout(p)
	if err != nil {
		return nil, err
	}
	s := &Source{
		paths: p.Strings("path"), lay: lay, format: p.String("format"), comp: p.String("compression"),
		filter: timeFilter{start: md.MinTime, end: md.MaxTime}, symbols: p.Strings("symbols"),
		speed: p.Float("speed"), progress: p.String("progress"), dlPath: p.String("dead_letter_path"),
		maxJump: p.Duration("max_jump").Nanoseconds(), maxLine: p.Int("max_line_bytes"), decoders: int(p.Int("decoders")),
		pieces:        p.Bool("file_pieces"),
		progressEvery: 250 * time.Millisecond, progressLogEvery: 10 * time.Second,
	}
	if v, ok := p.Time("start"); ok {
		s.filter.start = v
	}
	if v, ok := p.Time("end"); ok {
		s.filter.end = v
	}
	switch p.String("on_error") {
	case "dead_letter":
		s.policy = errDeadLetter
	case "fail":
		s.policy = errFail
	}
	s.clk = newClock(s.speed)
	return s, nil
}

// Open resolves the files and opens the dead-letter file, so a wrong path
// fails the job before any data flows.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc = nc
	files, err := expandPaths(s.paths)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, _, err := detect(f, s.format, s.comp); err != nil {
			return err
		}
	}
	s.files = files
	s.mal = &malformed{policy: s.policy, log: nc.Logger, dlPath: s.dlPath}
	return s.mal.openDeadLetter()
}

// Cleanup flushes the malformed-row counters and the buffered dead-letter
// rows and closes the dead-letter file. The engine calls it on every way
// out, so a failed or aborted replay keeps the rows it dead-lettered.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.mal == nil {
		return nil
	}
	return s.mal.close(s.nc.Stats)
}

// EventNow is the replay clock's event time, for the idle watermark advance
// (see replayClock.eventNow).
func (s *Source) EventNow() int64 { return s.clk.eventNow(time.Now()) }

// mergeHeap orders file readers by the event time of their next record,
// ties by path order. Hand-written rather than container/heap, whose
// interface calls would run per record.
type mergeHeap []*fileReader

func (h mergeHeap) less(i, j int) bool {
	a, b := h[i].headTS(), h[j].headTS()
	return a < b || (a == b && h[i].idx < h[j].idx)
}

func (h mergeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *mergeHeap) popTop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	old[n] = nil
	*h = old[:n]
	h.down(0)
}

// Run replays the files.
func (s *Source) Run(ctx context.Context, out *engine.Output) (err error) {
	if s.nc == nil {
		return errors.New("provider.replay: Run called before Open")
	}
	st := s.nc.Stats

	var total int64
	for _, f := range s.files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	bufSize := min(max(4<<20/len(s.files), 16<<10), 256<<10)
	dec := rowmap.NewDecoder(s.lay, out.Symbols(), s.symbols)
	rc := &readerConfig{lay: s.lay, format: s.format, comp: s.comp, dec: dec, mal: s.mal,
		filter: s.filter, bufSize: bufSize, counter: &s.prog.bytes, maxJump: s.maxJump, maxLine: s.maxLine, track: out.Checkpointing()}

	readers := make([]*fileReader, 0, len(s.files))
	ndec := s.decoderCount()
	var pool *decoderPool
	if ndec > 1 {
		pool = newDecoderPool(ndec)
	}
	defer func() {
		if pool != nil {
			pool.stop()
		}
		for _, r := range readers {
			r.close()
		}
	}()
	var sizes *md.SizeDecimals
	if pool != nil {
		sizes = md.NewSizeDecimals(out.Symbols())
	}
	for i, f := range s.files {
		frc := rc
		var table *md.SymbolTable
		if pool != nil {
			// Each decoder interns into its own table; the merge maps its
			// ids to the job's in the serial order.
			table = md.NewSymbolTable()
			c := *rc
			c.dec = rowmap.NewDecoder(s.lay, table, s.symbols)
			frc = &c
		}
		r, err := openReader(i, f, frc)
		if err != nil {
			return err
		}
		if s.resumeAt != nil {
			if err := r.resume(s.resumeAt.Files[i].At); err != nil {
				r.close()
				return fmt.Errorf("provider.replay: %w", err)
			}
		}
		if pool != nil {
			if err := startPieces(r, s.pieceWorkers(), frc, s.symbols, table, pool.done, &pool.wg); err != nil {
				r.close()
				return fmt.Errorf("provider.replay: %w", err)
			}
			r = newAsyncFile(r, table, out.Symbols(), sizes)
			pool.start(r)
		}
		readers = append(readers, r)
	}
	s.readers = readers
	if s.resumeAt != nil {
		s.seq = s.resumeAt.Seq
		s.prog.emitted.Add(int64(s.seq))
	}

	s.prog.totalBytes = total
	s.open = len(readers)
	// The job's progress mode (mdp run --progress / --no-progress) wins
	// over the param, so a user can force or silence it per run.
	progress := s.progress
	if m := s.nc.Progress.Mode; m == "always" || m == "never" {
		progress = m
	}
	if term := s.nc.Progress.Terminal; progress != "never" && (term != nil || progress == "always") {
		every := s.progressEvery
		if term == nil {
			every = s.progressLogEvery
		}
		rep := startProgress(&s.prog, term, s.nc.Logger, every)
		defer func() { rep.finish(s.completed) }()
	}

	h := make(mergeHeap, 0, len(readers))
	for _, r := range readers {
		if err := s.fill(r); err != nil {
			return err
		}
		if r.buffered() > 0 {
			h = append(h, r)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	if len(h) == 0 {
		s.completed = true
		return s.mal.flush(st)
	}
	return s.emitLoop(ctx, out, h)
}

// decoderCount is how many files may decode at once, each on its own
// goroutine; 1: none, the merge decodes. A single file gets its own
// decoder too when decoders allows more than one, so decoding overlaps the
// merge and whatever runs on the source goroutine after it (chained
// operators).
func (s *Source) decoderCount() int {
	n := s.decoders
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n <= 1 {
		return 1
	}
	return max(min(n, len(s.files)), 2)
}

// pieceWorkers is how many workers decode each plain file in pieces
// (pieces.go) with file_pieces on: the decoders shared out evenly over the
// files; below 2, files are decoded whole.
func (s *Source) pieceWorkers() int {
	if !s.pieces {
		return 0
	}
	n := s.decoders
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return n / len(s.files)
}

// fill refills r's chunk and counts what it decoded, for progress.
func (s *Source) fill(r *fileReader) error {
	wasEOF := r.eof
	err := r.fill()
	s.prog.decoded.Add(int64(r.buffered()))
	if r.eof && !wasEOF {
		s.open--
		if s.open == 0 {
			s.prog.exact.Store(true)
		}
	}
	return err
}

// emitLoop merges the readers' chunks into batches and emits them, paced
// when speed > 0.
func (s *Source) emitLoop(ctx context.Context, out *engine.Output, h mergeHeap) error {
	kind := s.lay.Kind
	st := s.nc.Stats
	fb := s.nc.Feedback
	if s.skipTo > 0 {
		var err error
		if h, err = s.skip(h); err != nil {
			return err
		}
		if len(h) == 0 {
			s.completed = true
			return s.mal.flush(st)
		}
	}
	paced := s.speed > 0
	horizon := md.MaxTime
	if paced {
		now := time.Now()
		s.clk.start(now, h[0].headTS(), fb.Scale())
		horizon = s.clk.horizon(now)
	} else {
		s.clk.start(time.Now(), md.MinTime, 1)
	}
	batch := out.NewBatch(kind)
	room := cap(batch.Trades)
	if kind == md.KindQuote {
		room = cap(batch.Quotes)
	}
	room = max(room, 1)
	lastFlush := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	// pause blocks while the store feedback is at a hard level (scale 0).
	pause := func() {
		if fb.Scale() > 0 {
			return
		}
		if len(h) > 0 {
			s.clk.setSafe(h[0].headTS() - 1)
		}
		if paced {
			s.clk.setScale(time.Now(), 0)
		}
		_ = fb.Wait(ctx) // a cancelled ctx ends the loop at its next check
	}
	flush := func() error {
		n := batch.Len()
		if n == 0 {
			return nil
		}
		if err := s.mal.flush(st); err != nil {
			return err
		}
		pause()
		s.prog.emitted.Add(int64(n))
		err := out.Emit(batch)
		batch = out.NewBatch(kind)
		if err != nil {
			return err
		}
		sc := fb.Scale()
		if paced {
			// The clock carries the scale: a lower one slows event time.
			now := time.Now()
			s.clk.setScale(now, sc)
			horizon = s.clk.horizon(now)
			return nil
		}
		if sc > 0 && sc < 1 {
			// Duty cycle: idle (1/scale - 1) x the time this batch took, so
			// throughput falls to scale x the unthrottled rate.
			_ = s.sleep(ctx, timer, time.Duration(float64(time.Since(lastFlush))*(1/sc-1)))
		}
		lastFlush = time.Now()
		return nil
	}

	for len(h) > 0 {
		if ctx.Err() != nil {
			break
		}
		r := h[0]
		bound, bidx := md.MaxTime, int(^uint(0)>>1)
		if len(h) > 1 {
			c := h[1]
			if len(h) > 2 && h.less(2, 1) {
				c = h[2]
			}
			bound, bidx = c.headTS(), c.idx
		}
		lim := min(r.buffered(), room-batch.Len())
		n := lim
		if paced || bound != md.MaxTime {
			n = 0
			for n < lim {
				var ts int64
				if kind == md.KindTrade {
					ts = r.trades[r.head+n].TS
				} else {
					ts = r.quotes[r.head+n].TS
				}
				if ts > bound || (ts == bound && r.idx > bidx) || ts > horizon {
					break
				}
				n++
			}
		}
		if n > 0 {
			if kind == md.KindTrade {
				for _, t := range r.trades[r.head : r.head+n] {
					s.seq++
					t.Seq = s.seq
					batch.Trades = append(batch.Trades, t)
				}
			} else {
				for _, q := range r.quotes[r.head : r.head+n] {
					s.seq++
					q.Seq = s.seq
					batch.Quotes = append(batch.Quotes, q)
				}
			}
			r.head += n
			if r.buffered() == 0 {
				if err := s.fill(r); err != nil {
					return errors.Join(err, flush())
				}
				if r.buffered() == 0 {
					h.popTop()
				} else {
					h.down(0)
				}
			} else {
				h.down(0)
			}
			if batch.Len() >= room {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if batch.Len() >= room {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		// Paced and the next record lies beyond the horizon.
		now := time.Now()
		if horizon = s.clk.horizon(now); r.headTS() <= horizon {
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := s.waitDue(ctx, timer, r.headTS()); err != nil {
			break
		}
		horizon = s.clk.horizon(time.Now())
	}
	if err := flush(); err != nil {
		return err
	}
	s.completed = len(h) == 0
	return s.mal.flush(st)
}

// waitDue sleeps until event time ev is due on the replay clock, following
// feedback changes while it waits.
func (s *Source) waitDue(ctx context.Context, timer *time.Timer, ev int64) error {
	fb := s.nc.Feedback
	s.clk.setSafe(ev - 1)
	for {
		now := time.Now()
		sc := fb.Scale()
		s.clk.setScale(now, sc)
		if sc <= 0 {
			if err := fb.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		due, _ := s.clk.wallFor(ev)
		d := due.Sub(now) - granularity
		if d <= 0 {
			return nil
		}
		var changed <-chan struct{}
		if fb != nil {
			changed = fb.Changed()
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-changed:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// sleep waits d or until ctx ends.
func (s *Source) sleep(ctx context.Context, timer *time.Timer, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// String describes the source for logs.
func (s *Source) String() string {
	return fmt.Sprintf("provider.replay(%d files, %s)", len(s.files), s.lay.Kind)
}

// positionVersion is the version of the replay's checkpoint position.
// Version 1 (a record count, resumed by reading the files again and
// passing over that many records) is still read.
const positionVersion = 2

// position is where a replay is: the records it has emitted (its
// sequence, which numbers them) and, per file in path order, where that
// file was after the last of its records that was emitted. The merge needs
// nothing else: it takes the earliest next record of the files (ties by
// path order), so from these places it goes on exactly as it would have.
type position struct {
	V     int       `json:"v"`
	Seq   uint64    `json:"seq"`
	Files []filePos `json:"files,omitempty"`
}

type filePos struct {
	Path string  `json:"path"`
	At   recMeta `json:"at"`
}

// Position implements engine.Seeker. It is called inside Emit, after the
// batch was sent: every record taken from the files is in it or before.
func (s *Source) Position(int64) ([]byte, error) {
	p := position{V: positionVersion, Seq: s.seq, Files: make([]filePos, len(s.readers))}
	for i, r := range s.readers {
		p.Files[i] = filePos{Path: r.path, At: r.consumed()}
	}
	return json.Marshal(&p)
}

// Seek implements engine.Seeker: Run opens each file where the position
// has it (a plain file seeks to the byte offset, so what was read before
// is not read again; a compressed one is decompressed up to it; Parquet
// seeks to the row) and merges on from there. The files must be the ones
// the checkpoint was taken from, in the same order.
func (s *Source) Seek(ctx context.Context, pos []byte) error {
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		return fmt.Errorf("provider.replay: checkpoint position: %w", err)
	}
	switch p.V {
	case 1:
		s.skipTo = p.Seq
		return nil
	case positionVersion:
	default:
		return fmt.Errorf("provider.replay: checkpoint position version %d; this mdp reads versions 1 and %d", p.V, positionVersion)
	}
	if len(p.Files) != len(s.files) {
		return fmt.Errorf("provider.replay: the checkpoint was taken over %d files, this job has %d: they are not the files it was taken from", len(p.Files), len(s.files))
	}
	for i, f := range p.Files {
		if f.Path != s.files[i] {
			return fmt.Errorf("provider.replay: file %d of the checkpoint is %s, of this job %s: they are not the files it was taken from", i+1, f.Path, s.files[i])
		}
	}
	s.resumeAt = &p
	return nil
}

// skip passes over the records up to s.skipTo in merge order.
func (s *Source) skip(h mergeHeap) (mergeHeap, error) {
	for s.seq < s.skipTo && len(h) > 0 {
		r := h[0]
		r.head++
		s.seq++
		if r.buffered() == 0 {
			if err := s.fill(r); err != nil {
				return h, err
			}
			if r.buffered() == 0 {
				h.popTop()
				continue
			}
		}
		h.down(0)
	}
	if s.seq < s.skipTo {
		return h, fmt.Errorf("provider.replay: the checkpoint is at record %d but the files hold %d: they are not the files it was taken from", s.skipTo, s.seq)
	}
	s.prog.emitted.Add(int64(s.seq))
	return h, nil
}
