package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestList prints every step of short mode and its command, nothing run.
func TestList(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-list"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"bars", "configs", "synthetic", "split", "parse", "latency", "barlatency", "startup"} {
		if !regexp.MustCompile(`(?m)^` + s + ` +go `).MatchString(out.String()) {
			t.Errorf("-list has no step %s:\n%s", s, out.String())
		}
	}
	// The stores run in short mode too, on 20,000 rows.
	for _, s := range []string{"sqlite", "parquet", "postgres"} {
		if !regexp.MustCompile(`(?m)^` + s + ` +MDP_BENCH_ROWS=20000 go test `).MatchString(out.String()) {
			t.Errorf("-list has no short step %s:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "scaleout") {
		t.Errorf("short mode lists the scale-out step:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"-list", "-full"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "MDP_BENCH_ROWS") || !strings.Contains(out.String(), "(5 rounds)") {
		t.Errorf("full mode: stores at their full size, parse in rounds:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "scaleout   go test -run ^$ -bench ^BenchmarkEmbeddedVsSingleReplay$ -benchtime 3x -count 5 -benchmem ./scaleout/\n") {
		t.Errorf("full mode has no scaleout step:\n%s", out.String())
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

// TestParseStepRows: the parse step reads go test's lines, sub-benchmarks
// of the replay jobs included, into one row per figure, each ratio to its
// reference from the same output.
func TestParseStepRows(t *testing.T) {
	out := `BenchmarkParseCSV-2   	      10	 80000000 ns/op	        80.00 cpu-ns/trade	   12500000 trades/s	  413808 B/op	     891 allocs/op
BenchmarkParseCSVReference-2   	      10	 60000000 ns/op	        60.00 cpu-ns/trade	   16666666 trades/s	  327152 B/op	     114 allocs/op
BenchmarkParseJSONL-2   	      10	 100000000 ns/op	        100.0 cpu-ns/trade	   10000000 trades/s
BenchmarkParseJSONLReference-2   	      10	 80000000 ns/op	        80.00 cpu-ns/trade	   12500000 trades/s
BenchmarkReplayCSVToBars1s/decoders=1-2         	       3	 100000000 ns/op	        95.00 cpu-ns/trade	  10000000 trades/s
BenchmarkReplayCSVToBars1s/decoders=2/whole-2   	       3	  90000000 ns/op	       120.0 cpu-ns/trade	  11000000 trades/s
BenchmarkReplayCSVToBars1s/decoders=2/pieces-2  	       3	  80000000 ns/op	       125.0 cpu-ns/trade	  12000000 trades/s
BenchmarkReplayCSVToBars1sTwoFiles/decoders=1-2 	       3	 100000000 ns/op	        97.00 cpu-ns/trade	   9000000 trades/s
BenchmarkReplayCSVToBars1sTwoFiles/decoders=2-2 	       3	  70000000 ns/op	       121.0 cpu-ns/trade	  14000000 trades/s
`
	rows, err := benchRows(parseMetrics)(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(parseMetrics) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(parseMetrics), rows)
	}
	if r := rows[0]; r.ratio != "1.333" || !strings.Contains(r.ref, "ParseCSVReference 60") {
		t.Errorf("CSV row %+v: want ratio 1.333 to ParseCSVReference 60", r)
	}
	if r := rows[8]; r.value != "1.4e+07 trades/s, 121 cpu-ns/trade" || r.figure != parseMetrics["ReplayCSVToBars1sTwoFiles/decoders=2"].figure {
		t.Errorf("two files, two decoders: %+v", r)
	}
}

// TestParseConfigs reads benchbars -configs' lines into rows, the classic
// config (skipped) left out.
func TestParseConfigs(t *testing.T) {
	out := `load average at the start: 0.50 0.40 0.30
configs/bench/bars-classic.yaml  no operator node to set (classic mode): skipped
configs/bench/bars.yaml          parallelism 2 vs 1: 1.700 (median per-run wall ratio; median wall 0.100s vs 0.170s, CPU per run 0.170s vs 0.160s)
configs/bench/join.yaml          parallelism 2 vs 1: 0.900 (median per-run wall ratio; median wall 1.000s vs 0.900s, CPU per run 0.900s vs 0.800s)  SLOWER
load average at the end: 0.60 0.40 0.30
`
	rows, err := parseConfigs(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].figure != "configs/bench/bars.yaml: operators at parallelism 2 / as shipped" || !strings.HasPrefix(rows[0].value, "1.700 ") ||
		!strings.HasSuffix(rows[1].value, "SLOWER") || rows[2].value != "0.50 0.40 0.30" {
		t.Fatalf("rows %+v", rows)
	}
	if _, err := parseConfigs("configs/bench/bars-classic.yaml  no operator node to set (classic mode): skipped\n"); err == nil {
		t.Fatal("no error without a config row")
	}
}

// TestParseScaleoutRows: the scaleout step's sub-benchmarks, whose names
// hold '-', become one row each, in output order, the medians over the
// -count repetitions of the rate ratio, the CPU ratio and the rate; the
// -GOMAXPROCS suffix is cut and other benchmarks are left out.
func TestParseScaleoutRows(t *testing.T) {
	var out strings.Builder
	names := []string{"file-interval-4096-dec1", "file-interval-4096-dec2", "file-interval-16384-dec2", "file-always-4096-dec2", "file-always-16384-dec2", "file-always-65536-dec2", "file-always-16384-dec2-m1s"}
	for rep, r := range []float64{0.5, 0.7, 0.6} {
		for i, n := range names {
			line := "BenchmarkEmbeddedVsSingleReplay/%s-2   \t       3\t 612345678 ns/op\t      3790 trades/frame\t       256.0 markers/run\t  %.3f ratio\t  %.3f cpu_ratio\t   %d scaleout_trades/s\t 15500000 single_trades/s\n"
			out.WriteString(fmt.Sprintf(line, n, r+float64(i)/100, r/2, 9_000_000+rep*1_000_000+i))
		}
	}
	out.WriteString("BenchmarkEmbeddedVsSingle/file-always-4096-2   \t 2\t 1 ns/op\t 0.05 ratio\n")
	rows, err := benchRows(scaleoutMetrics)(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(names) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(names), rows)
	}
	for i, n := range names {
		m := scaleoutMetrics["EmbeddedVsSingleReplay/"+n]
		ratio, _ := strconv.ParseFloat(fmt.Sprintf("%.3f", 0.6+float64(i)/100), 64) // the median of 0.5, 0.6, 0.7 plus i/100, as printed
		want := fmt.Sprintf("%s ratio, 0.3 cpu_ratio, %s scaleout_trades/s", strconv.FormatFloat(ratio, 'f', -1, 64), fmt.Sprintf("%.4g", float64(10_000_000+i)))
		if rows[i].figure != m.figure || rows[i].value != want {
			t.Errorf("row %d: %+v, want %q: %q", i, rows[i], m.figure, want)
		}
	}
}
