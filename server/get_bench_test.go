package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/jobs"
)

// BenchmarkGetJob is the handler's own time for GET /api/v1/jobs/{name}
// (status with per-node detail, JSON-encoded) while 20 jobs run in the
// same process, without the network and the HTTP server around it. It
// reports the p50 and p99 of the calls, and of GET /healthz (which builds
// nothing) interleaved with them as the same-run reference: on a shared
// machine both tails are the scheduler's, and the ratio is what the
// status assembly adds. BenchmarkGetJobIsolation (bench_test.go) is the
// same request over HTTP with the jobs at full speed, in process and as
// child processes.
//
//	go test -run '^$' -bench 'GetJob$' -benchtime 3000x ./server
func BenchmarkGetJob(b *testing.B) {
	ctx := context.Background()
	m, err := jobs.New(ctx, jobs.Options{State: filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	for i := range 20 {
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
	h := New(Options{Manager: m, Gatherer: m.Gatherer()})
	defer h.Close()
	lat := make([]time.Duration, 0, b.N)
	ref := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		t0 := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/api/v1/jobs/j%02d", i%20), nil))
		lat = append(lat, time.Since(t0))
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		t0 = time.Now()
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		ref = append(ref, time.Since(t0))
		if rec.Code != 200 {
			b.Fatalf("healthz %d %s", rec.Code, rec.Body)
		}
		i++
	}
	slices.Sort(lat)
	slices.Sort(ref)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(ref[len(ref)/2]), "healthz-p50-ms")
	b.ReportMetric(ms(ref[len(ref)*99/100]), "healthz-p99-ms")
}
