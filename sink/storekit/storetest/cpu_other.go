//go:build !unix

package storetest

import "time"

// CPUTime is unavailable here; benchmarks then report 0 CPU time per row.
func CPUTime() time.Duration { return 0 }
