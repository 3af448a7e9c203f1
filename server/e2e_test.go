package server_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/server"
)

// mdpBin is the mdp binary the end-to-end tests run, built once.
var mdpBin string

// isolation is where the servers of these tests run their jobs: `go test
// ./server -isolation process` runs the whole suite with each job a child
// process; TestServeProcessIsolation runs the core tests that way in every
// run.
var isolation = flag.String("isolation", jobs.IsolationInProcess, "where mdp serve runs the jobs of the end-to-end tests: inprocess or process")

func processMode() bool { return *isolation == jobs.IsolationProcess }

// TestServeProcessIsolation runs the end-to-end tests of the job server's
// promises with every job a child process (mdp serve --isolation process):
// submit, counts that rise, WebSocket pushes, stop that drains into SQLite,
// start, replace, logs, delete; kill -9 (no child survives) and restart;
// restart policies with backoff; 20 jobs with exact counts and
// runtime_jobs_running; a job's stdout and followed logs.
func TestServeProcessIsolation(t *testing.T) {
	if processMode() {
		t.Skip("the whole suite runs with -isolation process")
	}
	*isolation = jobs.IsolationProcess
	defer func() { *isolation = jobs.IsolationInProcess }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Lifecycle", TestServeLifecycle},
		{"KilledAndRestarted", TestServeKilledAndRestarted},
		{"RestartPolicy", TestServeRestartPolicy},
		{"TwentyJobs", TestServeTwentyJobs},
		{"StdoutAndLogsFollow", TestServeJobStdoutAndLogsFollow},
	} {
		t.Run(tc.name, tc.f)
	}
}

// childrenOf returns the processes whose parent is pid (from /proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%d", &n); err != nil {
			continue
		}
		if st, ok := procStat(n); ok && st.ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

type pstat struct {
	state byte
	ppid  int
}

// procStat reads a process's state and parent from /proc/PID/stat.
func procStat(pid int) (pstat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pstat{}, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return pstat{}, false
	}
	var st pstat
	if _, err := fmt.Sscanf(string(data[i+1:]), " %c %d", &st.state, &st.ppid); err != nil {
		return pstat{}, false
	}
	return st, true
}

// alive reports whether pid is a process that runs (not gone, not a
// zombie waiting to be reaped).
func alive(pid int) bool {
	st, ok := procStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mdp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mdpBin = filepath.Join(dir, "mdp")
	build := exec.Command("go", "build", "-o", mdpBin, "github.com/mdpio/mdp/cmd/mdp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mdp:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `mdp serve`.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	base string
	dir  string

	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

var addrRE = regexp.MustCompile(`"msg":"job server listening","addr":"([^"]+)"`)

// serve starts `mdp serve` in dir on a free loopback port with args and
// waits until it listens.
func serve(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	return serveWith(t, dir, nil, args...)
}

// serveWith is serve with a hook to set up the command before it starts.
func serveWith(t testing.TB, dir string, setup func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--state", filepath.Join(dir, "state.db"), "--isolation", *isolation}, args...)
	cmd := exec.Command(mdpBin, args...)
	if setup != nil {
		setup(cmd)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MDP_API_TOKEN=")
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, dir: dir, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.done:
		t.Fatalf("mdp serve exited: %s", p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("mdp serve did not listen: %s", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and waits for the exit.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("mdp serve did not stop")
	}
}

// kill9 kills the server without letting it stop anything.
func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// call sends a request and returns the status code and body.
func (p *proc) call(method, path, body string, hdr ...string) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// must sends a request that must answer want and decodes the body into out.
func (p *proc) must(want int, method, path, body string, out any) {
	p.t.Helper()
	code, data := p.call(method, path, body)
	if code != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

func (p *proc) status(name string) jobs.JobStatus {
	p.t.Helper()
	var st jobs.JobStatus
	p.must(200, "GET", "/api/v1/jobs/"+name, "", &st)
	return st
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveJob is a paced synthetic job writing 1s bars to a SQLite file.
func liveJob(name string, rate int, extra string) string {
	return fmt.Sprintf(`name: %s
%s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: %d, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: store, type: sink.sqlite, params: {path: %s.db}}
  edges: [[src, bars], [bars, store]]
`, name, extra, rate, name)
}

func node(st jobs.JobStatus, id string) (in, out int64) {
	if st.Runtime == nil {
		return -1, -1
	}
	for _, n := range st.Runtime.Nodes {
		if n.ID == id {
			return n.EventsIn, n.EventsOut
		}
	}
	return -1, -1
}

func rows(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM bars_ohlcv`).Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func TestServeLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--status-interval", "200ms")

	var st jobs.JobStatus
	p.must(201, "POST", "/api/v1/jobs", liveJob("live", 2000, ""), &st)
	if st.Name != "live" || st.State != "running" || st.Desired != "running" || st.Restart != "on-failure" {
		t.Fatalf("submitted: %+v", st)
	}
	var list []jobs.JobStatus
	p.must(200, "GET", "/api/v1/jobs", "", &list)
	if len(list) != 1 || list[0].Name != "live" || list[0].Runtime != nil {
		t.Fatalf("list: %+v", list)
	}
	if processMode() {
		// A child's status says when it was read; its nodes cannot be
		// tapped from the server.
		if st := p.status("live"); st.ObservedAt == "" {
			t.Fatalf("status of a child process without observed_at: %+v", st)
		}
		code, body := p.call("GET", "/api/v1/jobs/live/tap/bars", "")
		if code != 409 || !strings.Contains(string(body), "runs as a child process") {
			t.Fatalf("tap in process mode: %d %s", code, body)
		}
	}

	// Counts rise.
	_, out1 := node(p.status("live"), "src")
	time.Sleep(600 * time.Millisecond)
	_, out2 := node(p.status("live"), "src")
	if out1 < 0 || out2 <= out1 {
		t.Fatalf("source events out %d then %d: not rising", out1, out2)
	}

	// The job's WebSocket pushes status updates with rising counts, and the
	// all-jobs WebSocket lists the job.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(p.base, "http", "ws", 1)+"/api/v1/jobs/live/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	first, last := int64(-1), int64(-1)
	for i := 0; i < 5; i++ {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m server.StatusMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Type != "status" || m.Job == nil || m.Job.Name != "live" {
			t.Fatalf("message %d: %v %s", i, err, data)
		}
		_, out := node(*m.Job, "src")
		if out < last {
			t.Fatalf("websocket update %d: source out %d after %d", i, out, last)
		}
		if first < 0 {
			first = out
		}
		last = out
	}
	if last <= first {
		t.Fatalf("websocket updates: source out %d, then %d: not rising", first, last)
	}
	all, _, err := websocket.Dial(ctx, strings.Replace(p.base, "http", "ws", 1)+"/api/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer all.CloseNow()
	all.SetReadLimit(1 << 20)
	_, data, err := all.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var am server.StatusMessage
	if err := json.Unmarshal(data, &am); err != nil || am.Type != "jobs" || len(am.Jobs) != 1 || am.Jobs[0].Name != "live" {
		t.Fatalf("all-jobs message: %v %s", err, data)
	}

	// Stop drains: every bar the bars node emitted is in the SQLite file,
	// and the state change reaches the WebSocket at once.
	p.must(200, "POST", "/api/v1/jobs/live/stop", "", &st)
	if st.State != "stopped" || st.Desired != "stopped" || st.LastError != "" {
		t.Fatalf("stopped: %+v", st)
	}
	_, bars := node(st, "bars")
	if got := rows(t, filepath.Join(dir, "live.db")); bars <= 0 || got != bars {
		t.Fatalf("after stop: %d bars in the SQLite file, the bars node emitted %d", got, bars)
	}
	sawStopped := false
	for !sawStopped {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for the stopped state on the websocket: %v", err)
		}
		var m server.StatusMessage
		_ = json.Unmarshal(data, &m)
		sawStopped = m.Job != nil && m.Job.State == "stopped"
	}

	// Start again.
	p.must(200, "POST", "/api/v1/jobs/live/start", "", &st)
	if st.State != "running" {
		t.Fatalf("started again: %+v", st)
	}
	// Replace: the running job drains and runs the new definition.
	fp := st.Fingerprint
	p.must(200, "PUT", "/api/v1/jobs/live", liveJob("live", 3000, ""), &st)
	if st.State != "running" || st.Fingerprint == fp || st.Fingerprint == "" {
		t.Fatalf("replaced: %+v (fingerprint was %s)", st, fp)
	}
	var def map[string]string
	p.must(200, "GET", "/api/v1/jobs/live/definition", "", &def)
	if !strings.Contains(def["definition"], "rate: 3000") {
		t.Fatalf("definition after replace: %q", def["definition"])
	}
	// Logs carry the job's records.
	var recs []jobs.LogRecord
	p.must(200, "GET", "/api/v1/jobs/live/logs?tail=3", "", &recs)
	if len(recs) != 3 || recs[2].Seq <= recs[0].Seq {
		t.Fatalf("logs: %+v", recs)
	}
	p.must(200, "GET", "/api/v1/jobs/live/logs?tail=0", "", &recs)
	found := false
	for _, r := range recs {
		if r.Message == "job finished" && r.Attrs["job"] == "live" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no 'job finished' record with job=live in the logs: %+v", recs)
	}

	// Delete: refused while running, then done.
	code, body := p.call("DELETE", "/api/v1/jobs/live", "")
	if code != 409 || !strings.Contains(string(body), "is running; stop it first") {
		t.Fatalf("delete running: %d %s", code, body)
	}
	p.must(200, "DELETE", "/api/v1/jobs/live?force=true", "", nil)
	p.must(404, "GET", "/api/v1/jobs/live", "", nil)
	p.must(200, "GET", "/api/v1/jobs", "", &list)
	if len(list) != 0 {
		t.Fatalf("list after delete: %+v", list)
	}
	p.stop()
	// The one error logged is the forced delete's abort.
	if n := strings.Count(p.log(), `"level":"ERROR"`); n != 1 || !strings.Contains(p.log(), `"level":"ERROR","msg":"job aborted","job":"live"`) {
		t.Fatalf("errors logged:\n%s", p.log())
	}
}

func TestServeKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	p.must(201, "POST", "/api/v1/jobs", liveJob("again", 1000, ""), nil)
	p.must(201, "POST", "/api/v1/jobs", liveJob("once", 1000, "restart: never"), nil)
	p.must(201, "POST", "/api/v1/jobs?start=false", liveJob("idle", 1000, ""), nil)
	waitFor(t, "both jobs running", 10*time.Second, func() bool {
		return p.status("again").State == "running" && p.status("once").State == "running"
	})
	kids := childrenOf(t, p.cmd.Process.Pid)
	if want := map[bool]int{true: 2, false: 0}[processMode()]; len(kids) != want {
		t.Fatalf("the server has %d child processes (%v), want %d", len(kids), kids, want)
	}
	p.kill9()
	// The children die with the server: none is left running.
	waitFor(t, "no child of the killed server left", 5*time.Second, func() bool {
		for _, k := range kids {
			if alive(k) {
				return false
			}
		}
		return true
	})

	p = serve(t, dir)
	st := p.status("again")
	if st.State != "running" || st.Restarts != 1 || st.Desired != "running" {
		t.Fatalf("on-failure job after kill -9: %+v", st)
	}
	st = p.status("once")
	if st.State != "failed" || st.Restarts != 0 || st.Desired != "stopped" || !strings.Contains(st.LastError, "restart: never") {
		t.Fatalf("never job after kill -9: %+v", st)
	}
	st = p.status("idle")
	if st.State != "created" || st.Desired != "stopped" {
		t.Fatalf("registered-only job after kill -9: %+v", st)
	}
	// A graceful stop keeps the desired state: the next server runs the job
	// again without counting a restart.
	p.stop()
	prev := p
	p = serve(t, dir)
	st = p.status("again")
	// A drain that outlasts the server's drain timeout (a machine loaded by
	// other work) aborts the job, and an aborted job was interrupted: then
	// the next server counts a restart, as it should.
	want := 1
	if strings.Contains(prev.log(), "job aborting") {
		want = 2
	}
	if st.State != "running" || st.Restarts != want {
		t.Fatalf("after a graceful restart: %+v, want %d restarts\nthe stopped server's log:\n%s", st, want, prev.log())
	}
	p.stop()
}

func TestServeRestartPolicy(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--restart-backoff", "50ms", "--restart-backoff-max", "200ms")
	// The store's directory is a file: every start fails.
	if err := os.WriteFile(filepath.Join(dir, "blocker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	failing := func(name, policy string) string {
		return fmt.Sprintf(`name: %s
restart: %s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 10}}
    - {id: store, type: sink.sqlite, params: {path: blocker/x.db, retry_max_attempts: 1}}
  edges: [[src, store]]
`, name, policy)
	}
	var st jobs.JobStatus
	p.must(201, "POST", "/api/v1/jobs", failing("retried", "on-failure"), &st)
	p.must(201, "POST", "/api/v1/jobs", failing("left", "never"), &st)
	waitFor(t, "three restarts", 20*time.Second, func() bool { return p.status("retried").Restarts >= 3 })
	st = p.status("retried")
	// A restart clears the last error as it starts the next attempt, so a
	// status read in that window sees starting without one.
	if st.Desired != "running" || (st.State != "backoff" && st.State != "failed" && st.State != "starting") ||
		(st.State != "starting" && st.LastError == "") {
		t.Fatalf("on-failure job: %+v", st)
	}
	st = p.status("left")
	if st.State != "failed" || st.Restarts != 0 || st.Desired != "stopped" || !strings.Contains(st.LastError, "x.db") {
		t.Fatalf("never job: %+v", st)
	}
	// Stop ends the retries.
	p.must(200, "POST", "/api/v1/jobs/retried/stop", "", &st)
	n := st.Restarts
	time.Sleep(500 * time.Millisecond)
	if st = p.status("retried"); st.Restarts != n || st.Desired != "stopped" || st.State == "backoff" {
		t.Fatalf("after stop the job still restarts: %+v (restarts were %d)", st, n)
	}
	// A job that finishes by itself is not restarted under on-failure, and
	// is under always.
	finite := func(name, policy string) string {
		return fmt.Sprintf(`name: %s
restart: %s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 100}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`, name, policy)
	}
	p.must(201, "POST", "/api/v1/jobs", finite("done", "on-failure"), nil)
	p.must(201, "POST", "/api/v1/jobs", finite("loop", "always"), nil)
	waitFor(t, "the always job restarted twice", 20*time.Second, func() bool { return p.status("loop").Restarts >= 2 })
	st = p.status("done")
	if st.State != "stopped" || st.Restarts != 0 || st.Desired != "stopped" {
		t.Fatalf("finished on-failure job: %+v", st)
	}
	p.stop()
}

var seriesRE = regexp.MustCompile(`(?m)^mdp_node_events_out_total\{job="([^"]+)",node="src",type="provider.synthetic"\} (\d+)$`)

func TestServeTwentyJobs(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	const n = 20
	// Every job must still run when the first /metrics is read: 20 child
	// processes take longer to start on a loaded machine than 20 jobs in
	// one process.
	base := 6000
	if processMode() {
		base = 30000
	}
	for i := range n {
		job := fmt.Sprintf(`name: j%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: %d, rate: 1000, seed: %d}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, i, base+7*i, i)
		p.must(201, "POST", "/api/v1/jobs", job, nil)
	}
	code, metrics := p.call("GET", "/metrics", "")
	if code != 200 || !strings.Contains(string(metrics), `runtime_jobs_running{mode="dag"} 20`) {
		t.Fatalf("metrics with 20 jobs running: %d\n%s", code, grep(string(metrics), "runtime_"))
	}
	waitFor(t, "every job finished", 90*time.Second, func() bool {
		var list []jobs.JobStatus
		p.must(200, "GET", "/api/v1/jobs", "", &list)
		for _, st := range list {
			if st.State != "stopped" {
				return false
			}
		}
		return len(list) == n
	})
	_, metrics = p.call("GET", "/metrics", "")
	if !strings.Contains(string(metrics), `runtime_jobs_running{mode="dag"} 0`) {
		t.Fatalf("metrics after the jobs ended:\n%s", grep(string(metrics), "runtime_"))
	}
	got := map[string]string{}
	for _, m := range seriesRE.FindAllStringSubmatch(string(metrics), -1) {
		got[m[1]] = m[2]
	}
	for i := range n {
		name := fmt.Sprintf("j%02d", i)
		st := p.status(name)
		_, out := node(st, "src")
		in, _ := node(st, "bars")
		want := int64(base + 7*i)
		if out != want || in != want || st.EventsIn != want {
			t.Fatalf("%s: source out %d, bars in %d, events_in %d, want %d", name, out, in, st.EventsIn, want)
		}
		if got[name] != fmt.Sprint(want) {
			t.Fatalf("%s: mdp_node_events_out_total %q, want %d", name, got[name], want)
		}
	}
	p.stop()
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestServeClientErrors(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	check := func(method, path, body string, want int, msg string) {
		t.Helper()
		code, data := p.call(method, path, body)
		if code != want || !strings.Contains(string(data), msg) {
			t.Fatalf("%s %s: %d %s, want %d with %q", method, path, code, data, want, msg)
		}
	}
	// Every problem of an invalid file, each with line, column, path and
	// message.
	code, data := p.call("POST", "/api/v1/jobs?filename=bad.yaml", `name: bad
dag:
  nodes:
    - {id: src, type: provider.synthetc}
    - {id: bars, type: operator.bars, params: {interval: 1x}}
  edges: [[src, bars]]
restart: sometimes
`)
	var eb server.ErrorBody
	if err := json.Unmarshal(data, &eb); code != 400 || err != nil {
		t.Fatalf("invalid job: %d %v %s", code, err, data)
	}
	want := []server.ConfigError{
		{File: "bad.yaml", Line: 4, Column: 23, Path: "dag.nodes[0].type"},
		{File: "bad.yaml", Line: 5, Column: 7, Path: "dag.nodes[1]"},
		{File: "bad.yaml", Line: 5, Column: 58, Path: "dag.nodes[1].params.interval"},
		{File: "bad.yaml", Line: 7, Column: 10, Path: "restart"},
	}
	if len(eb.Errors) != len(want) {
		t.Fatalf("errors: %+v", eb.Errors)
	}
	for i, w := range want {
		g := eb.Errors[i]
		if g.File != w.File || g.Line != w.Line || g.Column != w.Column || g.Path != w.Path || g.Message == "" {
			t.Fatalf("error %d: %+v, want %+v", i, g, w)
		}
	}
	if !strings.Contains(eb.Errors[0].Message, `did you mean "provider.synthetic"`) {
		t.Fatalf("message: %q", eb.Errors[0].Message)
	}
	// The same through /validate, which registers nothing.
	check("POST", "/api/v1/validate", "dag: {nodes: [{id: a, type: nope}]}", 400, `"line":1`)
	check("POST", "/api/v1/validate", liveJob("v", 10, ""), 200, `"valid":true`)
	check("GET", "/api/v1/jobs/v", "", 404, `job \"v\": no such job`)

	job := liveJob("dup", 100, "")
	check("POST", "/api/v1/jobs?start=false", job, 201, `"state":"created"`)
	check("POST", "/api/v1/jobs", job, 409, `a job named \"dup\" is registered already`)
	check("POST", "/api/v1/jobs?start=maybe", job, 400, `query parameter start=\"maybe\"`)
	check("POST", "/api/v1/jobs", "", 400, "empty request body")
	check("POST", "/api/v1/jobs?name=bad/name", job, 400, `job name \"bad/name\"`)
	check("POST", "/api/v1/jobs", "name: x\n# "+strings.Repeat("x", server.MaxBody), 413, "request body over 1048576 bytes")
	check("PUT", "/api/v1/jobs/dup", "dag: [", 400, "invalid job file")
	check("PUT", "/api/v1/jobs/ghost", job, 404, `job \"ghost\": no such job`)
	for _, path := range []string{"/api/v1/jobs/ghost", "/api/v1/jobs/ghost/logs", "/api/v1/jobs/ghost/ws", "/api/v1/jobs/ghost/definition"} {
		check("GET", path, "", 404, "no such job")
	}
	check("POST", "/api/v1/jobs/ghost/stop", "", 404, "no such job")
	check("POST", "/api/v1/jobs/ghost/start", "", 404, "no such job")
	check("DELETE", "/api/v1/jobs/ghost", "", 404, "no such job")
	check("GET", "/api/v1/jobs/dup/logs?tail=-1", "", 400, `tail=\"-1\"`)
	check("GET", "/api/v1/jobs/dup/logs?since=x", "", 400, `since=\"x\"`)
	check("DELETE", "/api/v1/jobs/dup?force=perhaps", "", 400, `force=\"perhaps\"`)
	check("POST", "/api/v1/jobs/dup/start", "", 200, `"state":"running"`)
	check("POST", "/api/v1/jobs/dup/start", "", 409, `job \"dup\" is running already`)
	check("DELETE", "/api/v1/jobs/dup", "", 409, "stop it first")
	check("POST", "/api/v1/jobs/dup/stop", "", 200, `"state":"stopped"`)
	check("DELETE", "/api/v1/jobs/dup", "", 200, `"deleted":"dup"`)
	check("GET", "/api/v1/components", "", 200, `"type":"operator.bars"`)
	p.stop()
}

func TestServeToken(t *testing.T) {
	dir := t.TempDir()
	// A non-loopback address without a token is refused before anything
	// listens.
	cmd := exec.Command(mdpBin, "serve", "--listen", "0.0.0.0:0", "--state", filepath.Join(dir, "s.db"))
	cmd.Env = append(os.Environ(), "MDP_API_TOKEN=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "refusing to listen on 0.0.0.0:0 without an API token") {
		t.Fatalf("non-loopback without a token: %v\n%s", err, out)
	}
	// No secret is in this message: nothing of it may be masked.
	if strings.Contains(string(out), "xxxxx") {
		t.Fatalf("the refusal is masked as if it held a secret:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "s.db")); err == nil {
		t.Fatalf("the refused server created its registry")
	}

	p := serve(t, dir, "--token", "s3cr3t-token")
	for _, c := range []struct {
		hdr  []string
		want string
	}{
		{nil, "missing API token; send the header Authorization: Bearer TOKEN"},
		{[]string{"Authorization", "Bearer wrong"}, "wrong API token"},
		{[]string{"Authorization", "s3cr3t-token"}, "missing API token"},
	} {
		code, body := p.call("GET", "/api/v1/jobs", "", c.hdr...)
		if code != 401 || !strings.Contains(string(body), c.want) || strings.Contains(string(body), "s3cr3t") {
			t.Fatalf("%v: %d %s", c.hdr, code, body)
		}
	}
	code, _ := p.call("GET", "/metrics", "")
	if code != 401 {
		t.Fatalf("/metrics without a token: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := p.call("GET", path, ""); code != 200 {
			t.Fatalf("%s without a token: %d %s", path, code, body)
		}
	}
	if code, body := p.call("GET", "/api/v1/jobs", "", "Authorization", "Bearer s3cr3t-token"); code != 200 {
		t.Fatalf("right token: %d %s", code, body)
	}
	// The CLI sends MDP_API_TOKEN.
	list := exec.Command(mdpBin, "list", "--server", p.base)
	list.Env = append(os.Environ(), "MDP_API_TOKEN=s3cr3t-token")
	if out, err := list.CombinedOutput(); err != nil || !strings.Contains(string(out), "NAME") {
		t.Fatalf("mdp list with the token: %v\n%s", err, out)
	}
	list = exec.Command(mdpBin, "list", "--server", p.base)
	list.Env = append(os.Environ(), "MDP_API_TOKEN=nope")
	if out, err := list.CombinedOutput(); err == nil || !strings.Contains(string(out), "Error: wrong API token in Authorization: Bearer (want the server's --token or MDP_API_TOKEN) (HTTP 401)") {
		t.Fatalf("mdp list with a wrong token: %v\n%s", err, out)
	}
	p.stop()
}

func TestServeSecretsMasked(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	const secret = "hunter2-Zq9"
	job := `name: secret
restart: never
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 10}}
    - id: store
      type: sink.postgres
      params: {dsn: "postgres://mdp:` + secret + `@127.0.0.1:1/test?connect_timeout=1", retry_max_attempts: 1}
  edges: [[src, store]]
`
	var bodies []string
	code, data := p.call("POST", "/api/v1/jobs", job)
	bodies = append(bodies, string(data))
	if code != 201 {
		t.Fatalf("submit: %d %s", code, data)
	}
	waitFor(t, "the job failed", 20*time.Second, func() bool { return p.status("secret").State == "failed" })
	for _, path := range []string{"/api/v1/jobs/secret", "/api/v1/jobs", "/api/v1/jobs/secret/logs?tail=0", "/api/v1/jobs/secret/definition", "/metrics"} {
		_, data := p.call("GET", path, "")
		bodies = append(bodies, string(data))
	}
	st := p.status("secret")
	if st.LastError == "" {
		t.Fatalf("no last error: %+v", st)
	}
	_, data = p.call("POST", "/api/v1/validate", strings.Replace(job, "sink.postgres", "sink.postgress", 1))
	bodies = append(bodies, string(data))
	p.stop()
	bodies = append(bodies, p.log())
	for i, b := range bodies {
		if strings.Contains(b, secret) {
			t.Fatalf("body %d shows the secret:\n%s", i, b)
		}
	}
	if !strings.Contains(bodies[4], "xxxxx") {
		t.Fatalf("definition not masked: %s", bodies[4])
	}
}

func TestClientNoServer(t *testing.T) {
	cmd := exec.Command(mdpBin, "list", "--server", "http://127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	want := "Error: no mdp job server at http://127.0.0.1:1 (connection refused): start one with `mdp serve`, or set --server or MDP_SERVER\n"
	if !ok || ee.ExitCode() != 1 || !strings.HasSuffix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("exit %v, output %q, want %q", err, out, want)
	}
}

// mdpCmd runs the mdp binary and returns its output and exit code.
func mdpCmd(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(mdpBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MDP_API_TOKEN=", "MDP_SERVER=")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestClientCommands(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--status-interval", "100ms")
	srv := "--server=" + p.base
	if err := os.WriteFile(filepath.Join(dir, "cli.yaml"), []byte(liveJob("cli", 1000, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("dag:\n  nodes: [{id: a, type: nope}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"submit", "cli.yaml"}, 0, []string{"submitted cli: running\n"}},
		{[]string{"submit", "cli.yaml"}, 1, []string{`a job named "cli" is registered already`, "(HTTP 409)"}},
		{[]string{"submit", "bad.yaml"}, 2, []string{"invalid job file: ", "\nbad.yaml:2:25: dag.nodes[0].type: unknown component type \"nope\""}},
		{[]string{"list"}, 0, []string{"NAME  MODE  STATE    UPTIME", "\ncli   dag   running  "}},
		{[]string{"status", "--job", "cli"}, 0, []string{"cli   dag   running", "NODE   TYPE", "\nbars   operator.bars       running"}},
		{[]string{"logs", "cli", "--tail", "1"}, 0, []string{"INFO  job running job=cli\n"}},
		{[]string{"stop", "cli"}, 0, []string{"cli: stopped\n"}},
		{[]string{"start", "cli"}, 0, []string{"cli: running\n"}},
		{[]string{"delete", "cli"}, 1, []string{"stop it first", "(HTTP 409)"}},
		{[]string{"delete", "cli", "--force"}, 0, []string{"deleted cli\n"}},
		{[]string{"status", "cli"}, 1, []string{`job "cli": no such job (HTTP 404)`}},
		{[]string{"status"}, 2, []string{"name the job: mdp status NAME (or --job NAME)"}},
	}
	for _, s := range steps {
		out, code := mdpCmd(t, dir, append(s.args, srv)...)
		if code != s.code {
			t.Fatalf("mdp %v: exit %d, want %d\n%s", s.args, code, s.code, out)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Fatalf("mdp %v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}

	// status --watch follows the WebSocket: successive snapshots.
	p.must(201, "POST", "/api/v1/jobs", liveJob("w", 1000, ""), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mdpBin, "status", "w", "--watch", "--json", srv)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	// A state change is pushed at once, so two snapshots can come close
	// enough together to carry the same count: the counts never go down,
	// and rise at least twice in a few lines (the ticks).
	var prev int64 = -1
	rises := 0
	for i := 0; i < 8 && rises < 3 && sc.Scan(); i++ {
		var m server.StatusMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Job == nil {
			t.Fatalf("watch line %d: %v %s", i, err, sc.Bytes())
		}
		if m.Job.EventsIn < prev {
			t.Fatalf("watch: events %d after %d", m.Job.EventsIn, prev)
		}
		if m.Job.EventsIn > prev {
			rises++
		}
		prev = m.Job.EventsIn
	}
	if rises < 3 {
		t.Fatalf("watch: the count rose %d times in 8 snapshots, want 3 (the first counts)", rises)
	}
	// Deleting the job ends the watch.
	p.must(200, "DELETE", "/api/v1/jobs/w?force=true", "", nil)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after the delete: %v", err)
	}
	p.stop()
}

func TestRunServesReadOnlyAPI(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if err := os.WriteFile(filepath.Join(dir, "run.yaml"), []byte(liveJob("solo", 1000, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mdpBin, "run", "run.yaml", "--set", "metrics.enable=true", "--set", "metrics.listen="+addr)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	srv := "--server=http://" + addr
	var out string
	var code int
	waitFor(t, "mdp run's API", 10*time.Second, func() bool {
		out, code = mdpCmd(t, dir, "list", srv)
		return code == 0 && strings.Contains(out, "solo  dag   running")
	})
	out, code = mdpCmd(t, dir, "status", "solo", "--json", srv)
	var st jobs.JobStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Name != "solo" || st.State != "running" || st.Runtime == nil || len(st.Runtime.Nodes) != 3 {
		t.Fatalf("status: exit %d %v\n%s", code, err, out)
	}
	// /metrics has the job API's own series beside the job's, counting a
	// status WebSocket client while one is connected (the same series
	// mdp serve has).
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	wc, _, err := websocket.Dial(wctx, "ws://"+addr+"/api/v1/jobs/solo/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, data, err := wc.Read(wctx); err != nil || !strings.Contains(string(data), `"type":"status"`) {
		t.Fatalf("status websocket: %v %s", err, data)
	}
	metricsText := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return string(data)
	}
	m := metricsText()
	for _, want := range []string{"\nserver_websocket_clients 1\n", `server_websocket_dropped_total{reason="too_slow"} 0`, `runtime_jobs_running{mode="dag"} 1`} {
		if !strings.Contains(m, want) {
			t.Fatalf("mdp run's /metrics lacks %q:\n%s", want, m)
		}
	}
	_ = wc.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the client to be gone from /metrics", 10*time.Second, func() bool {
		return strings.Contains(metricsText(), "\nserver_websocket_clients 0\n")
	})
	out, code = mdpCmd(t, dir, "stop", "solo", srv)
	if code != 1 || !strings.Contains(out, "this is mdp run, serving its one job read-only") {
		t.Fatalf("stop against mdp run: exit %d\n%s", code, out)
	}
	out, code = mdpCmd(t, dir, "status", "other", srv)
	if code != 1 || !strings.Contains(out, `job "other": no such job (this mdp run runs "solo")`) {
		t.Fatalf("status of another job: exit %d\n%s", code, out)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mdp run after SIGINT: %v", err)
	}
}

func TestServeJobsDir(t *testing.T) {
	dir := t.TempDir()
	jd := filepath.Join(dir, "jobs.d")
	if err := os.Mkdir(jd, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(jd, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("one.yaml", liveJob("one", 500, ""))
	write("two.yml", liveJob("two", 500, ""))
	write("one_test.yaml", "not: a job file\n")
	write("notes.txt", "not a job file either\n")
	p := serve(t, dir, "--jobs", jd)
	var list []jobs.JobStatus
	p.must(200, "GET", "/api/v1/jobs", "", &list)
	if len(list) != 2 || list[0].Name != "one" || list[1].Name != "two" || list[0].State != "running" || list[1].State != "running" {
		t.Fatalf("jobs from the directory: %+v", list)
	}
	fp1, fp2 := list[0].Fingerprint, list[1].Fingerprint
	p.stop()
	// The next server: one.yaml changed and is replaced; two.yml did not.
	write("one.yaml", liveJob("one", 700, ""))
	p = serve(t, dir, "--jobs", jd)
	p.must(200, "GET", "/api/v1/jobs", "", &list)
	if len(list) != 2 || list[0].Fingerprint == fp1 || list[1].Fingerprint != fp2 || list[0].State != "running" || list[1].State != "running" {
		t.Fatalf("after changing one.yaml: %+v", list)
	}
	p.stop()
	// An invalid file stops the server at start-up with its problems.
	write("bad.yaml", "dag: {nodes: [{id: a, type: nope}]}\n")
	out, code := mdpCmd(t, dir, "serve", "--listen", "127.0.0.1:0", "--state", filepath.Join(dir, "state.db"), "--jobs", jd)
	if code != 2 || !strings.Contains(out, `bad.yaml:1:29: dag.nodes[0].type: unknown component type "nope"`) || strings.Contains(out, "job starting") {
		t.Fatalf("invalid file in --jobs: exit %d\n%s", code, out)
	}
}

// A served job's standard output (sink.stdout) is its log's, one record a
// line with stream=stdout, and never the server's own stdout; `mdp logs -f`
// streams the log as records arrive and ends when the job is deleted.
func TestServeJobStdoutAndLogsFollow(t *testing.T) {
	dir := t.TempDir()
	var srvOut syncBuffer
	p := serveWith(t, dir, func(cmd *exec.Cmd) { cmd.Stdout = &srvOut })
	const n = 40
	p.must(201, "POST", "/api/v1/jobs", fmt.Sprintf(`name: printer
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: %d, seed: 1}}
    - {id: out, type: sink.stdout}
  edges: [[src, out]]
`, n), nil)
	var recs []jobs.LogRecord
	waitFor(t, "the job's output in its log", 60*time.Second, func() bool {
		recs = nil
		p.must(200, "GET", "/api/v1/jobs/printer/logs?tail=0", "", &recs)
		c := 0
		for _, r := range recs {
			if r.Attrs["stream"] == "stdout" {
				c++
			}
		}
		return c >= n
	})
	var lines []string
	for _, r := range recs {
		if r.Attrs["stream"] != "stdout" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.Message), &rec); err != nil || rec["symbol"] != "AAPL" {
			t.Fatalf("stdout record %q: %v", r.Message, err)
		}
		lines = append(lines, r.Message)
	}
	if len(lines) != n {
		t.Fatalf("%d stdout records, want %d", len(lines), n)
	}
	if s := srvOut.String(); s != "" {
		t.Fatalf("the server's stdout has the job's output: %.200s", s)
	}

	// Follow a paced job: records keep arriving on the one stream.
	p.must(201, "POST", "/api/v1/jobs", `name: ticker
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [MSFT], rate: 20, seed: 2, batch_size: 1}}
    - {id: out, type: sink.stdout}
  edges: [[src, out]]
`, nil)
	cmd := exec.Command(mdpBin, "logs", "ticker", "-f", "--tail", "1", "--json", "--server", p.base)
	cmd.Env = append(os.Environ(), "MDP_API_TOKEN=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	var seqs []int64
	var last jobs.LogRecord
	for len(seqs) < 10 && sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("mdp logs -f line %q: %v", sc.Text(), err)
		}
		if len(seqs) > 0 && last.Seq != seqs[len(seqs)-1]+1 {
			t.Fatalf("sequence %v then %d", seqs, last.Seq)
		}
		seqs = append(seqs, last.Seq)
	}
	if len(seqs) < 10 {
		t.Fatalf("mdp logs -f gave %d records: %s", len(seqs), stderr.String())
	}
	// From a tail of one, nine more in sequence: the stream carried records
	// written after it began, which no single answer could.
	var after []jobs.LogRecord
	p.must(200, "GET", fmt.Sprintf("/api/v1/jobs/ticker/logs?tail=0&since=%d", seqs[0]-1), "", &after)
	if len(after) < 10 || after[0].Seq != seqs[0] || after[9].Seq != last.Seq || after[9].Message != last.Message {
		t.Fatalf("the stream's records %v differ from the ring's", seqs)
	}
	p.must(200, "DELETE", "/api/v1/jobs/ticker?force=true", "", nil)
	for sc.Scan() {
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "ended the log stream: the job was deleted or the server is stopping") {
		t.Fatalf("mdp logs -f after delete: %v %s", err, stderr.String())
	}
	p.stop()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A status WebSocket client that never reads, against a real mdp serve
// pushing every 10ms: it is dropped, the drop is logged with its reason
// and counted in server_websocket_dropped_total, its connection is closed,
// and meanwhile a client that reads keeps getting every snapshot and the
// job keeps its pace.
func TestServeSlowClientDropped(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, "--status-interval", "10ms")
	const rate = 200
	p.must(201, "POST", "/api/v1/jobs", liveJob("busy", rate, ""), nil)
	waitFor(t, "the job running", 30*time.Second, func() bool { return p.status("busy").State == "running" })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := strings.Replace(p.base, "http", "ws", 1) + "/api/v1/jobs/busy/ws"
	// The slow client asks for the biggest messages there are, and never
	// reads: the socket buffers fill, then its queue.
	slow, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	good, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.CloseNow()
	good.SetReadLimit(1 << 20)
	var got atomic.Int64
	goodErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := good.Read(ctx); err != nil {
				goodErr <- err
				return
			}
			got.Add(1)
		}
	}()
	in0 := p.status("busy").EventsIn
	t0 := time.Now()
	metric := func() string {
		_, body := p.call("GET", "/metrics", "")
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, `server_websocket_dropped_total{reason="too_slow"}`) {
				return strings.TrimSpace(strings.TrimPrefix(l, `server_websocket_dropped_total{reason="too_slow"}`))
			}
		}
		return ""
	}
	waitFor(t, "the slow client dropped", 90*time.Second, func() bool { return metric() == "1" })
	if !strings.Contains(p.log(), `"msg":"status websocket: client dropped","reason":"too_slow"`) {
		t.Fatalf("no log of the drop with its reason:\n%s", p.log())
	}
	// The reading client was not dropped and kept getting snapshots after
	// the drop.
	n := got.Load()
	waitFor(t, "snapshots after the drop", 30*time.Second, func() bool { return got.Load() > n+10 })
	select {
	case err := <-goodErr:
		t.Fatalf("the reading client's connection ended: %v", err)
	default:
	}
	// The job kept its pace throughout: a paced source that waited on the
	// hub would fall behind its rate.
	st := p.status("busy")
	elapsed := time.Since(t0).Seconds()
	if st.State != "running" || float64(st.EventsIn-in0) < 0.5*rate*elapsed {
		t.Fatalf("job %s: %d events in %.1fs at %d/s", st.State, st.EventsIn-in0, elapsed, rate)
	}
	// The slow client's connection is closed: reading it now gives what
	// the buffers held, then the end.
	slow.SetReadLimit(1 << 20)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		if _, _, err := slow.Read(rctx); err != nil {
			if rctx.Err() != nil {
				t.Fatal("the slow client's connection was not closed")
			}
			break
		}
	}
	_, body := p.call("GET", "/metrics", "")
	if !strings.Contains(string(body), "server_websocket_clients 1\n") {
		t.Fatalf("clients gauge after the drop:\n%s", grepLines(string(body), "server_websocket"))
	}
	p.stop()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
