package replay

import (
	"sync"
	"time"

	"github.com/mdpio/mdp/md"
)

// granularity is how early a paced record may be emitted: records due within
// it go out together, so a dense file costs one timer wait per millisecond,
// not one per record.
const granularity = time.Millisecond

// replayClock maps wall time to event time for a paced replay. It is a
// straight line through an anchor (wall0, ev0) with slope speed × feedback
// scale; every change of scale re-anchors at the current point, so the clock
// never jumps. Due times are computed from the anchor, never by adding up
// sleeps, so a replay does not drift over hours.
type replayClock struct {
	mu      sync.Mutex
	paced   bool
	speed   float64
	scale   float64
	running bool
	wall0   time.Time
	ev0     int64
	// safe is the highest event time the source has certainly emitted
	// everything up to (the next pending record's time minus one, set before
	// each wait). The idle watermark never passes it, so records that are
	// due but not yet emitted (the source is behind, or paused) stay on time.
	safe int64
}

func newClock(speed float64) *replayClock {
	return &replayClock{paced: speed > 0, speed: speed, scale: 1, safe: md.MinTime}
}

// start anchors the clock at the first record.
func (c *replayClock) start(now time.Time, ev0 int64, scale float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.wall0, c.ev0, c.scale = true, now, ev0, scale
}

func (c *replayClock) eventAtLocked(now time.Time) int64 {
	d := float64(now.Sub(c.wall0)) * c.speed * c.scale
	if d > 1<<62 {
		d = 1 << 62
	}
	return c.ev0 + int64(d)
}

// setScale changes the feedback scale from now on.
func (c *replayClock) setScale(now time.Time, scale float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if scale == c.scale {
		return
	}
	c.ev0 = c.eventAtLocked(now)
	c.wall0 = now
	c.scale = scale
}

// horizon is the newest event time to emit at now.
func (c *replayClock) horizon(now time.Time) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eventAtLocked(now.Add(granularity))
}

// wallFor is the wall time at which event time ev is due; ok is false while
// the clock stands still (feedback scale 0).
func (c *replayClock) wallFor(ev int64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.speed * c.scale
	if r <= 0 {
		return time.Time{}, false
	}
	return c.wall0.Add(time.Duration(float64(ev-c.ev0) / r)), true
}

// setSafe records that every record before ev has been emitted.
func (c *replayClock) setSafe(ev int64) {
	c.mu.Lock()
	c.safe = max(c.safe, ev)
	c.mu.Unlock()
}

// eventNow is the event time corresponding to now, for the engine's idle
// watermark advance: the replay clock, but never past what was emitted.
// Unpaced, only the safe bound counts: an as-fast-as-possible replay has no
// notion of "now" beyond what it has emitted.
func (c *replayClock) eventNow(now time.Time) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return md.MinTime
	}
	if !c.paced {
		return c.safe
	}
	return min(c.eventAtLocked(now), c.safe)
}
