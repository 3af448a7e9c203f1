package retry

import (
	"context"
	"testing"
	"time"
)

func TestStepDoublesToTheCap(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for n, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: 1600 * time.Millisecond, 6: 2 * time.Second, 7: 2 * time.Second, 1000: 2 * time.Second,
	} {
		if got := b.Step(n); got != want {
			t.Errorf("Step(%d) = %s, want %s", n, got, want)
		}
	}
	// No cap: doubling stops before it overflows.
	if got := (Backoff{Base: time.Second}).Step(200); got <= 0 || got < maxDuration/4 {
		t.Errorf("uncapped Step(200) = %d, want a large positive duration", got)
	}
	if got := (Backoff{Max: time.Second}).Delay(3); got != 0 {
		t.Errorf("zero base waits %s", got)
	}
}

// TestFullJitterBounds: the wait is the whole step times the random number,
// so it spans [0, step): 0 at r = 0, just under the step at r → 1, half of
// it at r = 0.5; never above the cap.
func TestFullJitterBounds(t *testing.T) {
	for _, c := range []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 0}, {1, 0.5, 500 * time.Millisecond}, {2, 0.5, time.Second}, {3, 0.25, time.Second},
		{10, 0.25, 7500 * time.Millisecond}, {10, 0.999999, 29999970 * time.Microsecond}, {64, 0.5, 15 * time.Second},
	} {
		b := Backoff{Base: time.Second, Max: 30 * time.Second, Rand: func() float64 { return c.r }}
		if got := b.Delay(c.n); got != c.want {
			t.Errorf("attempt %d, r %v: %s, want %s", c.n, c.r, got, c.want)
		}
	}
	// With the real generator: every wait within [0, step), and the spread
	// reaches both ends of the window (full, not equal, jitter).
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 8; n++ {
		step := b.Step(n)
		lo, hi := step, time.Duration(0)
		for range 2000 {
			d := b.Delay(n)
			if d < 0 || d >= step {
				t.Fatalf("attempt %d: %s outside [0, %s)", n, d, step)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > step/10 || hi < step*9/10 {
			t.Errorf("attempt %d: 2000 waits spread over [%s, %s], want close to [0, %s)", n, lo, hi, step)
		}
	}
}

func TestSleepHonoursTheContext(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	t0 := time.Now()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if el := time.Since(t0); el > time.Second {
		t.Fatalf("cancelled sleep took %s", el)
	}
	if err := Sleep(ctx, 0); err != context.Canceled {
		t.Fatalf("zero sleep on a cancelled context: %v", err)
	}
}
