//go:build !linux

package server_test

import "testing"

// pinThreads needs Linux's sched_setaffinity: elsewhere the variant that
// uses it is skipped.
func pinThreads(b *testing.B, pid, cpu int) (restore func()) {
	b.Skip("pinning threads to a CPU needs Linux")
	return nil
}
