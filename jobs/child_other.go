//go:build !linux

package jobs

import (
	"errors"
	"syscall"
)

// childAttr: outside Linux there is no parent-death signal; a child of a
// killed server runs until its job ends or it is killed.
func childAttr() *syscall.SysProcAttr { return nil }

// setNice is not supported outside Linux.
func setNice(pid, nice int) error {
	return errors.New("setting a child's priority is supported on Linux only")
}
