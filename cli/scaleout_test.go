package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A scaleout job run by mdp run stops gracefully on SIGTERM: the source
// stops, the ingest publishes its end markers and the worker delivers
// every record the source emitted to the sink before mdp exits 0.
func TestScaleoutRunSIGTERM(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "so.out")
	extra := "scaleout: {nats: embedded, partitions: 4, store: " + filepath.Join(dir, "nats") + "}\nmetrics: {enable: true, listen: \"127.0.0.1:0\"}\n"
	cfg := writeFile(t, dir, "so.yaml", testJob("so", "count: 40, batch: 4, interval: 1ms, hold: true", "path: "+out, extra))
	p := start(t, testMDP(t), "run", "--config", cfg)
	p.waitLog("scale-out run")
	// The run serves the worker's lag.
	addr, _ := findLog(p.stderr.String(), "metrics listening")["addr"].(string)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics at %q: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{`mdp_scaleout_job_lag_messages{job="so"}`, `mdp_scaleout_lag_seconds{job="so",partition="3"}`} {
		if !strings.Contains(string(body), s) {
			t.Fatalf("/metrics has no %s:\n%s", s, body)
		}
	}
	// mdp status asks the run's read-only API: the runtime status carries
	// the scale-out section, one worker (this process) owning all four
	// partitions, each with its lag reported.
	code, stdout, stderr := runMDP(t, testMDP(t), "status", "so", "--json", "--server", "http://"+addr)
	if code != 0 {
		t.Fatalf("mdp status --json: exit %d\n%s", code, stderr)
	}
	var st struct {
		Runtime struct {
			Scaleout struct {
				Stream     string `json:"stream"`
				Partitions int    `json:"partitions"`
				Workers    []struct {
					ID         string `json:"id"`
					PID        int    `json:"pid"`
					Partitions []int  `json:"partitions"`
					Retries    *int64 `json:"retries"`
				} `json:"workers"`
				PartitionLag []struct {
					Partition   int    `json:"partition"`
					Owner       string `json:"owner"`
					Reported    bool   `json:"reported"`
					LagMessages *int64 `json:"lag_messages"`
				} `json:"partition_lag"`
			} `json:"scaleout"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, stdout)
	}
	so := st.Runtime.Scaleout
	if so.Stream != "MDP_so" || so.Partitions != 4 || len(so.Workers) != 1 || fmt.Sprint(so.Workers[0].Partitions) != "[0 1 2 3]" ||
		so.Workers[0].PID != p.cmd.Process.Pid || so.Workers[0].Retries != nil || len(so.PartitionLag) != 4 {
		t.Fatalf("scale-out status %+v\n%s", so, stdout)
	}
	for i, pl := range so.PartitionLag {
		if pl.Partition != i || pl.Owner != so.Workers[0].ID || !pl.Reported || pl.LagMessages == nil {
			t.Fatalf("partition %d: %+v", i, pl)
		}
	}
	code, stdout, stderr = runMDP(t, testMDP(t), "status", "so", "--server", "http://"+addr)
	if code != 0 {
		t.Fatalf("mdp status: exit %d\n%s", code, stderr)
	}
	rows := map[string][]string{} // first field -> fields of the line
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	id, pid := so.Workers[0].ID, strconv.Itoa(p.cmd.Process.Pid)
	if !strings.Contains(stdout, "\nstream MDP_so, 4 partitions, lag ") ||
		strings.Join(rows["WORKER"], " ") != "WORKER HOST PID PARTITIONS RETRIES LAG MSGS LAG" ||
		len(rows[id]) != 7 || rows[id][2] != pid || rows[id][3] != "0-3" || rows[id][4] != "0" ||
		strings.Join(rows["PARTITION"], " ") != "PARTITION OWNER LAG MSGS LAG DUPS CKPT SEQ CKPT AGE" {
		t.Fatalf("mdp status:\n%s", stdout)
	}
	for i := range 4 {
		// No record read twice; without a checkpoint section mdp run
		// does not checkpoint: no checkpoint sequence or age.
		if r := rows[strconv.Itoa(i)]; len(r) != 7 || r[1] != id || r[4] != "0" || r[5] != "-" || r[6] != "-" {
			t.Fatalf("mdp status: partition %d row %v:\n%s", i, r, stdout)
		}
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	end := findLog(p.stderr.String(), "scale-out run ended")
	if end == nil || findLog(p.stderr.String(), "job finished") == nil {
		t.Fatalf("logs:\n%s", p.stderr)
	}
	published := int(end["published"].(float64))
	if published == 0 || end["read"] != end["published"] {
		t.Fatalf("published %v, read %v: want the same, above 0", end["published"], end["read"])
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("records %d\n", published); string(b) != want {
		t.Fatalf("sink wrote %q, want %q (every record the source emitted)", b, want)
	}

	// --resume needs the checkpoint section this job lacks; the other
	// checkpoint flags do not apply to a scaleout job yet: usage errors.
	code, _, stderr = runMDP(t, testMDP(t), "run", "--config", cfg, "--resume")
	if code != 2 || !strings.Contains(stderr, "--resume of a scaleout job needs a checkpoint section") {
		t.Fatalf("--resume: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runMDP(t, testMDP(t), "run", "--config", cfg, "--drain")
	if code != 2 || !strings.Contains(stderr, "do not apply to a scaleout job") {
		t.Fatalf("--drain: exit %d\n%s", code, stderr)
	}
}

// mdp worker and mdp ingest need a scaleout job on a NATS server URL: a
// job without the section, or with an embedded server, is a usage error.
func TestScaleoutRolesRefuseEmbedded(t *testing.T) {
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.yaml", testJob("plain", "count: 4", "path: "+filepath.Join(dir, "o"), ""))
	emb := writeFile(t, dir, "emb.yaml", testJob("emb", "count: 4", "path: "+filepath.Join(dir, "o"),
		"scaleout: {nats: embedded, partitions: 4, store: "+filepath.Join(dir, "nats")+"}\n"))
	for _, role := range []string{"worker", "ingest"} {
		code, _, stderr := runMDP(t, testMDP(t), role, "--config", plain)
		if code != 2 || !strings.Contains(stderr, "mdp "+role+" runs a job with a scaleout section; this job has none") {
			t.Fatalf("%s of a job without scaleout: exit %d\n%s", role, code, stderr)
		}
		code, _, stderr = runMDP(t, testMDP(t), role, "--config", emb)
		if code != 2 || !strings.Contains(stderr, "mdp "+role+" needs scaleout.nats to be the URL of a NATS server the processes share, not embedded") {
			t.Fatalf("%s of an embedded job: exit %d\n%s", role, code, stderr)
		}
	}
}

// SIGTERM of mdp worker while it is still connecting to NATS (here a
// listener that accepts and never answers, so the connection attempt
// lasts until the client's timeout) ends it cleanly: exit 0, not the
// connection's failure.
func TestWorkerSIGTERMWhileJoining(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "w.yaml", testJob("sow", "count: 4", "path: "+filepath.Join(dir, "o"),
		"scaleout: {nats: \"nats://"+ln.Addr().String()+"\", partitions: 4}\n"))
	p := start(t, testMDP(t), "worker", "--config", cfg)
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(30 * time.Second):
		t.Fatalf("mdp worker never connected\n%s", p.stderr)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM while joining, want 0\n%s", code, p.stderr)
	}
	if findLog(p.stderr.String(), "scale-out worker stopped while joining") == nil || findLog(p.stderr.String(), "job finished") == nil {
		t.Fatalf("logs:\n%s", p.stderr)
	}
}
