package server_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"unsafe"
)

// cpuMask is a sched_setaffinity CPU mask for up to 1024 CPUs.
type cpuMask [16]uint64

// pinThreads sets the CPU affinity of every live thread of process pid to
// the one CPU cpu (threads it creates later inherit it from their creator)
// and returns a function that gives each of those threads its previous
// mask back, and threads created since the mask the process's main thread
// had. It needs no privilege for the caller's own processes.
func pinThreads(b *testing.B, pid, cpu int) (restore func()) {
	b.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		b.Fatalf("pin threads: %v", err)
	}
	var one cpuMask
	one[cpu/64] |= 1 << (cpu % 64)
	saved := map[int]cpuMask{}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var m cpuMask
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m))); e != 0 {
			continue // the thread exited
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(one), uintptr(unsafe.Pointer(&one))); e != 0 {
			if e == syscall.ESRCH {
				continue
			}
			b.Fatalf("pin thread %d of %d to CPU %d: %v", tid, pid, cpu, e)
		}
		saved[tid] = m
	}
	return func() {
		tasks, _ := os.ReadDir(dir)
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			m, ok := saved[tid]
			if !ok {
				m = saved[pid]
			}
			_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
		}
	}
}
