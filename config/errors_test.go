package config

import (
	"errors"
	"testing"

	"github.com/mdpio/mdp/component"
)

// envMap returns an Env lookup over m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestMalformedJobs loads malformed job files and checks the exact, full
// error output: every problem, file:line:col: path: message, sorted.
func TestMalformedJobs(t *testing.T) {
	cases := []struct {
		name string
		file string // job.yaml or job.json
		src  string
		env  map[string]string
		sets []string
		mode string
		want string
	}{
		{
			name: "yaml syntax error",
			src: `mode: dag
dag:
  nodes:
    - id: src
      type: provider.test_trades
     params: {}
`,
			want: `job.yaml:6: invalid yaml: did not find expected '-' indicator`,
		},
		{
			name: "json syntax error",
			file: "job.json",
			src: `{"mode": "dag",
 "dag": {"nodes": [{"id": "src" "type": "provider.test_trades"}]}
}`,
			want: `job.json:2:33: invalid json: invalid character '"' after object key:value pair`,
		},
		{
			name: "unknown top-level key with suggestion",
			src: `mode: dag
metrix: {enable: true}
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, store]
`,
			want: `job.yaml:2:1: metrix: unknown key "metrix"; did you mean "metrics"?`,
		},
		{
			name: "mode invalid",
			src: `mode: dga
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`,
			want: `job.yaml:1:7: mode: unknown mode "dga"; want classic or dag (did you mean "dag"?)`,
		},
		{
			name: "mode dag without dag section",
			src: `mode: dag
classic:
  spec:
    source: {type: provider.test_trades}
    sink: {type: sink.test_store, params: {path: a.db}}
`,
			want: `job.yaml:1:7: mode: mode is dag but the job has no dag section`,
		},
		{
			name: "mode flag classic without classic section",
			mode: "classic",
			src: `dag:
  nodes:
    - {id: src, type: provider.test_trades}
`,
			want: `--mode: mode: mode is classic but the job has no classic section`,
		},
		{
			name: "no section at all",
			src:  "name: empty\n",
			want: `job.yaml:1:1: the job has no dag or classic section; write one (or set MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON)`,
		},
		{
			name: "duplicate node ids",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
    - {id: src, type: provider.test_trades}
  edges:
    - [src, store]
`,
			want: `job.yaml:6:12: dag.nodes[2].id: duplicate node id "src" (first used by dag.nodes[0])`,
		},
		{
			name: "edge to unknown node with suggestion",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, stor]
`,
			want: `job.yaml:7:13: dag.edges[0]: unknown node "stor"; did you mean "store"?`,
		},
		{
			name: "cycle naming nodes",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: a, type: operator.test_filter}
    - {id: b, type: operator.test_filter}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, a]
    - [a, b]
    - [b, a]
    - [b, store]
`,
			want: `job.yaml:5:7: dag.nodes[1]: cycle: a -> b -> a`,
		},
		{
			name: "source with input",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: src2, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, store]
    - [src2, src]
`,
			want: `job.yaml:9:7: dag.edges[1]: source "src" has an input (from "src2"); sources take none`,
		},
		{
			name: "sink with output",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
    - {id: copy, type: sink.test_store, params: {path: b.db}}
  edges:
    - [src, store]
    - [store, copy]
    - [src, copy]
`,
			want: `job.yaml:9:7: dag.edges[1]: sink "store" has an output (to "copy"); sinks have none`,
		},
		{
			name: "dangling node",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: f, type: operator.test_filter}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, store]
`,
			want: `job.yaml:5:7: dag.nodes[1]: node "f" is not connected to any source`,
		},
		{
			name: "incompatible kinds",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_bars}
    - {id: bars, type: operator.test_bars, params: {interval: 1s}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, bars]
    - [bars, store]
`,
			want: `job.yaml:8:7: dag.edges[0]: edge src -> bars: "src" (provider.test_bars) sends bar records but "bars" (operator.test_bars) takes trade`,
		},
		{
			name: "unknown port",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: bars, type: operator.test_bars, params: {interval: 1s}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, bars]
    - [bars, store]
    - [bars.lat, store]
`,
			want: `job.yaml:10:7: dag.edges[2]: edge bars.lat -> store: node "bars" (operator.test_bars) has no output port "lat"; its ports are: dead_letter, late`,
		},
		{
			name: "unknown type with suggestion",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: bars, type: operator.test_barz, params: {interval: 1s}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, bars]
    - [bars.late, store]
    - [bars, store]
`,
			want: `job.yaml:5:24: dag.nodes[1].type: unknown component type "operator.test_barz"; did you mean "operator.test_bars"?`,
		},
		{
			name: "unknown param with suggestion",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - id: bars
      type: operator.test_bars
      params:
        intervl: 1s
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, bars], [bars, store]]
`,
			want: `job.yaml:8:9: dag.nodes[1].params.intervl: unknown param "intervl" for operator.test_bars; did you mean "interval"?
job.yaml:8:9: dag.nodes[1].params.interval: missing required param "interval" (bar length)`,
		},
		{
			name: "wrong param type",
			src: `mode: dag
dag:
  nodes:
    - id: src
      type: provider.test_trades
      params: {count: ten, symbols: {a: 1}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`,
			want: `job.yaml:6:23: dag.nodes[0].params.count: want an integer, got the string "ten"
job.yaml:6:37: dag.nodes[0].params.symbols: want a list of strings, got a mapping`,
		},
		{
			name: "out of range",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades, params: {count: 0}}
    - {id: store, type: sink.test_store, params: {path: a.db, batch: 20000}}
  edges: [[src, store]]
`,
			want: `job.yaml:4:61: dag.nodes[0].params.count: 0 is below the minimum 1
job.yaml:5:70: dag.nodes[1].params.batch: 20000 is above the maximum 10000`,
		},
		{
			name: "missing required param without params",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store}
  edges: [[src, store]]
`,
			want: `job.yaml:5:7: dag.nodes[1].params.path: missing required param "path" (where to store)`,
		},
		{
			name: "bad enum",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: bars, type: operator.test_bars, params: {interval: 1s, label: opne}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, bars], [bars, store]]
`,
			want: `job.yaml:5:74: dag.nodes[1].params.label: "opne" is not allowed; want one of open, close (did you mean "open"?)`,
		},
		{
			name: "bad duration",
			src: `mode: dag
shutdown_timeout: 10 secs
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: bars, type: operator.test_bars, params: {interval: 1 sec}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, bars], [bars, store]]
`,
			want: `job.yaml:2:19: shutdown_timeout: invalid duration "10 secs" (examples: 500ms, 1s, 5m, 1h, 1d)
job.yaml:6:63: dag.nodes[1].params.interval: invalid duration "1 sec" (examples: 500ms, 1s, 5m, 1h, 1d)`,
		},
		{
			name: "cross-field validation",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: f, type: operator.test_filter, params: {min_price: 10, max_price: 5}}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, f], [f, store]]
`,
			want: `job.yaml:5:78: dag.nodes[1].params.max_price: must not be below min_price (10)`,
		},
		{
			name: "unset variable",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades, params: {token: "${API_TOKEN}"}}
    - {id: store, type: sink.test_store, params: {path: "${DATA_DIR:-/tmp}/${DB_FILE}"}}
  edges: [[src, store]]
`,
			want: `job.yaml:4:61: dag.nodes[0].params.token: environment variable API_TOKEN is not set; set it or write ${API_TOKEN:-default}
job.yaml:5:57: dag.nodes[1].params.path: environment variable DB_FILE is not set; set it or write ${DB_FILE:-default}`,
		},
		{
			name: "bad variable reference",
			src: `mode: dag
name: "${JOB NAME}"
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: "${DIR"}}
  edges: [[src, store]]
`,
			want: `job.yaml:2:7: name: bad variable reference ${JOB NAME}; want ${NAME} or ${NAME:-default}
job.yaml:6:57: dag.nodes[1].params.path: unclosed ${ in "${DIR"`,
		},
		{
			name: "bad edge shape",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - [src, store]
    - [src]
    - src -> store
    - {from: src}
`,
			want: `job.yaml:8:7: dag.edges[1]: want an edge as [from, to] or {from: a, to: b, capacity: 64, policy: block}, got a list
job.yaml:9:7: dag.edges[2]: want an edge as [from, to] or {from: a, to: b, capacity: 64, policy: block}, got the string "src -> store"
job.yaml:10:7: dag.edges[3]: an edge needs from and to`,
		},
		{
			name: "bad policy and capacity",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges:
    - {from: src, to: store, capacity: 0, policy: drop_old}
`,
			want: `job.yaml:7:40: dag.edges[0].capacity: must be at least 1, got 0
job.yaml:7:51: dag.edges[0].policy: unknown policy "drop_old"; want block, drop_oldest or drop_newest (did you mean "drop_oldest"?)`,
		},
		{
			name: "bad on_error",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}, on_error: skp}
  edges: [[src, store]]
`,
			want: `job.yaml:5:74: dag.nodes[1].on_error: unknown on_error policy "skp"; want fail, skip or dead_letter (did you mean "skip"?)`,
		},
		{
			name: "dead_letter without its edge",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: f, type: operator.test_filter, on_error: dead_letter}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, f], [f, store]]
`,
			want: `job.yaml:5:7: dag.nodes[1]: node "f" has on_error: dead_letter but no edge from f.dead_letter`,
		},
		{
			name: "parallelism 0",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}, parallelism: 0}
  edges: [[src, store]]
`,
			want: `job.yaml:5:77: dag.nodes[1].parallelism: must be at least 1, got 0`,
		},
		{
			name: "node shape",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades, paramz: {}}
    - {type: sink.test_store, params: {path: a.db}}
    - {id: "a.b", type: operator.test_filter}
    - {id: x, type: [sink.test_store]}
    - just-a-string
  edges: [[src, store]]
`,
			want: `job.yaml:4:45: dag.nodes[0].paramz: unknown key "paramz"; did you mean "params"?
job.yaml:5:7: dag.nodes[1]: missing required key "id"
job.yaml:6:12: dag.nodes[2].id: node id "a.b" may hold only letters, digits, _ and -
job.yaml:7:21: dag.nodes[3].type: want a string, got a list
job.yaml:8:7: dag.nodes[4]: want a mapping, got the string "just-a-string"
job.yaml:9:17: dag.edges[0]: unknown node "store"; nodes are: src, x`,
		},
		{
			name: "dag and dag.graph both",
			src: `mode: dag
dag:
  nodes: []
  graph:
    nodes: []
`,
			want: `job.yaml:4:3: dag.graph: give nodes and edges either under dag or under dag.graph, not both`,
		},
		{
			name: "classic missing sink",
			src: `mode: classic
classic:
  spec:
    name: c
    source: {type: provider.test_trades}
    operators: [{type: operator.test_filter}]
`,
			want: `job.yaml:4:5: classic.spec: missing required key "sink"`,
		},
		{
			name: "classic wrong slot kinds",
			src: `mode: classic
classic:
  spec:
    source: {type: operator.test_filter}
    operators:
      - {type: sink.test_store}
      - {type: operator.test_bars}
    sink: {type: sink.test_stor}
`,
			want: `job.yaml:4:20: classic.spec.source.type: operator.test_filter is an operator; this slot takes a source
job.yaml:6:16: classic.spec.operators[0].type: sink.test_store is a sink; this slot takes an operator
job.yaml:7:9: classic.spec.operators[1].params.interval: missing required param "interval" (bar length)
job.yaml:8:18: classic.spec.sink.type: unknown component type "sink.test_stor"; did you mean "sink.test_store"?`,
		},
		{
			name: "classic batcher params",
			src: `mode: classic
classic:
  spec:
    source: {type: provider.test_trades}
    batcher: {max_rows: 0, flush_interval: 1x, drop_policy: drop, max_row: 5}
    sink: {type: sink.test_store, params: {path: a.db}}
`,
			want: `job.yaml:5:25: classic.spec.batcher.max_rows: 0 is below the minimum 1
job.yaml:5:44: classic.spec.batcher.flush_interval: invalid duration "1x" (examples: 500ms, 1s, 5m, 1h, 1d)
job.yaml:5:61: classic.spec.batcher.drop_policy: "drop" is not allowed; want one of block, drop_oldest, drop_newest
job.yaml:5:67: classic.spec.batcher.max_row: unknown param "max_row" for operator.buffer; did you mean "max_rows"?`,
		},
		{
			name: "classic incompatible kinds",
			src: `mode: classic
classic:
  spec:
    source: {type: provider.test_bars}
    operators: [{type: operator.test_bars, params: {interval: 1m}}]
    sink: {type: sink.test_store, params: {path: a.db}}
`,
			want: `job.yaml:5:17: classic.spec.operators[0]: edge source -> test_bars: "source" (provider.test_bars) sends bar records but "test_bars" (operator.test_bars) takes trade`,
		},
		{
			name: "metrics and feedback",
			src: `mode: dag
metrics: {enable: yes, listen: localhost}
feedback: {enable_feedback: true, scale_soft: 1.5, soft_at: 0.9, hard_at: 0.8, scale_ok: "1"}
batch_size: 0
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`,
			want: `job.yaml:2:19: metrics.enable: want true or false, got the string "yes"
job.yaml:2:32: metrics.listen: want host:port such as 127.0.0.1:9108, got "localhost"
job.yaml:3:47: feedback.scale_soft: must be between 0 and 1, got 1.5
job.yaml:3:61: feedback.soft_at: soft_at (0.9) must be below hard_at (0.8)
job.yaml:3:90: feedback.scale_ok: want a number, got the string "1"
job.yaml:4:13: batch_size: must be at least 1, got 0`,
		},
		{
			name: "env json error",
			src:  "mode: dag\n",
			env: map[string]string{
				"MDP_UNIFIED_DAG_JSON": `{"nodes": [{"id": "src", "typ": "provider.test_trades"}]}`,
			},
			want: `env MDP_UNIFIED_DAG_JSON:1:12: dag.nodes[0]: missing required key "type"
env MDP_UNIFIED_DAG_JSON:1:26: dag.nodes[0].typ: unknown key "typ"; did you mean "type"?`,
		},
		{
			name: "env json syntax error and bad scalar env",
			src:  "mode: dag\n",
			env: map[string]string{
				"MDP_UNIFIED_DAG_JSON": `{"nodes": [}`,
				"MDP_FB_SCALE_SOFT":    "half",
				"MDP_METRICS_ENABLE":   "sometimes",
			},
			want: `job.yaml:1:7: mode: mode is dag but the job has no dag section
env MDP_UNIFIED_DAG_JSON:1:12: invalid json: invalid character '}' looking for beginning of value
env MDP_METRICS_ENABLE: metrics.enable: want true or false, got the string "sometimes"
env MDP_FB_SCALE_SOFT: feedback.scale_soft: want a number, got the string "half"`,
		},
		{
			name: "set to unknown path",
			src: `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: store, type: sink.test_store, params: {path: a.db}}
  edges: [[src, store]]
`,
			sets: []string{
				"metrics.enabel=true",
				"dag.nodes.srcc.params.rate=10",
				"dag.nodes[5].params.rate=10",
				"dag.nodes.src.params.count=abc",
				"dag.nodes.store.params.path.x=1",
				"nonsense",
			},
			want: `--set metrics.enabel: metrics.enabel: unknown key "enabel"; did you mean "enable"?
--set dag.nodes.srcc.params.rate: dag.nodes: no item with id "srcc"; did you mean "src"?
--set dag.nodes[5].params.rate: dag.nodes: index 5 is out of range; the list has 2 items
--set dag.nodes.src.params.count: dag.nodes[0].params.count: want an integer, got the string "abc"
--set dag.nodes.store.params.path.x: dag.nodes[1].params.path: cannot set key "x" in the string "a.db"
--set: want path=value, got "nonsense"`,
		},
		{
			name: "both sections without mode",
			src:  precedenceFile[len("mode: dag\n"):],
			sets: []string{"dag.nodes[x].id=y", "classic.spec.operators[0].id=z"},
			want: `job.yaml:1:1: mode: required when the job has both a dag and a classic section; set mode: dag or mode: classic
--set dag.nodes[x].id: bad path "dag.nodes[x].id": index "x" is not a number
--set classic.spec.operators[0].id: classic.spec.operators: not set, so there is no item [0]`,
		},
		{
			name: "mode flag invalid",
			mode: "stream",
			src: `dag:
  nodes:
    - {id: src, type: provider.test_trades}
`,
			want: `--mode: mode: unknown mode "stream"; want classic or dag`,
		},
		{
			name: "two documents",
			src:  "mode: dag\n---\nmode: classic\n",
			want: `job.yaml:2:1: a job file holds one document; remove the second one`,
		},
		{
			name: "merge keys",
			src: `mode: dag
defaults: &d {type: sink.test_store}
dag:
  nodes:
    - {id: src, type: provider.test_trades, "$schema": x}
    - {<<: *d, id: store, params: {path: a.db}}
  edges: [[src, store]]
`,
			want: `job.yaml:2:1: defaults: unknown key "defaults"; valid keys: mode, name, dag, classic, metrics, feedback, shutdown_timeout, batch_size, restart, checkpoint, scaleout
job.yaml:5:45: dag.nodes[0].$schema: unknown key "$schema"; valid keys: id, type, params, parallelism, on_error, chain
job.yaml:6:7: dag.nodes[1]: missing required key "type"
job.yaml:6:8: dag.nodes[1].<<: merge keys (<<) are not supported; write the keys out`,
		},
		{
			name: "not a mapping",
			src:  "- mode: dag\n",
			want: `job.yaml:1:1: a job file must be a mapping of key: value, got a list`,
		},
		{
			name: "several errors at once",
			src: `mode: dag
name: demo
metrics: {enable: true, listn: ":9108"}
dag:
  nodes:
    - id: src
      type: provider.test_trades
      params: {symbols: [AAPL], rate: fast}
    - id: bars
      type: operator.test_bars
      params: {interval: 0s, label: close}
      parallelism: 0
    - id: orphan
      type: operator.test_filter
    - id: store
      type: sink.test_sotre
      params: {path: "${OUT_DIR}/bars.db"}
  edges:
    - [src, bars]
    - [bars, stroe]
    - {from: bars.late, to: store, policy: fifo}
`,
			want: `job.yaml:3:25: metrics.listn: unknown key "listn"; did you mean "listen"?
job.yaml:8:39: dag.nodes[0].params.rate: want a number, got the string "fast"
job.yaml:11:26: dag.nodes[1].params.interval: 0s is below the minimum 1ms
job.yaml:12:20: dag.nodes[1].parallelism: must be at least 1, got 0
job.yaml:13:7: dag.nodes[2]: node "orphan" is not connected to any source
job.yaml:16:13: dag.nodes[3].type: unknown component type "sink.test_sotre"; did you mean "sink.test_store"?
job.yaml:17:22: dag.nodes[3].params.path: environment variable OUT_DIR is not set; set it or write ${OUT_DIR:-default}
job.yaml:20:14: dag.edges[1]: unknown node "stroe"; did you mean "store"?
job.yaml:21:44: dag.edges[2].policy: unknown policy "fifo"; want block, drop_oldest or drop_newest`,
		},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "job.yaml"
			}
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			doc, err := LoadBytes(file, []byte(tc.src), LoadOptions{Env: envMap(env), Sets: tc.sets, Mode: tc.mode})
			if err == nil {
				t.Fatalf("loaded without error: %+v", doc)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestBatcherWithoutBuffer loads with a registry that lacks operator.buffer:
// a classic batcher must then be an error.
func TestBatcherWithoutBuffer(t *testing.T) {
	r := component.NewRegistry()
	registerTestComponents(r, false)
	_, err := LoadBytes("job.yaml", []byte(`classic:
  spec:
    source: {type: provider.test_trades}
    batcher: {max_rows: 10}
    sink: {type: sink.test_store, params: {path: a.db}}
`), LoadOptions{Env: envMap(nil), Registry: r})
	want := "job.yaml:4:14: classic.spec.batcher: a batcher compiles to operator.buffer, which is not registered in this build"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
