//go:build unix

package storetest

import (
	"syscall"
	"time"
)

// CPUTime is the process's user+system CPU time so far. CPU time per row
// is steadier than wall time on a machine shared with other work.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
