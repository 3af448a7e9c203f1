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
