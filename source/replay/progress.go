package replay

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ProgressEnv names the environment variable that overrides the progress
// param of every replay in the process: "always" or "never". The CLI's
// --progress and --no-progress flags set it.
const ProgressEnv = "MDP_PROGRESS"

// progressBar draws one self-overwriting status line on a terminal: share of
// the input bytes read, records emitted, rate and ETA. It runs on its own
// goroutine and reads counters the source updates per read and per batch.
type progressBar struct {
	w       io.Writer
	total   int64 // input bytes, compressed as on disk
	bytes   *atomic.Int64
	records *atomic.Int64
	start   time.Time
	every   time.Duration
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startProgress(w io.Writer, total int64, bytes, records *atomic.Int64, every time.Duration) *progressBar {
	p := &progressBar{w: w, total: total, bytes: bytes, records: records, start: time.Now(), every: every, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progressBar) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r"+p.line(time.Now(), true)+"\x1b[K\n")
			return
		case now := <-t.C:
			fmt.Fprint(p.w, "\r"+p.line(now, false)+"\x1b[K")
		}
	}
}

// finish draws the last state and ends the line.
func (p *progressBar) finish() {
	close(p.stop)
	p.wg.Wait()
}

const barWidth = 24

// line renders the status line at now.
func (p *progressBar) line(now time.Time, done bool) string {
	read := min(p.bytes.Load(), p.total)
	frac := 1.0
	if p.total > 0 {
		frac = float64(read) / float64(p.total)
	}
	if done {
		frac = 1
	}
	elapsed := now.Sub(p.start)
	recs := p.records.Load()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(recs) / s
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	eta := "--:--"
	switch {
	case done:
		eta = "done in " + clockText(elapsed)
	case frac > 0:
		eta = "ETA " + clockText(time.Duration(float64(elapsed)*(1-frac)/frac))
	}
	return fmt.Sprintf("replay [%s] %5.1f%%  %s records  %s/s  %s", bar, frac*100, countText(float64(recs)), countText(rate), eta)
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
