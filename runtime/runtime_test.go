package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/runtime"
)

// job returns a dag job: src -> sink, with extra YAML appended at top level.
func job(name, srcParams, sinkParams, extra string) []byte {
	return []byte(fmt.Sprintf(`mode: dag
name: %s
dag:
  nodes:
    - id: src
      type: provider.test_runtime_src
      params: {%s}
    - id: store
      type: sink.test_runtime_sink
      params: {%s}
  edges:
    - [src, store]
%s`, name, srcParams, sinkParams, extra))
}

func newJob(t *testing.T, data []byte) *runtime.Unified {
	t.Helper()
	u, err := runtime.NewFromBytes(t.Name()+".yaml", data, runtime.Options{})
	if err != nil {
		t.Fatalf("NewFromBytes: %v", err)
	}
	return u
}

// eventually polls cond until it holds or 20s pass (a loaded machine is slow;
// a broken one fails the test, never hangs it).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitDone(t *testing.T, u *runtime.Unified) error {
	t.Helper()
	select {
	case <-u.Done():
		return u.Err()
	case <-time.After(30 * time.Second):
		t.Fatalf("job did not end; state %s", u.State())
		return nil
	}
}

func TestStateTransitionsAndGracefulStop(t *testing.T) {
	u := newJob(t, job("lifecycle", "count: 250, batch: 10, hold: true", "name: lifecycle", ""))
	if u.State() != runtime.StateCreated {
		t.Fatalf("new job state %s, want created", u.State())
	}
	if u.Name() != "lifecycle" || u.Mode() != "dag" {
		t.Fatalf("name %q mode %q", u.Name(), u.Mode())
	}
	if st := u.Status(); st.State != runtime.StateCreated || st.StartedAt != "" || len(st.Nodes) != 2 || st.Nodes[0].State != "created" {
		t.Fatalf("status before start: %+v", st)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u.State() != runtime.StateRunning {
		t.Fatalf("state after Start %s, want running", u.State())
	}
	sink := sinkNamed("lifecycle")
	eventually(t, "250 records at the sink", func() bool { r, _, _ := sink.snapshot(); return r == 250 })
	if err := u.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "the job is running; a job runs once") {
		t.Fatalf("second Start: %v", err)
	}
	u.Stop()
	if s := u.State(); s != runtime.StateStopping && s != runtime.StateStopped {
		t.Fatalf("state after Stop %s, want stopping or stopped", s)
	}
	if err := waitDone(t, u); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if u.State() != runtime.StateStopped {
		t.Fatalf("final state %s, want stopped", u.State())
	}
	if r, b, closed := sink.snapshot(); r != 250 || b != 25 || !closed {
		t.Fatalf("sink got %d records in %d batches, closed %v; want 250 in 25, closed", r, b, closed)
	}
	u.Stop() // no-op on a finished job
	if u.State() != runtime.StateStopped {
		t.Fatalf("Stop after the end changed state to %s", u.State())
	}
}

func TestRunFinishesFiniteJob(t *testing.T) {
	u := newJob(t, job("finite", "count: 1000, batch: 100", "name: finite", ""))
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := u.Status()
	if st.State != runtime.StateStopped || st.Job != "finite" || st.Mode != "dag" || st.StartedAt == "" || st.EndedAt == "" {
		t.Fatalf("status: %+v", st)
	}
	src, sink := st.Nodes[0], st.Nodes[1]
	if src.ID != "src" || src.Kind != "source" || src.EventsOut != 1000 || src.BatchesOut != 10 || src.State != "done" {
		t.Fatalf("source status: %+v", src)
	}
	if sink.ID != "store" || sink.EventsIn != 1000 || sink.BatchesIn != 10 || sink.State != "done" {
		t.Fatalf("sink status: %+v", sink)
	}
	if !src.WatermarkFinal || !sink.WatermarkFinal || sink.Watermark != "" {
		t.Fatalf("final watermarks: src %+v sink %+v", src, sink)
	}
	if len(st.Edges) != 1 || st.Edges[0].Name != "src -> store" || st.Edges[0].Policy != "block" || st.Edges[0].Capacity != engine.DefaultQueueCapacity {
		t.Fatalf("edges: %+v", st.Edges)
	}
	if len(st.Errors) != 0 {
		t.Fatalf("errors on a clean run: %v", st.Errors)
	}
	if h := u.Health(); h.Status != runtime.HealthOK {
		t.Fatalf("health after a clean run: %+v", h)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatalf("Run on a finished job returns its result, got %v", err)
	}
}

func TestRunCancelDrains(t *testing.T) {
	u := newJob(t, job("cancel", "count: 500, batch: 5, hold: true", "name: cancel", ""))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- u.Run(ctx) }()
	sink := sinkNamed("cancel")
	eventually(t, "500 records at the sink", func() bool { r, _, _ := sink.snapshot(); return r == 500 })
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if r, _, closed := sink.snapshot(); r != 500 || !closed || u.State() != runtime.StateStopped {
		t.Fatalf("after cancel: %d records, closed %v, state %s", r, closed, u.State())
	}
}

func TestStatusWatermarkRFC3339AndJSON(t *testing.T) {
	u := newJob(t, job("wm", "count: 20, batch: 20, hold: true", "name: wm", ""))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { u.Stop(); _ = waitDone(t, u) }()
	want := md.FormatTime(baseTS + 19*1e6)
	eventually(t, "the sink watermark", func() bool { return u.Status().Nodes[1].Watermark == want })
	st := u.Status()
	if _, err := time.Parse(time.RFC3339Nano, st.Nodes[1].Watermark); err != nil {
		t.Fatalf("watermark %q is not RFC 3339: %v", st.Nodes[1].Watermark, err)
	}
	if st.Nodes[1].WatermarkLagSeconds <= 0 {
		t.Fatalf("watermark lag %v, want > 0 (the trades are from 2023)", st.Nodes[1].WatermarkLagSeconds)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	nodes := back["nodes"].([]any)
	if back["job"] != "wm" || back["mode"] != "dag" || back["state"] != "running" || nodes[1].(map[string]any)["watermark"] != want {
		t.Fatalf("status JSON: %s", b)
	}
	fb := back["feedback"].(map[string]any)
	if fb["enabled"] != true || fb["level"] != "ok" || fb["scale"] != 1.0 {
		t.Fatalf("feedback in status JSON: %v", fb)
	}
}

func TestNodeFailureFailsJobWithRedactedError(t *testing.T) {
	var logs bytes.Buffer
	data := job("fails", "count: 100, batch: 10",
		`name: fails, fail_on: 3, password: hunter2secret, dsn: "postgres://app:s3cr3tpw@db:5432/x"`, "")
	u, err := runtime.NewFromBytes("fails.yaml", data, runtime.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = u.Run(context.Background())
	var ne *engine.NodeError
	if !errors.As(err, &ne) || ne.Node != "store" {
		t.Fatalf("Run error %v, want a NodeError for store", err)
	}
	want := `node "store": write to postgres://app:xxxxx@db:5432/x failed: password xxxxx rejected`
	if err.Error() != want {
		t.Fatalf("error\n got %q\nwant %q", err.Error(), want)
	}
	if u.State() != runtime.StateFailed {
		t.Fatalf("state %s, want failed", u.State())
	}
	st := u.Status()
	if len(st.Errors) != 1 || st.Errors[0] != want {
		t.Fatalf("status errors %q", st.Errors)
	}
	if st.Nodes[1].State != "failed" || st.Nodes[1].LastError != "write to postgres://app:xxxxx@db:5432/x failed: password xxxxx rejected" {
		t.Fatalf("sink status %+v", st.Nodes[1])
	}
	h := u.Health()
	if h.Status != runtime.HealthError || h.Components[0].Kind != "job" || h.Components[0].Status != runtime.HealthError {
		t.Fatalf("health %+v", h)
	}
	if c := h.Components[2]; c.Name != "store" || c.Status != runtime.HealthError || !strings.HasPrefix(c.Detail, "failed: write to postgres://app:xxxxx@db") {
		t.Fatalf("sink health %+v", c)
	}
	for _, secret := range []string{"hunter2secret", "s3cr3tpw"} {
		b, _ := json.Marshal(st)
		hb, _ := json.Marshal(h)
		if strings.Contains(logs.String(), secret) || strings.Contains(string(b), secret) || strings.Contains(string(hb), secret) {
			t.Fatalf("secret %q leaked:\nlogs: %s\nstatus: %s\nhealth: %s", secret, logs.String(), b, hb)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"job failed"`) {
		t.Fatalf("no job failed log: %s", logs.String())
	}
}

func TestOpenFailureFailsStart(t *testing.T) {
	u := newJob(t, job("openfail", "count: 10", `name: openfail, open_error: "connection refused", dsn: "postgres://u:pw1234@h/db"`, ""))
	err := u.Start(context.Background())
	if err == nil || err.Error() != `start job "openfail": node "store": open: connection refused (dsn postgres://u:xxxxx@h/db)` {
		t.Fatalf("Start error %v", err)
	}
	if u.State() != runtime.StateFailed {
		t.Fatalf("state %s, want failed", u.State())
	}
	if werr := waitDone(t, u); werr == nil || werr.Error() != err.Error() {
		t.Fatalf("Wait %v, want %v", werr, err)
	}
}

func TestShutdownTimeoutAborts(t *testing.T) {
	u := newJob(t, job("timeout", "count: 10, hold: true", "name: timeout, close_wait: true", "shutdown_timeout: 500ms\n"))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "10 records", func() bool { r, _, _ := sinkNamed("timeout").snapshot(); return r == 10 })
	start := time.Now()
	u.Stop()
	if u.State() != runtime.StateStopping {
		t.Fatalf("state after Stop %s, want stopping (the sink's close blocks)", u.State())
	}
	err := waitDone(t, u)
	if !errors.Is(err, engine.ErrAborted) {
		t.Fatalf("Wait %v, want ErrAborted", err)
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("aborted after %v, before the 500ms shutdown timeout", waited)
	}
	if !u.TimedOut() || u.State() != runtime.StateFailed {
		t.Fatalf("timed out %v, state %s", u.TimedOut(), u.State())
	}
}

func TestAbort(t *testing.T) {
	u := newJob(t, job("abort", "count: 10, hold: true", "name: abort, close_wait: true", ""))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	u.Stop()
	u.Abort()
	if err := waitDone(t, u); !errors.Is(err, engine.ErrAborted) {
		t.Fatalf("Wait %v, want ErrAborted", err)
	}
	if u.TimedOut() {
		t.Fatal("TimedOut after an explicit Abort")
	}
}

func TestStopBeforeStart(t *testing.T) {
	u := newJob(t, job("never", "count: 1", "name: never", ""))
	u.Stop()
	if u.State() != runtime.StateStopped {
		t.Fatalf("state %s", u.State())
	}
	if err := waitDone(t, u); err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "the job is stopped") {
		t.Fatalf("Start after Stop: %v", err)
	}
}

func TestHealthDegradedOnDrops(t *testing.T) {
	u := newJob(t, job("drops", "count: 30, batch: 10, hold: true", "name: drops, drop: true", ""))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { u.Stop(); _ = waitDone(t, u) }()
	eventually(t, "30 records", func() bool { r, _, _ := sinkNamed("drops").snapshot(); return r == 30 })
	h := u.Health()
	if h.Status != runtime.HealthDegraded {
		t.Fatalf("health %+v, want DEGRADED", h)
	}
	c := h.Components[2]
	if c.Name != "store" || c.Kind != "sink" || c.Status != runtime.HealthDegraded || c.Detail != "dropped 30 records (test_drop: 30)" {
		t.Fatalf("sink health %+v", c)
	}
	if h.Components[1].Status != runtime.HealthOK || h.Components[0].Detail != "running" {
		t.Fatalf("other components %+v", h.Components)
	}
}

func TestHealthDegradedOnSinkQueueNearFull(t *testing.T) {
	data := []byte(`mode: dag
name: full
dag:
  nodes:
    - {id: src, type: provider.test_runtime_src, params: {count: 100, batch: 1}}
    - {id: store, type: sink.test_runtime_sink, params: {name: full, block: true}, chain: false}
  edges:
    - {from: src, to: store, capacity: 8}
`) // chain: false: a chained sink has no input queue to fill
	u := newJob(t, data)
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a full sink queue", func() bool { return u.Status().Nodes[1].QueueDepth == 8 })
	h := u.Health()
	if h.Status != runtime.HealthDegraded || h.Components[2].Detail != "input queue near full: 8 of 8 batches" {
		t.Fatalf("health %+v", h)
	}
	u.Abort()
	if err := waitDone(t, u); !errors.Is(err, engine.ErrAborted) {
		t.Fatalf("Wait %v", err)
	}
}

func TestMetricsEndpointDuringRun(t *testing.T) {
	liveConnected.Store(false)
	u := newJob(t, job("scraped", "count: 40, batch: 10, hold: true, live: true", "name: scraped, close_wait: true",
		"metrics: {enable: true, listen: \"127.0.0.1:0\"}\nshutdown_timeout: 30s\n"))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := u.MetricsAddr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("metrics addr %q", addr)
	}
	eventually(t, "40 records", func() bool { r, _, _ := sinkNamed("scraped").snapshot(); return r == 40 })
	body, code := get(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`runtime_up{mode="dag"} 1`,
		`runtime_jobs_running{mode="dag"} 1`,
		`mdp_job_state{job="scraped",mode="dag",state="running"} 1`,
		`mdp_node_events_out_total{job="scraped",node="src",type="provider.test_runtime_src"} 40`,
		`mdp_node_events_in_total{job="scraped",node="store",type="sink.test_runtime_sink"} 40`,
		`mdp_node_batches_in_total{job="scraped",node="store",type="sink.test_runtime_sink"} 4`,
		`mdp_edge_queue_capacity{edge="src -> store",from="src",job="scraped",policy="block",to="store"} 64`,
		`pipeline_rate_scale_factor{job="scraped",provider="test_runtime_src"} 1`,
		`pipeline_backpressure_state{job="scraped",provider="test_runtime_src"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("/metrics:\n%s", body)
	}
	if body, code := get(t, "http://"+addr+"/healthz"); code != 200 || !strings.Contains(body, `"alive"`) {
		t.Fatalf("/healthz %d %s", code, body)
	}
	// A live source that has not connected yet: running, but not ready.
	body, code = get(t, "http://"+addr+"/readyz")
	if code != 503 {
		t.Fatalf("/readyz before the live source connected: %d %s", code, body)
	}
	liveConnected.Store(true)
	body, code = get(t, "http://"+addr+"/readyz")
	var h runtime.Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.Status != runtime.HealthOK || h.State != runtime.StateRunning {
		t.Fatalf("/readyz while running: %d %s (%v)", code, body, err)
	}
	// Stopping (the sink's close blocks): alive but not ready.
	u.Stop()
	body, code = get(t, "http://"+addr+"/readyz")
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 503 || h.State != runtime.StateStopping {
		t.Fatalf("/readyz while stopping: %d %s", code, body)
	}
	if _, code := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz while stopping %d", code)
	}
	u.Abort()
	if err := waitDone(t, u); !errors.Is(err, engine.ErrAborted) {
		t.Fatal(err)
	}
	if u.MetricsAddr() != "" {
		t.Fatal("metrics server still set after the job ended")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("metrics server still answers after the job ended")
	}
}

func TestMetricsPortInUseFailsStart(t *testing.T) {
	a := newJob(t, job("port_a", "count: 1, hold: true", "name: port_a", "metrics: {enable: true, listen: \"127.0.0.1:0\"}\n"))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { a.Stop(); _ = waitDone(t, a) }()
	b := newJob(t, job("port_b", "count: 1", "name: port_b", fmt.Sprintf("metrics: {enable: true, listen: %q}\n", a.MetricsAddr())))
	err := b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `job "port_b": metrics server: listen tcp `+a.MetricsAddr()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start with a busy port: %v", err)
	}
	if b.State() != runtime.StateFailed {
		t.Fatalf("state %s", b.State())
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func TestNewFromFileAndErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, job("", "count: 5", "name: fromfile", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := runtime.NewFromFile(good, runtime.Options{LoadOptions: config.LoadOptions{Job: "renamed"}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Name() != "renamed" {
		t.Fatalf("name %q, want the --job override", u.Name())
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := sinkNamed("fromfile").snapshot(); r != 5 {
		t.Fatalf("got %d records", r)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, job("bad", "count: -1, bogus: 1", "name: x", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = runtime.NewFromFile(bad, runtime.Options{})
	var ce config.Errors
	if !errors.As(err, &ce) || len(ce) != 2 {
		t.Fatalf("want 2 config errors, got %v", err)
	}
}

func TestNewFromEnv(t *testing.T) {
	env := map[string]string{
		config.EnvMode:    "dag",
		config.EnvDAGJSON: `{"nodes":[{"id":"src","type":"provider.test_runtime_src","params":{"count":7}},{"id":"out","type":"sink.test_runtime_sink","params":{"name":"fromenv"}}],"edges":[["src","out"]]}`,
	}
	u, err := runtime.NewFromEnv(runtime.Options{LoadOptions: config.LoadOptions{
		Job: "envjob",
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}})
	if err != nil {
		t.Fatal(err)
	}
	if u.Mode() != "dag" || u.Name() != "envjob" {
		t.Fatalf("mode %q name %q", u.Mode(), u.Name())
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := sinkNamed("fromenv").snapshot(); r != 7 {
		t.Fatalf("got %d records", r)
	}
}

func TestClassicMode(t *testing.T) {
	data := []byte(`mode: classic
classic:
  spec:
    name: classic-job
    source: {type: provider.test_runtime_src, params: {count: 12, batch: 4}}
    sink: {type: sink.test_runtime_sink, params: {name: classic}}
`)
	u := newJob(t, data)
	if u.Mode() != "classic" {
		t.Fatalf("mode %q", u.Mode())
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, b, _ := sinkNamed("classic").snapshot(); r != 12 || b != 3 {
		t.Fatalf("got %d records in %d batches", r, b)
	}
	if st := u.Status(); st.Mode != "classic" || st.State != runtime.StateStopped {
		t.Fatalf("status %+v", st)
	}
}

func TestHealthDegradedOnHardFeedback(t *testing.T) {
	u := newJob(t, job("fbhard", "count: 1, hold: true", "name: fbhard", ""))
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { u.Stop(); _ = waitDone(t, u) }()
	u.Feedback().Report("store", engine.LevelHard)
	h := u.Health()
	last := h.Components[len(h.Components)-1]
	if h.Status != runtime.HealthDegraded || last.Kind != "feedback" || last.Status != runtime.HealthDegraded ||
		last.Detail != "level hard: a store cannot keep up; sources run at scale 0" {
		t.Fatalf("health %+v", h)
	}
	if st := u.Status(); st.Feedback.Level != "hard" || st.Feedback.Scale != 0 || st.Feedback.Events["hard"] != 1 {
		t.Fatalf("feedback status %+v", st.Feedback)
	}
	u.Feedback().Report("store", engine.LevelSoft)
	if h := u.Health(); h.Status != runtime.HealthOK || h.Components[len(h.Components)-1].Detail != "level soft" {
		t.Fatalf("health at soft %+v", h)
	}
}
