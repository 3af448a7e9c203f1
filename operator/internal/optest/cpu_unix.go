//go:build unix

package optest

import (
	"syscall"
	"time"
)

// CPUTime is this process's user+system CPU time so far; benchmarks report
// it beside wall time because it is steadier on a loaded machine.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
