package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// cpuSeconds is the CPU time (user + system) the process pid has used, as
// getrusage counts it, read from /proc/PID/stat.
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("process CPU time needs /proc: %v", err)
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime 14, stime 15.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkServeStatusFanout runs 20 jobs in a real `mdp serve` and
// measures (1) the server's CPU for status fan-out: process CPU over a
// window with 10 WebSocket clients per job at 1 snapshot/s, minus the
// window before it with no clients, in alternating rounds (the clients
// connect and go each round) so a drift of the machine's load does not
// read as fan-out; the median round is reported with the smallest and
// largest; (2) GET /api/v1/jobs/{name} latency while the jobs run at their
// pace (paced-*) and at full speed, against GET /healthz in the same run.
// Run it once:
//
//	go test -run '^$' -bench ServeStatusFanout -benchtime 1x ./server
//
// MDP_BENCH_WINDOW (default 5s) is one window, MDP_BENCH_ROUNDS (default
// 3) the number of rounds.
func BenchmarkServeStatusFanout(b *testing.B) {
	const jobsN, clientsPerJob = 20, 10
	window, rounds := 5*time.Second, 3
	if s := os.Getenv("MDP_BENCH_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	if s := os.Getenv("MDP_BENCH_ROUNDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			rounds = n
		}
	}
	dir := b.TempDir()
	p := serve(b, dir)
	pid := p.cmd.Process.Pid
	for i := range jobsN {
		job := fmt.Sprintf(`name: paced%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], rate: 2000, seed: %d}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, i, i)
		p.must(201, "POST", "/api/v1/jobs", job, nil)
	}
	time.Sleep(2 * time.Second)
	measure := func() float64 {
		c0, t0 := cpuSeconds(b, pid), time.Now()
		time.Sleep(window)
		return (cpuSeconds(b, pid) - c0) / time.Since(t0).Seconds()
	}
	var bases, withs, fanouts []float64
	// With MDP_BENCH_PERF=1 and perf installed, the with-clients windows
	// are also sampled with perf, and the share of the samples under the
	// fan-out's own code (the hub's tick, the clients' writers) times the
	// process CPU is the fan-out's CPU directly, whatever the jobs do.
	_, perfErr := exec.LookPath("perf")
	perfOn := os.Getenv("MDP_BENCH_PERF") == "1" && perfErr == nil
	var shares, attributed []float64
	var msgs atomic.Int64
	for range rounds {
		base := measure()
		ctx, cancel := context.WithCancel(context.Background())
		var conns []*websocket.Conn
		for i := range jobsN {
			for range clientsPerJob {
				c, _, err := websocket.Dial(ctx, strings.Replace(p.base, "http", "ws", 1)+fmt.Sprintf("/api/v1/jobs/paced%02d/ws", i), nil)
				if err != nil {
					b.Fatal(err)
				}
				c.SetReadLimit(1 << 20)
				conns = append(conns, c)
				go func() {
					for {
						if _, _, err := c.Read(ctx); err != nil {
							return
						}
						msgs.Add(1)
					}
				}()
			}
		}
		time.Sleep(time.Second)
		var with float64
		if perfOn && len(shares) < rounds {
			c0, t0 := cpuSeconds(b, pid), time.Now()
			shares = append(shares, perfShare(b, pid, window))
			with = (cpuSeconds(b, pid) - c0) / time.Since(t0).Seconds()
			attributed = append(attributed, shares[len(shares)-1]*with)
		} else {
			with = measure()
		}
		for _, c := range conns {
			_ = c.CloseNow()
		}
		cancel()
		time.Sleep(time.Second)
		bases, withs, fanouts = append(bases, base), append(withs, with), append(fanouts, with-base)
	}
	med := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2] * 100
	}
	b.ReportMetric(med(bases), "cpu%-no-clients")
	b.ReportMetric(med(withs), "cpu%-200-clients")
	b.ReportMetric(med(fanouts), "cpu%-fanout")
	b.ReportMetric(slices.Min(fanouts)*100, "cpu%-fanout-min")
	b.ReportMetric(slices.Max(fanouts)*100, "cpu%-fanout-max")
	b.ReportMetric(float64(msgs.Load()), "messages")
	if len(attributed) > 0 {
		b.ReportMetric(med(attributed), "cpu%-fanout-perf")
		b.ReportMetric(slices.Max(attributed)*100, "cpu%-fanout-perf-max")
	}

	// GET /jobs/{name} latency, each paired with a GET of /healthz, which
	// builds nothing: the same request through the same server and
	// scheduler, the reference the status figure is compared with.
	latency := func(prefix, unit string) { getLatency(b, p, prefix, jobsN, window, unit) }
	// While the 20 jobs run at their pace (the CPU not saturated by them).
	latency("paced", "paced-")
	// While 20 jobs run as fast as they can.
	for i := range jobsN {
		p.must(200, "POST", fmt.Sprintf("/api/v1/jobs/paced%02d/stop", i), "", nil)
		p.must(201, "POST", "/api/v1/jobs", fastJob(i), nil)
	}
	time.Sleep(time.Second)
	latency("fast", "")
	p.stop()
}

// fastJob is job fastNN: a synthetic source as fast as it can go, bars,
// a null sink.
func fastJob(i int) string {
	return fmt.Sprintf(`name: fast%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], seed: %d}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, i, i)
}

// getLatency measures GET /api/v1/jobs/{prefix}NN over HTTP for window,
// each paired with a GET of /healthz, which builds nothing: the same
// request through the same server and scheduler, the reference the status
// figure is compared with. It reports the p50, p99 and p99.9 of both, their
// names prefixed with unit, and the number of GETs (a 5 s window holds
// about 2000 pairs here: p99.9 is then the second largest).
func getLatency(b *testing.B, p *proc, prefix string, jobsN int, window time.Duration, unit string) {
	var lat, ref []time.Duration
	srv0, srvN0 := runDelay(b, p.cmd.Process.Pid)
	cl0, clN0 := runDelay(b, os.Getpid())
	deadline := time.Now().Add(window)
	for i := 0; time.Now().Before(deadline); i++ {
		t0 := time.Now()
		code, _ := p.call("GET", fmt.Sprintf("/api/v1/jobs/%s%02d", prefix, i%jobsN), "")
		lat = append(lat, time.Since(t0))
		if code != 200 {
			b.Fatalf("GET: %d", code)
		}
		time.Sleep(time.Millisecond)
		t0 = time.Now()
		if code, _ := p.call("GET", "/healthz", ""); code != 200 {
			b.Fatalf("GET /healthz: %d", code)
		}
		ref = append(ref, time.Since(t0))
		time.Sleep(time.Millisecond)
	}
	srv1, srvN1 := runDelay(b, p.cmd.Process.Pid)
	cl1, clN1 := runDelay(b, os.Getpid())
	slices.Sort(lat)
	slices.Sort(ref)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), unit+"get-p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), unit+"get-p99-ms")
	b.ReportMetric(ms(lat[len(lat)*999/1000]), unit+"get-p99.9-ms")
	b.ReportMetric(ms(ref[len(ref)/2]), unit+"healthz-p50-ms")
	b.ReportMetric(ms(ref[len(ref)*99/100]), unit+"healthz-p99-ms")
	b.ReportMetric(ms(ref[len(ref)*999/1000]), unit+"healthz-p99.9-ms")
	b.ReportMetric(float64(len(lat)), unit+"gets")
	// The kernel's side: how long the server's threads and this process's
	// (the client's) waited on a run queue, runnable but not running,
	// per request (GETs and /healthz), and per time they were switched
	// in. Time a request waits there is in its latency but is no work
	// of the server's.
	reqs := float64(len(lat) + len(ref))
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(us(srv1-srv0)/reqs, unit+"server-runq-us/req")
	b.ReportMetric(float64(srvN1-srvN0)/reqs, unit+"server-switchins/req")
	b.ReportMetric(us(cl1-cl0)/reqs, unit+"client-runq-us/req")
	b.ReportMetric(float64(clN1-clN0)/reqs, unit+"client-switchins/req")
}

// runDelay is the time the threads of process pid have spent waiting on a
// run queue (runnable, not running) and how many times they were switched
// in, summed over its live threads from /proc/PID/task/TID/schedstat
// (run time, run-queue wait in ns, time slices).
func runDelay(b *testing.B, pid int) (time.Duration, int64) {
	b.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		b.Skipf("run-queue wait needs /proc: %v", err)
	}
	var wait, switchins int64
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(data))
		if len(f) < 3 {
			b.Fatalf("%s/%s/schedstat: %q", dir, t.Name(), data)
		}
		w, err1 := strconv.ParseInt(f[1], 10, 64)
		n, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("%s/%s/schedstat: %q", dir, t.Name(), data)
		}
		wait, switchins = wait+w, switchins+n
	}
	return time.Duration(wait), switchins
}

// BenchmarkGetJobIsolation is GET /api/v1/jobs/{name} over HTTP while 20
// jobs run at full speed (fastJob: synthetic trades as fast as they go →
// 1 s bars → null). The server is a separate `mdp serve` process (the
// binary built by TestMain, on a free loopback port); the GET client is
// this benchmark's process, on the same machine. Seven servers, one after
// the other in the same run: the jobs in the server's process (inproc-*),
// as child processes (proc-*), as child processes at niceness 10 (nice-*),
// under SCHED_BATCH (batch-*) and under SCHED_IDLE (idle-*, --child-sched
// idle), each against GET /healthz interleaved with it, and under
// SCHED_IDLE again with the server's threads and this process's on CPU 0
// while the GETs run (idle-samecpu-: no request wake-up crosses CPUs;
// Linux only), and under SCHED_IDLE with the jobs held to CPU 1
// (idle-cpu1-, --child-cpus 1: a deployment choice that leaves CPU 0 to
// the API). The one-minute
// load average before each is reported too (load-*): the machine is
// shared. Each variant also reports how long the server's threads and the
// client's waited on a run queue per request (getLatency).
//
//	go test -run '^$' -bench GetJobIsolation -benchtime 1x ./server   # MDP_BENCH_WINDOW=5s MDP_BENCH_VARIANTS=idle
func BenchmarkGetJobIsolation(b *testing.B) {
	const jobsN = 20
	window := 5 * time.Second
	if s := os.Getenv("MDP_BENCH_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	// MDP_BENCH_VARIANTS (a comma-separated subset of inproc, proc, nice,
	// batch, idle, idle-samecpu, idle-cpu1) runs only those.
	only := os.Getenv("MDP_BENCH_VARIANTS")
	old := *isolation
	defer func() { *isolation = old }()
	for range b.N {
		for _, mode := range []struct {
			unit, isolation string
			args            []string
			sameCPU         bool
		}{
			{"inproc-", "inprocess", nil, false},
			{"proc-", "process", nil, false},
			{"nice-", "process", []string{"--child-nice", "10"}, false},
			{"batch-", "process", []string{"--child-sched", "batch"}, false},
			{"idle-", "process", []string{"--child-sched", "idle"}, false},
			// The same, with the server's threads and this process's (the
			// client's) on CPU 0 while the GETs run (the jobs keep both
			// CPUs): every wake-up of a request is then one on the CPU of
			// the thread that woke it, none a cross-CPU wake-up.
			{"idle-samecpu-", "process", []string{"--child-sched", "idle"}, true},
			// Children under SCHED_IDLE held to CPU 1 (--child-cpus):
			// CPU 0 stays free for the server and the client.
			{"idle-cpu1-", "process", []string{"--child-sched", "idle", "--child-cpus", "1"}, false},
		} {
			if only != "" && !slices.Contains(strings.Split(only, ","), strings.TrimSuffix(mode.unit, "-")) {
				continue
			}
			*isolation = mode.isolation
			p := serve(b, b.TempDir(), mode.args...)
			for i := range jobsN {
				p.must(201, "POST", "/api/v1/jobs", fastJob(i), nil)
			}
			time.Sleep(2 * time.Second)
			b.ReportMetric(loadAverage(b), mode.unit+"load")
			if mode.sameCPU {
				restoreServer := pinThreads(b, p.cmd.Process.Pid, 0)
				restoreClient := pinThreads(b, os.Getpid(), 0)
				getLatency(b, p, "fast", jobsN, window, mode.unit)
				restoreClient()
				restoreServer()
			} else {
				getLatency(b, p, "fast", jobsN, window, mode.unit)
			}
			p.stop()
		}
	}
}

// loadAverage is the machine's one-minute load average.
func loadAverage(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	var l float64
	if _, err := fmt.Sscanf(string(data), "%f", &l); err != nil {
		b.Fatal(err)
	}
	return l
}

// perfShare samples process pid with perf for d and returns the share of
// its samples under the status fan-out's own code: the hub's loop (tick,
// status, encoding) and the clients' writers (serveWS).
func perfShare(b *testing.B, pid int, d time.Duration) float64 {
	b.Helper()
	data := filepath.Join(b.TempDir(), "perf.data")
	rec := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", data, "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
	if out, err := rec.CombinedOutput(); err != nil {
		b.Fatalf("perf record: %v\n%s", err, out)
	}
	out, err := exec.Command("perf", "report", "-i", data, "--children", "--sort", "sym", "-q", "-g", "none").Output()
	if err != nil {
		b.Fatalf("perf report: %v", err)
	}
	var share float64
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		sym := f[len(f)-1]
		if sym == "github.com/mdpio/mdp/server.(*Handler).serveWS" || sym == "github.com/mdpio/mdp/server.(*hub).loop" {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
			share += v / 100
		}
	}
	return share
}
