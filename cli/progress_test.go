package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// mdp run --progress with stderr and stdout not terminals: the records on
// stdout stay clean JSON lines and the progress arrives in the JSON log as
// records, with no carriage return or escape sequence anywhere.
func TestRunProgressToANonTerminal(t *testing.T) {
	data, err := filepath.Abs("../testdata/replay/tardis_trades.csv")
	if err != nil {
		t.Fatal(err)
	}
	job := writeFile(t, t.TempDir(), "replay.yaml", `mode: dag
dag:
  nodes:
    - {id: src, type: provider.replay, params: {path: `+data+`, preset: tardis_trades}}
    - {id: out, type: sink.stdout}
  edges: [[src, out]]
`)
	code, stdout, stderr := runMDP(t, realMDP(t), "run", "--progress", "--config", job)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsAny(stdout+stderr, "\r\x1b") {
		t.Fatal("control characters in the output")
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 5000 {
		t.Fatalf("%d lines on stdout", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("stdout line is not JSON: %q", l)
		}
	}
	done := findLog(stderr, "replay done")
	if done == nil || done["records"] != float64(5000) || done["percent"] != float64(100) {
		t.Fatalf("no replay done record in %s", stderr)
	}
}

// validate warns about relative paths when the job file is not in the
// working directory, which is what they resolve against.
func TestValidateWarnsAboutRelativePaths(t *testing.T) {
	dir := t.TempDir()
	job := func(path string) string {
		return writeFile(t, dir, "rel.yaml", `mode: dag
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 10}}
    - {id: out, type: sink.file, params: {path: `+path+`}}
  edges: [[src, out]]
`)
	}
	f := job("out/trades.jsonl")
	code, stdout, stderr := runMDP(t, realMDP(t), "validate", f)
	wd, _ := filepath.Abs(".")
	want := `warning: ` + f + `:5:7: dag.nodes[1].params.path: relative path "out/trades.jsonl" resolves against the working directory ` + wd + `, not the job file's directory ` + dir + "\n"
	if code != 0 || !strings.HasPrefix(stdout, "ok: ") || stderr != want {
		t.Fatalf("exit %d\nstdout %s\nstderr %q\nwant   %q", code, stdout, stderr, want)
	}
	f = job(filepath.Join(dir, "trades.jsonl"))
	if code, _, stderr := runMDP(t, realMDP(t), "validate", f); code != 0 || stderr != "" {
		t.Fatalf("absolute path: exit %d, %q", code, stderr)
	}
}
