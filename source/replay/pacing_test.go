package replay

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// spanFile writes n+1 trades evenly over span, starting at t0.
func spanFile(t *testing.T, span time.Duration, n int) string {
	t.Helper()
	t0 := time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()
	var b strings.Builder
	b.WriteString("ts,sym,px,qty\n")
	for i := 0; i <= n; i++ {
		fmt.Fprintf(&b, "%d,A,%d,1\n", t0+int64(span)*int64(i)/int64(n), 100+i%7)
	}
	return writeFile(t, filepath.Join(t.TempDir(), "span.csv"), b.String())
}

func genericParams(path string, extra map[string]any) map[string]any {
	p := map[string]any{"path": path, "kind": "trade", "ts_format": "unix_ns",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// TestPacing: a file spanning 2 s of event time takes 2 s ± 5% at speed 1,
// and an 8 s file takes 2 s at speed 4. No record is emitted before it is due.
func TestPacing(t *testing.T) {
	for _, c := range []struct {
		speed float64
		span  time.Duration
	}{{1, 2 * time.Second}, {4, 8 * time.Second}} {
		t.Run(fmt.Sprintf("speed=%g", c.speed), func(t *testing.T) {
			path := spanFile(t, c.span, 2000)
			start := time.Now()
			r := mustReplay(t, genericParams(path, map[string]any{"speed": c.speed}))
			if len(r.c.trades) != 2001 {
				t.Fatalf("got %d trades", len(r.c.trades))
			}
			// The replay runs from the first record to the last; the job
			// around it (start-up, final flush) is not part of the pacing.
			want := time.Duration(float64(c.span) / c.speed)
			first, last := r.c.arrivals[0].Sub(start), r.c.arrivals[len(r.c.arrivals)-1].Sub(start)
			if got := last - first; got < want*95/100 || got > want*105/100 {
				t.Fatalf("first record after %v, last after %v: the replay took %v, want %v ± 5%% (job %v)", first, last, got, want, r.elapsed)
			}
			if r.elapsed > want+10*time.Second {
				t.Fatalf("job took %v", r.elapsed)
			}
			t0 := r.c.trades[0].TS
			for i, at := range r.c.arrivals {
				due := time.Duration(float64(r.c.batchMax[i]-t0) / c.speed)
				if early := due - at.Sub(start); early > granularity {
					t.Fatalf("batch %d arrived %v before it was due", i, early)
				}
			}
			// Records are spread over the run, not sent in a few bursts.
			if len(r.c.arrivals) < 20 {
				t.Fatalf("only %d batches: records were not spread over time", len(r.c.arrivals))
			}
		})
	}
}

// TestPacedIdleWatermarkFollowsReplayClock: during a gap in the data the
// idle watermark advances with the replay clock (EventNow), never past the
// next record.
func TestPacedIdleWatermarkFollowsReplayClock(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC).UnixNano()
	gap := int64(20 * time.Second)
	path := writeFile(t, filepath.Join(t.TempDir(), "gap.csv"), fmt.Sprintf("ts,sym,px,qty\n%d,A,1,1\n%d,A,2,1\n", t0, t0+gap))
	r := mustReplay(t, genericParams(path, map[string]any{"speed": 10, "idle_timeout": "100ms"}))
	if len(r.c.trades) != 2 {
		t.Fatalf("got %d trades", len(r.c.trades))
	}
	// Before the final one, watermarks come from the first trade, the idle
	// advance during the gap (below the pending record) and the second trade.
	mid := 0
	for _, wm := range r.c.wms[:len(r.c.wms)-1] {
		if wm > t0+gap || (wm == t0+gap && wm != r.c.wms[len(r.c.wms)-2]) {
			t.Fatalf("watermark %s passed the pending record at %s", md.FormatTime(wm), md.FormatTime(t0+gap))
		}
		if wm > t0+gap/4 && wm < t0+gap {
			mid++
		}
	}
	if mid < 3 {
		t.Fatalf("idle watermark did not follow the replay clock: %d watermarks inside the gap (%v)", mid, r.c.wms)
	}
}

func TestReplayClock(t *testing.T) {
	c := newClock(2)
	w0 := time.Unix(1000, 0)
	if c.eventNow(w0) != md.MinTime {
		t.Fatal("eventNow before start")
	}
	c.start(w0, 5e9, 1)
	c.setSafe(100e9)
	if got := c.eventNow(w0.Add(time.Second)); got != 7e9 {
		t.Fatalf("eventNow after 1s at 2x = %d", got)
	}
	c.setScale(w0.Add(time.Second), 0.5) // from here 1x
	if got := c.eventNow(w0.Add(3 * time.Second)); got != 9e9 {
		t.Fatalf("eventNow after rescale = %d", got)
	}
	if due, ok := c.wallFor(11e9); !ok || !due.Equal(w0.Add(5*time.Second)) {
		t.Fatalf("wallFor = %v %v", due, ok)
	}
	c.setScale(w0.Add(5*time.Second), 0)
	if _, ok := c.wallFor(12e9); ok {
		t.Fatal("a stopped clock has no due time")
	}
	if got := c.eventNow(w0.Add(time.Hour)); got != 11e9 {
		t.Fatalf("stopped clock moved: %d", got)
	}
	c.setSafe(10e9)
	if got := c.eventNow(w0.Add(time.Hour)); got != 11e9 {
		t.Fatalf("safe went backwards: %d", got)
	}
	u := newClock(0)
	u.start(w0, md.MinTime, 1)
	u.setSafe(42)
	if got := u.eventNow(w0.Add(time.Hour)); got != 42 {
		t.Fatalf("unpaced eventNow = %d, want the safe bound", got)
	}
}

func startJob(t *testing.T, fb *engine.Feedback, src *engine.Node) (*engine.Job, *collector) {
	t.Helper()
	c := &collector{}
	g := &engine.Graph{Nodes: []*engine.Node{src, collectNode(c)}, Edges: []*engine.Edge{{From: src.ID, To: "sink"}}}
	j, err := engine.New(g, engine.Options{Job: "t", Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return j, c
}

// TestHardFeedbackPausesUnpacedReplay: at speed 0 a hard store level stops
// the replay until the level falls.
func TestHardFeedbackPausesUnpacedReplay(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	fb.Report("store", engine.LevelHard)
	j, c := startJob(t, fb, componentNode(t, "provider.replay", "src", map[string]any{"path": tardisTrades, "preset": "tardis_trades"}))
	time.Sleep(300 * time.Millisecond)
	if n := j.Status().Nodes[0].EventsOut; n != 0 {
		t.Fatalf("emitted %d records while paused", n)
	}
	fb.Report("store", engine.LevelOK)
	select {
	case <-j.Done():
	case <-time.After(time.Minute):
		t.Fatal("replay did not resume")
	}
	if err := j.Err(); err != nil || len(c.trades) != 5000 {
		t.Fatalf("err %v, %d trades", err, len(c.trades))
	}
}

// TestSoftFeedbackSlowsPacedReplay: at speed 1 a soft level (scale 0.5)
// slows the replay clock to half speed.
func TestSoftFeedbackSlowsPacedReplay(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	fb.Report("store", engine.LevelSoft)
	path := spanFile(t, time.Second, 200)
	start := time.Now()
	j, c := startJob(t, fb, componentNode(t, "provider.replay", "src", genericParams(path, map[string]any{"speed": 1})))
	if err := j.Wait(); err != nil || len(c.trades) != 201 {
		t.Fatalf("err %v, %d trades", err, len(c.trades))
	}
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Fatalf("a 1 s file at speed 1 and scale 0.5 took %v, want about 2 s", d)
	}
}

// TestHardFeedbackStopsPacedClock: a hard level stops the replay clock; the
// replay resumes where it stopped.
func TestHardFeedbackStopsPacedClock(t *testing.T) {
	fb := engine.NewFeedback(engine.DefaultFeedback())
	path := spanFile(t, time.Second, 100)
	j, c := startJob(t, fb, componentNode(t, "provider.replay", "src", genericParams(path, map[string]any{"speed": 1})))
	time.Sleep(300 * time.Millisecond)
	fb.Report("store", engine.LevelHard)
	time.Sleep(300 * time.Millisecond) // let a batch in flight land
	n1 := j.Status().Nodes[0].EventsOut
	time.Sleep(500 * time.Millisecond)
	n2 := j.Status().Nodes[0].EventsOut
	if n2 != n1 || n1 == 0 || n1 >= 101 {
		t.Fatalf("while paused %d then %d records", n1, n2)
	}
	fb.Report("store", engine.LevelOK)
	if err := j.Wait(); err != nil || len(c.trades) != 101 {
		t.Fatalf("err %v, %d trades", err, len(c.trades))
	}
}

// progressRun replays the tardis sample with the progress param mode under
// the job's progress options, and returns what was drawn on the terminal.
func progressRun(t *testing.T, mode string, opts engine.ProgressOptions) (drawn string, r *result) {
	t.Helper()
	src := progressSource(t, map[string]any{"path": tardisTrades, "preset": "tardis_trades", "progress": mode})
	var buf enginetest.SyncBuffer
	if opts.Terminal != nil {
		opts.Terminal = &buf
	}
	r = runGraphWith(t, engine.Options{Progress: opts}, 0, sourceNode(src))
	if r.err != nil || len(r.c.trades) != 5000 {
		t.Fatalf("err %v, %d trades", r.err, len(r.c.trades))
	}
	return buf.String(), r
}

func progressSource(t *testing.T, params map[string]any) *Source {
	t.Helper()
	p, err := component.NewParams(specOf(t, "provider.replay"), params)
	if err != nil {
		t.Fatal(err)
	}
	src, err := newSource(p)
	if err != nil {
		t.Fatal(err)
	}
	src.progressEvery = time.Millisecond
	src.progressLogEvery = time.Millisecond
	return src
}

func sourceNode(src *Source) *engine.Node {
	return &engine.Node{ID: "src", Type: "provider.replay", Kind: engine.KindSource,
		Ports: map[string]md.Kind{engine.PortMain: md.KindTrade}, NewSource: func(int) (engine.Source, error) { return src, nil }}
}

// aTerminal stands for the terminal of engine.ProgressOptions; progressRun
// replaces it with a buffer.
var aTerminal = &enginetest.SyncBuffer{}

func TestProgress(t *testing.T) {
	out, r := progressRun(t, "always", engine.ProgressOptions{Terminal: aTerminal})
	last := out[strings.LastIndexByte(strings.TrimSuffix(out, "\n"), '\r')+1:]
	if !strings.HasPrefix(last, "replay [========================] 100.0%  5.0k records  ") ||
		!strings.Contains(last, "/s  done in 0:00\x1b[K\n") {
		t.Fatalf("last progress line %q", last)
	}
	if strings.Contains(r.logs.String(), "replay") {
		t.Fatalf("a bar on the terminal also logged: %s", r.logs)
	}
	if out, _ := progressRun(t, "auto", engine.ProgressOptions{Terminal: aTerminal}); !strings.Contains(out, "100.0%") {
		t.Fatalf("auto on a terminal drew %q", out)
	}
	if out, r := progressRun(t, "auto", engine.ProgressOptions{}); out != "" || strings.Contains(r.logs.String(), "replay") {
		t.Fatalf("auto without a terminal drew %q and logged %s", out, r.logs)
	}
	if out, _ := progressRun(t, "never", engine.ProgressOptions{Terminal: aTerminal}); out != "" {
		t.Fatalf("never drew %q", out)
	}
	// The job's mode (mdp run --progress / --no-progress) overrides the param.
	if out, _ := progressRun(t, "never", engine.ProgressOptions{Mode: "always", Terminal: aTerminal}); !strings.Contains(out, "100.0%") {
		t.Fatalf("mode always did not force the bar: %q", out)
	}
	if out, _ := progressRun(t, "always", engine.ProgressOptions{Mode: "never", Terminal: aTerminal}); out != "" {
		t.Fatalf("mode never drew %q", out)
	}
	if got := clockText(3725 * time.Second); got != "1:02:05" {
		t.Fatalf("clockText %q", got)
	}
}

// Without a terminal, progress that must be shown goes to the log as
// records: no carriage return or escape sequence lands in a JSON log.
func TestProgressWithoutTerminalLogsRecords(t *testing.T) {
	out, r := progressRun(t, "always", engine.ProgressOptions{})
	if out != "" {
		t.Fatalf("drew %q", out)
	}
	logs := r.logs.String()
	if strings.ContainsAny(logs, "\r\x1b") {
		t.Fatalf("control characters in the log: %q", logs)
	}
	if !strings.Contains(logs, `msg="replay done" node=src percent=100 records=5000 `) {
		t.Fatalf("no final progress record in %s", logs)
	}
}

// Progress follows the records handed on; bytes read (which run ahead of
// emission) only estimate the total, and the end is claimed only when every
// file has been read.
func TestProgressFollowsRecordsEmitted(t *testing.T) {
	c := &progressCounters{totalBytes: 1000}
	c.bytes.Store(250)    // a quarter of the input read (ahead of emission) ...
	c.decoded.Store(1000) // ... holding 1000 records: about 4000 in all
	c.emitted.Store(500)  // but only 500 handed on
	s := c.read()
	if s.total != 4000 || s.frac != 0.125 || s.exact {
		t.Fatalf("%+v", s)
	}
	p := &progressReporter{c: c, start: time.Unix(0, 0)}
	if got := p.line(s, time.Unix(10, 0), false); got != "replay [===                     ]  12.5%  500 of ~4.0k records  50/s  ETA 1:10" {
		t.Fatalf("line %q", got)
	}
	c.bytes.Store(1000) // everything read and handed on, but the end of file not seen yet
	c.decoded.Store(3000)
	c.emitted.Store(3000)
	if s := c.read(); s.frac != 0.999 || s.total != 3000 || s.exact {
		t.Fatalf("before the end of the last file: %+v", s)
	}
	c.emitted.Store(2900)
	c.exact.Store(true)
	if s := c.read(); s.frac != 2900.0/3000 || !s.exact {
		t.Fatalf("exact: %+v", s)
	}
	if got := p.line(c.read(), time.Unix(10, 0), true); got != "replay [======================= ] stopped at 96.6%  2.9k of 3.0k records  290/s  after 0:10" {
		t.Fatalf("stopped line %q", got)
	}
}

// A replay stopped part-way says where it stopped, never "done".
func TestProgressStoppedPartWay(t *testing.T) {
	path := spanFile(t, 10*time.Second, 1000)
	src := progressSource(t, genericParams(path, map[string]any{"speed": 1, "progress": "always",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}}))
	var term enginetest.SyncBuffer
	r := runGraphWith(t, engine.Options{Progress: engine.ProgressOptions{Terminal: &term}}, 500*time.Millisecond, sourceNode(src))
	if r.err != nil {
		t.Fatal(r.err)
	}
	out := term.String()
	last := out[strings.LastIndexByte(strings.TrimSuffix(out, "\n"), '\r')+1:]
	if !strings.Contains(last, "] stopped at ") || strings.Contains(out, "done") || len(r.c.trades) >= 1001 {
		t.Fatalf("%d trades; last line %q", len(r.c.trades), last)
	}
}
