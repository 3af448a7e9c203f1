// Package retry is mdp's one backoff rule: exponential backoff with full
// jitter, as AWS defines it ("Exponential Backoff And Jitter", AWS
// Architecture Blog, 2015): the wait before attempt n is a uniformly random
// duration in [0, min(Max, Base·2^(n-1))). The step doubles per failed
// attempt up to the cap, and the whole step is random, so clients that lost
// the same server spread over the window instead of returning in lockstep.
// Reconnecting sources (provider.websocket, provider.ibkr) and the store
// sinks' write retries (storekit) all wait through it.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with full jitter. The zero value waits
// nothing.
type Backoff struct {
	// Base is the first step (the cap of the wait before attempt 1).
	Base time.Duration
	// Max caps the step; 0 means no cap beyond overflow.
	Max time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.Float64.
	// Tests set it to pin the jitter.
	Rand func() float64
}

// Step is the jitter window of attempt n (1-based): Base·2^(n-1) capped at
// Max, never overflowing. Attempts below 1 count as 1.
func (b Backoff) Step(n int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < n; i++ {
		if (b.Max > 0 && d >= b.Max) || d > maxDuration/2 {
			break
		}
		d *= 2
	}
	if b.Max > 0 {
		d = min(d, b.Max)
	}
	return d
}

const maxDuration = time.Duration(1<<63 - 1)

// Delay is the wait before attempt n: a random duration in [0, Step(n)).
func (b Backoff) Delay(n int) time.Duration {
	step := b.Step(n)
	if step <= 0 {
		return 0
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return time.Duration(r() * float64(step))
}

// Sleep waits d, or until ctx ends, and then returns ctx.Err() (nil when
// the whole wait passed).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
