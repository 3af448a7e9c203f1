package engine

import "time"

// SetSourceBoundAfter sets how long a source runs before the bottleneck
// hint judges it, for tests; it returns a func restoring the old value.
func SetSourceBoundAfter(d time.Duration) func() {
	old := sourceBoundAfter
	sourceBoundAfter = d
	return func() { sourceBoundAfter = old }
}
