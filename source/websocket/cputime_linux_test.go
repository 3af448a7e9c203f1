package websocket

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU pins the calling goroutine to its OS thread and returns a func
// that reports the CPU time that thread has used since, and unpins it. On a
// loaded machine wall-clock ns/op include time spent waiting for a core; CPU
// time per message is what "messages per second per core" means.
func threadCPU() func() (time.Duration, bool) {
	runtime.LockOSThread()
	start, ok := rusageThread()
	return func() (time.Duration, bool) {
		end, ok2 := rusageThread()
		runtime.UnlockOSThread()
		return end - start, ok && ok2
	}
}

func rusageThread() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
