package jobtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mdpio/mdp/components"
)

// write puts a job and its test file in a fresh directory and loads the
// test.
func write(t *testing.T, job, test string) (*File, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "job_test.yaml")
	if err := os.WriteFile(path, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

// A job whose sink is a SQLite file: the tests must never create it.
const storeJob = `mode: dag
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 100000, max_out_of_orderness: 1s}}
    - {id: bars, type: operator.bars, params: {interval: 1s, late_policy: side_output}}
    - {id: store, type: sink.sqlite, params: {path: "${DIR}/bars.db"}}
  edges: [[src, bars], [bars, store]]
`

func TestCasesPassFailAndTouchNoStore(t *testing.T) {
	f, dir := write(t, storeJob, `env: {DIR: "`+t.TempDir()+`"}
cases:
  - name: passes
    inputs:
      src:
        file: trades.jsonl
    expect:
      store:
        - {symbol: AAPL, ts: "2024-01-02T14:30:00Z", open: 100, close: 100.3, volume: 3, trades: 2}
      bars.late: []
  - name: fails
    inputs:
      src:
        records:
          - {ts: 1704205800100000000, symbol: AAPL, price: 100, size: 1}
          - {ts: "2024-01-02T14:30:00.500Z", symbol: AAPL, price: 100.3, size: 2}
          - {ts: "2024-01-02T14:30:03Z", symbol: AAPL, price: 101, size: 1}
    expect:
      store:
        - {symbol: AAPL, ts: "2024-01-02T14:30:00Z", close: 100.25, vwap: 100.2}
    tolerance: 0.01
`)
	if err := os.WriteFile(filepath.Join(dir, "trades.jsonl"), []byte(
		`{"ts":"2024-01-02T14:30:00.1Z","symbol":"AAPL","price":100,"size":1}`+"\n"+
			`{"ts":"2024-01-02T14:30:00.5Z","symbol":"AAPL","price":100.3,"size":2}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := Run(context.Background(), f)
	if len(rs) != 2 || !rs[0].Passed() {
		t.Fatalf("%+v", rs)
	}
	want := []string{
		`store: record 1: close: got 100.3, want 100.25`,
		`store: got 2 records, want 1`,
		`store:   extra record 2: {"bar_type":"time","close":101,"end":"2024-01-02T14:30:04Z","high":101,"interval":"1s","low":101,"open":101,"provider":"test","source":"trade","start":"2024-01-02T14:30:03Z","symbol":"AAPL","trades":1,"ts":"2024-01-02T14:30:03Z","type":"bar","volume":1,"vwap":101}`,
	}
	if rs[1].Err != nil || strings.Join(rs[1].Problems, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nerr %v", strings.Join(rs[1].Problems, "\n"), rs[1].Err)
	}
	if _, err := os.Stat(filepath.Join(f.Env["DIR"], "bars.db")); !os.IsNotExist(err) {
		t.Fatalf("the store was touched: %v", err)
	}
}

func TestUnorderedAndLate(t *testing.T) {
	f, _ := write(t, storeJob, `env: {DIR: /nonexistent}
cases:
  - name: any order
    ordered: false
    inputs:
      src:
        records:
          - {ts: "2024-01-02T14:30:00.1Z", symbol: A, price: 1, size: 1}
          - {ts: "2024-01-02T14:30:00.2Z", symbol: B, price: 2, size: 1}
          - {ts: "2024-01-02T14:30:02.5Z", symbol: A, price: 3, size: 1}
          - {ts: "2024-01-02T14:30:00.3Z", symbol: A, price: 9, size: 1}
    expect:
      store:
        - {symbol: A, open: 3}
        - {symbol: B, open: 2}
        - {symbol: A, open: 1, trades: 1}
      bars.late:
        - {type: trade, symbol: A, price: 9}
`)
	if rs := Run(context.Background(), f); !rs[0].Passed() {
		t.Fatalf("%+v", rs)
	}
}

func TestProblemsWithTheTestAreErrors(t *testing.T) {
	for _, c := range []struct{ test, want string }{
		{`cases: [{name: x, inputs: {nope: {records: []}}, expect: {store: []}}]`, `inputs.nope: the job has no source "nope" (sources: src)`},
		{`cases: [{name: x, inputs: {src.quotes: {records: []}}, expect: {store: []}}]`, `inputs.src.quotes: source "src" has no port "quotes"`},
		{`cases: [{name: x, expect: {bras: []}}]`, `expect.bras: the job has no node "bras" (nodes: src, bars, store)`},
		{`cases: [{name: x, inputs: {src: {records: [{ts: 1, symbol: A, prize: 1}]}}, expect: {store: []}}]`,
			`inputs.src: record 1: unknown field "prize" (a trade has ts, symbol, provider, price, size, side, trade_id, ingest_ts, seq, type)`},
		{`cases: [{name: x, inputs: {src: {records: [{price: 1}]}}, expect: {store: []}}]`, `inputs.src: record 1: symbol is missing`},
		{`cases: [{name: x, set: [dag.nodes.bars.params.interval=fast], expect: {store: []}}]`, `load the job: `},
		{`cases: [{name: x, inputs: {src: {kind: bar, records: []}}, expect: {store: []}}]`, `inputs.src.kind: bar, but that output carries trade`},
	} {
		f, _ := write(t, storeJob, "env: {DIR: /nonexistent}\n"+c.test+"\n")
		rs := Run(context.Background(), f)
		if len(rs) != 1 || rs[0].Err == nil || !strings.Contains(rs[0].Err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.test, rs[0].Err, c.want)
		}
	}
	dir := t.TempDir()
	for _, c := range []struct{ test, want string }{
		{"cases: [{name: x, expect: {store: []}, bogus: 1}]", "field bogus not found"},
		{"cases: []", "no cases"},
		{"cases: [{expect: {store: []}}]", "a case needs a name"},
		{"cases: [{name: x}]", `case "x": expect names no node`},
		{"cases: [{name: x, inputs: {src: {}}, expect: {store: []}}]", "inputs.src: give either records or file"},
	} {
		p := filepath.Join(dir, "j_test.yaml")
		if err := os.WriteFile(p, []byte(c.test), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %s", c.test, err, c.want)
		}
	}
}

func TestFind(t *testing.T) {
	files, err := Find([]string{"../configs"})
	if err != nil || len(files) < 5 {
		t.Fatalf("%v %v", files, err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, Suffix) {
			t.Fatalf("found %s", f)
		}
	}
	if got, err := Find([]string{"../configs/dag/bars_test.yaml"}); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	if f, err := Load("../configs/dag/bars_test.yaml"); err != nil || f.Job != filepath.Join("../configs/dag", "bars.yaml") {
		t.Fatalf("%+v %v", f, err)
	}
}
