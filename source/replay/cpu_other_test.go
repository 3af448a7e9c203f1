//go:build !linux

package replay

import "time"

// processCPU is not measured off Linux; benchmarks then report 0.
func processCPU() time.Duration { return 0 }
