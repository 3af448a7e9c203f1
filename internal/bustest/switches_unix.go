//go:build unix

package bustest

import "syscall"

// voluntarySwitches is the process's voluntary context switches so far
// (getrusage: every thread, ended ones included): each is a thread that
// blocked (a parked M, the network poller waiting), so their number per
// message counts the wake-ups an idle machine pays for in latency.
func voluntarySwitches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Nvcsw)
}
