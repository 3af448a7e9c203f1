package jobs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// threadSched is a thread's scheduling policy and niceness, read from
// /proc/PID/task/TID/stat (fields 41 and 19).
func threadSched(t *testing.T, pid, tid int) (policy, nice int) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // from field 3
	nice, _ = strconv.Atoi(f[19-3])
	policy, _ = strconv.Atoi(f[41-3])
	return policy, nice
}

// threads lists the thread ids of process pid.
func threads(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var tids []int
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, tid)
	}
	return tids
}

// TestSchedHelperProcess is the child of TestChildSched: a Go process
// with several threads (four locked to goroutines, besides the runtime's
// own) that says so on stdout and waits for stdin to close.
func TestSchedHelperProcess(t *testing.T) {
	if os.Getenv("MDP_SCHED_HELPER") != "1" {
		t.Skip("the child process of TestChildSched")
	}
	started := make(chan struct{})
	for range 4 {
		go func() {
			goruntime.LockOSThread()
			started <- struct{}{}
			select {}
		}()
	}
	for range 4 {
		<-started
	}
	fmt.Println("threads up")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// niceSeq gives each spawner of TestChildSched its own niceness (1-19),
// so its thread is told from earlier ones: a locked goroutine that ends on
// the main thread leaves it wedged, not ended, with its niceness.
var niceSeq atomic.Int32

// A child forked by the spawner runs every one of its threads under the
// policy and niceness asked for, threads it made after the fork included;
// the test's own threads, but the spawner's, keep theirs (threads Go
// starts from the spawner's locked thread are made by its template
// thread, not cloned from it).
func TestChildSched(t *testing.T) {
	for _, tc := range []struct {
		sched  string
		policy int
	}{{SchedIdle, schedIdle}, {SchedBatch, schedBatch}, {SchedNormal, schedOther}} {
		t.Run(tc.sched, func(t *testing.T) {
			nice := int(niceSeq.Add(1)-1)%19 + 1
			pid := startSchedHelper(t, spawnerSched{nice: nice, sched: tc.sched})
			tids := threads(t, pid)
			if len(tids) < 5 {
				t.Fatalf("child has %d threads, want at least 5", len(tids))
			}
			for _, tid := range tids {
				if policy, n := threadSched(t, pid, tid); policy != tc.policy || n != nice {
					t.Fatalf("child thread %d: policy %d nice %d, want policy %d nice %d", tid, policy, n, tc.policy, nice)
				}
			}
			lowered := 0
			for _, tid := range threads(t, os.Getpid()) {
				if _, n := threadSched(t, os.Getpid(), tid); n == nice {
					lowered++
				}
			}
			if lowered != 1 { // the spawner's thread only
				t.Fatalf("%d threads of the test process run at niceness %d, want 1 (the spawner's)", lowered, nice)
			}
		})
	}
}

// startSchedHelper starts TestSchedHelperProcess from a spawner that
// takes s, once the child says its threads are up; the child and the
// spawner end with the test.
func startSchedHelper(t *testing.T, s spawnerSched) (pid int) {
	t.Helper()
	p := &processLauncher{spawn: make(chan spawnReq)}
	ready := make(chan error, 1)
	go p.spawner(s, ready)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSchedHelperProcess$")
	cmd.Env = append(os.Environ(), "MDP_SCHED_HELPER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	req := spawnReq{cmd: cmd, done: make(chan error, 1)}
	p.spawn <- req
	if err := <-req.done; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "threads up\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	return cmd.Process.Pid
}

// cpusAllowed is a thread's Cpus_allowed_list (/proc), e.g. "0-1".
func cpusAllowed(t *testing.T, pid, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Cpus_allowed_list for thread %d of %d", tid, pid)
	return ""
}

// A child forked by a spawner with a CPU set runs every thread on that set
// only; the test's own threads, but the spawner's, keep theirs.
func TestChildCPUs(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 || !all.IsSet(1) {
		t.Skipf("needs CPU 1 and another: this process may run on %d CPUs", all.Count())
	}
	before := cpusAllowed(t, os.Getpid(), os.Getpid())
	pid := startSchedHelper(t, spawnerSched{cpus: []int{1}})
	tids := threads(t, pid)
	if len(tids) < 5 {
		t.Fatalf("child has %d threads, want at least 5", len(tids))
	}
	for _, tid := range tids {
		if got := cpusAllowed(t, pid, tid); got != "1" {
			t.Fatalf("child thread %d may run on CPUs %q, want 1", tid, got)
		}
	}
	narrowed := 0
	for _, tid := range threads(t, os.Getpid()) {
		if got := cpusAllowed(t, os.Getpid(), tid); got == "1" {
			narrowed++
		} else if got != before {
			t.Fatalf("test thread %d may run on %q, want %q", tid, got, before)
		}
	}
	if narrowed != 1 { // the spawner's thread only
		t.Fatalf("%d threads of the test process are held to CPU 1, want 1 (the spawner's)", narrowed)
	}
	// A CPU the server may not run on is refused before any child starts.
	off := 0
	for all.IsSet(off) {
		off++
	}
	p := &processLauncher{spawn: make(chan spawnReq)}
	ready := make(chan error, 1)
	go p.spawner(spawnerSched{cpus: []int{1, off}}, ready)
	want := fmt.Sprintf("child CPU %d: the server may run on CPUs %s only", off, cpuList(&all))
	if err := <-ready; !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want %q", err, want)
	}
}

// An unknown policy is refused before any child starts, and a Manager
// refuses a policy for jobs in process.
func TestChildSchedRefused(t *testing.T) {
	p := &processLauncher{spawn: make(chan spawnReq)}
	ready := make(chan error, 1)
	go p.spawner(spawnerSched{sched: "fifo"}, ready)
	if err := <-ready; !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `child scheduling policy "fifo": want normal, batch or idle`) {
		t.Fatalf("err %v", err)
	}
	_, err := New(context.Background(), Options{State: filepath.Join(t.TempDir(), "s.db"), Sched: SchedIdle})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "needs isolation process") {
		t.Fatalf("in process with a policy: %v", err)
	}
	_, err = New(context.Background(), Options{State: filepath.Join(t.TempDir(), "s.db"), Isolation: IsolationProcess, Sched: "fifo"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("process with policy fifo: %v", err)
	}
}
