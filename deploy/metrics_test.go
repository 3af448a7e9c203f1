package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/scaleout"
)

// rejectSink fails every batch; with on_error: skip the engine counts an
// error (reason skipped) and a drop (reason error) for each, so the
// by-reason series are in the scrape as they are when a real store rejects
// rows.
type rejectSink struct{}

func (rejectSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return fmt.Errorf("rejected %d records", b.Len())
}

func init() {
	component.Register(component.Spec{
		Type: "sink.test_deploy_reject", Kind: engine.KindSink, Summary: "deploy test sink that fails every batch", Accepts: md.KindAny,
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return rejectSink{}, nil },
	})
}

// scrapeRunningJob runs a real job (synthetic trades -> bars -> SQLite,
// and a branch into a sink that fails every batch; checkpoints on) with
// metrics on a free loopback port and returns every series name its
// /metrics serves once the store has written rows, histograms and
// summaries expanded into their _bucket, _sum and _count series.
func scrapeRunningJob(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	job := fmt.Sprintf(`mode: dag
name: deploy-metrics
metrics: {enable: true, listen: "127.0.0.1:0"}
feedback: {enable_feedback: true, scale_ok: 1.0, scale_soft: 0.5, scale_hard: 0.0}
shutdown_timeout: 30s
checkpoint: {interval: 200ms, store: %q, keep: 2}
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 20000, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: %q, table: bars_ohlcv}}
    - {id: reject, type: sink.test_deploy_reject, on_error: skip}
  edges:
    - [src, bars]
    - [bars, store]
    - [src, reject]
`, filepath.Join(dir, "checkpoints"), filepath.Join(dir, "bars.db"))
	u, err := runtime.NewFromBytes("deploy-metrics.yaml", []byte(job), runtime.Options{})
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		u.Abort()
		_ = u.Wait()
	})
	url := "http://" + u.MetricsAddr() + "/metrics"
	var names map[string]bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		var written float64
		names, written = scrape(t, url)
		if written > 0 && names["mdp_node_errors_total"] && names["mdp_node_watermark_lag_seconds"] && names["mdp_checkpoint_last_timestamp_seconds"] {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rows written by the store after 60s; series: %v", sorted(names))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrapeScaleoutRun runs a scaled-out job (unbounded synthetic trades
// through the embedded NATS server's stream -> bars -> null) and returns
// the series names its registry gathers once the worker's lag series are
// there: the ones the scale-out alerts and the chart's ScaledObject read.
func scrapeScaleoutRun(t *testing.T) map[string]bool {
	t.Helper()
	job := fmt.Sprintf(`mode: dag
name: deploy-scaleout
shutdown_timeout: 30s
scaleout: {nats: embedded, partitions: 4, store: %q, sync: interval}
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 5000, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges:
    - [src, bars]
    - [bars, out]
`, filepath.Join(t.TempDir(), "nats"))
	doc, err := config.LoadBytes("deploy-scaleout.yaml", []byte(job), config.LoadOptions{})
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- scaleout.Run(ctx, doc, scaleout.Options{Metrics: reg}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scale-out run: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		names := map[string]bool{}
		fams, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, f := range fams {
			names[f.GetName()] = true
		}
		if names["mdp_scaleout_job_lag_messages"] && names["mdp_scaleout_job_lag_seconds"] {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scale-out lag series after 60s; series: %v", sorted(names))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func scrape(t *testing.T, url string) (map[string]bool, float64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	var written float64
	for name, f := range fams {
		names[name] = true
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "SUMMARY":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
		if name == "mdp_sink_rows_written_total" {
			for _, m := range f.GetMetric() {
				written += m.GetCounter().GetValue()
			}
		}
	}
	return names, written
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	reLabelVal = regexp.MustCompile(`^\s*label_values\(\s*(?:([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*,)?\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, range and grouping
// clauses are removed that are neither function calls nor operators.
func metricNames(expr string) []string {
	if m := reLabelVal.FindStringSubmatch(expr); m != nil {
		if m[1] == "" {
			return nil
		}
		return []string{m[1]}
	}
	s := reString.ReplaceAllString(expr, `""`)
	s = reMatchers.ReplaceAllString(s, " ")
	s = reRange.ReplaceAllString(s, " ")
	s = reGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range reIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] == '$' || s[loc[0]-1] == '.' || (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9')) {
			continue // a variable, or part of a number such as 1e3
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || keywords[id] {
			continue
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (job, node) (rate(mdp_node_events_in_total{job=~"$job",node=~"$node"}[$__rate_interval]))`: {"mdp_node_events_in_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m])))`:                                {"x_bucket"},
		`count(mdp_job_state{state="failed"} == 1) or vector(0)`:                                           {"mdp_job_state"},
		`sum(rate(a_total[5m])) > 0 or max by (job) (b) == 1`:                                              {"a_total", "b"},
		`a / on (job) group_left (node) b`:                                                                 {"a", "b"},
		`label_values(mdp_node_events_in_total{job=~"$job"}, node)`:                                        {"mdp_node_events_in_total"},
		`label_values(job)`: nil,
		`x > 1e3`:           {"x"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// dashboardQueries returns every PromQL query of the dashboard by where it
// is: panel targets and template variables.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("grafana/mdp.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana/mdp.json: %v", err)
	}
	q := map[string]string{}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type != "query" {
			continue
		}
		var vq struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &vq); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		q["variable "+v.Name] = vq.Query
	}
	if !slices.Contains(vars, "job") || !slices.Contains(vars, "node") {
		t.Errorf("dashboard variables %v: want job and node", vars)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			q[fmt.Sprintf("panel %q query %d", p.Title, i)] = tg.Expr
		}
	}
	return q
}

// alertQueries returns every rule expression of the alerts file by alert.
func alertQueries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("prometheus/alerts.yaml: %v", err)
	}
	q := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			q["alert "+r.Alert] = r.Expr
		}
	}
	return q
}

// TestDashboardAndAlertsMatchScrape: every metric name in every dashboard
// query and alert expression is served by a running job, so neither can
// drift from the code.
func TestDashboardAndAlertsMatchScrape(t *testing.T) {
	dash, alerts := dashboardQueries(t), alertQueries(t)
	if len(dash) < 20 || len(alerts) < 11 {
		t.Fatalf("%d dashboard queries, %d alerts: the files were not read whole", len(dash), len(alerts))
	}
	served := scrapeRunningJob(t)
	for n := range scrapeScaleoutRun(t) {
		served[n] = true
	}
	// The ScaledObject's Prometheus query.
	so, err := os.ReadFile("helm/mdp/templates/scaledobject.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`query: .*"(sum\(mdp_[a-z_]+)`).FindSubmatch(so)
	if m == nil {
		t.Fatalf("no query in the ScaledObject template:\n%s", so)
	}
	keda := map[string]string{"ScaledObject query": string(m[1]) + ")"}
	used := map[string]bool{}
	for _, qs := range []map[string]string{dash, alerts, keda} {
		for where, expr := range qs {
			names := metricNames(expr)
			if len(names) == 0 && !strings.HasPrefix(where, "variable") {
				t.Errorf("%s selects no metric: %s", where, expr)
			}
			for _, n := range names {
				used[n] = true
				if !served[n] {
					t.Errorf("%s uses %s, which a running job does not serve: %s", where, n, expr)
				}
			}
		}
	}
	// The panels the issue asks for, by the series they read.
	for _, n := range []string{
		"runtime_jobs_running", "mdp_node_events_out_total", "mdp_node_queue_depth", "mdp_node_backpressure_blocked_seconds_total",
		"mdp_node_watermark_lag_seconds", "mdp_node_dropped_total", "mdp_node_errors_total", "mdp_sink_rows_written_total",
		"mdp_sink_write_latency_seconds_bucket", "pipeline_backpressure_state", "mdp_job_state", "mdp_sink_writes_failed_total",
		"mdp_checkpoint_last_timestamp_seconds", "mdp_checkpoint_failed_total",
		"mdp_scaleout_job_lag_messages", "mdp_scaleout_job_lag_seconds",
	} {
		if !used[n] {
			t.Errorf("no dashboard query or alert reads %s", n)
		}
	}
	t.Logf("%d dashboard queries and %d alerts read %d series names, all served", len(dash), len(alerts), len(used))
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
