package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mdp config prints the job as it runs: interpolation, environment and
// --set applied, secrets masked; its YAML validates and runs to the same
// output as the original job.
func TestConfigPrintsTheEffectiveJob(t *testing.T) {
	dir := t.TempDir()
	job := writeFile(t, dir, "eff.yaml", `mode: classic
classic:
  spec:
    name: eff
    source:    {type: provider.synthetic, params: {symbols: ["${SYM:-AAPL}"], count: 3000, seed: 5}}
    operators: [{type: operator.bars, params: {interval: 1s}}]
    sink:      {type: sink.stdout}
`)
	t.Setenv("SYM", "NVDA")
	code, stdout, stderr := runMDP(t, realMDP(t), "config", job, "--set", "classic.spec.source.params.seed=9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"# The effective job of " + job + " (classic mode): interpolation, environment and --set applied; secrets masked.\nmode: dag\nname: eff\n",
		"      params:\n        symbols: [NVDA]\n        seed: 9\n        count: 3000\n",
		"    - from: source\n      to: bars\n      capacity: 64\n      policy: block\n",
		"shutdown_timeout: 30s\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("no %q in\n%s", want, stdout)
		}
	}
	eff := writeFile(t, dir, "effective.yaml", stdout)
	if code, _, stderr := runMDP(t, realMDP(t), "validate", eff); code != 0 {
		t.Fatalf("the effective job does not validate: %s", stderr)
	}
	_, want, _ := runMDP(t, realMDP(t), "run", job, "--set", "classic.spec.source.params.seed=9")
	_, got, _ := runMDP(t, realMDP(t), "run", eff)
	if got != want || strings.Count(got, "\n") != 3 {
		t.Fatalf("the effective job gave other output:\n%s\nwant:\n%s", got, want)
	}

	code, stdout, _ = runMDP(t, realMDP(t), "config", "--format", "json", "--defaults", job)
	var doc struct {
		Mode string
		DAG  struct {
			Nodes []struct {
				ID     string
				Params map[string]any
			}
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &doc) != nil || doc.Mode != "dag" || len(doc.DAG.Nodes) != 3 {
		t.Fatalf("json: %d %s", code, stdout)
	}
	if p := doc.DAG.Nodes[0].Params; p["seed"] != float64(5) || p["step"] != "1ms" || p["start"] != "2024-01-02T14:30:00Z" {
		t.Fatalf("--defaults params %v", p)
	}
}

func TestConfigMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	job := writeFile(t, dir, "pg.yaml", `mode: dag
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 10}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.postgres, params: {dsn: "postgres://app:${PGPASS}@db.internal/x"}}
    - {id: late, type: sink.file, params: {path: "late-${PGPASS}.jsonl"}}
  edges: [[src, bars], [bars, store], [bars.late, late]]
`)
	t.Setenv("PGPASS", "s3cr3t-pw")
	for _, format := range []string{"yaml", "json"} {
		code, stdout, stderr := runMDP(t, realMDP(t), "config", "--format", format, job)
		if code != 0 || strings.Contains(stdout+stderr, "s3cr3t-pw") || !strings.Contains(stdout, "xxxxx") {
			t.Fatalf("%s: exit %d\n%s%s", format, code, stdout, stderr)
		}
	}
	if code, _, stderr := runMDP(t, realMDP(t), "config", "--format", "toml", job); code != 2 || !strings.Contains(stderr, `invalid --format "toml": want yaml or json`) {
		t.Fatalf("bad format: %d %s", code, stderr)
	}
	bad := writeFile(t, dir, "bad.yaml", "mode: dag\ndag: {nodes: [{id: a, type: provider.synthetc}]}\n")
	if code, _, stderr := runMDP(t, realMDP(t), "config", bad); code != 2 || !strings.Contains(stderr, `did you mean "provider.synthetic"?`) {
		t.Fatalf("bad job: %d %s", code, stderr)
	}
	_ = os.Remove(filepath.Join(dir, "late-s3cr3t-pw.jsonl"))
}

// mdp test: 0 when every case passes, 1 with a diff when one fails, 2 for a
// test file it cannot read.
func TestTestCommand(t *testing.T) {
	code, stdout, stderr := runMDP(t, realMDP(t), "test", "../configs")
	if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Fatalf("shipped configs: exit %d\n%s%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	abs, _ := filepath.Abs("../configs/dag/bars.yaml")
	failing := writeFile(t, dir, "x_test.yaml", `job: `+abs+`
cases:
  - name: wrong close
    inputs:
      src: {records: [{ts: "2024-01-02T14:30:00.1Z", symbol: AAPL, price: 100, size: 1}]}
    expect:
      out: [{symbol: AAPL, close: 101}]
`)
	code, stdout, _ = runMDP(t, realMDP(t), "test", failing)
	want := "FAIL " + failing + ": wrong close\n    out: record 1: close: got 100, want 101\nFAIL: 1 of 1 cases in 1 files failed\n"
	if code != 1 || stdout != want {
		t.Fatalf("exit %d\n%q\nwant\n%q", code, stdout, want)
	}
	bad := writeFile(t, dir, "bad_test.yaml", "cases: [{name: x, expect: {out: []}, typo: 1}]\n")
	if code, _, stderr := runMDP(t, realMDP(t), "test", bad); code != 2 || !strings.Contains(stderr, "field typo not found") {
		t.Fatalf("bad file: exit %d %s", code, stderr)
	}
}
