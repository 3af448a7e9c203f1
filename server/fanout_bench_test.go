package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/jobs"
)

func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Skipf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHubTick is one status fan-out tick in process: 20 running jobs'
// statuses built and encoded, 200 messages written to 10 WebSocket clients
// per job over loopback — and read by those clients, in the same process,
// so the figure is an upper bound. cpu-ms/tick is the process CPU
// (getrusage) per tick less the same interval without ticks; at one
// snapshot a second it is the fan-out's share of a core in ms per second.
//
//	go test -run '^$' -bench HubTick -benchtime 200x ./server
func BenchmarkHubTick(b *testing.B) {
	const jobsN, clientsPerJob = 20, 10
	ctx := context.Background()
	m, err := jobs.New(ctx, jobs.Options{State: filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	for i := range jobsN {
		job := fmt.Sprintf(`name: j%02d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT, NVDA], rate: 2000, seed: %d}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`, i, i)
		if _, err := m.Submit("j.yaml", []byte(job), "", true); err != nil {
			b.Fatal(err)
		}
	}
	h := New(Options{Manager: m, StatusInterval: time.Hour}) // ticks come from the benchmark
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Int64
	for i := range jobsN {
		for range clientsPerJob {
			c, _, err := websocket.Dial(cctx, strings.Replace(srv.URL, "http", "ws", 1)+fmt.Sprintf("/api/v1/jobs/j%02d/ws", i), nil)
			if err != nil {
				b.Fatal(err)
			}
			c.SetReadLimit(1 << 20)
			go func() {
				for {
					if _, _, err := c.Read(cctx); err != nil {
						return
					}
					got.Add(1)
				}
			}()
		}
	}
	const n = jobsN * clientsPerJob
	for got.Load() < n { // the first snapshots
		time.Sleep(time.Millisecond)
	}
	gap := 20 * time.Millisecond
	// The jobs' own CPU over the same number of gaps, without ticks.
	c0, t0 := rusageCPU(b), time.Now()
	for range b.N {
		time.Sleep(gap)
	}
	idle := rusageCPU(b) - c0
	idleWall := time.Since(t0)
	b.ResetTimer()
	c0, t0 = rusageCPU(b), time.Now()
	for i := range b.N {
		want := int64(n) * int64(i+2)
		h.hub.tick()
		for got.Load() < want {
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(gap)
	}
	busy := rusageCPU(b) - c0
	wall := time.Since(t0)
	b.StopTimer()
	// Scale the idle CPU to the busy interval's wall time.
	fanout := busy - time.Duration(float64(idle)*wall.Seconds()/idleWall.Seconds())
	b.ReportMetric(float64(fanout.Microseconds())/1000/float64(b.N), "cpu-ms/tick")
	b.ReportMetric(float64(idle.Microseconds())/1000/idleWall.Seconds()/10, "jobs-cpu%")
}
