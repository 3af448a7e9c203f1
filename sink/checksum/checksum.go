// Package checksum is the sink.checksum component: it folds every bar it
// receives into the checksum of bench/WORKLOAD.md and prints one JSON line
// when the job ends, so an engine run can be compared field by field (and
// for speed) with the bench/limit reference program.
package checksum

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

func init() {
	component.Register(component.Spec{
		Type:    "sink.checksum",
		Kind:    engine.KindSink,
		Summary: "Checksum bars as bench/WORKLOAD.md defines it and print one JSON line at the end",
		Description: "At close it prints {events, elapsed_s, events_per_s, bars, trades, volume, open_sum, high_sum, " +
			"low_sum, close_sum, vwap_sum}: prices summed as exact integer cents, vwap as a plain double sum, events " +
			"counted at the job's sources, elapsed from the first source record to the end of the job. A bar that " +
			"updates an earlier one (late_policy update) replaces it, so updates never double count. Keeps about " +
			"80 bytes per bar until the end. Runs as a single instance.",
		Accepts: md.KindBar,
		Fields: []component.Field{
			{Name: "path", Type: component.String, Path: true,
				Description: "Write the line to this file (replaced atomically) instead of standard output", Example: "checksum.json"},
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			if instance > 0 {
				return nil, fmt.Errorf("sink.checksum runs as one instance (set parallelism 1): it prints one total")
			}
			return New(nil, p.String("path")), nil
		},
	})
}

// barKey identifies a bar as the stores key it (rowschema's bar key: symbol,
// bar type, source, interval, start), so an update can find the bar it
// replaces and never the bar of another type or source that shares its
// symbol, start and interval.
type barKey struct {
	sym             md.SymID
	typ             md.BarType
	source          md.BarSource
	start, interval int64
}

// entry is one bar's contribution to the checksum.
type entry struct {
	key                    barKey
	trades                 int64
	volume                 float64
	open, high, low, close int64 // cents
	vwap                   float64
}

// Result is the checksum of a run.
type Result struct {
	Events     int64   // records emitted by the job's sources
	ElapsedS   float64 // from the first source record to Close
	Bars       int64
	Trades     int64
	Volume     float64
	OpenCents  int64
	HighCents  int64
	LowCents   int64
	CloseCents int64
	VWAPSum    float64
}

// Sink accumulates bars and prints the checksum at Close.
type Sink struct {
	w    io.Writer
	path string
	nc   *engine.NodeContext
	now  func() time.Time

	// entries holds every bar's contribution in arrival order; the sums are
	// taken at Close so an update can replace a bar in place and vwap_sum
	// stays the plain ordered double sum. index is built only once the first
	// update arrives, so a run without updates never hashes.
	entries []entry
	index   map[barKey]int
	updates int64
	result  Result
}

// New returns a sink that prints to w, or to the file path when it is set.
// A nil w means the job's standard output (engine.NodeContext.Stdout).
func New(w io.Writer, path string) *Sink {
	return &Sink{w: w, path: path, now: time.Now}
}

// Open keeps the node context for the job's source totals.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc = nc
	if s.w == nil {
		s.w = nc.Stdout
		if s.w == nil {
			s.w = os.Stdout
		}
	}
	return nil
}

func cents(p float64) int64 { return int64(math.Round(p * 100)) }

// Process records each bar's contribution.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	for i := range b.Bars {
		r := &b.Bars[i]
		e := entry{
			key:    barKey{sym: r.Sym, typ: r.Type, source: r.Source, start: r.Start, interval: r.Interval},
			trades: r.Trades, volume: r.Volume,
			open: cents(r.Open), high: cents(r.High), low: cents(r.Low), close: cents(r.Close),
			vwap: r.VWAP,
		}
		if r.Update {
			s.updates++
			if s.index == nil {
				s.index = make(map[barKey]int, len(s.entries)+16)
				for j := range s.entries {
					s.index[s.entries[j].key] = j
				}
			}
			if j, ok := s.index[e.key]; ok {
				s.entries[j] = e
				continue
			}
		}
		if s.index != nil {
			s.index[e.key] = len(s.entries)
		}
		s.entries = append(s.entries, e)
	}
	return nil
}

// Result computes the checksum over the bars received so far.
func (s *Sink) Result() Result {
	r := Result{Bars: int64(len(s.entries))}
	for i := range s.entries {
		e := &s.entries[i]
		r.Trades += e.trades
		r.Volume += e.volume
		r.OpenCents += e.open
		r.HighCents += e.high
		r.LowCents += e.low
		r.CloseCents += e.close
		r.VWAPSum += e.vwap
	}
	if s.nc != nil && s.nc.SourceTotals != nil {
		events, firstAt := s.nc.SourceTotals()
		r.Events = events
		if firstAt != 0 {
			r.ElapsedS = float64(s.now().UnixNano()-firstAt) / 1e9
		}
	}
	return r
}

// Close prints the checksum line.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	s.result = s.Result()
	line := AppendJSON(nil, &s.result)
	line = append(line, '\n')
	if s.path == "" {
		if _, err := s.w.Write(line); err != nil {
			return fmt.Errorf("write checksum: %w", err)
		}
		return nil
	}
	return writeFileAtomic(s.path, line)
}

// Updates is how many update bars were received.
func (s *Sink) Updates() int64 { return s.updates }

// AppendJSON appends r as the checksum line (without newline), fields in the
// bench/limit program's order: events, elapsed_s, events_per_s, bars,
// trades, volume, the four price sums with two decimals and vwap_sum with six.
func AppendJSON(dst []byte, r *Result) []byte {
	rate := 0.0
	if r.ElapsedS > 0 {
		rate = float64(r.Events) / r.ElapsedS
	}
	dst = append(dst, `{"events":`...)
	dst = strconv.AppendInt(dst, r.Events, 10)
	dst = append(dst, `,"elapsed_s":`...)
	dst = strconv.AppendFloat(dst, r.ElapsedS, 'f', 6, 64)
	dst = append(dst, `,"events_per_s":`...)
	dst = strconv.AppendFloat(dst, rate, 'f', 0, 64)
	dst = append(dst, `,"bars":`...)
	dst = strconv.AppendInt(dst, r.Bars, 10)
	dst = append(dst, `,"trades":`...)
	dst = strconv.AppendInt(dst, r.Trades, 10)
	dst = append(dst, `,"volume":`...)
	dst = recfmt.AppendFloat(dst, r.Volume)
	for _, f := range [...]struct {
		name  string
		cents int64
	}{{"open_sum", r.OpenCents}, {"high_sum", r.HighCents}, {"low_sum", r.LowCents}, {"close_sum", r.CloseCents}} {
		dst = append(dst, `,"`...)
		dst = append(dst, f.name...)
		dst = append(dst, `":`...)
		dst = appendCents(dst, f.cents)
	}
	dst = append(dst, `,"vwap_sum":`...)
	dst = strconv.AppendFloat(dst, r.VWAPSum, 'f', 6, 64)
	return append(dst, '}')
}

// appendCents writes c/100 with exactly two decimals (negative sums too).
func appendCents(dst []byte, c int64) []byte {
	u := uint64(c)
	if c < 0 {
		dst = append(dst, '-')
		u = uint64(-c)
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	return append(dst, '.', byte('0'+u%100/10), byte('0'+u%10))
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write checksum to %s: %w", path, err)
	}
	return nil
}
