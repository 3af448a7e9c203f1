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

// setSpawnerSched: a child's niceness and scheduling policy are set on
// Linux only.
func setSpawnerSched(nice int, sched string) error {
	if nice == 0 && (sched == "" || sched == SchedNormal) {
		return nil
	}
	return fmt.Errorf("child niceness and scheduling policy (--child-nice, --child-sched) are supported on Linux only, not %s", runtime.GOOS)
}
