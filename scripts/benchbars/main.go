// Command benchbars measures the reference bars workload (docs/bench/
// WORKLOAD.md) through mdp and through the hand-written limit loop in the same
// run, and prints each run, the medians, the ratio of mdp to go-limit-slice,
// and mdp's peak RSS. It checks every mdp checksum against the reference.
//
//	go run ./scripts/benchbars -runs 5
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
}

func main() {
	runs := flag.Int("runs", 5, "runs of each variant")
	limitDir := flag.String("limit", "docs/bench/limit", "directory of the limit program")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "benchbars")
	check(err)
	defer os.RemoveAll(tmp)
	mdp := filepath.Join(tmp, "mdp")
	limit := filepath.Join(tmp, "limit")
	run("go", "build", "-o", mdp, "./cmd/mdp")
	build := exec.Command("go", "build", "-o", limit, ".")
	build.Dir = *limitDir
	build.Stderr = os.Stderr
	check(build.Run())

	variants := []struct {
		name string
		args []string
	}{
		{"go-limit-slice", []string{limit, "-n", "10000000", "-variant", "slice"}},
		{"mdp dag", []string{mdp, "run", "--config", "configs/bench/bars.yaml", "--log-level", "warn"}},
		{"mdp classic", []string{mdp, "run", "--config", "configs/bench/bars-classic.yaml", "--log-level", "warn"}},
	}
	results := map[string][]result{}
	for r := 0; r < *runs; r++ {
		for _, v := range variants {
			res := measure(v.name, v.args)
			results[v.name] = append(results[v.name], res)
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
}

func measure(name string, args []string) result {
	cmd := exec.Command(args[0], args[1:]...)
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
	return result{rate: rate, rssMB: float64(ru.Maxrss) / 1024, wall: wall}
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
