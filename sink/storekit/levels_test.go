package storekit

import (
	"testing"

	"github.com/mdpio/mdp/engine"
)

func TestLevelsComeFromTheSinkThenTheJob(t *testing.T) {
	job := engine.NewFeedback(engine.FeedbackConfig{Enable: true, ScaleSoft: 0.5, SoftAt: 0.3, HardAt: 0.7})
	for _, c := range []struct {
		cfg        Config
		fb         *engine.Feedback
		soft, hard float64
	}{
		{Config{}, nil, 0.5, 0.9},
		{Config{}, job, 0.3, 0.7},
		{Config{SoftAt: 0.6}, job, 0.6, 0.7},
		{Config{SoftAt: 0.2, HardAt: 0.4}, job, 0.2, 0.4},
		{Config{}, engine.NewFeedback(engine.FeedbackConfig{Enable: true}), 0.5, 0.9},
	} {
		if s, h := levels(c.cfg, c.fb); s != c.soft || h != c.hard {
			t.Errorf("levels(%+v) = %v, %v; want %v, %v", c.cfg, s, h, c.soft, c.hard)
		}
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	for attempt, want := range map[int]int64{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 9: 1000} {
		for range 50 {
			d := backoff(100e6, 1000e6, attempt).Milliseconds()
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %dms, want within [%d, %d]", attempt, d, want/2, want)
			}
		}
	}
	if d := backoff(0, 0, 3); d != 0 {
		t.Fatalf("zero base: %v", d)
	}
}
