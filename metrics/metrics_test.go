package metrics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// A real engine job: a source of n trades, an operator that drops every
// other batch (counted), a sink. The collector reads its status.

type src struct{ n, batch int }

func (s *src) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "AAA")
	for i := 0; i < s.n; {
		b := out.NewBatch(md.KindTrade)
		for k := 0; k < s.batch && i < s.n; k++ {
			b.Trades = append(b.Trades, md.Trade{TS: int64(1_700_000_000e9) + int64(i), Price: 1, Size: 1, Sym: sym})
			i++
		}
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

type halfDrop struct {
	nc *engine.NodeContext
	i  int
}

func (h *halfDrop) Open(ctx context.Context, nc *engine.NodeContext) error { h.nc = nc; return nil }

func (h *halfDrop) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	h.i++
	if h.i%2 == 0 {
		h.nc.Stats.Drop("odd", int64(b.Len()))
		h.nc.Stats.Error("skipped", "batch skipped")
		return nil
	}
	b.Retain(1)
	return out.Emit(b)
}

type discard struct{}

func (discard) Process(ctx context.Context, b *md.Batch, out *engine.Output) error { return nil }

type testJob struct {
	name, mode, state string
	job               *engine.Job
	fb                *engine.Feedback
}

func (j *testJob) MetricsSnapshot() Snapshot {
	st := j.job.Status()
	return Snapshot{Job: j.name, Mode: j.mode, State: j.state, Nodes: st.Nodes, Edges: st.Edges, Feedback: j.fb}
}

func runJob(t *testing.T, name string) *testJob {
	t.Helper()
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.synthetic", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return &src{n: 1000, batch: 100}, nil }},
			{ID: "half", Type: "operator.half", Kind: engine.KindOperator, Accepts: md.KindAny, Ports: map[string]md.Kind{engine.PortMain: engine.SameAsInput},
				NewProcessor: func(int) (engine.Processor, error) { return &halfDrop{}, nil }},
			{ID: "out", Type: "sink.discard", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return discard{}, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "half", Capacity: 16}, {From: "half", To: "out", Policy: engine.DropNewest}},
	}
	fb := engine.NewFeedback(engine.DefaultFeedback())
	j, err := engine.New(g, engine.Options{Job: name, Feedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &testJob{name: name, mode: "dag", state: "stopped", job: j, fb: fb}
}

func scrape(t *testing.T, url string) (string, int, http.Header) {
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
	return string(b), resp.StatusCode, resp.Header
}

func serve(t *testing.T, c *Collector, ready func() (bool, any)) *Server {
	t.Helper()
	s, err := Serve(ServerOptions{Listen: "127.0.0.1:0", Gatherer: NewRegistry(c), Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestCollectorSeries(t *testing.T) {
	j := runJob(t, "j1")
	j.fb.Report("out", engine.LevelSoft)
	j.fb.Report("out", engine.LevelSoft)
	j.fb.Report("out", engine.LevelOK)
	c := NewCollector("dag", j)
	s := serve(t, c, nil)
	body, code, hdr := scrape(t, "http://"+s.Addr()+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`runtime_up{mode="dag"} 1`,
		`runtime_jobs_running{mode="dag"} 0`,
		`runtime_jobs_running{mode="classic"} 0`,
		`mdp_job_state{job="j1",mode="dag",state="stopped"} 1`,
		`mdp_node_events_out_total{job="j1",node="src",type="provider.synthetic"} 1000`,
		`mdp_node_batches_out_total{job="j1",node="src",type="provider.synthetic"} 10`,
		`mdp_node_events_in_total{job="j1",node="half",type="operator.half"} 1000`,
		`mdp_node_events_out_total{job="j1",node="half",type="operator.half"} 500`,
		`mdp_node_dropped_total{job="j1",node="half",reason="odd",type="operator.half"} 500`,
		`mdp_node_errors_total{job="j1",node="half",reason="skipped",type="operator.half"} 5`,
		`mdp_node_events_in_total{job="j1",node="out",type="sink.discard"} 500`,
		`mdp_node_batches_in_total{job="j1",node="out",type="sink.discard"} 5`,
		`mdp_node_queue_depth{job="j1",node="out",type="sink.discard"} 0`,
		`mdp_node_queue_capacity{job="j1",node="half",type="operator.half"} 16`,
		`mdp_node_queue_capacity{job="j1",node="out",type="sink.discard"} 64`,
		`mdp_node_instances{job="j1",node="half",type="operator.half"} 1`,
		`mdp_node_failed{job="j1",node="out",type="sink.discard"} 0`,
		`mdp_edge_queue_capacity{edge="src -> half",from="src",job="j1",policy="block",to="half"} 16`,
		`mdp_edge_queue_depth{edge="half -> out",from="half",job="j1",policy="drop_newest",to="out"} 0`,
		`mdp_edge_dropped_total{edge="half -> out",from="half",job="j1",policy="drop_newest",to="out"} 0`,
		`pipeline_rate_scale_factor{job="j1",provider="synthetic"} 1`,
		`pipeline_backpressure_state{job="j1",provider="synthetic"} 0`,
		`feedback_events_processed_total{job="j1",level="ok",provider="synthetic"} 1`,
		`feedback_events_processed_total{job="j1",level="soft",provider="synthetic"} 2`,
		`feedback_events_processed_total{job="j1",level="hard",provider="synthetic"} 0`,
		`# TYPE mdp_node_busy_seconds_total counter`,
		`# TYPE mdp_node_backpressure_blocked_seconds_total counter`,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	// Every node's watermark is final after the run: no lag series.
	if strings.Contains(body, "mdp_node_watermark_lag_seconds{") {
		t.Error("watermark lag reported for finished nodes")
	}
	if t.Failed() {
		t.Log(body)
	}
}

func TestWatermarkLagAndLevels(t *testing.T) {
	j := runJob(t, "lag")
	now := time.Unix(1_700_000_100, 0)
	j.fb.Report("out", engine.LevelHard)
	snap := j.MetricsSnapshot()
	snap.Nodes[1].Watermark = time.Unix(1_700_000_090, 500_000_000).UnixNano()
	c := NewCollector("classic", fixedSource{snap})
	c.now = func() time.Time { return now }
	s := serve(t, c, nil)
	body, _, _ := scrape(t, "http://"+s.Addr()+"/metrics")
	for _, want := range []string{
		`runtime_up{mode="classic"} 1`,
		`mdp_node_watermark_lag_seconds{job="lag",node="half",type="operator.half"} 9.5`,
		`pipeline_rate_scale_factor{job="lag",provider="synthetic"} 0`,
		`pipeline_backpressure_state{job="lag",provider="synthetic"} 2`,
		`feedback_events_processed_total{job="lag",level="hard",provider="synthetic"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}

type fixedSource struct{ s Snapshot }

func (f fixedSource) MetricsSnapshot() Snapshot { return f.s }

func TestManyJobsAndRegistries(t *testing.T) {
	a, b := runJob(t, "a"), runJob(t, "b")
	b.state = "running"
	c := NewCollector("server", a)
	c.Add(b)
	c.Add(fixedSource{a.MetricsSnapshot()}) // a duplicate name is skipped, not a scrape error
	s := serve(t, c, nil)
	other := serve(t, NewCollector("dag", runJob(t, "c")), nil)
	body, code, _ := scrape(t, "http://"+s.Addr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d: %s", code, body)
	}
	for _, want := range []string{
		`runtime_up{mode="server"} 1`,
		`runtime_jobs_running{mode="dag"} 1`,
		`mdp_node_events_out_total{job="a",node="src",type="provider.synthetic"} 1000`,
		`mdp_node_events_out_total{job="b",node="src",type="provider.synthetic"} 1000`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, `job="c"`) {
		t.Error("a job of another registry leaked into this one")
	}
	c.Remove(b)
	body, _, _ = scrape(t, "http://"+s.Addr()+"/metrics")
	if strings.Contains(body, `job="b"`) || !strings.Contains(body, `runtime_jobs_running{mode="dag"} 0`) {
		t.Errorf("after Remove:\n%s", body)
	}
	if body, _, _ := scrape(t, "http://"+other.Addr()+"/metrics"); !strings.Contains(body, `job="c"`) || strings.Contains(body, `job="a"`) {
		t.Errorf("second registry:\n%s", body)
	}
}

func TestHealthAndReady(t *testing.T) {
	ready := false
	s := serve(t, NewCollector("dag"), func() (bool, any) { return ready, map[string]string{"status": "DEGRADED"} })
	body, code, _ := scrape(t, "http://"+s.Addr()+"/healthz")
	if code != 200 || strings.TrimSpace(body) != "{\n  \"status\": \"alive\"\n}" {
		t.Fatalf("/healthz %d %q", code, body)
	}
	body, code, hdr := scrape(t, "http://"+s.Addr()+"/readyz")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 503 || got["status"] != "DEGRADED" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/readyz not ready: %d %q %v", code, body, err)
	}
	ready = true
	if _, code, _ := scrape(t, "http://"+s.Addr()+"/readyz"); code != 200 {
		t.Fatalf("/readyz ready: %d", code)
	}
	resp, err := http.Post("http://"+s.Addr()+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics %d", resp.StatusCode)
	}
	nilReady := serve(t, NewCollector("dag"), nil)
	if body, code, _ := scrape(t, "http://"+nilReady.Addr()+"/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz without Ready: %d %s", code, body)
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":             "127.0.0.1:9108",
		":9200":        "127.0.0.1:9200",
		"0.0.0.0:9300": "0.0.0.0:9300",
		"[::1]:9400":   "[::1]:9400",
		"localhost:0":  "localhost:0",
	} {
		got, err := listenAddr(in)
		if err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := listenAddr("9108"); err == nil || err.Error() != `metrics listen address "9108": address 9108: missing port in address` {
		t.Errorf("listenAddr(9108) error %v", err)
	}
	if _, err := Serve(ServerOptions{Listen: "127.0.0.1:0"}); err == nil || err.Error() != "metrics server: no gatherer" {
		t.Errorf("Serve without gatherer: %v", err)
	}
}

func BenchmarkScrape(b *testing.B) {
	j := runJobB(b)
	r := NewRegistry(NewCollector("dag", j))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

func runJobB(b *testing.B) *testJob {
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.synthetic", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewSource: func(int) (engine.Source, error) { return &src{n: 1000, batch: 100}, nil }},
			{ID: "out", Type: "sink.discard", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return discard{}, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "out"}},
	}
	fb := engine.NewFeedback(engine.DefaultFeedback())
	j, err := engine.New(g, engine.Options{Job: "bench", Feedback: fb})
	if err != nil {
		b.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	return &testJob{name: "bench", mode: "dag", state: "running", job: j, fb: fb}
}

// TestComponentSeries: series components register through their node
// contexts are exported per node with the job's labels, the instances
// combined: counters and histograms summed, gauges summed or the largest.
func TestComponentSeries(t *testing.T) {
	j := runJob(t, "store")
	snap := j.MetricsSnapshot()
	set := &engine.MetricSet{}
	for i, v := range []struct {
		rows, batches, retries int64
		open, queue, level     float64
		lat                    []float64
	}{{700, 7, 0, 0, 0, 1, []float64{0.001, 0.02}}, {300, 3, 2, 1, 42, 0, []float64{3}}} {
		m := set.For("out", "sink.discard", i)
		m.Counter("mdp_sink_rows_written_total", "Rows in successful store writes.").Add(v.rows)
		m.Counter("mdp_sink_writes_total", "Successful store writes.").Add(v.batches)
		m.Counter("mdp_sink_retries_total", "Write attempts after the first.").Add(v.retries)
		m.Gauge("mdp_sink_breaker_open", "1 while the circuit breaker is open.", engine.MaxAcrossInstances()).Set(v.open)
		queue := v.queue
		m.GaugeFunc("mdp_sink_queue_rows", "Rows accepted and not yet written.", func() float64 { return queue })
		m.GaugeFunc("pipeline_feedback_queue_depth", "Rows waiting.", func() float64 { return queue }, engine.NodeLabel("source"))
		m.Gauge("mdp_sink_queue_capacity_rows", "Capacity.").Set(1000)
		m.Gauge("mdp_sink_level", "Level.", engine.MaxAcrossInstances()).Set(v.level)
		h := m.Histogram("mdp_sink_write_latency_seconds", "Store write latency.", []float64{0.005, 0.1, 1})
		for _, x := range v.lat {
			h.Observe(x)
		}
	}
	snap.Series = set.Series()
	snap.Nodes[0].Counters = map[string]int64{"reconnects": 3}
	s := serve(t, NewCollector("dag", fixedSource{snap}), nil)
	body, _, _ := scrape(t, "http://"+s.Addr()+"/metrics")
	l := `{job="store",node="out",type="sink.discard"}`
	for _, want := range []string{
		`mdp_node_counter_total{counter="reconnects",job="store",node="src",type="provider.synthetic"} 3`,
		`mdp_sink_rows_written_total` + l + ` 1000`,
		`mdp_sink_writes_total` + l + ` 10`,
		`mdp_sink_retries_total` + l + ` 2`,
		`mdp_sink_breaker_open` + l + ` 1`,
		`mdp_sink_queue_rows` + l + ` 42`,
		`pipeline_feedback_queue_depth{job="store",source="out"} 42`,
		`mdp_sink_queue_capacity_rows` + l + ` 2000`,
		`mdp_sink_level` + l + ` 1`,
		`mdp_sink_write_latency_seconds_count` + l + ` 3`,
		`mdp_sink_write_latency_seconds_sum` + l + ` 3.021`,
		`mdp_sink_write_latency_seconds_bucket{job="store",node="out",type="sink.discard",le="0.005"} 1`,
		`mdp_sink_write_latency_seconds_bucket{job="store",node="out",type="sink.discard",le="0.1"} 2`,
		`mdp_sink_write_latency_seconds_bucket{job="store",node="out",type="sink.discard",le="+Inf"} 3`,
		"# HELP mdp_sink_rows_written_total Rows in successful store writes.\n# TYPE mdp_sink_rows_written_total counter",
		"# TYPE mdp_sink_level gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, `mdp_sink_rows_written_total{job="store",node="half"`) {
		t.Error("store series for a node that registered none")
	}
	if t.Failed() {
		t.Log(body)
	}
}

// TestAddReplacesAJobOfTheSameName: a restarted job added again reports as
// the new run; Remove drops it; other jobs stay.
func TestAddReplacesAJobOfTheSameName(t *testing.T) {
	old := &fixedSource{Snapshot{Job: "a", Mode: "dag", State: "failed"}}
	c := NewCollector("server", old, &fixedSource{Snapshot{Job: "b", Mode: "classic", State: "running"}})
	restarted := &fixedSource{Snapshot{Job: "a", Mode: "dag", State: "running"}}
	c.Add(restarted)
	s := serve(t, c, nil)
	body, _, _ := scrape(t, "http://"+s.Addr()+"/metrics")
	for _, want := range []string{
		`runtime_up{mode="server"} 1`, `runtime_jobs_running{mode="dag"} 1`, `runtime_jobs_running{mode="classic"} 1`,
		`mdp_job_state{job="a",mode="dag",state="running"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(body, `state="failed"`) {
		t.Error("the replaced run is still reported")
	}
	c.Remove(restarted)
	body, _, _ = scrape(t, "http://"+s.Addr()+"/metrics")
	if strings.Contains(body, `job="a"`) || !strings.Contains(body, `runtime_jobs_running{mode="dag"} 0`) || !strings.Contains(body, `job="b"`) {
		t.Errorf("after Remove:\n%s", body)
	}
}
