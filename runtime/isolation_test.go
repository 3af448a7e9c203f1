package runtime_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/runtime"
)

// TestTwoJobsInOneProcess runs two jobs side by side in one process, as a
// job server does: one shared metrics collector served on one listener
// (the jobs start none of their own), each job's series under its own job
// label (the engine's and the ones its components registered through their
// node contexts), each job's logs to its own logger carrying job=NAME, and
// each job's options (progress mode) seen by its own nodes only.
func TestTwoJobsInOneProcess(t *testing.T) {
	shared := metrics.NewCollector("server")
	srv, err := metrics.Serve(metrics.ServerOptions{Listen: "127.0.0.1:0", Gatherer: metrics.NewRegistry(shared)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	type run struct {
		name, sink string
		count      int
		progress   string
		logs       *enginetest.SyncBuffer
		u          *runtime.Unified
	}
	runs := []*run{{name: "alpha", sink: "iso-alpha", count: 300, progress: "always"}, {name: "beta", sink: "iso-beta", count: 500, progress: "never"}}
	for _, r := range runs {
		r.logs = &enginetest.SyncBuffer{}
		data := job(r.name, "count: "+strconv.Itoa(r.count)+", batch: 10, hold: true", "name: "+r.sink,
			"metrics: {enable: true, listen: \"127.0.0.1:1\"}\n") // ignored: the shared collector is served instead
		u, err := runtime.NewFromBytes(r.name+".yaml", data, runtime.Options{
			Logger:   slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Progress: engine.ProgressOptions{Mode: r.progress},
			Metrics:  shared,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.u = u
		if err := u.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if u.MetricsAddr() != "" {
			t.Errorf("%s started its own metrics listener at %s", r.name, u.MetricsAddr())
		}
	}
	for _, r := range runs {
		eventually(t, r.name+" records", func() bool { n, _, _ := sinkNamed(r.sink).snapshot(); return n == r.count })
	}

	body, code := get(t, "http://"+srv.Addr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{
		`runtime_up{mode="server"} 1`,
		`runtime_jobs_running{mode="dag"} 2`,
		`mdp_job_state{job="alpha",mode="dag",state="running"} 1`,
		`mdp_job_state{job="beta",mode="dag",state="running"} 1`,
		`mdp_node_events_in_total{job="alpha",node="store",type="sink.test_runtime_sink"} 300`,
		`mdp_node_events_in_total{job="beta",node="store",type="sink.test_runtime_sink"} 500`,
		`mdp_test_sink_batches_total{job="alpha",node="store",type="sink.test_runtime_sink"} 30`,
		`mdp_test_sink_batches_total{job="beta",node="store",type="sink.test_runtime_sink"} 50`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}

	for _, r := range runs {
		st := sinkNamed(r.sink)
		st.mu.Lock()
		got := st.progress
		st.mu.Unlock()
		if got != r.progress {
			t.Errorf("%s: the sink saw progress mode %q, want %q", r.name, got, r.progress)
		}
	}

	runs[0].u.Stop()
	if err := waitDone(t, runs[0].u); err != nil {
		t.Fatal(err)
	}
	body, _ = get(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{
		`runtime_jobs_running{mode="dag"} 1`,
		`mdp_job_state{job="alpha",mode="dag",state="stopped"} 1`,
		`mdp_job_state{job="beta",mode="dag",state="running"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("after stopping alpha, /metrics lacks %s", want)
		}
	}
	runs[1].u.Stop()
	if err := waitDone(t, runs[1].u); err != nil {
		t.Fatal(err)
	}

	for _, r := range runs {
		logs := r.logs.String()
		if !strings.Contains(logs, "job="+r.name) || !strings.Contains(logs, "job finished") && !strings.Contains(logs, "job running") {
			t.Errorf("%s logs:\n%s", r.name, logs)
		}
		for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
			if !strings.Contains(line+" ", " job="+r.name+" ") {
				t.Errorf("%s's log has a line without job=%s: %s", r.name, r.name, line)
			}
		}
	}
}

// TestRuntimeTakesARegistry: a job whose components live in a separate
// registry loads and runs with runtime.Options' registry, and does not load
// with the default one.
func TestRuntimeTakesARegistry(t *testing.T) {
	reg := component.NewRegistry()
	reg.MustRegister(component.Spec{
		Type: "provider.test_reg_src", Kind: engine.KindSource, Summary: "trades of one registry", Produces: md.KindTrade,
		NewSource: func(p *component.Params, _ int) (engine.Source, error) { return &testSource{count: 20, batch: 5}, nil },
	})
	reg.MustRegister(component.Spec{
		Type: "sink.test_reg_sink", Kind: engine.KindSink, Summary: "sink of one registry", Accepts: md.KindAny,
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &testSink{st: freshSink("reg-sink")}, nil
		},
	})
	data := []byte("dag:\n  nodes:\n    - {id: src, type: provider.test_reg_src}\n    - {id: out, type: sink.test_reg_sink}\n  edges: [[src, out]]\n")
	if _, err := runtime.NewFromBytes("job.yaml", data, runtime.Options{}); err == nil || !strings.Contains(err.Error(), `unknown component type "provider.test_reg_src"`) {
		t.Fatalf("default registry: %v", err)
	}
	u, err := runtime.NewFromBytes("job.yaml", data, runtime.Options{LoadOptions: config.LoadOptions{Registry: reg}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _, closed := sinkNamed("reg-sink").snapshot(); n != 20 || !closed {
		t.Fatalf("sink saw %d records, closed %v", n, closed)
	}
}
