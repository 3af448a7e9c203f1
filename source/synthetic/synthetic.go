// Package synthetic is the provider.synthetic source: generated trades or
// quotes for demos, tests and benchmarks, with no network or files.
//
// Model "random" (the default) walks each symbol's price in cent ticks, drawing
// symbols, moves and sizes from a splitmix64 stream seeded by `seed`, so the
// same params give the same records. Model "bench" produces exactly the bars
// workload of bench/WORKLOAD.md (SYM000.., T0 + i*10µs), generated straight
// into pooled batches so the source is never the bottleneck of an engine
// benchmark.
//
// Unpaced (rate 0) the source runs as fast as its consumers take batches and
// stamps event times on a fixed clock (start + i*step; the bench model's own
// clock), with ingest time equal to event time, so two runs produce
// byte-identical output. Paced (rate > 0) it behaves like a live feed:
// emission follows an absolute schedule (no drift) in small batches of
// whatever is due, so latency stays low, and ingest time is the wall clock
// at emission; so is event time in model random (model bench keeps its
// workload clock). Store feedback scales the rate and pauses the source at
// scale 0.
package synthetic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

const (
	modelRandom = "random"
	modelBench  = "bench"

	defaultStart = "2024-01-02T14:30:00Z"

	// minSleep is the shortest pause between paced emissions: at high rates
	// the source wakes as often as the timer allows (every 50µs to 1ms) and
	// emits what is due since.
	minSleep = 50 * time.Microsecond
	// maxSleep bounds a pause so a slow rate still notices feedback changes,
	// the deadline and cancellation promptly.
	maxSleep = 100 * time.Millisecond

	// maxStep bounds the event-time gap of model random: a day between two
	// generated records is already more than any demo or test needs.
	maxStep = 24 * time.Hour
)

var defaultSymbols = []string{"AAPL", "MSFT"}

func init() {
	component.Register(component.Spec{
		Type:    "provider.synthetic",
		Kind:    engine.KindSource,
		Summary: "Generated trades or quotes: a seeded random walk, or the exact bars benchmark workload",
		Description: "Model random walks each symbol's price in cent ticks from a seeded splitmix64 stream. " +
			"Model bench produces exactly the bars workload of bench/WORKLOAD.md (n trades over SYM000.., " +
			"event time 2024-01-02T14:30:00Z + i*10µs). With rate 0 the source runs as fast as the job takes it " +
			"on a fixed event clock (reproducible output: event and ingest time are start + i*step, or the workload's " +
			"clock); with rate > 0 it paces emission against the wall clock like a live feed, in small batches of " +
			"what is due, stamping ingest time (and in model random event time) with the time of emission. " +
			"Store feedback scales the rate and pauses the source at scale 0.",
		ProducesFn: func(p *component.Params) md.Kind {
			if p.String("kind") == "quote" {
				return md.KindQuote
			}
			return md.KindTrade
		},
		Fields: []component.Field{
			{Name: "model", Type: component.String, Default: modelRandom, Enum: []string{modelRandom, modelBench},
				Description: "random: seeded random walk over the named symbols; bench: exactly the bars workload of bench/WORKLOAD.md"},
			{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote"},
				Description: "Record kind to produce (model bench produces trades only)"},
			{Name: "symbols", Type: component.Strings,
				Description: "Model random: the symbol names (default [AAPL, MSFT]). Model bench names its symbols itself: see symbol_count",
				Example:     []string{"AAPL", "MSFT", "NVDA"}},
			{Name: "symbol_count", Type: component.Int, Default: 100, Min: component.Bound(1), Max: component.Bound(benchMaxSymbols),
				Description: "Model bench: the number of symbols, named SYM000, SYM001, ..."},
			{Name: "seed", Type: component.Int, Default: 42, Min: component.Bound(0),
				Description: "splitmix64 seed; the same seed gives the same prices, sizes and symbols"},
			{Name: "rate", Type: component.Float, Default: 0, Min: component.Bound(0), Max: component.Bound(1e9),
				Description: "Events per second across all symbols, paced against the wall clock; 0 runs as fast as the job takes them", Example: 1000},
			{Name: "count", Type: component.Int, Default: 0, Min: component.Bound(0),
				Description: "Model random: stop after this many events; 0 means no limit"},
			{Name: "n", Type: component.Int, Default: 10_000_000, Min: component.Bound(1),
				Description: "Model bench: number of trades to produce"},
			{Name: "duration", Type: component.Duration, Default: "0s", Min: component.Bound(0),
				Description: "Stop after this much wall-clock time; 0 means no limit", Example: "30s"},
			{Name: "provider", Type: component.String, Default: "synthetic",
				Description: "Provider name the symbols are interned under"},
			{Name: "batch_size", Type: component.Int, Default: md.DefaultBatchSize, Min: component.Bound(1), Max: component.Bound(md.MaxBatchSize),
				Description: "Most records per emitted batch (paced runs emit what is due, never waiting to fill)"},
			{Name: "start", Type: component.Time, Default: defaultStart,
				Description: "Model random with rate 0: event time of the first record"},
			{Name: "step", Type: component.Duration, Default: "1ms", Min: component.Bound(0), Max: component.Bound(maxStep.Seconds()),
				Description: "Model random with rate 0: event-time gap between consecutive records. The event times must stay within the range of event times (until 2262-04-11): count x step past it is a config error, and with count 0 the source ends there", Example: "100us"},
		},
		Validate:       validate,
		ParallelSource: true,
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			cfg, err := configFrom(p)
			if err != nil {
				return nil, err
			}
			return &Source{cfg: cfg}, nil
		},
	})
}

// config is the decoded, checked params.
type config struct {
	model     string
	kind      md.Kind
	names     []string // model random
	nsyms     int      // model bench
	seed      uint64
	rate      float64
	count     int64 // events to produce; 0 = unbounded
	duration  time.Duration
	provider  string
	batchSize int
	start     int64
	step      int64
	unbounded bool // no count (model random), no duration: never ends by itself
}

func validate(p *component.Params) error {
	var errs []error
	model := p.String("model")
	if model == modelBench {
		if p.Has("symbols") {
			errs = append(errs, p.Errorf("symbols", "model bench names its symbols SYM000, SYM001, ...; set their number with symbol_count"))
		}
		if p.String("kind") != "trade" {
			errs = append(errs, p.Errorf("kind", "model bench produces trades only"))
		}
		for _, k := range []string{"count", "start", "step"} {
			if p.Has(k) {
				msg := "does not apply to model bench (its event times follow bench/WORKLOAD.md)"
				if k == "count" {
					msg = "does not apply to model bench; use n for the number of trades"
				}
				errs = append(errs, p.Errorf(k, "%s", msg))
			}
		}
	} else {
		if _, err := symbolNames(p.Strings("symbols"), p.Has("symbols")); err != nil {
			errs = append(errs, p.Errorf("symbols", "%v", err))
		}
		if p.Has("symbol_count") {
			errs = append(errs, p.Errorf("symbol_count", "applies to model bench only; model random takes symbol names in symbols"))
		}
		if p.Has("n") {
			errs = append(errs, p.Errorf("n", "applies to model bench only; use count to stop model random after a number of events"))
		}
		if p.Float("rate") > 0 {
			for _, k := range []string{"start", "step"} {
				if p.Has(k) {
					errs = append(errs, p.Errorf(k, "applies only with rate 0 (a paced source stamps records with the wall clock)"))
				}
			}
		} else if n := p.Int("count"); n > 0 {
			start, _ := p.Time("start")
			if limit := timeLimit(start, p.Duration("step").Nanoseconds()); n > limit {
				errs = append(errs, p.Errorf("step", "count %d x step %s from start %s runs past the last event time %s (at most %d records fit)",
					n, p.Duration("step"), md.FormatTime(start), md.FormatTime(tsparse.MaxNanos), limit))
			}
		}
	}
	return errors.Join(errs...)
}

// parseSymbols checks the symbols param for the model: a list of names for
// random, a count for bench.
// symbolNames checks model random's symbol names.
func symbolNames(names []string, set bool) ([]string, error) {
	if !set {
		return defaultSymbols, nil
	}
	if len(names) == 0 {
		return nil, errors.New("the list of symbols is empty")
	}
	seen := make(map[string]bool, len(names))
	for _, s := range names {
		if s == "" {
			return nil, errors.New("a symbol name is empty")
		}
		if seen[s] {
			return nil, fmt.Errorf("symbol %q is listed twice", s)
		}
		seen[s] = true
	}
	return names, nil
}

// timeLimit is how many records start + i*step (i = 0, 1, ...) stay within
// the range of event times.
func timeLimit(start, step int64) int64 {
	if step <= 0 || start > tsparse.MaxNanos {
		return math.MaxInt64
	}
	return (tsparse.MaxNanos-start)/step + 1
}

func configFrom(p *component.Params) (config, error) {
	c := config{
		model:     p.String("model"),
		kind:      md.KindTrade,
		seed:      uint64(p.Int("seed")),
		rate:      p.Float("rate"),
		count:     p.Int("count"),
		duration:  p.Duration("duration"),
		provider:  p.String("provider"),
		batchSize: int(p.Int("batch_size")),
		step:      p.Duration("step").Nanoseconds(),
	}
	c.start, _ = p.Time("start")
	c.unbounded = c.model == modelRandom && c.count == 0 && c.duration == 0
	if p.String("kind") == "quote" {
		c.kind = md.KindQuote
	}
	if c.model == modelBench {
		c.nsyms = int(p.Int("symbol_count"))
		c.count = p.Int("n")
	} else {
		names, err := symbolNames(p.Strings("symbols"), p.Has("symbols"))
		if err != nil {
			return c, p.Errorf("symbols", "%v", err)
		}
		c.names = names
		if c.rate == 0 {
			// Event times never pass the end of the range: an unbounded
			// run ends there, a bounded one past it is refused by validate.
			if limit := timeLimit(c.start, c.step); c.count == 0 || c.count > limit {
				c.count = limit
			}
		}
	}
	return c, nil
}

// Source is a provider.synthetic instance.
type Source struct {
	cfg config
	fb  *engine.Feedback
	// inst of insts: with parallelism above 1 every instance runs the
	// whole generated stream and emits the records of its own symbols
	// (md.Split), so together they emit exactly the one-instance stream.
	inst, insts int
	// lastTS is the event time of the last record generated (streamTS); the idle
	// watermark reads it from another goroutine (see EventNow).
	lastTS atomic.Int64

	// Checkpoint position: the records of the stream generated (with
	// several instances, this instance emitted its share of them) and the
	// generator.
	emitted int64
	rgen    *randomGen
	bgen    *benchGen
	seekTo  *position // set by Seek, applied when Run builds the generator
}

// EventNow is the source's event-time clock for the engine's idle watermark
// advance: the wall clock when paced, otherwise the last emitted event time,
// so a paused unpaced source (whose clock is start + i*step, not the wall
// clock) never has its watermark pushed past the records still to come.
func (s *Source) EventNow() int64 {
	if s.cfg.rate > 0 && s.cfg.model == modelRandom {
		return time.Now().UnixNano()
	}
	return s.lastTS.Load()
}

// EventTimeOrdered implements engine.OrderedSource: every model stamps event
// times from a clock that only moves forward (start + i*step, the workload's
// clock, or the time of emission), so the engine need not scan batches for
// their newest event time.
func (s *Source) EventTimeOrdered() bool { return true }

// streamTS is the event time of the last record of the stream generated
// so far, this instance's or not; wall is the emission time of a paced run
// (0 when unpaced).
func (s *Source) streamTS(wall int64) int64 {
	switch {
	case s.bgen != nil:
		return benchT0 + (s.bgen.i-1)*benchStep
	case wall != 0:
		return wall
	}
	return s.rgen.start + (s.rgen.i-1)*s.rgen.step
}

// emit sends b, this instance's share of the stream generated so far, and
// records the stream's last event time for EventNow. The engine moves the
// watermark past that time (EmitUpTo), not only past b's records, so every
// instance's receivers see the one-instance source's watermarks, even when
// b is empty.
func (s *Source) emit(ctx context.Context, out *engine.Output, b *md.Batch, wall int64) error {
	ts := s.streamTS(wall)
	s.lastTS.Store(ts)
	if err := out.EmitUpTo(b, ts); err != nil {
		return emitErr(ctx, err)
	}
	return nil
}

// Open keeps the job's feedback hub.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.fb = nc.Feedback
	s.inst, s.insts = nc.Instance, max(nc.Instances, 1)
	return nil
}

// filler generates the next n records of the stream and appends to b those
// this instance emits (all of them with one instance); wall is the emission
// time of a paced run (0 when unpaced).
type filler func(b *md.Batch, n int, wall int64)

// owned returns which of ids this instance emits, or nil when it emits
// them all (one instance).
func (s *Source) owned(st *md.SymbolTable, ids []md.SymID) []bool {
	if s.insts <= 1 {
		return nil
	}
	syms := st.Snapshot()
	own := make([]bool, len(ids))
	for k, id := range ids {
		own[k] = md.Split(syms[id].Hash, md.SplitInstances, s.insts) == s.inst
	}
	return own
}

// Run generates until count, duration or cancellation.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	c := &s.cfg
	var fill filler
	if c.model == modelBench {
		s.lastTS.Store(benchT0 - 1)
		names := benchNames(c.nsyms)
		ids := make([]md.SymID, len(names))
		in := md.NewInterner(out.Symbols(), c.provider)
		for i, n := range names {
			ids[i] = in.ID(n)
			out.Symbols().NoteSizeDecimals(ids[i], 0) // sizes are whole numbers
		}
		s.bgen = newBenchGen(ids, c.seed)
		fill = s.bgen.fill
		if own := s.owned(out.Symbols(), ids); own != nil {
			s.bgen.own = new([benchMaxSymbolsPow2]uint8)
			for k, o := range own {
				if o {
					s.bgen.own[k] = 1
				}
			}
			s.bgen.ownBits = ownBits(s.bgen.own)
			fill = s.bgen.fillOwned
		}
	} else {
		ids := make([]md.SymID, len(c.names))
		in := md.NewInterner(out.Symbols(), c.provider)
		for i, n := range c.names {
			ids[i] = in.ID(n)
			out.Symbols().NoteSizeDecimals(ids[i], 0) // sizes are whole numbers
		}
		s.lastTS.Store(c.start - 1)
		g := newRandomGen(ids, c.seed, c.start, c.step)
		g.ownSymbols(s.owned(out.Symbols(), ids))
		s.rgen = g
		fill = g.fillTrades
		if c.kind == md.KindQuote {
			fill = g.fillQuotes
		}
	}
	if err := s.applySeek(); err != nil {
		return err
	}
	if c.duration > 0 {
		// The deadline ends every wait too, a feedback pause included.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	if c.rate > 0 {
		var end time.Time
		if c.duration > 0 {
			end = time.Now().Add(c.duration)
		}
		return s.runPaced(ctx, out, fill, end)
	}
	return s.runFast(ctx, out, fill)
}

// runFast emits full batches as fast as the job takes them.
func (s *Source) runFast(ctx context.Context, out *engine.Output, fill filler) error {
	c := &s.cfg
	for c.count == 0 || s.emitted < c.count {
		if ctx.Err() != nil {
			return nil
		}
		// Unpaced, only a pause means something: the edges' backpressure
		// already slows the source to what the stores take.
		if s.fb.Scale() <= 0 {
			if err := s.fb.Wait(ctx); err != nil {
				return nil
			}
		}
		n := c.batchSize
		if c.count > 0 {
			n = int(min(int64(n), c.count-s.emitted))
		}
		b := out.NewBatch(c.kind)
		fill(b, n, 0)
		s.emitted += int64(n)
		if err := s.emit(ctx, out, b, 0); err != nil {
			return err
		}
	}
	return nil
}

// runPaced emits on an absolute schedule: by time t after the anchor,
// anchorN + t*rate*scale events are due. The anchor moves only when the
// feedback scale changes, so sleeping late never accumulates drift. A
// non-zero end (the duration's) bounds the schedule: what was due by then is
// emitted and nothing after, however late the deadline is noticed.
func (s *Source) runPaced(ctx context.Context, out *engine.Output, fill filler, end time.Time) error {
	c := &s.cfg
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	emitted := s.emitted
	scale := s.fb.Scale()
	anchorT, anchorN := time.Now(), emitted
	for c.count == 0 || emitted < c.count {
		if ctx.Err() != nil {
			return nil
		}
		if sc := s.fb.Scale(); sc != scale {
			scale = sc
			anchorT, anchorN = time.Now(), emitted
		}
		if scale <= 0 {
			if err := s.fb.Wait(ctx); err != nil {
				return nil
			}
			scale = s.fb.Scale()
			anchorT, anchorN = time.Now(), emitted
			continue
		}
		rate := c.rate * scale
		now := time.Now()
		final := !end.IsZero() && !now.Before(end)
		if final {
			now = end
		}
		// Event k after the anchor is due at anchorT + k/rate.
		due := anchorN + int64(now.Sub(anchorT).Seconds()*rate) + 1
		if due > emitted {
			n := min(due-emitted, int64(c.batchSize))
			if c.count > 0 {
				n = min(n, c.count-emitted)
			}
			b := out.NewBatch(c.kind)
			wall := now.UnixNano()
			fill(b, int(n), wall)
			emitted += n
			s.emitted = emitted
			if err := s.emit(ctx, out, b, wall); err != nil {
				return err
			}
			continue
		}
		if final {
			return nil
		}
		// Sleep until the next event is due (at least minSleep, so high
		// rates emit small batches instead of spinning).
		next := anchorT.Add(time.Duration(float64(emitted-anchorN) / rate * float64(time.Second)))
		wait := max(next.Sub(now), minSleep)
		wait = min(wait, maxSleep)
		if !sleep(ctx, timer, wait) {
			return nil
		}
	}
	return nil
}

// sleep waits d or until ctx ends (false). It always sleeps on the timer,
// never spins: at high rates a wake-up comes later than asked (the OS timer
// slack), and the absolute schedule makes up for it by emitting everything
// due since in one batch, so the rate stays exact and no core is kept busy.
func sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// emitErr turns an Emit error after cancellation into a clean stop.
func emitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}
