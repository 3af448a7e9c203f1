package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/mdpio/mdp/runtime"
)

// runLogged runs the job name (the test source and sink with their params)
// to its end and returns its summary and its JSON log.
func runLogged(t *testing.T, name, srcParams, sinkParams string) (runtime.Summary, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	u, err := runtime.NewFromBytes(name+".yaml", job(name, srcParams, sinkParams, ""),
		runtime.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return u.Summary(), &logs
}

// The end of a job is one log record carrying its summary, and the same
// summary reads as text.
func TestSummaryAtTheEnd(t *testing.T) {
	s, logs := runLogged(t, "sum", "count: 40, batch: 10", "name: summed, drop: true")
	if s.RecordsIn != 40 || s.State != runtime.StateStopped || len(s.Nodes) != 2 || s.ElapsedSeconds <= 0 || s.RecordsPerSecond <= 0 {
		t.Fatalf("%+v", s)
	}
	if n := s.Nodes[0]; n.ID != "src" || n.Kind != "source" || n.Out != 40 {
		t.Fatalf("source %+v", n)
	}
	if n := s.Nodes[1]; n.ID != "store" || n.Kind != "sink" || n.In != 40 || n.Written != 40 || n.Drops["test_drop"] != 40 {
		t.Fatalf("sink %+v", n)
	}
	var end map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "job finished" {
			if end != nil {
				t.Fatal("two end records")
			}
			end = rec
		}
	}
	store, _ := end["store"].(map[string]any)
	drops, _ := store["drops"].(map[string]any)
	if end["records_in"] != float64(40) || store["written"] != float64(40) || drops["test_drop"] != float64(40) {
		t.Fatalf("end record %v", end)
	}
	var text bytes.Buffer
	s.WriteText(&text)
	// A source that ran for a second or more (a test process starved on a
	// loaded machine) while the sink idled earns the bottleneck hint: the
	// text ends with it exactly when the summary carries it.
	hint := ""
	if s.Bottleneck != "" {
		hint = regexp.QuoteMeta("  hint: "+s.Bottleneck) + "\n"
	}
	want := regexp.MustCompile(`^job sum finished in [\d.]+(µs|ms|s): 40 records in, [\d,]+/s
  src    source    40 records out
  store  sink      40 records in, 40 written; dropped test_drop 40
` + hint + `$`)
	if !want.MatchString(text.String()) {
		t.Fatalf("text:\n%s", text.String())
	}
}

// A source that runs for more than a second while its sink idles is named
// as the job's bottleneck, in the summary, its log record and its text.
func TestSummaryNamesTheBottleneck(t *testing.T) {
	s, logs := runLogged(t, "slow", "count: 40, batch: 10, interval: 400ms", "name: slow")
	if !regexp.MustCompile(`^source src limits the job's rate: it was busy \d+% of its time, the nodes it feeds less \(store \d+%\)$`).MatchString(s.Bottleneck) {
		t.Fatalf("bottleneck %q", s.Bottleneck)
	}
	if !strings.Contains(logs.String(), `"bottleneck":"source src limits the job's rate`) {
		t.Fatalf("logs:\n%s", logs.String())
	}
	var text bytes.Buffer
	s.WriteText(&text)
	if lines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n"); len(lines) != 4 || lines[3] != "  hint: "+s.Bottleneck {
		t.Fatalf("text:\n%s", text.String())
	}
}

// A job that cannot start logs that once, with its error, and no summary.
func TestStartFailureLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	u, err := runtime.NewFromBytes("openfail.yaml", job("openfail", "count: 1", `name: openfail, open_error: "no route to store"`, ""),
		runtime.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err == nil {
		t.Fatal("started")
	}
	if strings.Count(logs.String(), "no route to store") != 1 || !strings.Contains(logs.String(), `"msg":"job failed to start"`) {
		t.Fatalf("logs:\n%s", logs.String())
	}
}
