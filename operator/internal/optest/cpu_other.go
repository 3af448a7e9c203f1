//go:build !unix

package optest

import "time"

// CPUTime is unavailable here; benchmarks then report 0 CPU time.
func CPUTime() time.Duration { return 0 }
