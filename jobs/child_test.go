package jobs

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

func parseText(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// Two children's runtime_jobs_running sum with the server's own; their
// runtime_up and process families are left out; job series stay apart.
func TestMergeChildMetrics(t *testing.T) {
	fams := parseText(t, `# TYPE runtime_up gauge
runtime_up{mode="server"} 1
# TYPE runtime_jobs_running gauge
runtime_jobs_running{mode="classic"} 0
runtime_jobs_running{mode="dag"} 0
`)
	child := func(job string, running int) string {
		return `# TYPE runtime_up gauge
runtime_up{mode="dag"} 1
# TYPE runtime_jobs_running gauge
runtime_jobs_running{mode="classic"} 0
runtime_jobs_running{mode="dag"} ` + string(rune('0'+running)) + `
# TYPE go_goroutines gauge
go_goroutines 12
# TYPE mdp_node_events_out_total counter
mdp_node_events_out_total{job="` + job + `",node="src",type="provider.synthetic"} 42
`
	}
	for _, c := range []string{child("a", 1), child("b", 1), child("c", 0)} {
		for name, f := range parseText(t, c) {
			if !childOnly(name) {
				merge(fams, f)
			}
		}
	}
	var buf bytes.Buffer
	for _, name := range []string{"runtime_up", "runtime_jobs_running", "mdp_node_events_out_total"} {
		if _, err := expfmt.MetricFamilyToText(&buf, fams[name]); err != nil {
			t.Fatal(err)
		}
	}
	got := buf.String()
	for _, want := range []string{
		"runtime_up{mode=\"server\"} 1\n# TYPE runtime_jobs_running",
		`runtime_jobs_running{mode="dag"} 2`,
		`runtime_jobs_running{mode="classic"} 0`,
		`mdp_node_events_out_total{job="a",node="src",type="provider.synthetic"} 42`,
		`mdp_node_events_out_total{job="c",node="src",type="provider.synthetic"} 42`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("merged metrics lack %q:\n%s", want, got)
		}
	}
	if fams["go_goroutines"] != nil {
		t.Fatalf("a child's go_goroutines was merged")
	}
}

// A child's JSON log line reaches the job's ring (redacted, attributes
// flattened, job=NAME) and the server's log with its attributes in order;
// an error record becomes the run's last error.
func TestChildLogLine(t *testing.T) {
	doc, err := config.LoadBytes("j.yaml", []byte(`name: j
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 1}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := &Manager{log: slog.New(slog.NewJSONHandler(&out, nil))}
	ring := newLogRing(10)
	c := &childRun{p: &processLauncher{m: m}, l: launch{name: "j", doc: doc, ring: ring}, red: runtime.NewRedactor(doc)}
	c.logLine([]byte(`{"time":"2026-12-03T22:00:00.5+01:00","level":"ERROR","msg":"job failed","job":"j","err":"dial postgres://u:hunter2@db/x: refused","node":{"id":"out","n":3}}`))
	c.logLine([]byte(`panic: not JSON`))
	recs := ring.tail(0, 0)
	if len(recs) != 2 {
		t.Fatalf("ring: %+v", recs)
	}
	r := recs[0]
	if r.Time != "2026-12-03T21:00:00.5Z" || r.Level != "ERROR" || r.Message != "job failed" || r.Attrs["job"] != "j" ||
		r.Attrs["node.id"] != "out" || r.Attrs["node.n"] != int64(3) || strings.Contains(r.Attrs["err"].(string), "hunter2") {
		t.Fatalf("record: %+v", r)
	}
	if recs[1].Message != "panic: not JSON" || recs[1].Attrs["stream"] != "stderr" || recs[1].Attrs["job"] != "j" {
		t.Fatalf("text line: %+v", recs[1])
	}
	if !strings.Contains(out.String(), `"level":"ERROR","msg":"job failed","job":"j","err":"dial postgres://u:xxxxx@db/x: refused","node.id":"out","node.n":3}`) {
		t.Fatalf("server log: %s", out.String())
	}
	if c.lastErr != "job failed: dial postgres://u:xxxxx@db/x: refused" {
		t.Fatalf("last error %q", c.lastErr)
	}
}

// A job with checkpoints is started with --resume, a scaled-out one too
// (its mdp run --resume continues from the partitions' checkpoints) when
// its source can be read again to the same records; without a checkpoint
// section neither is.
func TestChildResumesOnlyWhatMdpRunResumes(t *testing.T) {
	for _, c := range []struct {
		extra  string
		resume bool
		params string
	}{
		{"checkpoint: {interval: 5s, store: ck}\n", true, ""},
		{"checkpoint: {interval: 5s, store: ck}\nscaleout: {nats: embedded, partitions: 4, store: nats}\n", true, ""},
		{"scaleout: {nats: embedded, partitions: 4, store: nats}\n", false, ""},
		{"", false, ""},
		// A paced generator cannot be read again to the same records:
		// mdp run --resume refuses it, so each run starts afresh.
		{"checkpoint: {interval: 5s, store: ck}\nscaleout: {nats: embedded, partitions: 4, store: nats}\n", false, "rate: 100, "},
	} {
		doc, err := config.LoadBytes("j.yaml", []byte(`name: j
`+c.extra+`dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {`+c.params+`symbols: [AAPL], count: 1}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cr := &childRun{p: &processLauncher{command: []string{"mdp"}}, l: launch{name: "j", doc: doc, opts: runtime.Options{Resume: resumeOnStart(doc)}}}
		if got := slices.Contains(cr.args("j.yaml"), "--resume"); got != c.resume {
			t.Errorf("%q: --resume %v, want %v", c.extra, got, c.resume)
		}
	}
}
