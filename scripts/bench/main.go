// Command bench runs every figure of the README's performance section with
// the README's own commands and prints one table: each figure with its
// reference measured in the same run and the ratio to it.
//
//	go run ./scripts/bench          # short mode: a smoke run of every figure
//	go run ./scripts/bench -full    # full mode: the repetitions the README's figures are medians of
//	go run ./scripts/bench -only 'latency|parse'   # the steps whose name matches
//	go run ./scripts/bench -list    # the steps and the commands they run, nothing run
//
// Short mode runs one repetition of each step, the stores' benchmarks on
// 20,000 rows instead of a million; its figures show that every command
// still runs and reproduces its checksums, not how fast mdp is (CI runs it). Full mode is for
// the README, on a quiet machine. Rates are wall-clock; the Go benchmarks
// also report CPU ns per record, steadier when the machine is loaded.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// row is one figure of the table.
type row struct {
	figure string
	value  string
	ref    string // the reference it is compared with ("" when none)
	ratio  string
}

// step is one command of the README and the rows it yields from its output.
type step struct {
	name  string
	full  bool // full mode only
	args  func(full bool) []string
	parse func(out string) ([]row, error)
	// rounds, in full mode, runs the command this many times and parses
	// the outputs joined: a go test of several benchmarks with -count 1
	// per round alternates a figure and its reference, where -count N
	// would run each N times in a row, minutes apart, and a change in the
	// machine's load between them would show as a ratio.
	rounds int
	// env, when set, adds to the command's environment.
	env func(full bool) []string
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(argv []string, w, progress io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(w)
	full := fs.Bool("full", false, "full mode: the README's repetitions (minutes); default is the short smoke mode")
	only := fs.String("only", "", "run only the steps whose name matches this regular expression")
	list := fs.Bool("list", false, "list the steps and their commands without running them")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	var rows []row
	var failed []string
	for _, s := range steps() {
		if !re.MatchString(s.name) || (s.full && !*full) {
			continue
		}
		args := s.args(*full)
		if *list {
			rounds := ""
			if n := pickN(*full, 1, s.rounds); n > 1 {
				rounds = fmt.Sprintf("   (%d rounds)", n)
			}
			env := ""
			if s.env != nil && len(s.env(*full)) > 0 {
				env = strings.Join(s.env(*full), " ") + " "
			}
			fmt.Fprintf(w, "%-10s %s%s%s\n", s.name, env, strings.Join(args, " "), rounds)
			continue
		}
		fmt.Fprintf(progress, "bench: %s: %s\n", s.name, strings.Join(args, " "))
		start := time.Now()
		var out bytes.Buffer
		var err error
		for r := 0; r < max(1, pickN(*full, 1, s.rounds)) && err == nil; r++ {
			cmd := exec.Command(args[0], args[1:]...)
			if s.env != nil {
				cmd.Env = append(os.Environ(), s.env(*full)...)
			}
			cmd.Stdout, cmd.Stderr = &out, &out
			err = cmd.Run()
		}
		var rs []row
		if err == nil {
			rs, err = s.parse(out.String())
		}
		if err != nil {
			// The other steps still run: one broken command does not
			// throw away the minutes of figures before and after it.
			fmt.Fprintf(progress, "bench: %s FAILED: %v\n%s", s.name, err, out.String())
			failed = append(failed, s.name)
			continue
		}
		// The raw output goes with the progress, so each figure of the
		// table can be traced to the runs it is the median of.
		fmt.Fprintf(progress, "%sbench: %s done in %s\n", out.String(), s.name, time.Since(start).Round(time.Millisecond))
		rows = append(rows, rs...)
	}
	if *list {
		return nil
	}
	if len(rows) == 0 && len(failed) == 0 {
		return errors.New("no step matched")
	}
	mode := "short (smoke: one repetition, not figures to publish)"
	if *full {
		mode = "full"
	}
	fmt.Fprintf(w, "mode: %s\n\n| figure | value | reference (same run) | ratio |\n|---|---|---|---|\n", mode)
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.figure, r.value, dash(r.ref), dash(r.ratio))
	}
	if len(failed) > 0 {
		return fmt.Errorf("steps failed (their output is above): %s", strings.Join(failed, ", "))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// gotest is the command of a Go benchmark: count repetitions of benchtime each.
func gotest(bench, benchtime string, count int, pkg string) []string {
	return []string{"go", "test", "-run", "^$", "-bench", bench, "-benchtime", benchtime, "-count", strconv.Itoa(count), "-benchmem", pkg}
}

func pick(full bool, short, long string) string {
	if full {
		return long
	}
	return short
}

func pickN(full bool, short, long int) int {
	if full {
		return long
	}
	return short
}

func steps() []step {
	return []step{
		{name: "bars", args: func(full bool) []string {
			return []string{"go", "run", "./scripts/benchbars", "-runs", strconv.Itoa(pickN(full, 1, 21)), "-parallel", "2", "-nopgo", "-nochain"}
		}, parse: parseBars},
		{name: "configs", args: func(full bool) []string {
			return []string{"go", "run", "./scripts/benchbars", "-configs", "-runs", strconv.Itoa(pickN(full, 1, 11))}
		}, parse: parseConfigs},
		{name: "synthetic", args: func(full bool) []string {
			return gotest("^Benchmark(OwnedPass1|BenchFill|RandomFill)$", pick(full, "1000000x", "1s"), 1, "./source/synthetic/")
		}, rounds: 5, parse: benchRows(map[string]metric{
			"OwnedPass1/scalar": {"provider.synthetic, one of several instances: finding its own positions, scalar loop, CPU ns per position", "cpu-ns/pos", ""},
			"OwnedPass1/vector": {"provider.synthetic, one of several instances: finding its own positions, CPU ns per position", "cpu-ns/pos", "OwnedPass1/scalar"},
			"BenchFill/serial":  {"provider.synthetic bench model, one instance, CPU ns per position", "cpu-ns/pos", ""},
			"BenchFill/owned2":  {"provider.synthetic bench model, one of two instances, CPU ns per position", "cpu-ns/pos", "BenchFill/serial"},
			"RandomFill/serial": {"provider.synthetic default model, one instance, CPU ns per position", "cpu-ns/pos", ""},
			"RandomFill/owned2": {"provider.synthetic default model, one of two instances, CPU ns per position", "cpu-ns/pos", "RandomFill/serial"},
		})},
		{name: "split", args: func(full bool) []string {
			return gotest("^BenchmarkSplit$", pick(full, "1000000x", "1s"), pickN(full, 1, 5), "./md/")
		}, parse: benchRows(map[string]metric{
			"Split": {"partitioning by symbol, two splits per op", "ns/op", ""},
		})},
		{name: "partition", args: func(full bool) []string {
			return gotest("^BenchmarkPartition$", pick(full, "2000x", "20000x"), pickN(full, 1, 5), "./engine/")
		}, parse: benchRows(map[string]metric{
			"Partition/n=2": {"splitting a 1024-trade batch by symbol into 2 parts, per record", "ns/record,cpu-ns/record", ""},
			"Partition/n=4": {"splitting a 1024-trade batch by symbol into 4 parts, per record", "ns/record,cpu-ns/record", ""},
		})},
		{name: "parse", args: func(full bool) []string {
			return gotest("^Benchmark(ParseCSV|ParseJSONL|ParseCSVReference|ParseJSONLReference|ReplayCSVToBars1s|ReplayCSVToBars1sTwoFiles)$", pick(full, "1x", "10x"), 1, "./source/replay/")
		}, rounds: 5, parse: benchRows(parseMetrics)},
		{name: "latency", args: func(full bool) []string {
			return gotest("^BenchmarkPacedLatency$", pick(full, "1x", "3x"), pickN(full, 1, 3), "./engine/")
		}, parse: benchRows(map[string]metric{
			"PacedLatency": {"100k paced trades/s, ingest → sink", "p50_us,p99_us,p999_us", ""},
		})},
		{name: "barlatency", args: func(full bool) []string {
			return gotest("^BenchmarkBarLatency", pick(full, "1x", "5x"), pickN(full, 1, 3), "./integration/")
		}, parse: benchRows(nil)},
		{name: "startup", args: func(full bool) []string {
			return gotest("^BenchmarkRunOneEvent$", pick(full, "5x", "50x"), 1, "./cli/")
		}, parse: benchRows(map[string]metric{
			"RunOneEvent": {"start-up: a one-event job, mdp run start to exit", "ns/op", ""},
		})},
		{name: "sqlite", env: storeRows, args: func(full bool) []string {
			return gotest("SQLite", "1x", pickN(full, 1, 3), "./sink/sqlite/")
		}, parse: benchRows(nil)},
		{name: "parquet", env: storeRows, args: func(full bool) []string {
			return gotest("Parquet", pick(full, "1x", "3x"), pickN(full, 1, 3), "./sink/parquet/")
		}, parse: benchRows(nil)},
		{name: "postgres", env: storeRows, args: func(bool) []string {
			return gotest(`Reference|Sink`, "1x", 1, "./sink/postgres/")
		}, parse: benchRows(nil)},
		{name: "scaleout", full: true, args: func(bool) []string {
			return gotest("^BenchmarkEmbeddedVsSingleReplay$", "3x", 5, "./scaleout/")
		}, parse: benchRows(scaleoutMetrics)},
	}
}

// storeRows is the stores' benchmark size: their default million rows in
// full mode, 20,000 in short mode (every variant runs, in seconds).
func storeRows(full bool) []string {
	if full {
		return nil
	}
	return []string{"MDP_BENCH_ROWS=20000"}
}

// scaleoutMetrics are the rows of the scaleout step: issue 18's measure,
// the rate of a file replay → 1s bars → null through the embedded
// JetStream (one worker) as a ratio to the same job in one process, per
// store and records a message (the README's "Cost, measured").
var scaleoutMetrics = map[string]metric{
	"EmbeddedVsSingleReplay/file-interval-4096-dec1": {"scale-out replay → bars, embedded JetStream, sync: interval, 4096 records a message (its default), decoders: 1: rate ratio to one process, CPU ratio, trades/s",
		"ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-interval-4096-dec2":  {"the same, decoders: 2 (the default on 2 cores)", "ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-interval-16384-dec2": {"the same, 16384 records a message", "ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-always-4096-dec2":    {"the same, sync: always, 4096 records a message (its earlier default)", "ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-always-16384-dec2":   {"the same, sync: always, 16384 records a message: the defaults", "ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-always-65536-dec2":   {"the same, sync: always, 65536 records a message", "ratio,cpu_ratio,scaleout_trades/s", ""},
	"EmbeddedVsSingleReplay/file-always-16384-dec2-m1s": {"the defaults with marker rounds every 1 s instead of 200 ms",
		"ratio,cpu_ratio,scaleout_trades/s", ""},
}

var medianLine = regexp.MustCompile(`^median (.+?)\s+([0-9.]+) M trades/s\s+\(max peak RSS ([0-9.]+) MB\)`)

// parseBars reads benchbars' medians and same-run ratios.
func parseBars(out string) ([]row, error) {
	med := map[string][2]string{}
	var p2, p2src, p2src1, chain, pgo string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if m := medianLine.FindStringSubmatch(l); m != nil {
			med[m[1]] = [2]string{m[2], m[3]}
		}
		if v, ok := strings.CutPrefix(l, "parallelism 2 vs 1: "); ok {
			p2 = v
		}
		if v, ok := strings.CutPrefix(l, "parallelism 2 with the source vs 1: "); ok {
			p2src = v
		}
		if v, ok := strings.CutPrefix(l, "parallelism 2 with the source held at 1 vs 1: "); ok {
			p2src1 = v
		}
		if v, ok := strings.CutPrefix(l, "chained vs not: "); ok {
			chain = v
		}
		if v, ok := strings.CutPrefix(l, "pgo vs nopgo: "); ok {
			pgo = v
		}
	}
	lim, ok := med["go-limit-slice"]
	if !ok || p2 == "" || p2src == "" || p2src1 == "" || chain == "" || pgo == "" {
		return nil, errors.New("benchbars printed no medians")
	}
	limRate, _ := strconv.ParseFloat(lim[0], 64)
	rows := []row{{"bars workload: go-limit-slice (M trades/s, peak RSS)", lim[0] + ", " + lim[1] + " MB", "", ""}}
	for _, n := range []string{"mdp dag", "mdp classic", "mdp dag p2", "mdp dag p2 src", "mdp dag p2 src1", "mdp dag nochain", "mdp dag nopgo"} {
		v, ok := med[n]
		if !ok {
			return nil, fmt.Errorf("benchbars printed no median for %s", n)
		}
		r, _ := strconv.ParseFloat(v[0], 64)
		rows = append(rows, row{"bars workload: " + n + " (M trades/s, peak RSS)", v[0] + ", " + v[1] + " MB", "go-limit-slice " + lim[0], fmt.Sprintf("%.3f", r/limRate)})
	}
	rows = append(rows, row{"bars workload: parallelism 2 (bars) / parallelism 1", p2, "mdp dag", ""})
	rows = append(rows, row{"bars workload: parallelism 2 (source and bars) / parallelism 1", p2src, "mdp dag", ""})
	rows = append(rows, row{"bars workload: parallelism 2 (bars, source held at 1) / parallelism 1", p2src1, "mdp dag", ""})
	rows = append(rows, row{"bars workload: chained / chain: false", chain, "mdp dag nochain", ""})
	rows = append(rows, row{"bars workload: PGO build / -pgo=off", pgo, "mdp dag nopgo", ""})
	return rows, nil
}

var configLine = regexp.MustCompile(`^(configs/\S+)\s+parallelism (\d+) vs 1: (.*)$`)

// parseConfigs reads benchbars -configs: one row per config it split, and
// the load average, without which its wall ratios mean little.
func parseConfigs(out string) ([]row, error) {
	var rows []row
	load := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if m := configLine.FindStringSubmatch(l); m != nil {
			rows = append(rows, row{m[1] + ": operators at parallelism " + m[2] + " / as shipped", m[3], "the same config, same runs", ""})
		}
		if v, ok := strings.CutPrefix(l, "load average at the start: "); ok {
			load = v
		}
	}
	if len(rows) == 0 {
		return nil, errors.New("benchbars -configs printed no config")
	}
	if load != "" {
		rows = append(rows, row{"configs: load average at the start", load, "", ""})
	}
	return rows, nil
}

// metric names the table figure of a benchmark and the units it reports.
type metric struct {
	figure string
	units  string // comma-separated
	ref    string // the benchmark name of its same-run reference, if any
}

// benchLine is a result line of go test -bench: the benchmark's name
// (sub-benchmark names may hold '-'; the shortest name before an optional
// -GOMAXPROCS suffix is taken, so a name must not end in -<digits>), then
// the iterations and the measurements.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// benchRows reads go test -bench output: the median of each unit of each
// benchmark over its -count repetitions. With a nil map every benchmark and
// every unit but B/op and allocs/op becomes a row.
func benchRows(want map[string]metric) func(string) ([]row, error) {
	return func(out string) ([]row, error) {
		vals := map[string]map[string][]float64{}
		var order []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
			if m == nil {
				continue
			}
			name := m[1]
			if vals[name] == nil {
				vals[name] = map[string][]float64{}
				order = append(order, name)
			}
			f := strings.Fields(m[2])
			for i := 0; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				vals[name][f[i+1]] = append(vals[name][f[i+1]], v)
			}
		}
		if len(order) == 0 {
			return nil, errors.New("no benchmark results")
		}
		var rows []row
		if want == nil {
			for _, n := range order {
				var units []string
				for u := range vals[n] {
					if u != "B/op" && u != "allocs/op" {
						units = append(units, u)
					}
				}
				sort.Strings(units)
				for _, u := range units {
					rows = append(rows, row{figure: n + " (" + u + ")", value: medianStr(vals[n][u])})
				}
			}
			return rows, nil
		}
		for n := range want {
			if _, ok := vals[n]; !ok {
				return nil, fmt.Errorf("benchmark Benchmark%s did not run", n)
			}
		}
		for _, n := range order {
			m, ok := want[n]
			if !ok {
				continue
			}
			var parts []string
			for _, u := range strings.Split(m.units, ",") {
				vs, ok := vals[n][u]
				if !ok {
					return nil, fmt.Errorf("benchmark Benchmark%s reported no %s", n, u)
				}
				parts = append(parts, medianStr(vs)+" "+u)
			}
			r := row{figure: m.figure, value: strings.Join(parts, ", ")}
			if m.ref != "" {
				rv, ok := vals[m.ref]
				if !ok {
					return nil, fmt.Errorf("reference Benchmark%s did not run", m.ref)
				}
				u := strings.Split(m.units, ",")[0]
				r.ref = m.ref + " " + medianStr(rv[u])
				r.ratio = fmt.Sprintf("%.3f", median(vals[n][u])/median(rv[u]))
			}
			rows = append(rows, r)
		}
		return rows, nil
	}
}

// parseMetrics are the rows of the parse step. The replay jobs are
// sub-benchmarks, one per decoding plan, each its own row.
var parseMetrics = map[string]metric{
	"ParseCSV":            {"CSV replay parse (tardis layout), CPU ns per trade", "cpu-ns/trade", "ParseCSVReference"},
	"ParseJSONL":          {"JSON lines replay parse, CPU ns per trade", "cpu-ns/trade", "ParseJSONLReference"},
	"ParseCSVReference":   {"CSV minimal hand-written parse of the same file, CPU ns per trade", "cpu-ns/trade", ""},
	"ParseJSONLReference": {"JSON lines minimal hand-written parse of the same file, CPU ns per trade", "cpu-ns/trade", ""},
	"ReplayCSVToBars1s/decoders=1": {"CSV replay → 1s bars → sink.null, one file decoded on the source goroutine, trades/s and CPU ns per trade",
		"trades/s,cpu-ns/trade", ""},
	"ReplayCSVToBars1s/decoders=2/whole": {"the same job, the file decoded whole on a decoder goroutine of its own (the default on 2 cores)",
		"trades/s,cpu-ns/trade", ""},
	"ReplayCSVToBars1s/decoders=2/pieces": {"the same job, the file decoded in pieces by two workers (file_pieces)", "trades/s,cpu-ns/trade", ""},
	"ReplayCSVToBars1sTwoFiles/decoders=1": {"the same trades in two files merged in event time, decoded on the source goroutine",
		"trades/s,cpu-ns/trade", ""},
	"ReplayCSVToBars1sTwoFiles/decoders=2": {"the two files each decoded on a goroutine of its own", "trades/s,cpu-ns/trade", ""},
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func medianStr(v []float64) string {
	m := median(v)
	if m >= 1e5 {
		return fmt.Sprintf("%.4g", m)
	}
	return strconv.FormatFloat(m, 'f', -1, 64)
}
