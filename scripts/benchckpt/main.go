// Command benchckpt measures what checkpoints every second cost on a
// workload long enough to take several: the reference bars workload
// (configs/bench/bars.yaml) with n trades, run alternately with checkpoints
// off and every interval (a store in a temporary directory), each pair in
// one run so both see the same machine conditions. It prints each run, the
// median per-run rate ratio (checkpoints / none; the figure issue 11 bounds
// at 5 %), the median per-pair CPU time ratio and the median CPU time of
// each, and checks that both variants give the same checksum. On a machine
// loaded by other work the wall-clock rates of a pair differ by far more
// than 5 % either way; the CPU ratio, the work each variant did, is the
// steadier figure there (it still counts the spinning a longer run does
// while it waits for a core).
//
//	go run ./scripts/benchckpt -runs 7 -n 300000000 -interval 1s
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

type result struct {
	rate float64
	cpu  time.Duration
	sum  string // the checksum line without its rate fields
	cps  int    // checkpoints in the store afterwards (at most keep)
}

func main() {
	runs := flag.Int("runs", 7, "pairs of runs")
	n := flag.Int("n", 300_000_000, "trades per run (enough that a run outlasts several intervals)")
	interval := flag.Duration("interval", time.Second, "checkpoint interval")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "benchckpt")
	check(err)
	defer os.RemoveAll(tmp)
	mdp := filepath.Join(tmp, "mdp")
	build := exec.Command("go", "build", "-o", mdp, "./cmd/mdp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	check(build.Run())
	base := []string{"run", "--config", "configs/bench/bars.yaml", "--log-level", "warn", "--set", fmt.Sprintf("dag.nodes.src.params.n=%d", *n)}
	var off, on []result
	for r := 0; r < *runs; r++ {
		store := filepath.Join(tmp, fmt.Sprintf("ck%d", r))
		ck := append(append([]string(nil), base...), "--set", "checkpoint.interval="+interval.String(), "--set", "checkpoint.store="+store, "--set", "checkpoint.keep=1000")
		variants := [][]string{base, ck}
		if r%2 == 1 { // alternate which goes first
			variants = [][]string{ck, base}
		}
		for _, args := range variants {
			res := measure(mdp, args)
			name := "off"
			if len(args) > len(base) {
				name = "on"
				entries, _ := os.ReadDir(store)
				res.cps = len(entries)
				if res.cps == 0 {
					// A finite job takes no final checkpoint: a run shorter than
					// the interval measured nothing of what checkpoints cost.
					fail("run %d finished before its first checkpoint (%s interval): raise -n or lower -interval", r+1, interval)
				}
				on = append(on, res)
			} else {
				off = append(off, res)
			}
			fmt.Printf("run %d checkpoints %-3s %7.2f M trades/s  cpu %6.3fs  checkpoints %d\n", r+1, name, res.rate/1e6, res.cpu.Seconds(), res.cps)
		}
		if on[r].sum != off[r].sum {
			fail("run %d: checksums differ:\n  off %s\n  on  %s", r+1, off[r].sum, on[r].sum)
		}
	}
	ratios := make([]float64, *runs)
	cpuRatios := make([]float64, *runs)
	for i := range ratios {
		ratios[i] = on[i].rate / off[i].rate
		cpuRatios[i] = on[i].cpu.Seconds() / off[i].cpu.Seconds()
	}
	sort.Float64s(ratios)
	sort.Float64s(cpuRatios)
	fmt.Printf("checkpoints every %s vs none: median per-run rate ratio %.3f (min %.3f, max %.3f); median per-run CPU ratio %.3f (min %.3f, max %.3f); median CPU per run %.3fs vs %.3fs\n",
		*interval, ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1],
		cpuRatios[len(cpuRatios)/2], cpuRatios[0], cpuRatios[len(cpuRatios)-1], medianCPU(on).Seconds(), medianCPU(off).Seconds())
}

func measure(bin string, args []string) result {
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	check(cmd.Run())
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	var line map[string]any
	check(json.Unmarshal(lines[len(lines)-1], &line))
	rate, _ := line["events_per_s"].(float64)
	if rate == 0 {
		fail("no events_per_s in %s", lines[len(lines)-1])
	}
	for _, k := range []string{"events_per_s", "ticks_per_s", "elapsed_s", "elapsed", "seconds"} {
		delete(line, k)
	}
	sum, err := json.Marshal(line)
	check(err)
	return result{rate: rate, cpu: time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)), sum: string(sum)}
}

func medianCPU(rs []result) time.Duration {
	c := make([]time.Duration, len(rs))
	for i := range rs {
		c[i] = rs[i].cpu
	}
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[len(c)/2]
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "benchckpt: "+format+"\n", a...)
	os.Exit(1)
}
