package replay

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
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

func progressRun(t *testing.T, mode string, terminal bool) string {
	t.Helper()
	spec := specOf(t, "provider.replay")
	p, err := component.NewParams(spec, map[string]any{"path": tardisTrades, "preset": "tardis_trades", "progress": mode})
	if err != nil {
		t.Fatal(err)
	}
	src, err := newSource(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	src.stderr = &buf
	src.isTerminal = func() bool { return terminal }
	src.progressEvery = time.Millisecond
	node := &engine.Node{ID: "src", Type: "provider.replay", Kind: engine.KindSource,
		Ports: map[string]md.Kind{engine.PortMain: md.KindTrade}, New: func(int) (any, error) { return src, nil }}
	r := runGraph(t, nil, node)
	if r.err != nil || len(r.c.trades) != 5000 {
		t.Fatalf("err %v, %d trades", r.err, len(r.c.trades))
	}
	if strings.Contains(r.logs.String(), "replay [") {
		t.Fatal("progress went to the log")
	}
	return buf.String()
}

func TestProgress(t *testing.T) {
	out := progressRun(t, "always", false)
	last := out[strings.LastIndexByte(strings.TrimSuffix(out, "\n"), '\r')+1:]
	if !strings.HasPrefix(last, "replay [========================] 100.0%  5.0k records  ") ||
		!strings.Contains(last, "/s  done in 0:00\x1b[K\n") {
		t.Fatalf("last progress line %q", last)
	}
	if out := progressRun(t, "auto", true); !strings.Contains(out, "100.0%") {
		t.Fatalf("auto on a terminal drew %q", out)
	}
	if out := progressRun(t, "auto", false); out != "" {
		t.Fatalf("auto off a terminal drew %q", out)
	}
	if out := progressRun(t, "never", true); out != "" {
		t.Fatalf("never drew %q", out)
	}
	// mdp run --progress / --no-progress override the param.
	t.Setenv(ProgressEnv, "always")
	if out := progressRun(t, "never", false); !strings.Contains(out, "100.0%") {
		t.Fatalf("MDP_PROGRESS=always did not force the bar: %q", out)
	}
	t.Setenv(ProgressEnv, "never")
	if out := progressRun(t, "always", true); out != "" {
		t.Fatalf("MDP_PROGRESS=never drew %q", out)
	}
	p := &progressBar{total: 1000, start: time.Unix(0, 0)}
	p.bytes, p.records = new(atomic.Int64), new(atomic.Int64)
	p.bytes.Store(250)
	p.records.Store(2_500_000)
	if got := p.line(time.Unix(10, 0), false); got != "replay [======                  ]  25.0%  2.50M records  250.0k/s  ETA 0:30" {
		t.Fatalf("line %q", got)
	}
	if got := clockText(3725 * time.Second); got != "1:02:05" {
		t.Fatalf("clockText %q", got)
	}
}
