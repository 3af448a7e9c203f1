package jobs

import (
	"fmt"
	"syscall"
	"unsafe"
)

// childAttr makes a child process die with the server: the kernel sends it
// SIGKILL when the thread that started it ends (the spawner's, which lives
// as long as the process), so a killed server leaves no job running behind
// it and a restarted one finds none.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// Linux scheduling policies (sched(7)).
const (
	schedOther = 0
	schedBatch = 3
	schedIdle  = 5
)

// setSpawnerSched gives the calling thread (the spawner's, locked to it)
// the niceness and scheduling policy every child it forks inherits: a
// forked process starts with its parent thread's policy and niceness,
// execve keeps them, and every thread the child creates inherits them
// from the thread creating it, so the whole child runs under them from
// its first instruction. An unprivileged thread cannot raise its priority
// again (nor leave SCHED_IDLE), which is why only the spawner's own
// thread, which does nothing but fork children, is changed.
func setSpawnerSched(nice int, sched string) error {
	if nice != 0 {
		// With who 0, PRIO_PROCESS is the calling thread on Linux.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice); err != nil {
			return fmt.Errorf("child niceness %d: %w", nice, err)
		}
	}
	policy := schedOther
	switch sched {
	case "", SchedNormal:
		return nil
	case SchedBatch:
		policy = schedBatch
	case SchedIdle:
		policy = schedIdle
	default:
		return fmt.Errorf("child scheduling policy %q: want %s, %s or %s: %w", sched, SchedNormal, SchedBatch, SchedIdle, ErrInvalid)
	}
	var param struct{ priority int32 } // sched_priority: 0 for these policies
	// With pid 0, sched_setscheduler is the calling thread.
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, uintptr(policy), uintptr(unsafe.Pointer(&param))); e != 0 {
		return fmt.Errorf("child scheduling policy %s: sched_setscheduler: %w", sched, e)
	}
	return nil
}
