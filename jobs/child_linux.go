package jobs

import (
	"fmt"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
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
// thread, which does nothing but fork children, is changed. The CPU set
// (affinity) is inherited the same way.
func setSpawnerSched(s spawnerSched) error {
	if len(s.cpus) > 0 {
		var allowed, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &allowed); err != nil {
			return fmt.Errorf("child CPUs: sched_getaffinity: %w", err)
		}
		for _, c := range s.cpus {
			if c < 0 || c >= len(allowed)*64 || !allowed.IsSet(c) {
				return fmt.Errorf("child CPU %d: the server may run on CPUs %s only: %w", c, cpuList(&allowed), ErrInvalid)
			}
			set.Set(c)
		}
		// With pid 0, sched_setaffinity is the calling thread; a forked
		// child and every thread it makes inherit the mask.
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("child CPUs %v: sched_setaffinity: %w", s.cpus, err)
		}
	}
	nice, sched := s.nice, s.sched
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

// cpuList writes a CPU set as ascending CPU numbers, comma-separated.
func cpuList(set *unix.CPUSet) string {
	var b []byte
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(c), 10)
		}
	}
	return string(b)
}
