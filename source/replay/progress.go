package replay

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressCounters are what the source updates for progress: records
// handed on (the measure of progress), and records decoded and raw bytes
// read so far (which only estimate the total: the readers run ahead of
// emission by up to a chunk per file).
type progressCounters struct {
	emitted atomic.Int64
	decoded atomic.Int64
	bytes   atomic.Int64
	// exact is set once every file is read to its end: decoded is then
	// the total.
	exact atomic.Bool
	// totalBytes is the input's size on disk.
	totalBytes int64
}

// snapshot is one reading of the counters.
type snapshot struct {
	emitted, total int64 // total is estimated unless exact
	exact          bool
	frac           float64
}

func (c *progressCounters) read() snapshot {
	s := snapshot{emitted: c.emitted.Load(), exact: c.exact.Load()}
	dec := c.decoded.Load()
	switch {
	case s.exact:
		s.total = dec
	case dec > 0 && c.totalBytes > 0:
		b := max(c.bytes.Load(), 1)
		s.total = max(int64(float64(dec)*float64(c.totalBytes)/float64(b)), dec)
	default:
		s.total = dec
	}
	if s.total > 0 {
		s.frac = min(float64(s.emitted)/float64(s.total), 1)
	}
	if !s.exact {
		// Until the last file is read the total is an estimate: never
		// claim the end.
		s.frac = min(s.frac, 0.999)
	}
	return s
}

// progressReporter reports a replay's progress every interval: as a
// self-overwriting bar on a terminal, or as log records when there is no
// terminal to draw on (so a JSON log stays JSON). It runs on its own
// goroutine and only reads the counters.
type progressReporter struct {
	c     *progressCounters
	term  io.Writer    // draw a bar here; nil: log instead
	log   *slog.Logger // used when term is nil
	start time.Time
	every time.Duration
	stop  chan struct{}
	wg    sync.WaitGroup
	// completed is set by finish: whether every record was handed on.
	completed bool
}

func startProgress(c *progressCounters, term io.Writer, log *slog.Logger, every time.Duration) *progressReporter {
	p := &progressReporter{c: c, term: term, log: log, start: time.Now(), every: every, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progressReporter) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.report(time.Now(), true)
			return
		case now := <-t.C:
			p.report(now, false)
		}
	}
}

func (p *progressReporter) report(now time.Time, last bool) {
	s := p.c.read()
	if p.term != nil {
		end := "\x1b[K"
		if last {
			end += "\n"
		}
		fmt.Fprint(p.term, "\r"+p.line(s, now, last)+end)
		return
	}
	elapsed := now.Sub(p.start)
	attrs := []any{"percent", pct(s.frac), "records", s.emitted, "elapsed", elapsed.Round(time.Millisecond).String()}
	if rate := ratePer(s.emitted, elapsed); rate > 0 {
		attrs = append(attrs, "records_per_second", int64(rate))
	}
	switch {
	case last && p.completed:
		p.log.Info("replay done", attrs...)
	case last:
		p.log.Info(fmt.Sprintf("replay stopped at %.1f%%", pct(s.frac)), append(attrs, "estimated_total", s.total)...)
	default:
		attrs = append(attrs, "estimated_total", s.total)
		if eta, ok := etaOf(s, elapsed); ok {
			attrs = append(attrs, "eta", eta.Round(time.Second).String())
		}
		p.log.Info("replay progress", attrs...)
	}
}

// finish reports the last state and ends the bar's line. completed says
// whether the replay handed on every record (false: it was stopped).
func (p *progressReporter) finish(completed bool) {
	p.completed = completed
	close(p.stop)
	p.wg.Wait()
}

const barWidth = 24

func pct(frac float64) float64 { return float64(int64(frac*1000)) / 10 }

func ratePer(n int64, d time.Duration) float64 {
	if s := d.Seconds(); s > 0 {
		return float64(n) / s
	}
	return 0
}

func etaOf(s snapshot, elapsed time.Duration) (time.Duration, bool) {
	if s.frac <= 0 {
		return 0, false
	}
	return time.Duration(float64(elapsed) * (1 - s.frac) / s.frac), true
}

// line renders the bar at now. last is the final line: "done" when the
// replay completed, "stopped at N %" when it was interrupted.
func (p *progressReporter) line(s snapshot, now time.Time, last bool) string {
	elapsed := now.Sub(p.start)
	frac := s.frac
	if last && p.completed {
		frac = 1
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	rate := countText(ratePer(s.emitted, elapsed)) + "/s"
	of := ""
	if !(last && p.completed) {
		approx := "~"
		if s.exact {
			approx = ""
		}
		of = " of " + approx + countText(float64(s.total))
	}
	switch {
	case last && p.completed:
		return fmt.Sprintf("replay [%s] 100.0%%  %s records  %s  done in %s", bar, countText(float64(s.emitted)), rate, clockText(elapsed))
	case last:
		return fmt.Sprintf("replay [%s] stopped at %.1f%%  %s%s records  %s  after %s", bar, pct(frac), countText(float64(s.emitted)), of, rate, clockText(elapsed))
	}
	eta := "ETA --:--"
	if d, ok := etaOf(s, elapsed); ok {
		eta = "ETA " + clockText(d)
	}
	return fmt.Sprintf("replay [%s] %5.1f%%  %s%s records  %s  %s", bar, pct(frac), countText(float64(s.emitted)), of, rate, eta)
}

// clockText renders d as m:ss or h:mm:ss.
func clockText(d time.Duration) string {
	s := int64(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// countText renders n with a k/M/G suffix.
func countText(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
