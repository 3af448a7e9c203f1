package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestList prints every step of short mode and its command, nothing run.
func TestList(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-list"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"bars", "split", "parse", "latency", "barlatency", "startup"} {
		if !regexp.MustCompile(`(?m)^` + s + ` +go `).MatchString(out.String()) {
			t.Errorf("-list has no step %s:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "sqlite") {
		t.Errorf("short mode lists the stores:\n%s", out.String())
	}
}

// TestShortSplit runs the smallest step of short mode end to end, so the
// entry point and its output parsing cannot rot.
func TestShortSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	t.Chdir("../..")
	var out, progress bytes.Buffer
	if err := run([]string{"-only", "^split$"}, &out, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if !regexp.MustCompile(`\| partitioning by symbol, two splits per op \| [0-9.]+ ns/op \| — \| — \|`).MatchString(out.String()) {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestParseBars reads benchbars' summary lines into the table's rows.
func TestParseBars(t *testing.T) {
	out := `median go-limit-slice   120.00 M trades/s  (max peak RSS 461.0 MB)
median mdp dag           96.00 M trades/s  (max peak RSS 25.0 MB)
median mdp classic       90.00 M trades/s  (max peak RSS 25.0 MB)
median mdp dag p2        60.00 M trades/s  (max peak RSS 26.0 MB)
median mdp dag p2 src   150.00 M trades/s  (max peak RSS 27.0 MB)
median mdp dag p2 src1   48.00 M trades/s  (max peak RSS 27.0 MB)
median mdp dag nochain   72.00 M trades/s  (max peak RSS 25.0 MB)
median mdp dag nopgo     80.00 M trades/s  (max peak RSS 25.0 MB)
parallelism 2 vs 1: 0.625 (median per-run rate ratio 0.620; median CPU per run 0.300s vs 0.200s)
parallelism 2 with the source vs 1: 1.563 (median per-run rate ratio 1.500; median CPU per run 0.250s vs 0.200s)
parallelism 2 with the source held at 1 vs 1: 0.500 (median per-run rate ratio 0.510; median CPU per run 0.320s vs 0.200s)
chained vs not: 1.333 (median per-run rate ratio 1.300; median CPU per run 0.200s vs 0.280s)
pgo vs nopgo: 1.200 (median per-run rate ratio 1.190; median CPU per run 0.200s vs 0.240s)
`
	rows, err := parseBars(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 13 || rows[1].ratio != "0.800" || rows[3].ratio != "0.500" || rows[4].ratio != "1.250" || rows[5].ratio != "0.400" ||
		rows[6].ratio != "0.600" || !strings.HasPrefix(rows[8].value, "0.625") || !strings.HasPrefix(rows[9].value, "1.563") ||
		!strings.HasPrefix(rows[10].value, "0.500") || !strings.HasPrefix(rows[11].value, "1.333") || !strings.HasPrefix(rows[12].value, "1.200") {
		t.Fatalf("rows %+v", rows)
	}
}
