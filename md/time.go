package md

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mdpio/mdp/tsparse"
)

// Time values inside mdp are int64 nanoseconds since the Unix epoch, UTC.

// MinTime and MaxTime bound event time. A watermark of MaxTime is the final
// watermark: no more data will come.
const (
	MinTime int64 = -1 << 63
	MaxTime int64 = 1<<63 - 1
)

// FormatTime renders ns as RFC 3339 with nanoseconds and a Z.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// ParseTime parses RFC 3339 (with or without fraction, Z or offset) to ns;
// a time outside the range of event times is an error, never wrapped.
func ParseTime(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("parse time %q: want RFC 3339 such as 2024-01-02T14:30:00Z", s)
	}
	ns, ok := tsparse.FromTime(t)
	if !ok {
		return 0, fmt.Errorf("time %q is outside the range of event times (%s to %s)", s, FormatTime(tsparse.MinNanos), FormatTime(tsparse.MaxNanos))
	}
	return ns, nil
}

// ParseDuration is time.ParseDuration plus a "d" (24h) unit, e.g. "1d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, 'd'); i > 0 {
		days, err := strconv.ParseInt(s[:i], 10, 64)
		if err == nil && (days > math.MaxInt64/int64(24*time.Hour) || days < -math.MaxInt64/int64(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q: more than %dd", s, math.MaxInt64/int64(24*time.Hour))
		}
		if err == nil {
			rest := time.Duration(0)
			if i+1 < len(s) {
				rest, err = time.ParseDuration(s[i+1:])
				if err != nil {
					return 0, fmt.Errorf("invalid duration %q", s)
				}
			}
			d := time.Duration(days) * 24 * time.Hour
			if (rest > 0 && d > math.MaxInt64-rest) || (rest < 0 && d < math.MinInt64-rest) {
				return 0, fmt.Errorf("invalid duration %q: out of range", s)
			}
			return d + rest, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (examples: 500ms, 1s, 5m, 1h, 1d)", s)
	}
	return d, nil
}

// FormatInterval renders a bar interval in its largest whole unit: 1s, 1m,
// 5m, 1h, 1d, 250ms. Stores use it as the interval's text.
func FormatInterval(ns int64) string {
	units := []struct {
		n    int64
		name string
	}{
		{24 * int64(time.Hour), "d"}, {int64(time.Hour), "h"}, {int64(time.Minute), "m"},
		{int64(time.Second), "s"}, {int64(time.Millisecond), "ms"}, {int64(time.Microsecond), "us"},
	}
	if ns > 0 {
		for _, u := range units {
			if ns%u.n == 0 {
				return strconv.FormatInt(ns/u.n, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(ns, 10) + "ns"
}

// FloorTo returns the start of the interval-aligned window holding ts, with
// windows aligned to origin (an offset from the epoch).
func FloorTo(ts, interval, origin int64) int64 {
	r := (ts - origin) % interval
	if r < 0 {
		r += interval
	}
	return ts - r
}
