// Command benchknobs measures what a tuning knob does to a job: it runs one
// job file as it is (the reference) and with each variant's --set
// overrides, in rotating order within every run, and prints each variant's
// median rate (records per second from the job's end-of-run summary), the
// median of its per-run rate ratios to the reference, and the median CPU
// time per run of each. docs/tuning.md's figures come from it.
//
//	go run ./scripts/benchknobs -config configs/bench/bars.yaml -runs 7 \
//	  -variant 'batch 256:dag.nodes.src.params.batch_size=256' \
//	  -variant 'batch 4096:dag.nodes.src.params.batch_size=4096'
//
// -reset runs a shell command before every measured run (untimed), for a
// store that must start empty; {variant} in it and in the overrides is
// replaced by the variant's index (0 for the reference).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// variants collects -variant flags: "name:path=value;path=value".
type variants []variant

type variant struct {
	name string
	sets []string
}

func (v *variants) String() string { return fmt.Sprint(*v) }

func (v *variants) Set(s string) error {
	name, sets, ok := strings.Cut(s, ":")
	if !ok || name == "" || sets == "" {
		return fmt.Errorf("want NAME:path=value[;path=value], got %q", s)
	}
	*v = append(*v, variant{name: name, sets: strings.Split(sets, ";")})
	return nil
}

type result struct {
	rate float64
	cpu  time.Duration
}

func main() {
	config := flag.String("config", "configs/bench/bars.yaml", "the job file")
	runs := flag.Int("runs", 5, "runs of each variant")
	base := flag.String("set", "", "overrides for every variant, the reference included: path=value[;path=value]")
	reset := flag.String("reset", "", "shell command run before each measured run, untimed")
	var vs variants
	flag.Var(&vs, "variant", "NAME:path=value[;path=value]; repeat for several")
	flag.Parse()
	if len(vs) == 0 {
		fail("give at least one -variant")
	}
	tmp, err := os.MkdirTemp("", "benchknobs")
	check(err)
	defer os.RemoveAll(tmp)
	mdp := filepath.Join(tmp, "mdp")
	build := exec.Command("go", "build", "-o", mdp, "./cmd/mdp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	check(build.Run())

	all := append([]variant{{name: "reference"}}, vs...)
	per := make([][]result, len(all)) // in run order
	for r := 0; r < *runs; r++ {
		for k := range all {
			i := (k + r) % len(all) // rotate, so none always follows the same one
			v := all[i]
			idx := strconv.Itoa(i)
			if *reset != "" {
				cmd := exec.Command("sh", "-c", strings.ReplaceAll(*reset, "{variant}", idx))
				cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
				check(cmd.Run())
			}
			args := []string{"run", "--config", *config, "--log-level", "info"}
			for _, s := range append(splitSets(*base), v.sets...) {
				args = append(args, "--set", strings.ReplaceAll(s, "{variant}", idx))
			}
			res := measure(mdp, args)
			per[i] = append(per[i], res)
			fmt.Printf("run %d %-20s %10.0f records/s  CPU %6.3fs\n", r+1, v.name, res.rate, res.cpu.Seconds())
		}
	}
	fmt.Println()
	ref := per[0]
	for i, v := range all {
		fmt.Printf("%-20s median %10.0f records/s  per-run ratio to reference %.3f  median CPU %.3fs (reference %.3fs)\n",
			v.name, medianRate(per[i]), medianRatio(per[i], ref), medianCPU(per[i]).Seconds(), medianCPU(ref).Seconds())
	}
}

func splitSets(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ";")
}

// measure runs mdp and reads records_per_second from the "job finished"
// summary record it logs last.
func measure(mdp string, args []string) result {
	cmd := exec.Command(mdp, args...)
	var errOut bytes.Buffer
	cmd.Stdout = nil
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		fail("mdp %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var rate float64
	found := false
	sc := bufio.NewScanner(&errOut)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != "job finished" {
			continue
		}
		rate, _ = rec["records_per_second"].(float64)
		found = true
	}
	if !found {
		fail("mdp %s: no job finished record in its log", strings.Join(args, " "))
	}
	cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	return result{rate: rate, cpu: cpu}
}

func medianRate(rs []result) float64 {
	r := make([]float64, len(rs))
	for i := range rs {
		r[i] = rs[i].rate
	}
	sort.Float64s(r)
	return r[len(r)/2]
}

// medianRatio is the median of a[i].rate / b[i].rate: each run's variant
// against the reference of the same run.
func medianRatio(a, b []result) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i].rate / b[i].rate
	}
	sort.Float64s(r)
	return r[len(r)/2]
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
	fmt.Fprintf(os.Stderr, "benchknobs: "+format+"\n", a...)
	os.Exit(1)
}
