package scaleout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/crashtest"
)

func TestMain(m *testing.M) {
	if v := os.Getenv(natsProcEnv); v != "" {
		serveNATS(v) // the test binary as a nats-server process; never returns
	}
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// proc is an mdp process of a test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startMDP(t *testing.T, ctx context.Context, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.CommandContext(ctx, bin, args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// logLine returns the first JSON log line of the process with msg.
func (p *proc) logLine(msg string) map[string]any {
	sc := bufio.NewScanner(bytes.NewReader(p.stderr.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

// TestProcessesEqualOracle is the research note's §4.1 baseline on
// loopback: a nats-server on a free port, one mdp ingest and three mdp
// worker processes, 16 partitions, 1 s bars of a replay with out-of-order
// and late trades into PostgreSQL. Each worker owns a disjoint share of
// at most ceil(16/3) = 6 partitions, the shares cover all 16, and the bars
// equal row for row those of the same job run in one process without
// scaleout. A second ingest into the same stream is refused.
func TestProcessesEqualOracle(t *testing.T) {
	bin := crashtest.Binary(t)
	conn, schemas := pgSchemas(t, "mp_oracle", "mp_workers")
	trades := writeTrades(t, 3, 30000, 40)
	runOracle(t, barsJob(trades, schemas[0], ""))
	want := barRows(t, conn, schemas[0])

	srv := loopbackServer(t)
	job := filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(job, []byte(barsJob(trades, schemas[1], fmt.Sprintf("scaleout: {nats: %q, partitions: 16}\n", srv.ClientURL()))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var procs []*proc
	for i := range 3 {
		id := fmt.Sprintf("w%d", i)
		procs = append(procs, startMDP(t, ctx, bin, id, "worker", "--config", job, "--workers", "3", "--id", id))
	}
	procs = append(procs, startMDP(t, ctx, bin, "ingest", "ingest", "--config", job))
	for _, p := range procs {
		if err := <-p.done; err != nil {
			t.Fatalf("%s: %v\n%s", p.name, err, p.stderr)
		}
	}
	var all []int
	for _, p := range procs[:3] {
		l := p.logLine("scale-out worker reads its partitions")
		if l == nil {
			t.Fatalf("%s logged no partitions:\n%s", p.name, p.stderr)
		}
		owned, _ := l["owned"].([]any)
		if len(owned) == 0 || len(owned) > 6 {
			t.Fatalf("%s owns %v: want 1 to ceil(16/3) = 6 partitions", p.name, l["owned"])
		}
		for _, x := range owned {
			all = append(all, int(x.(float64)))
		}
		t.Logf("%s owned %v", p.name, owned)
	}
	slices.Sort(all)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; !slices.Equal(all, want) {
		t.Fatalf("the workers' partitions %v: want each of 0..15 once", all)
	}
	sameRows(t, barRows(t, conn, schemas[1]), want)

	// The stream now holds this run: a new ingest is refused.
	again := startMDP(t, ctx, bin, "ingest2", "ingest", "--config", job)
	err := <-again.done
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(again.stderr.String(), "holds") {
		t.Fatalf("a second ingest: %v\n%s", err, again.stderr)
	}
}
