package engine

import (
	"context"
	"sync"
	"sync/atomic"
)

// Level is a store's queue level, reported to the job's Feedback.
type Level uint8

// Queue levels.
const (
	LevelOK Level = iota
	LevelSoft
	LevelHard
)

// String returns ok, soft or hard.
func (l Level) String() string {
	switch l {
	case LevelSoft:
		return "soft"
	case LevelHard:
		return "hard"
	}
	return "ok"
}

// FeedbackConfig sets how sources react to store levels.
type FeedbackConfig struct {
	Enable    bool
	ScaleOK   float64
	ScaleSoft float64
	ScaleHard float64
	// SoftAt and HardAt are the queue fill fractions at which a store sink
	// reports soft and hard (defaults 0.5 and 0.9).
	SoftAt float64
	HardAt float64
}

// DefaultFeedback is enabled with scales 1.0 / 0.5 / 0.0.
func DefaultFeedback() FeedbackConfig {
	return FeedbackConfig{Enable: true, ScaleOK: 1, ScaleSoft: 0.5, ScaleHard: 0, SoftAt: 0.5, HardAt: 0.9}
}

// LevelOf classifies a queue fill: hard at or above hard (a fraction of
// capacity), soft at or above soft, ok below.
func LevelOf(depth, capacity int, soft, hard float64) Level {
	if capacity <= 0 {
		return LevelOK
	}
	f := float64(depth) / float64(capacity)
	switch {
	case f >= hard:
		return LevelHard
	case f >= soft:
		return LevelSoft
	}
	return LevelOK
}

// Feedback carries store levels to sources within one job. Sinks Report their
// level; sources read Scale (a multiplier on their configured rate) and call
// Wait, which blocks while the scale is zero. The job's level is the worst
// reported by any sink.
type Feedback struct {
	cfg    FeedbackConfig
	level  atomic.Uint32
	mu     sync.Mutex
	levels map[string]Level
	wake   chan struct{} // closed and replaced whenever the level changes
	events [3]atomic.Int64
}

// NewFeedback returns a hub with the given settings.
func NewFeedback(cfg FeedbackConfig) *Feedback {
	return &Feedback{cfg: cfg, levels: map[string]Level{}, wake: make(chan struct{})}
}

// Config returns the hub's settings.
func (f *Feedback) Config() FeedbackConfig { return f.cfg }

// Thresholds returns the soft and hard fill fractions sinks classify their
// queues with, falling back to 0.5 and 0.9 (also for a nil hub).
func (f *Feedback) Thresholds() (soft, hard float64) {
	soft, hard = 0.5, 0.9
	if f != nil && f.cfg.SoftAt > 0 {
		soft = f.cfg.SoftAt
	}
	if f != nil && f.cfg.HardAt > 0 {
		hard = f.cfg.HardAt
	}
	return soft, hard
}

// Report records reporter's current level. Cheap when nothing changed, so a
// sink may call it per batch.
func (f *Feedback) Report(reporter string, l Level) {
	f.events[l].Add(1)
	f.mu.Lock()
	if old, ok := f.levels[reporter]; ok && old == l {
		f.mu.Unlock()
		return
	}
	f.levels[reporter] = l
	worst := LevelOK
	for _, v := range f.levels {
		if v > worst {
			worst = v
		}
	}
	if Level(f.level.Swap(uint32(worst))) != worst {
		close(f.wake)
		f.wake = make(chan struct{})
	}
	f.mu.Unlock()
}

// Level is the job's current level: the worst any sink reported.
func (f *Feedback) Level() Level {
	if f == nil || !f.cfg.Enable {
		return LevelOK
	}
	return Level(f.level.Load())
}

// Events returns how many reports were made at each level.
func (f *Feedback) Events() [3]int64 {
	return [3]int64{f.events[0].Load(), f.events[1].Load(), f.events[2].Load()}
}

// Scale is the factor a source applies to its rate now.
func (f *Feedback) Scale() float64 {
	switch f.Level() {
	case LevelSoft:
		return f.cfg.ScaleSoft
	case LevelHard:
		return f.cfg.ScaleHard
	}
	if f == nil || !f.cfg.Enable {
		return 1
	}
	return f.cfg.ScaleOK
}

// Changed returns a channel closed at the next level change.
func (f *Feedback) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}

// Wait blocks while the scale is zero (a paused source), until the level
// falls or ctx ends.
func (f *Feedback) Wait(ctx context.Context) error {
	for f != nil && f.Scale() <= 0 {
		ch := f.Changed()
		if f.Scale() > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
