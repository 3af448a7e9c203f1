package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mdpio/mdp/jobs"
)

// mdp ingest with metrics.enable serves /metrics and the read-only job
// API for its role, as mdp worker does: mdp status --json against it shows
// the job running, its source and publisher with the records they passed,
// and the job's one worker owning the four partitions; the ingest and the
// worker then end cleanly and the sink has every published record.
func TestIngestServesStatus(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "so.out")
	extra := fmt.Sprintf("scaleout: {nats: %q, partitions: 4}\nmetrics: {enable: true, listen: \"127.0.0.1:0\"}\n", ns.ClientURL())
	cfg := writeFile(t, dir, "so.yaml", testJob("so", "count: 40, batch: 4, interval: 1ms, hold: true", "path: "+out, extra))
	w := start(t, testMDP(t), "worker", "--config", cfg, "--id", "w0")
	w.waitLog("scale-out worker reads its partitions")
	in := start(t, testMDP(t), "ingest", "--config", cfg)
	in.waitLog("scale-out ingest")
	addr, _ := findLog(in.stderr.String(), "metrics listening")["addr"].(string)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics at %q: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "process_cpu_seconds_total") {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	var st jobs.JobStatus
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, stdout, stderr := runMDP(t, testMDP(t), "status", "so", "--json", "--server", "http://"+addr)
		if code != 0 {
			t.Fatalf("mdp status --json: exit %d\n%s", code, stderr)
		}
		st = jobs.JobStatus{}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, stdout)
		}
		if out := nodeOut(st, "src"); out == 40 && st.Runtime.Scaleout != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest status: %s", stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	so := st.Runtime.Scaleout
	if st.State != "running" || so.Stream != "MDP_so" || so.Partitions != 4 || len(so.Workers) != 1 ||
		so.Workers[0].ID != "w0" || so.Workers[0].PID != w.cmd.Process.Pid || fmt.Sprint(so.Workers[0].Partitions) != "[0 1 2 3]" {
		t.Fatalf("ingest status: %+v, scale-out %+v", st, so)
	}
	pubIn := int64(-1)
	for _, n := range st.Runtime.Nodes {
		if n.Type == "scaleout.publish" {
			pubIn = n.EventsIn
		}
	}
	if pubIn != 40 {
		t.Fatalf("publisher took in %d records, want 40: %+v", pubIn, st.Runtime.Nodes)
	}
	in.signal(syscall.SIGTERM)
	if code := in.wait(); code != 0 {
		t.Fatalf("ingest exit %d\n%s", code, in.stderr)
	}
	if code := w.wait(); code != 0 {
		t.Fatalf("worker exit %d\n%s", code, w.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "records 40\n" {
		t.Fatalf("sink wrote %q, want every record", b)
	}
}

// nodeOut is node id's events out in st, -1 when it is not there.
func nodeOut(st jobs.JobStatus, id string) int64 {
	if st.Runtime == nil {
		return -1
	}
	for _, n := range st.Runtime.Nodes {
		if n.ID == id {
			return n.EventsOut
		}
	}
	return -1
}
