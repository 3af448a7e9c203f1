//go:build !linux

package jobs

import (
	"fmt"
	"runtime"
	"syscall"
)

// childAttr: outside Linux there is no parent-death signal; a child of a
// killed server runs until its job ends or it is killed.
func childAttr() *syscall.SysProcAttr { return nil }

// setSpawnerSched: a child's niceness, scheduling policy and CPU set are
// set on Linux only.
func setSpawnerSched(s spawnerSched) error {
	if s.nice == 0 && (s.sched == "" || s.sched == SchedNormal) && len(s.cpus) == 0 {
		return nil
	}
	return fmt.Errorf("child niceness, scheduling policy and CPU set (--child-nice, --child-sched, --child-cpus) are supported on Linux only, not %s", runtime.GOOS)
}
