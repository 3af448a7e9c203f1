package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// benchConfig is a shipped bench config and the --set flags that put its
// operators at the split parallelism (none for a classic-mode config).
type benchConfig struct {
	path string
	sets []string
}

// benchConfigs lists configs/bench/*.yaml (not the job tests, *_test.yaml)
// with the flags that set each operator node's parallelism to par.
func benchConfigs(par int) []benchConfig {
	paths, err := filepath.Glob("configs/bench/*.yaml")
	check(err)
	var out []benchConfig
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.yaml") {
			continue
		}
		raw, err := os.ReadFile(p)
		check(err)
		var doc struct {
			Mode string `yaml:"mode"`
			DAG  struct {
				Nodes []struct {
					ID   string `yaml:"id"`
					Type string `yaml:"type"`
				} `yaml:"nodes"`
			} `yaml:"dag"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			fail("%s: %v", p, err)
		}
		c := benchConfig{path: p}
		for _, n := range doc.DAG.Nodes {
			if strings.HasPrefix(n.Type, "operator.") {
				c.sets = append(c.sets, "--set", fmt.Sprintf("dag.nodes.%s.parallelism=%d", n.ID, par))
			}
		}
		out = append(out, c)
	}
	return out
}

// runConfigs runs each bench config at parallelism 1 and par, alternating
// which goes first, and prints the median per-run speed-up by wall time
// (the same job both ways, so wall time stands for rate) and the median
// CPU per run.
func runConfigs(mdp string, runs, par int) {
	fmt.Printf("load average at the start: %s\n", loadAvg())
	defer func() { fmt.Printf("load average at the end: %s\n", loadAvg()) }()
	for _, c := range benchConfigs(par) {
		if len(c.sets) == 0 {
			fmt.Printf("%-32s no operator node to set (classic mode): skipped\n", c.path)
			continue
		}
		base := []string{mdp, "run", "--config", c.path, "--log-level", "warn"}
		var one, split []result
		for r := range runs {
			for k := range 2 {
				if (r+k)%2 == 0 {
					one = append(one, timeRun(base))
				} else {
					split = append(split, timeRun(append(base[:len(base):len(base)], c.sets...)))
				}
			}
		}
		speed := make([]float64, runs)
		for i := range speed {
			speed[i] = one[i].wall.Seconds() / split[i].wall.Seconds()
		}
		sort.Float64s(speed)
		verdict := ""
		if speed[runs/2] < 1 {
			verdict = "  SLOWER"
		}
		fmt.Printf("%-32s parallelism %d vs 1: %.3f (median per-run wall ratio; median wall %.3fs vs %.3fs, CPU per run %.3fs vs %.3fs)%s\n",
			c.path, par, speed[runs/2], medianWall(split).Seconds(), medianWall(one).Seconds(),
			medianCPU(split).Seconds(), medianCPU(one).Seconds(), verdict)
	}
}

// timeRun runs args to the end and returns its wall and CPU time.
func timeRun(args []string) result {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr // stdout (a sink's own output) is dropped
	start := time.Now()
	check(cmd.Run())
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{wall: time.Since(start), cpu: time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)),
		rssMB: float64(ru.Maxrss) / 1024}
}

func medianWall(rs []result) time.Duration {
	return medianBy(rs, func(r result) time.Duration { return r.wall })
}

// loadAvg is /proc/loadavg's three load averages, or "unknown": split
// configs need both cores, so their wall ratio means little under load.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
