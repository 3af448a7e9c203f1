package storekit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

type sample struct {
	at    time.Time
	sent  int64
	level engine.Level
}

// TestStoreFeedbackChangesTheSourceRate is the feedback loop end to end: a
// source paced at 2000 rows/s feeds a sink whose store stalls. As the queue
// fills, the sink reports soft (at 50%) and the source's measured rate drops
// to about scale_soft (0.5) of its rate; at hard (90%) the source pauses;
// when the store recovers the level falls and the source resumes; every
// record arrives.
func TestStoreFeedbackChangesTheSourceRate(t *testing.T) {
	const (
		rate  = 2000.0
		total = 8000
		batch = 20
	)
	fb := engine.NewFeedback(engine.DefaultFeedback())
	var mu sync.Mutex
	var samples []sample
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(total, 8), BatchSize: batch, Rate: rate, Feedback: fb,
		Emitted: func(n int64) {
			mu.Lock()
			samples = append(samples, sample{time.Now(), n, fb.Level()})
			mu.Unlock()
		}}
	w := newMem()
	j := sinkJob(t, src, w, storekit.Config{Workers: 1, QueueSize: 4000, BatchRows: 500, SoftAt: 0.5, HardAt: 0.9}, fb)
	sent := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if len(samples) == 0 {
			return 0
		}
		return samples[len(samples)-1].sent
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Phase 1: the store keeps up; the source runs at its rate.
	time.Sleep(time.Second)
	mu.Lock()
	okEnd := len(samples)
	mu.Unlock()
	// Phase 2: the store stalls. The queue fills: soft, then hard.
	w.gate.Store(false)
	deadline := time.Now().Add(60 * time.Second)
	for fb.Level() != engine.LevelHard {
		if time.Now().After(deadline) {
			t.Fatalf("the level never reached hard (queue %d)", storetest.Stats(t, j).QueueRows.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Phase 3: at hard the source is paused.
	atHard := sent()
	mu.Lock()
	hardAt := len(samples) // the soft phase's samples end here
	mu.Unlock()
	time.Sleep(time.Second)
	afterPause := sent()
	// Phase 4: the store recovers; the level falls and the source resumes.
	w.gate.Store(true)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}

	if n := len(w.all()); n != total {
		t.Fatalf("%d of %d records arrived", n, total)
	}
	if afterPause-atHard > batch {
		t.Fatalf("the source sent %d rows during the hard pause", afterPause-atHard)
	}
	mu.Lock()
	defer mu.Unlock()
	rateOf := func(level engine.Level, from, to int) (float64, int) {
		first, last := -1, -1
		for i := from; i < to; i++ {
			if samples[i].level == level {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 || last-first < 5 {
			return 0, 0
		}
		d := samples[last].at.Sub(samples[first].at).Seconds()
		return float64(samples[last].sent-samples[first].sent) / d, last - first
	}
	// Skip the first samples of phase 1 (start-up).
	okRate, _ := rateOf(engine.LevelOK, 5, okEnd)
	// Soft on the way up only: after the recovery the level passes soft
	// again, and a span across the hard pause is no rate.
	softRate, n := rateOf(engine.LevelSoft, okEnd, hardAt)
	t.Logf("rate at ok %.0f/s, at soft %.0f/s over %d batches; %d rows sent during the hard pause", okRate, softRate, n, afterPause-atHard)
	if okRate < rate*0.85 || okRate > rate*1.15 {
		t.Fatalf("rate at ok = %.0f/s, want about %.0f", okRate, rate)
	}
	want := rate * fb.Config().ScaleSoft
	if softRate < want*0.85 || softRate > want*1.15 {
		t.Fatalf("rate at soft = %.0f/s, want about %.0f (scale_soft %.1f)", softRate, want, fb.Config().ScaleSoft)
	}
	// The source resumed after the pause: it sent everything, and it did
	// so after the store recovered.
	if last := samples[len(samples)-1]; last.sent != total {
		t.Fatalf("source sent %d", last.sent)
	}
	ev := fb.Events()
	if ev[engine.LevelSoft] == 0 || ev[engine.LevelHard] == 0 || ev[engine.LevelOK] < 2 {
		t.Fatalf("feedback events %v", ev)
	}
	if lvl := fb.Level(); lvl != engine.LevelOK {
		t.Fatalf("final level %s", lvl)
	}
}
