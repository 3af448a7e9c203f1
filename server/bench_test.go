package server_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
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
// measures (1) the server's CPU for status fan-out: process CPU over an
// interval with 10 WebSocket clients per job at 1 snapshot/s, minus the
// same interval with no clients; (2) GET /api/v1/jobs/{name} latency
// while the jobs run at full speed. Run it once:
//
//	go test -run '^$' -bench ServeStatusFanout -benchtime 1x ./server
func BenchmarkServeStatusFanout(b *testing.B) {
	const jobsN, clientsPerJob = 20, 10
	window := 10 * time.Second
	if s := os.Getenv("MDP_BENCH_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
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
	base := measure()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
				}
			}()
		}
	}
	time.Sleep(2 * time.Second)
	with := measure()
	for _, c := range conns {
		_ = c.CloseNow()
	}
	fanout := (with - base) * 100
	b.ReportMetric(base*100, "cpu%-no-clients")
	b.ReportMetric(with*100, "cpu%-200-clients")
	b.ReportMetric(fanout, "cpu%-fanout")

	// Latency of GET /jobs/{name} while 20 jobs run as fast as they can.
	for i := range jobsN {
		p.must(200, "POST", fmt.Sprintf("/api/v1/jobs/paced%02d/stop", i), "", nil)
		job := fmt.Sprintf(`name: fast%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], seed: %d}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, i, i)
		p.must(201, "POST", "/api/v1/jobs", job, nil)
	}
	time.Sleep(time.Second)
	// Each GET of a job's status is paired with a GET of /healthz, which
	// builds nothing: the same request through the same server and
	// scheduler, the reference the status figure is compared with.
	var lat, ref []time.Duration
	deadline := time.Now().Add(window)
	for i := 0; time.Now().Before(deadline); i++ {
		t0 := time.Now()
		code, _ := p.call("GET", fmt.Sprintf("/api/v1/jobs/fast%02d", i%jobsN), "")
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
	slices.Sort(lat)
	slices.Sort(ref)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "get-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "get-p99-ms")
	b.ReportMetric(float64(ref[len(ref)/2].Microseconds())/1000, "healthz-p50-ms")
	b.ReportMetric(float64(ref[len(ref)*99/100].Microseconds())/1000, "healthz-p99-ms")
	b.ReportMetric(float64(len(lat)), "gets")
	p.stop()
}
