// Command benchbars measures the reference bars workload (docs/bench/
// WORKLOAD.md) through mdp and through the hand-written limit loop in the same
// run, and prints each run, the medians, the ratio of mdp to go-limit-slice,
// and mdp's peak RSS. It checks every mdp checksum against the reference.
//
//	go run ./scripts/benchbars -runs 5
//
// With -against REV it also builds mdp from git revision REV (git archive into
// a temporary directory) and runs its DAG config in the same runs, so a change
// is compared with the code before it under the same machine conditions: it
// prints both ratios to the limit loop, the median of the per-run rate ratios
// and the median CPU time (user + system) of each.
//
//	go run ./scripts/benchbars -runs 21 -against main~3
//
// With -parallel N it also runs the DAG config with operator.bars at
// parallelism N (the source, whose parallelism the config leaves unset,
// then runs N instances too: N forward-chained pipelines), with both the
// source (provider.synthetic splits its symbols) and operator.bars set to
// N, and with operator.bars at N but the source held at 1 (one source
// instance splitting every batch across N queues), all with the same
// checksum, and prints their ratios to parallelism 1; with -parallel 2 it
// also runs the limit program's two-goroutine fold (go-limit-slice2: the
// trades split by symbol in advance, each half folded on its own core) and
// prints its ratio to go-limit-slice, the most two cores give this
// machine's fold, and the CPU of each fold;
// with -nopgo it also builds this tree's mdp with -pgo=off and prints the
// gain of the profile-guided build (cmd/mdp/default.pgo) in the same runs;
// with -nochain it also runs the DAG config with operator chaining off
// (chain: false on every node, so each runs in its own goroutine behind a
// queue) and prints the gain of chaining in the same runs.
// scripts/bench runs these for the README's figures.
//
// With -configs it runs instead every shipped bench config
// (configs/bench/*.yaml, not the job tests) as shipped and with every
// operator node at -configs-parallel (default 2; the sources follow the
// planner), alternating in the same runs, and prints for each the median
// per-run speed-up (parallelism 1 wall time over parallelism N's) and the
// median CPU per run of each; a config that runs slower split is marked
// SLOWER. Classic-mode configs have no per-node parallelism and are listed
// as such.
//
//	go run ./scripts/benchbars -configs -runs 11
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// reference is the WORKLOAD.md checksum for N = 10,000,000, seed 42, 100 symbols.
var reference = map[string]any{
	"bars": 10000.0, "trades": 10000000.0, "volume": 505019586.0,
	"open_sum": 1483137.81, "high_sum": 1498043.93, "low_sum": 1468048.99, "close_sum": 1482980.37,
}

const refVWAP = 1483032.679894

type result struct {
	rate  float64
	rssMB float64
	wall  time.Duration
	cpu   time.Duration // user + system
}

func main() {
	runs := flag.Int("runs", 5, "runs of each variant")
	limitDir := flag.String("limit", "docs/bench/limit", "directory of the limit program")
	against := flag.String("against", "", "git revision to build a second mdp from and run in the same runs")
	ckEvery := flag.Duration("checkpoint", 0, "also run this tree's DAG config with checkpoints at this interval (a store in a temporary directory)")
	parallel := flag.Int("parallel", 0, "also run the DAG config with operator.bars at this parallelism")
	nopgo := flag.Bool("nopgo", false, "also build this tree's mdp with -pgo=off and run it in the same runs")
	nochain := flag.Bool("nochain", false, "also run the DAG config with operator chaining off (chain: false on every node)")
	configs := flag.Bool("configs", false, "instead, run every configs/bench config at parallelism 1 and -configs-parallel in the same runs")
	configsPar := flag.Int("configs-parallel", 2, "the operators' parallelism for -configs")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "benchbars")
	check(err)
	defer os.RemoveAll(tmp)
	mdp := filepath.Join(tmp, "mdp")
	limit := filepath.Join(tmp, "limit")
	run("go", "build", "-o", mdp, "./cmd/mdp")
	if *configs {
		runConfigs(mdp, *runs, *configsPar)
		return
	}
	build := exec.Command("go", "build", "-o", limit, ".")
	build.Dir = *limitDir
	build.Stderr = os.Stderr
	check(build.Run())

	type variant struct {
		name string
		dir  string // working directory ("" for this one)
		args []string
	}
	variants := []variant{
		{"go-limit-slice", "", []string{limit, "-n", "10000000", "-variant", "slice"}},
		{"mdp dag", "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn"}},
		{"mdp classic", "", []string{mdp, "run", "--config", "configs/bench/bars-classic.yaml", "--log-level", "warn"}},
	}
	ckName := fmt.Sprintf("mdp dag ckpt %s", *ckEvery)
	if *ckEvery > 0 {
		variants = append(variants, variant{ckName, "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn",
			"--set", "checkpoint.interval=" + ckEvery.String(), "--set", "checkpoint.store=" + filepath.Join(tmp, "checkpoints")}})
	}
	parName := fmt.Sprintf("mdp dag p%d", *parallel)
	parSrcName := fmt.Sprintf("mdp dag p%d src", *parallel)
	parSrc1Name := fmt.Sprintf("mdp dag p%d src1", *parallel)
	if *parallel > 0 {
		variants = append(variants, variant{parName, "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn",
			"--set", fmt.Sprintf("dag.nodes.bars.parallelism=%d", *parallel)}})
		variants = append(variants, variant{parSrcName, "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn",
			"--set", fmt.Sprintf("dag.nodes.bars.parallelism=%d", *parallel), "--set", fmt.Sprintf("dag.nodes.src.parallelism=%d", *parallel)}})
		variants = append(variants, variant{parSrc1Name, "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn",
			"--set", fmt.Sprintf("dag.nodes.bars.parallelism=%d", *parallel), "--set", "dag.nodes.src.parallelism=1"}})
	}
	const slice2Name = "go-limit-slice2"
	if *parallel == 2 {
		variants = append(variants, variant{slice2Name, "", []string{limit, "-n", "10000000", "-variant", "slice2"}})
	}
	const nochainName = "mdp dag nochain"
	if *nochain {
		variants = append(variants, variant{nochainName, "", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn",
			"--set", "dag.nodes.src.chain=false", "--set", "dag.nodes.bars.chain=false", "--set", "dag.nodes.checksum.chain=false"}})
	}
	const nopgoName = "mdp dag nopgo"
	if *nopgo {
		bin := filepath.Join(tmp, "mdp-nopgo")
		run("go", "build", "-pgo=off", "-o", bin, "./cmd/mdp")
		variants = append(variants, variant{nopgoName, "", []string{bin, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn"}})
	}
	againstName := "mdp dag@" + *against
	if *against != "" {
		dir := filepath.Join(tmp, "against")
		bin := filepath.Join(tmp, "mdp-against")
		checkout(*against, dir)
		b := exec.Command("go", "build", "-o", bin, "./cmd/mdp")
		b.Dir, b.Stdout, b.Stderr = dir, os.Stderr, os.Stderr
		check(b.Run())
		variants = append(variants, variant{againstName, dir, []string{bin, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn"}})
	}
	results := map[string][]result{}
	perRun := map[string][]result{} // in run order, never sorted
	for r := 0; r < *runs; r++ {
		// The limit loop first, then the mdp variants in an order that
		// rotates from run to run, so none always follows the same one.
		mdps := variants[1:]
		order := append([]variant{variants[0]}, mdps[r%len(mdps):]...)
		order = append(order, mdps[:r%len(mdps)]...)
		for _, v := range order {
			res := measure(v.name, v.dir, v.args)
			results[v.name] = append(results[v.name], res)
			perRun[v.name] = append(perRun[v.name], res)
			fmt.Printf("run %d %-15s %7.2f M trades/s  wall %6.3fs  peak RSS %5.1f MB\n", r+1, v.name, res.rate/1e6, res.wall.Seconds(), res.rssMB)
		}
	}
	fmt.Println()
	med := map[string]result{}
	for _, v := range variants {
		rs := results[v.name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].rate < rs[j].rate })
		m := rs[len(rs)/2]
		maxRSS := 0.0
		for _, x := range rs {
			maxRSS = max(maxRSS, x.rssMB)
		}
		med[v.name] = m
		fmt.Printf("median %-15s %7.2f M trades/s  (max peak RSS %.1f MB)\n", v.name, m.rate/1e6, maxRSS)
	}
	lim := med["go-limit-slice"].rate
	fmt.Printf("ratio mdp dag / go-limit-slice:     %.3f\n", med["mdp dag"].rate/lim)
	fmt.Printf("ratio mdp classic / go-limit-slice: %.3f\n", med["mdp classic"].rate/lim)
	fmt.Printf("classic vs dag: %+.1f%%\n", 100*(med["mdp classic"].rate/med["mdp dag"].rate-1))
	if *ckEvery > 0 {
		fmt.Printf("checkpoints every %s vs none: %+.1f%% (median per-run rate ratio %.3f)\n", *ckEvery,
			100*(med[ckName].rate/med["mdp dag"].rate-1), medianOf(perRun[ckName], perRun["mdp dag"]))
	}
	if *parallel > 0 {
		fmt.Printf("parallelism %d vs 1: %.3f (median per-run rate ratio %.3f; median CPU per run %.3fs vs %.3fs)\n", *parallel,
			med[parName].rate/med["mdp dag"].rate, medianOf(perRun[parName], perRun["mdp dag"]),
			medianCPU(perRun[parName]).Seconds(), medianCPU(perRun["mdp dag"]).Seconds())
		fmt.Printf("parallelism %d with the source vs 1: %.3f (median per-run rate ratio %.3f; median CPU per run %.3fs vs %.3fs)\n", *parallel,
			med[parSrcName].rate/med["mdp dag"].rate, medianOf(perRun[parSrcName], perRun["mdp dag"]),
			medianCPU(perRun[parSrcName]).Seconds(), medianCPU(perRun["mdp dag"]).Seconds())
		fmt.Printf("parallelism %d with the source held at 1 vs 1: %.3f (median per-run rate ratio %.3f; median CPU per run %.3fs vs %.3fs)\n", *parallel,
			med[parSrc1Name].rate/med["mdp dag"].rate, medianOf(perRun[parSrc1Name], perRun["mdp dag"]),
			medianCPU(perRun[parSrc1Name]).Seconds(), medianCPU(perRun["mdp dag"]).Seconds())
	}
	if *parallel == 2 {
		fmt.Printf("go-limit-slice2 vs go-limit-slice: %.3f (median per-run rate ratio %.3f; median CPU of the fold %.3fs vs %.3fs)\n",
			med[slice2Name].rate/lim, medianOf(perRun[slice2Name], perRun["go-limit-slice"]),
			medianCPU(perRun[slice2Name]).Seconds(), medianCPU(perRun["go-limit-slice"]).Seconds())
	}
	if *nochain {
		fmt.Printf("chained vs not: %.3f (median per-run rate ratio %.3f; median CPU per run %.3fs vs %.3fs)\n",
			med["mdp dag"].rate/med[nochainName].rate, medianOf(perRun["mdp dag"], perRun[nochainName]),
			medianCPU(perRun["mdp dag"]).Seconds(), medianCPU(perRun[nochainName]).Seconds())
	}
	if *nopgo {
		fmt.Printf("pgo vs nopgo: %.3f (median per-run rate ratio %.3f; median CPU per run %.3fs vs %.3fs)\n",
			med["mdp dag"].rate/med[nopgoName].rate, medianOf(perRun["mdp dag"], perRun[nopgoName]),
			medianCPU(perRun["mdp dag"]).Seconds(), medianCPU(perRun[nopgoName]).Seconds())
	}
	if *against == "" {
		return
	}
	fmt.Printf("ratio %s / go-limit-slice: %.3f (this tree: %.3f, %+.1f%%)\n", againstName,
		med[againstName].rate/lim, med["mdp dag"].rate/lim, 100*(med["mdp dag"].rate/med[againstName].rate-1))
	fmt.Printf("median per-run rate, this tree / %s: %.3f\n", *against, medianOf(perRun["mdp dag"], perRun[againstName]))
	fmt.Printf("median CPU per run: this tree %.3fs, %s %.3fs (%+.1f%%)\n", medianCPU(perRun["mdp dag"]).Seconds(),
		*against, medianCPU(perRun[againstName]).Seconds(),
		100*(float64(medianCPU(perRun["mdp dag"]))/float64(medianCPU(perRun[againstName]))-1))
}

// medianOf is the median of a[i].rate / b[i].rate.
func medianOf(a, b []result) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i].rate / b[i].rate
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

func medianCPU(rs []result) time.Duration {
	return medianBy(rs, func(r result) time.Duration { return r.cpu })
}

// medianBy is the median of f over rs.
func medianBy(rs []result, f func(result) time.Duration) time.Duration {
	d := make([]time.Duration, len(rs))
	for i := range rs {
		d[i] = f(rs[i])
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// checkout writes the tree of git revision rev into dir.
func checkout(rev, dir string) {
	check(os.MkdirAll(dir, 0o755))
	archive := exec.Command("git", "archive", "--format=tar", rev)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	check(err)
	untar.Stdin = pipe
	archive.Stderr, untar.Stderr = os.Stderr, os.Stderr
	check(untar.Start())
	check(archive.Run())
	check(untar.Wait())
}

func measure(name, dir string, args []string) result {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	check(cmd.Run())
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var line map[string]any
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	check(json.Unmarshal(lines[len(lines)-1], &line))
	for k, want := range reference {
		got, _ := line[k].(float64)
		if got != want.(float64) {
			fail("%s: checksum field %s = %v, want %v", name, k, line[k], want)
		}
	}
	if v, _ := line["vwap_sum"].(float64); v < refVWAP*(1-1e-9) || v > refVWAP*(1+1e-9) {
		fail("%s: vwap_sum %v, want %v", name, line["vwap_sum"], refVWAP)
	}
	rate, _ := line["events_per_s"].(float64)
	if rate == 0 {
		rate, _ = line["ticks_per_s"].(float64)
	}
	cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	if c, ok := line["cpu_s"].(float64); ok {
		// The limit program times its fold's CPU itself (generating the
		// trades, untimed, costs more than folding them).
		cpu = time.Duration(c * 1e9)
	}
	return result{rate: rate, rssMB: float64(ru.Maxrss) / 1024, wall: wall, cpu: cpu}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "benchbars: "+format+"\n", a...)
	os.Exit(1)
}
