package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/retry"
	"github.com/mdpio/mdp/runtime"
)

func job(name string, extra string) []byte {
	return []byte(fmt.Sprintf(`name: %s
%s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], rate: 500}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`, name, extra))
}

func scrape(t *testing.T, m *jobs.Manager) string {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Two DAG jobs in one manager: one registry, runtime_jobs_running counts
// both, logs carry job=NAME, the registry survives the manager.
func TestManagerTwoJobs(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state.db")
	var logs syncBuf
	var prepared []string
	var mu sync.Mutex
	opts := jobs.Options{
		State: state, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Prepare: func(doc *config.Document, o *runtime.Options, restart bool) {
			mu.Lock()
			prepared = append(prepared, fmt.Sprintf("%s:%v", doc.Name, restart))
			mu.Unlock()
		},
	}
	m, err := jobs.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := m.Submit(n+".yaml", job(n, ""), "", true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Submit("a.yaml", job("a", ""), "", true); !errors.Is(err, jobs.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if out := scrape(t, m); !strings.Contains(out, `runtime_jobs_running{mode="dag"} 2`) || !strings.Contains(out, `runtime_up{mode="server"} 1`) {
		t.Fatalf("metrics:\n%s", out)
	}
	st, err := m.Stop(ctx, "a")
	if err != nil || st.State != "stopped" {
		t.Fatalf("stop: %+v %v", st, err)
	}
	if out := scrape(t, m); !strings.Contains(out, `runtime_jobs_running{mode="dag"} 1`) {
		t.Fatalf("metrics after a stop:\n%s", out)
	}
	for _, n := range []string{"a", "b"} {
		if !strings.Contains(logs.String(), `"msg":"job running","job":"`+n+`"`) {
			t.Fatalf("no job=%s in the logs:\n%s", n, logs.String())
		}
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A new manager on the same registry: b was running (stopped by Close)
	// and starts again; a was stopped through the API and stays so.
	m, err = jobs.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	a, _ := m.Status("a", false)
	b, _ := m.Status("b", false)
	if a.State != "stopped" || a.Desired != "stopped" || b.State != "running" || b.Restarts != 0 {
		t.Fatalf("after reopening: a %+v\nb %+v", a, b)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(prepared, " ") != "a:false b:false b:false" {
		t.Fatalf("prepare calls: %v", prepared)
	}
}

// A job failing at start under on-failure is restarted with a backoff that
// doubles: the waits stay within the full-jitter windows.
func TestManagerBackoff(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	var starts []time.Time
	m, err := jobs.New(ctx, jobs.Options{
		State:   filepath.Join(dir, "state.db"),
		Backoff: retry.Backoff{Base: 40 * time.Millisecond, Max: 160 * time.Millisecond, Rand: func() float64 { return 0.999 }},
		Prepare: func(*config.Document, *runtime.Options, bool) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	bad := []byte(`name: bad
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 1}}
    - {id: store, type: sink.sqlite, params: {path: ` + filepath.Join(dir, "state.db", "x.db") + `, retry_max_attempts: 1}}
  edges: [[src, store]]
`)
	if _, err := m.Submit("bad.yaml", bad, "", true); err == nil {
		t.Fatal("the start did not fail")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := m.Status("bad", false)
		if st.Restarts >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarts: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := m.Stop(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Waits before restarts 1..4: ~40, 80, 160, 160 ms (jitter pinned near
	// the top of each window).
	want := []time.Duration{40, 80, 160, 160}
	for i, w := range want {
		got := starts[i+1].Sub(starts[i])
		if got < w*time.Millisecond*9/10 || got > w*time.Millisecond+500*time.Millisecond {
			t.Fatalf("wait before restart %d: %v, want about %dms (all: %v)", i+1, got, w, starts)
		}
	}
}

// A job with checkpoints is suspended by a stop (an unbounded source) and
// its next start continues from the final checkpoint of the last run.
func TestManagerStartResumesFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, err := jobs.New(ctx, jobs.Options{State: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	ck := fmt.Sprintf("checkpoint: {interval: 50ms, store: %s}", filepath.Join(dir, "ck"))
	if _, err := m.Submit("c.yaml", job("c", ck), "", true); err != nil {
		t.Fatal(err)
	}
	checkpoint := func() *runtime.Status {
		st, err := m.Status("c", true)
		if err != nil {
			t.Fatal(err)
		}
		if st.Runtime == nil || st.Runtime.Checkpoint == nil {
			t.Fatalf("no checkpoint status: %+v", st)
		}
		return st.Runtime
	}
	deadline := time.Now().Add(20 * time.Second)
	for checkpoint().Checkpoint.Completed < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint completed: %+v", checkpoint().Checkpoint)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, err := m.Stop(ctx, "c"); err != nil || st.State != "stopped" {
		t.Fatalf("stop: %+v %v", st, err)
	}
	first := checkpoint().Checkpoint
	if !first.Suspended || first.Last == 0 || first.RestoredFrom != 0 {
		t.Fatalf("after the stop: %+v, want suspended at a final checkpoint", first)
	}
	if _, err := m.Start("c"); err != nil {
		t.Fatal(err)
	}
	if got := checkpoint().Checkpoint; got.RestoredFrom != first.Last {
		t.Fatalf("the second run restored from %d, want the final checkpoint %d", got.RestoredFrom, first.Last)
	}
}
