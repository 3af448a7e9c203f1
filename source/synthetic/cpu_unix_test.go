//go:build unix

package synthetic

import (
	"syscall"
	"time"
)

// cpuTime is this process's user+system CPU time so far; benchmarks report
// CPU per record beside wall time because a loaded machine distorts it far
// less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
