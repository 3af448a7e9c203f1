package config

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
)

func td(name string) string { return filepath.Join("..", "testdata", "config", name) }

func mustLoad(t *testing.T, name, src string, opts LoadOptions) *Document {
	t.Helper()
	if opts.Env == nil {
		opts.Env = envMap(nil)
	}
	d, err := LoadBytes(name, []byte(src), opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return d
}

type nodeShape struct {
	ID, Type    string
	Parallelism int
	OnError     engine.ErrorPolicy
	Path        string
	Line        int
}

func shapes(d *Document) []nodeShape {
	var out []nodeShape
	for _, n := range d.Nodes {
		out = append(out, nodeShape{n.ID, n.Type, n.Parallelism, n.OnError, n.Path, n.Line})
	}
	return out
}

func edgeNames(d *Document) []string {
	var out []string
	for _, e := range d.Edges {
		out = append(out, (&engine.Edge{From: e.From, FromPort: e.FromPort, To: e.To}).Name())
	}
	return out
}

func TestLoadDAGFile(t *testing.T) {
	d, err := LoadFile(td("dag.yaml"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode != ModeDAG || d.Name != "bars-demo" || d.File != td("dag.yaml") {
		t.Fatalf("mode %q name %q file %q", d.Mode, d.Name, d.File)
	}
	wantNodes := []nodeShape{
		{"src", "provider.test_trades", 0, engine.OnErrorFail, "dag.nodes[0]", 6},
		{"bars", "operator.test_bars", 2, engine.OnErrorDeadLetter, "dag.nodes[1]", 9},
		{"store", "sink.test_store", 0, engine.OnErrorFail, "dag.nodes[2]", 14},
		{"late", "sink.test_store", 0, engine.OnErrorFail, "dag.nodes[3]", 17},
	}
	if got := shapes(d); !reflect.DeepEqual(got, wantNodes) {
		t.Fatalf("nodes:\n%+v\nwant\n%+v", got, wantNodes)
	}
	if got, want := edgeNames(d), []string{"src -> bars", "bars -> store", "bars.late -> late", "bars.dead_letter -> late"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("edges %v, want %v", got, want)
	}
	if e := d.Edges[2]; e.Capacity != 8 || e.Policy != engine.DropOldest || e.Line != 23 || e.Path != "dag.edges[2]" {
		t.Fatalf("edge 2: %+v", e)
	}
	if e := d.Edges[0]; e.Capacity != 0 || e.Policy != engine.Block {
		t.Fatalf("edge 0: %+v", e)
	}
	src := d.Nodes[0].Params
	if got := src.Strings("symbols"); !reflect.DeepEqual(got, []string{"AAPL", "MSFT"}) {
		t.Fatalf("symbols %v", got)
	}
	if src.Float("rate") != 1000 || src.Int("count") != 5 || src.Duration("max_out_of_orderness") != 0 {
		t.Fatalf("src params rate %v count %v", src.Float("rate"), src.Int("count"))
	}
	if p := d.Nodes[1].Params; p.Duration("interval") != time.Second || p.String("label") != "close" {
		t.Fatalf("bars params %v %q", p.Duration("interval"), p.String("label"))
	}
	if d.Nodes[3].Params.Int("batch") != 10 || d.Nodes[2].Params.Int("batch") != 100 {
		t.Fatal("sink batch params")
	}
	if d.Metrics != (MetricsConfig{Enable: true, Listen: "127.0.0.1:9200"}) {
		t.Fatalf("metrics %+v", d.Metrics)
	}
	if d.Feedback != (engine.FeedbackConfig{Enable: true, ScaleOK: 1, ScaleSoft: 0.25, ScaleHard: 0, SoftAt: 0.6, HardAt: 0.95}) {
		t.Fatalf("feedback %+v", d.Feedback)
	}
	if d.ShutdownTimeout != 5*time.Second || d.BatchSize != 256 {
		t.Fatalf("shutdown %v batch %d", d.ShutdownTimeout, d.BatchSize)
	}
	if !reflect.DeepEqual(d.Sources, []string{td("dag.yaml")}) {
		t.Fatalf("sources %v", d.Sources)
	}
	g, err := d.Graph()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 4 || len(g.Edges) != 4 || g.Nodes[1].Parallelism != 2 || g.Nodes[1].OnError != engine.OnErrorDeadLetter || g.Edges[2].Capacity != 8 {
		t.Fatalf("graph %+v", g)
	}
}

func TestDefaults(t *testing.T) {
	d := mustLoad(t, "", `dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`, LoadOptions{})
	if d.Mode != ModeDAG || d.Name != "job" || d.File != "" {
		t.Fatalf("mode %q name %q", d.Mode, d.Name)
	}
	if d.Metrics != (MetricsConfig{Enable: false, Listen: "127.0.0.1:9108"}) {
		t.Fatalf("metrics %+v", d.Metrics)
	}
	if d.Feedback != engine.DefaultFeedback() || d.Feedback.SoftAt != 0.5 || d.Feedback.HardAt != 0.9 {
		t.Fatalf("feedback %+v", d.Feedback)
	}
	if d.ShutdownTimeout != 30*time.Second || d.BatchSize != 0 || len(d.Sources) != 0 {
		t.Fatalf("shutdown %v batch %d sources %v", d.ShutdownTimeout, d.BatchSize, d.Sources)
	}
	if d.Restart != RestartOnFailure {
		t.Fatalf("restart %q, want on-failure by default", d.Restart)
	}
	// The job name defaults to the file's base name.
	d = mustLoad(t, "jobs/nightly-bars.yaml", "classic: {spec: {source: {type: provider.test_trades}, sink: {type: sink.test_store, params: {path: x}}}}", LoadOptions{})
	if d.Name != "nightly-bars" || d.Mode != modeClassic {
		t.Fatalf("name %q mode %q", d.Name, d.Mode)
	}
}

func TestRestartPolicy(t *testing.T) {
	const job = `restart: %s
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`
	for _, p := range []string{RestartAlways, RestartOnFailure, RestartNever} {
		if d := mustLoad(t, "j.yaml", strings.Replace(job, "%s", p, 1), LoadOptions{}); d.Restart != p {
			t.Fatalf("restart %q, want %q", d.Restart, p)
		}
	}
	_, err := LoadBytes("j.yaml", []byte(strings.Replace(job, "%s", "on-failur", 1)), LoadOptions{Env: envMap(nil)})
	want := `j.yaml:1:10: restart: unknown restart policy "on-failur"; want always, on-failure or never (did you mean "on-failure"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestInterpolation(t *testing.T) {
	env := map[string]string{"RATE": "250.5", "COUNT": "42", "DIR": "/data", "EMPTY": "", "LISTEN": "0.0.0.0:9300", "ON": "true"}
	d := mustLoad(t, "job.yaml", `mode: dag
name: "job-${COUNT}-$${literal}-$$-$5"
metrics: {enable: "${ON}", listen: "${LISTEN}"}
shutdown_timeout: ${TIMEOUT:-45s}
dag:
  nodes:
    - id: src
      type: provider.test_trades
      params:
        rate: ${RATE}
        count: "${COUNT}"
        symbols: ["${SYM:-SPY}", "X${EMPTY}Y", "${EMPTY:-fallback}"]
    - id: store
      type: sink.test_store
      params: {path: "${DIR}/${NAME:-bars}.db", batch: '${BATCH:-7}'}
  edges: [[src, store]]
`, LoadOptions{Env: envMap(env)})
	if d.Name != "job-42-${literal}-$-$5" {
		t.Fatalf("name %q", d.Name)
	}
	if !d.Metrics.Enable || d.Metrics.Listen != "0.0.0.0:9300" || d.ShutdownTimeout != 45*time.Second {
		t.Fatalf("metrics %+v shutdown %v", d.Metrics, d.ShutdownTimeout)
	}
	src := d.Nodes[0].Params
	if src.Float("rate") != 250.5 || src.Int("count") != 42 {
		t.Fatalf("rate %v count %v", src.Float("rate"), src.Int("count"))
	}
	if got := src.Strings("symbols"); !reflect.DeepEqual(got, []string{"SPY", "XY", "fallback"}) {
		t.Fatalf("symbols %v", got)
	}
	if p := d.Nodes[1].Params; p.String("path") != "/data/bars.db" || p.Int("batch") != 7 {
		t.Fatalf("path %q batch %d", p.String("path"), p.Int("batch"))
	}
	// Text around a quoted reference keeps it a string.
	_, err := LoadBytes("job.yaml", []byte(`dag:
  nodes:
    - {id: src, type: provider.test_trades, params: {count: "4${COUNT}"}}
    - {id: store, type: sink.test_store, params: {path: a}}
  edges: [[src, store]]
`), LoadOptions{Env: envMap(env)})
	if want := `job.yaml:3:61: dag.nodes[0].params.count: want an integer, got the string "442"`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

const precedenceFile = `mode: dag
name: from-file
metrics: {enable: false, listen: "127.0.0.1:1111"}
feedback: {scale_soft: 0.4}
dag:
  nodes:
    - {id: src, type: provider.test_trades, params: {rate: 1, count: 3}}
    - {id: store, type: sink.test_store, params: {path: file.db}}
  edges: [[src, store]]
classic:
  spec:
    source: {type: provider.test_trades}
    sink: {type: sink.test_store, params: {path: classic.db}}
`

func TestPrecedence(t *testing.T) {
	// File only.
	d := mustLoad(t, "job.yaml", precedenceFile, LoadOptions{})
	if d.Mode != ModeDAG || d.Metrics.Enable || d.Metrics.Listen != "127.0.0.1:1111" || d.Feedback.ScaleSoft != 0.4 || d.Feedback.ScaleHard != 0 {
		t.Fatalf("file: %+v %+v", d.Metrics, d.Feedback)
	}
	// Environment over file; defaults where neither says.
	env := map[string]string{
		"MDP_UNIFIED_MODE": "classic", "MDP_METRICS_ENABLE": "1", "MDP_METRICS_LISTEN": "127.0.0.1:2222",
		"MDP_FB_ENABLE": "false", "MDP_FB_SCALE_OK": "0.9", "MDP_FB_SCALE_SOFT": "0.3", "MDP_FB_SCALE_HARD": "0.1",
		"MDP_FB_SOFT_AT": "0.4", "MDP_FB_HARD_AT": "0.8",
	}
	d = mustLoad(t, "job.yaml", precedenceFile, LoadOptions{Env: envMap(env)})
	if d.Mode != modeClassic || !d.Metrics.Enable || d.Metrics.Listen != "127.0.0.1:2222" {
		t.Fatalf("env: mode %q metrics %+v", d.Mode, d.Metrics)
	}
	if d.Feedback != (engine.FeedbackConfig{Enable: false, ScaleOK: 0.9, ScaleSoft: 0.3, ScaleHard: 0.1, SoftAt: 0.4, HardAt: 0.8}) {
		t.Fatalf("env: feedback %+v", d.Feedback)
	}
	if d.Nodes[1].Params.String("path") != "classic.db" {
		t.Fatalf("env mode did not select the classic section")
	}
	// Flags over environment.
	d = mustLoad(t, "job.yaml", precedenceFile, LoadOptions{Env: envMap(env), Mode: "dag", Job: "from-flag",
		Sets: []string{"metrics.listen=127.0.0.1:3333", "feedback.scale_soft=0.2", "dag.nodes.src.params.rate=10", "dag.nodes[1].params.path=flag.db"}})
	if d.Mode != ModeDAG || d.Name != "from-flag" || !d.Metrics.Enable || d.Metrics.Listen != "127.0.0.1:3333" || d.Feedback.ScaleSoft != 0.2 || d.Feedback.ScaleOK != 0.9 {
		t.Fatalf("flags: mode %q name %q metrics %+v feedback %+v", d.Mode, d.Name, d.Metrics, d.Feedback)
	}
	if d.Nodes[0].Params.Float("rate") != 10 || d.Nodes[0].Params.Int("count") != 3 || d.Nodes[1].Params.String("path") != "flag.db" {
		t.Fatal("flags: node params")
	}
	wantSources := []string{"job.yaml", "env MDP_UNIFIED_MODE", "env MDP_METRICS_ENABLE", "env MDP_METRICS_LISTEN", "env MDP_FB_ENABLE",
		"env MDP_FB_SCALE_OK", "env MDP_FB_SCALE_SOFT", "env MDP_FB_SCALE_HARD", "env MDP_FB_SOFT_AT", "env MDP_FB_HARD_AT",
		"--set metrics.listen", "--set feedback.scale_soft", "--set dag.nodes.src.params.rate", "--set dag.nodes[1].params.path",
		"--mode", "--job"}
	if !reflect.DeepEqual(d.Sources, wantSources) {
		t.Fatalf("sources\n%q\nwant\n%q", d.Sources, wantSources)
	}
	// An env section replaces the file's.
	env = map[string]string{"MDP_UNIFIED_DAG_JSON": `{"nodes": [{"id": "gen", "type": "provider.test_trades"}, {"id": "out", "type": "sink.test_store", "params": {"path": "env.db"}}], "edges": [["gen", "out"]]}`}
	d = mustLoad(t, "job.yaml", precedenceFile, LoadOptions{Env: envMap(env), Sets: []string{"dag.nodes.out.params.path=set.db"}})
	if got := edgeNames(d); !reflect.DeepEqual(got, []string{"gen -> out"}) || d.Nodes[1].Params.String("path") != "set.db" || d.Nodes[1].File != "env MDP_UNIFIED_DAG_JSON" {
		t.Fatalf("env dag: %v %+v", got, d.Nodes[1])
	}
}

func TestSetValues(t *testing.T) {
	d := mustLoad(t, "job.yaml", `dag:
  graph:
    nodes:
      - {id: src, type: provider.test_trades}
      - {id: bars, type: operator.test_bars, params: {interval: 1s}}
      - {id: store, type: sink.test_store, params: {path: a.db}}
    edges: [[src, bars], [bars, store]]
`, LoadOptions{Sets: []string{
		"dag.nodes.src.params.symbols=[AAPL, MSFT, 'BRK.B']",
		"dag.nodes.bars.params.interval=5m",
		"dag.nodes.bars.parallelism=3",
		"dag.edges[1]={from: bars, to: store, policy: drop_newest}",
		"metrics.enable=true",
		"name=",
		"shutdown_timeout=1d",
	}})
	if got := d.Nodes[0].Params.Strings("symbols"); !reflect.DeepEqual(got, []string{"AAPL", "MSFT", "BRK.B"}) {
		t.Fatalf("symbols %v", got)
	}
	if d.Nodes[1].Params.Duration("interval") != 5*time.Minute || d.Nodes[1].Parallelism != 3 {
		t.Fatal("bars")
	}
	if d.Edges[1].Policy != engine.DropNewest || !d.Metrics.Enable || d.Name != "job" || d.ShutdownTimeout != 24*time.Hour {
		t.Fatalf("edge %+v metrics %+v name %q", d.Edges[1], d.Metrics, d.Name)
	}
	if d.Nodes[0].Path != "dag.graph.nodes[0]" {
		t.Fatalf("path %q", d.Nodes[0].Path)
	}
}

func TestClassicCompiles(t *testing.T) {
	d, err := LoadFile(td("classic.yaml"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode != modeClassic || d.Name != "bars-classic" {
		t.Fatalf("mode %q name %q", d.Mode, d.Name)
	}
	want := []nodeShape{
		{"source", "provider.test_trades", 0, engine.OnErrorFail, "classic.spec.source", 5},
		{"test_filter", "operator.test_filter", 0, engine.OnErrorFail, "classic.spec.operators[0]", 7},
		{"test_filter_2", "operator.test_filter", 0, engine.OnErrorFail, "classic.spec.operators[1]", 8},
		{"batcher", "operator.buffer", 1, engine.OnErrorFail, "classic.spec.batcher", 9},
		{"sink", "sink.test_store", 0, engine.OnErrorFail, "classic.spec.sink", 10},
	}
	if got := shapes(d); !reflect.DeepEqual(got, want) {
		t.Fatalf("nodes:\n%+v\nwant\n%+v", got, want)
	}
	if got, want := edgeNames(d), []string{"source -> test_filter", "test_filter -> test_filter_2", "test_filter_2 -> batcher", "batcher -> sink"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("edges %v", got)
	}
	b := d.Nodes[3].Params
	if b.Int("max_rows") != 500 || b.Int("max_bytes") != 512000 || b.Duration("flush_interval") != 100*time.Millisecond || b.String("drop_policy") != "block" {
		t.Fatal("batcher params")
	}
	// The compiled graph runs on the engine like any dag.
	g, err := d.Graph()
	if err != nil {
		t.Fatal(err)
	}
	job, err := engine.New(g, engine.Options{Job: d.Name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	collectedMu.Lock()
	got := collected["classic-run"]
	collectedMu.Unlock()
	if len(got) != 7 || got[0].Price != 100 || got[6].Price != 106 {
		t.Fatalf("sink got %d trades: %+v", len(got), got)
	}

	// Explicit ids, no operators, no batcher; the spec may come from env,
	// either as the section or as the spec itself.
	for _, v := range []string{
		`{"spec": {"source": {"id": "in", "type": "provider.test_trades"}, "sink": {"id": "out", "type": "sink.test_store", "params": {"path": "p"}}}}`,
		`{"source": {"id": "in", "type": "provider.test_trades"}, "sink": {"id": "out", "type": "sink.test_store", "params": {"path": "p"}}}`,
	} {
		d := mustLoad(t, "", "", LoadOptions{Env: envMap(map[string]string{"MDP_UNIFIED_CLASSIC_JSON": v})})
		if got := edgeNames(d); d.Mode != modeClassic || !reflect.DeepEqual(got, []string{"in -> out"}) || d.Nodes[0].File != "env MDP_UNIFIED_CLASSIC_JSON" {
			t.Fatalf("env classic: %q %v", d.Mode, got)
		}
	}
}

func TestNoFile(t *testing.T) {
	env := map[string]string{
		"MDP_UNIFIED_MODE":     "dag",
		"MDP_UNIFIED_DAG_JSON": `{"nodes": [{"id": "src", "type": "provider.test_trades"}, {"id": "store", "type": "sink.test_store", "params": {"path": "x"}}], "edges": [["src", "store"]]}`,
	}
	d := mustLoad(t, "", "", LoadOptions{Env: envMap(env), Job: "envjob"})
	if d.Mode != ModeDAG || d.Name != "envjob" || len(d.Nodes) != 2 || d.File != "" {
		t.Fatalf("%+v", d)
	}
	if !reflect.DeepEqual(d.Sources, []string{"env MDP_UNIFIED_DAG_JSON", "env MDP_UNIFIED_MODE", "--job"}) {
		t.Fatalf("sources %q", d.Sources)
	}
	_, err := LoadBytes("", nil, LoadOptions{Env: envMap(nil)})
	if want := "1:1: the job has no dag or classic section; write one (or set MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON)"; err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
}

func TestJSONFile(t *testing.T) {
	d, err := LoadFile(td("job.json"), LoadOptions{Env: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// provider.test_ticks is an alias; the node carries the canonical type.
	if d.Name != "json-job" || d.Nodes[0].Type != "provider.test_trades" || d.Nodes[0].Params.Int("count") != 3 || d.ShutdownTimeout != time.Minute {
		t.Fatalf("%+v", d)
	}
	if d.Nodes[1].Line != 8 || d.Nodes[1].Column != 9 || d.Nodes[1].Path != "dag.graph.nodes[1]" {
		t.Fatalf("position %+v", d.Nodes[1])
	}
	_, err = LoadFile(td("missing.yaml"), LoadOptions{})
	if want := td("missing.yaml") + ": cannot read the job file: no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
}

func TestErrorsAreStructured(t *testing.T) {
	_, err := LoadBytes("j.yaml", []byte("mode: dga\nnam: x\n"), LoadOptions{Env: envMap(nil)})
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("%v", err)
	}
	if *es[0] != (Error{File: "j.yaml", Line: 1, Column: 7, Path: "mode", Msg: `unknown mode "dga"; want classic or dag (did you mean "dag"?)`}) {
		t.Fatalf("%+v", es[0])
	}
	var one *Error
	if !errors.As(err, &one) || one != es[0] {
		t.Fatal("errors.As *Error")
	}
	if got := (&Error{Msg: "m"}).Error(); got != "m" {
		t.Fatal(got)
	}
	if got := (&Error{File: "f", Line: 3, Msg: "m"}).Error(); got != "f:3: m" {
		t.Fatal(got)
	}
}

func TestSchema(t *testing.T) {
	b, err := Schema(nil)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	get := func(v any, path ...string) any {
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %s", path, p)
			}
			v = m[p]
		}
		return v
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || s["additionalProperties"] != false {
		t.Fatal("header")
	}
	props := get(s, "properties").(map[string]any)
	for _, k := range topKeys {
		if props[k] == nil {
			t.Fatalf("no property %s", k)
		}
	}
	if got := get(s, "properties", "mode", "enum"); !reflect.DeepEqual(got, []any{"classic", "dag"}) {
		t.Fatalf("mode enum %v", got)
	}
	bars := get(s, "$defs", "params.operator.test_bars").(map[string]any)
	if bars["additionalProperties"] != false || !reflect.DeepEqual(bars["required"], []any{"interval"}) {
		t.Fatalf("bars params %v", bars)
	}
	if got := get(bars, "properties", "interval"); !reflect.DeepEqual(got, map[string]any{"$ref": "#/$defs/duration", "description": "bar length", "examples": []any{"1s"}}) {
		t.Fatalf("interval %v", got)
	}
	label := get(bars, "properties", "label").(map[string]any)
	if label["default"] != "close" || !reflect.DeepEqual(get(label, "anyOf"), []any{
		map[string]any{"enum": []any{"open", "close"}}, map[string]any{"$ref": "#/$defs/interpolated"},
	}) {
		t.Fatalf("label %v", label)
	}
	batch := get(s, "$defs", "params.sink.test_store", "properties", "batch").(map[string]any)
	if !reflect.DeepEqual(batch["anyOf"], []any{
		map[string]any{"type": "integer", "minimum": 1.0, "maximum": 10000.0}, map[string]any{"$ref": "#/$defs/interpolated"},
	}) || batch["default"] != 100.0 {
		t.Fatalf("batch %v", batch)
	}
	if get(s, "$defs", "params.provider.test_trades", "properties", "token", "writeOnly") != true {
		t.Fatal("secret not writeOnly")
	}
	// Each dag node type selects its params schema.
	node := get(s, "$defs", "node").(map[string]any)
	if node["additionalProperties"] != false || !reflect.DeepEqual(node["required"], []any{"id", "type"}) {
		t.Fatalf("node %v", node)
	}
	found := false
	for _, r := range node["allOf"].([]any) {
		if get(r, "if", "properties", "type", "const") == "provider.test_ticks" {
			found = get(r, "then", "properties", "params", "$ref") == "#/$defs/params.provider.test_trades"
		}
	}
	if !found {
		t.Fatal("no if/then for the alias provider.test_ticks")
	}
	// A classic source slot only offers sources.
	for _, ty := range get(s, "$defs", "source_ref", "properties", "type", "enum").([]any) {
		if !strings.HasPrefix(ty.(string), "provider.") {
			t.Fatalf("source_ref offers %v", ty)
		}
	}
	if get(s, "properties", "classic", "properties", "spec", "properties", "batcher", "$ref") != "#/$defs/params.operator.buffer" {
		t.Fatal("batcher schema")
	}
}
