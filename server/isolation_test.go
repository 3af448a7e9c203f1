//go:build linux

package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mdpio/mdp/jobs"
)

// procSched is the scheduling policy and niceness of every thread of
// process pid, from /proc/PID/task/TID/stat (fields 41 and 19).
func procSched(t *testing.T, pid int) map[int][2]int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int][2]int{}
	for _, e := range ents {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, e.Name()))
		if err != nil {
			continue // the thread ended
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // from field 3
		tid, _ := strconv.Atoi(e.Name())
		nice, _ := strconv.Atoi(f[19-3])
		policy, _ := strconv.Atoi(f[41-3])
		got[tid] = [2]int{policy, nice}
	}
	return got
}

// children lists the child processes of pid (every thread's).
func children(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range ents {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, e.Name()))
		for _, f := range strings.Fields(string(data)) {
			k, _ := strconv.Atoi(f)
			kids = append(kids, k)
		}
	}
	return kids
}

// mdp serve --isolation process --child-sched idle --child-nice 5 runs
// each job's process with every thread under SCHED_IDLE (policy 5) at
// niceness 5, while the server's own threads keep the normal policy at
// niceness 0, but the one that forks the children.
func TestServeChildSched(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs Linux's /proc")
	}
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil || !all.IsSet(0) || !all.IsSet(1) {
		t.Skip("needs CPUs 0 and 1")
	}
	p := serve(t, t.TempDir(), "--isolation", "process", "--child-sched", "idle", "--child-nice", "5", "--child-cpus", "1")
	p.must(201, "POST", "/api/v1/jobs", `name: paced
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 1000, seed: 1}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, nil)
	waitFor(t, "the job running", 60*time.Second, func() bool { return p.status("paced").State == "running" })
	kids := children(t, p.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("server children %v, want one", kids)
	}
	threads := procSched(t, kids[0])
	if len(threads) < 3 {
		t.Fatalf("child threads %v", threads)
	}
	for tid, ps := range threads {
		if ps != [2]int{5, 5} {
			t.Fatalf("child thread %d: policy %d nice %d, want SCHED_IDLE (5) at niceness 5", tid, ps[0], ps[1])
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err == nil && (set.Count() != 1 || !set.IsSet(1)) {
			t.Fatalf("child thread %d may run on %d CPUs, want CPU 1 only", tid, set.Count())
		}
	}
	// The server inherits the test's niceness (0 in CI; more under nice).
	base := procSched(t, os.Getpid())[os.Getpid()]
	lowered := 0
	for tid, ps := range procSched(t, p.cmd.Process.Pid) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread ended
		}
		switch {
		case ps == base && set == all:
		case ps == [2]int{5, 5} && set.Count() == 1 && set.IsSet(1):
			lowered++
		default:
			t.Fatalf("server thread %d: policy %d nice %d, %d CPUs", tid, ps[0], ps[1], set.Count())
		}
	}
	if lowered != 1 {
		t.Fatalf("%d server threads under the children's policy, want 1 (the spawner's)", lowered)
	}
	p.stop()
}

// --child-sched is refused with jobs in process and for an unknown policy,
// before anything starts (exit 2).
func TestServeChildSchedRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--isolation", "inprocess", "--child-sched", "idle"}, "Error: --child-sched idle needs --isolation process (jobs in process share the API's threads)\n"},
		{[]string{"--isolation", "process", "--child-sched", "fifo"}, "Error: invalid --child-sched \"fifo\": want normal, batch or idle\n"},
		{[]string{"--isolation", "inprocess", "--child-cpus", "1"}, "Error: --child-cpus needs --isolation process (jobs in process share the API's threads)\n"},
		{[]string{"--isolation", "process", "--child-cpus", "1,3-2"}, "Error: invalid --child-cpus \"1,3-2\": \"3-2\" is not a CPU number or range (want e.g. 1 or 2-3)\n"},
		{[]string{"--isolation", "process", "--child-cpus", "x"}, "Error: invalid --child-cpus \"x\": \"x\" is not a CPU number or range (want e.g. 1 or 2-3)\n"},
		{[]string{"--isolation", "process", "--child-cpus", "0-5000"}, "Error: invalid --child-cpus \"0-5000\": CPU 5000: numbers go up to 1023\n"},
		{[]string{"--isolation", "process", "--child-cpus", "1000"}, "the server may run on CPUs "},
	} {
		out, code := mdpCmd(t, dir, append([]string{"serve", "--listen", "127.0.0.1:0", "--state", dir + "/s.db"}, tc.args...)...)
		if code != 2 || !(strings.HasSuffix(out, tc.want) || strings.HasSuffix(tc.want, " ") && strings.Contains(out, tc.want)) {
			t.Fatalf("%v: exit %d, output %q, want %q", tc.args, code, out, tc.want)
		}
	}
}

// scaleoutJob is a paced synthetic job scaled out over an embedded NATS
// server (4 partitions), writing 100 ms bars to NAME.db.
func scaleoutJob(name, natsDir string) string {
	return fmt.Sprintf(`name: %s
scaleout: {nats: embedded, partitions: 4, store: %s}
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], rate: 2000, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: store, type: sink.sqlite, params: {path: %s.db}}
  edges: [[src, bars], [bars, store]]
`, name, natsDir, name)
}

// mdp serve --isolation process runs a scaled-out job (nats: embedded) as
// its child `mdp run`: the job's status carries the scale-out section (one
// worker, the child, owning the four partitions), a stop drains it, and
// its bars are in the SQLite file, as many as its sink took in.
func TestServeScaleoutProcess(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--isolation", "process")
	var st jobs.JobStatus
	p.must(201, "POST", "/api/v1/jobs", scaleoutJob("so", filepath.Join(dir, "nats")), &st)
	if st.State != "running" {
		t.Fatalf("submitted: %+v", st)
	}
	kids := children(t, p.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("server children %v, want one", kids)
	}
	waitFor(t, "the scale-out status with every partition reported", 60*time.Second, func() bool {
		st = p.status("so")
		if st.Runtime == nil || st.Runtime.Scaleout == nil {
			return false
		}
		for _, pl := range st.Runtime.Scaleout.PartitionLag {
			if !pl.Reported {
				return false
			}
		}
		return true
	})
	so := st.Runtime.Scaleout
	if so.Stream != "MDP_so" || so.Partitions != 4 || len(so.Workers) != 1 || so.Workers[0].PID != kids[0] ||
		fmt.Sprint(so.Workers[0].Partitions) != "[0 1 2 3]" || len(so.PartitionLag) != 4 {
		t.Fatalf("scale-out status: %+v", so)
	}
	waitFor(t, "bars written", 60*time.Second, func() bool {
		_, in := node(p.status("so"), "bars")
		return in > 0
	})
	p.must(200, "POST", "/api/v1/jobs/so/stop", "", nil)
	waitFor(t, "the job stopped", 60*time.Second, func() bool { return p.status("so").State == "stopped" })
	st = p.status("so")
	in, _ := node(st, "store")
	if n := rows(t, filepath.Join(dir, "so.db")); in <= 0 || n != in {
		t.Fatalf("%d bars in so.db, the sink took in %d: %+v", n, in, st.Runtime)
	}
	if st.Runtime.Scaleout == nil || st.Runtime.Scaleout.Stream != "MDP_so" {
		t.Fatalf("final status without the scale-out section: %+v", st.Runtime)
	}
	p.stop()
}

// A server running jobs in its process refuses a scaled-out job with 400,
// naming --isolation process.
func TestServeScaleoutInProcessRefused(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--isolation", "inprocess")
	code, body := p.call("POST", "/api/v1/jobs", scaleoutJob("so", filepath.Join(dir, "nats")))
	want := `{"error":"job \"so\" has a scaleout section: a job server runs scaled-out jobs only with --isolation process (each job its own mdp run), not in its process: invalid"}`
	if code != 400 || strings.TrimSpace(string(body)) != want {
		t.Fatalf("POST: %d %s, want 400 %s", code, body, want)
	}
	var list []jobs.JobStatus
	p.must(200, "GET", "/api/v1/jobs", "", &list)
	if len(list) != 0 {
		t.Fatalf("registered: %+v", list)
	}
	p.stop()
}
