package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/crashtest"
)

// serveProc is an mdp serve process of a test.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
	base   string
}

// startServer starts mdp serve --isolation process on a free port with
// the registry at state and waits until it listens.
func startServer(t *testing.T, bin, dir, state string) *serveProc {
	t.Helper()
	s := &serveProc{stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--state", state, "--isolation", "process")
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "MDP_API_TOKEN=")
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l := s.stderr.lines("job server listening"); len(l) > 0 {
			s.base = "http://" + fmt.Sprint(l[0]["addr"])
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("mdp serve exited (%v):\n%s", err, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mdp serve did not listen within 30s:\n%s", s.stderr)
		}
	}
}

// kill is kill -9 of the server (its children die with it: Pdeathsig).
func (s *serveProc) kill() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
	}
}

// call sends method path with body and decodes the answer into out.
func (s *serveProc) call(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// jobState is what the test reads of a job's status.
type jobState struct {
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	Runtime  *struct {
		Scaleout *struct {
			Workers []struct {
				PID int `json:"pid"`
			} `json:"workers"`
			PartitionLag []struct {
				CheckpointSeq uint64 `json:"checkpoint_seq"`
				Done          bool   `json:"done"`
			} `json:"partition_lag"`
		} `json:"scaleout"`
	} `json:"runtime"`
}

func (s *serveProc) status(t *testing.T, name string) jobState {
	t.Helper()
	var st jobState
	s.call(t, "GET", "/api/v1/jobs/"+name, "", 200, &st)
	return st
}

// TestServeResumesScaledOutJob: a scaled-out job with a checkpoint
// section (embedded server, 8 partitions, checkpoints every 200 ms) runs
// under mdp serve --isolation process. The server is killed -9
// mid-stream (its child with it) and started again on the same registry:
// the job, running when the server died, is restarted as its child mdp
// run --resume, which restores all 8 partitions from their checkpoints
// and re-reads the input, the worker dropping what it had read. Then the
// child is killed -9: the restart policy (on-failure) runs it again,
// resumed the same way. Then the job is stopped mid-stream (mdp stop):
// the child suspends (a final checkpoint, no end markers) and exits 0;
// mdp start resumes it again and it runs to its end.
// The bars in PostgreSQL end equal to the oracle's, none doubled, and the
// audit shows no row version the oracle never had.
func TestServeResumesScaledOutJob(t *testing.T) {
	bin := crashtest.Binary(t)
	conn, schemas := pgSchemas(t, "sr_oracle", "sr_served")
	trades := writeTrades(t, 17, 30000, 40)
	runOracle(t, barsJob(trades, schemas[0], ""))
	want := barRows(t, conn, schemas[0])
	audit(t, conn, schemas[0], schemas[1])

	dir := t.TempDir()
	// 30000 trades 2 ms apart at 8x real time: 7.5 s a run.
	job := resumableJob(trades, schemas[1], dir, 8)
	state := filepath.Join(dir, "state.db")
	// gone waits until process pid has ended.
	gone := func(pid int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs 10s after its kill", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	bars := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+schemas[1]+".bars").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// midStream waits until a run other than process prev's has every
	// partition checkpointed and not done and more than least bars are
	// in PostgreSQL, and returns the job's status then.
	midStream := func(s *serveProc, prev, least int) jobState {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			st := s.status(t, "so-bars")
			if st.State == "stopped" {
				t.Fatalf("the job ended before it was checkpointed mid-stream:\n%s", s.stderr)
			}
			if so := st.Runtime; st.State == "running" && so != nil && so.Scaleout != nil && len(so.Scaleout.PartitionLag) == 8 &&
				len(so.Scaleout.Workers) == 1 && so.Scaleout.Workers[0].PID != prev {
				mid := 0
				for _, p := range so.Scaleout.PartitionLag {
					if p.CheckpointSeq > 0 && !p.Done {
						mid++
					}
				}
				if mid == 8 && bars() > least {
					return st
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job was not checkpointed mid-stream within a minute:\n%s", s.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// ended waits until the job's run ended and returns its state.
	ended := func(s *serveProc) jobState {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := s.status(t, "so-bars")
			if st.State == "stopped" || st.State == "failed" {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job did not end within 2 minutes (%s):\n%s", st.State, s.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	s1 := startServer(t, bin, dir, state)
	s1.call(t, "POST", "/api/v1/jobs", job, 201, nil)
	child := midStream(s1, 0, 0).Runtime.Scaleout.Workers[0].PID
	s1.kill()
	gone(child)
	atKill := bars()
	if atKill >= len(want) {
		t.Fatalf("%d bars at the kill, the oracle has %d: the kill was not mid-stream", atKill, len(want))
	}
	if n := len(s1.stderr.lines("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read")); n != 0 {
		t.Fatalf("the first run resumed (%d times): it should have started afresh:\n%s", n, s1.stderr)
	}

	// The server again, on the same registry: the job resumes.
	s2 := startServer(t, bin, dir, state)
	child = midStream(s2, child, atKill).Runtime.Scaleout.Workers[0].PID
	res := s2.stderr.lines("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read")
	if len(res) != 1 || res[0]["restored"] != float64(8) {
		t.Fatalf("the restarted job did not resume its 8 partitions: %v\n%s", res, s2.stderr)
	}
	// kill -9 of the child: the restart policy (on-failure) runs it again,
	// resumed.
	atCrash := bars()
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone(child)
	midStream(s2, child, atCrash)
	res = s2.stderr.lines("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read")
	if len(res) != 2 || res[1]["restored"] != float64(8) {
		t.Fatalf("the job restarted after its crash did not resume its 8 partitions: %v\n%s", res, s2.stderr)
	}
	atStop := bars()
	// mdp stop: the run suspends, and exits 0 (the job stopped, not failed).
	s2.call(t, "POST", "/api/v1/jobs/so-bars/stop", "", 200, nil)
	if st := ended(s2); st.State != "stopped" {
		t.Fatalf("after mdp stop the job is %s:\n%s", st.State, s2.stderr)
	}
	if len(s2.stderr.lines("scale-out run suspended: mdp run --resume continues it")) != 1 {
		t.Fatalf("the stopped run did not suspend:\n%s", s2.stderr)
	}
	if len(s2.stderr.lines("scale-out run ended")) != 1 { // the killed run logged no end
		t.Fatalf("the stopped run did not end as one run:\n%s", s2.stderr)
	}
	if n := bars(); n >= len(want) {
		t.Fatalf("%d bars after the stop (%d at the kill, %d when stopped), the oracle has %d: the stop was not mid-stream", n, atKill, atStop, len(want))
	}

	// mdp start: the job resumes again and runs to its end.
	s2.call(t, "POST", "/api/v1/jobs/so-bars/start", "", 200, nil)
	if st := ended(s2); st.State != "stopped" {
		t.Fatalf("the started job ended %s:\n%s", st.State, s2.stderr)
	}
	res = s2.stderr.lines("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read")
	if len(res) != 3 || res[2]["restored"] != float64(8) {
		t.Fatalf("the started job did not resume its 8 partitions: %v\n%s", res, s2.stderr)
	}
	if st := s2.status(t, "so-bars"); st.Restarts != 2 {
		t.Fatalf("%d restarts counted, want 2 (the server's kill and the child's)", st.Restarts)
	}
	end := s2.stderr.lines("scale-out run ended")
	if len(end) != 2 || end[1]["published"] != float64(30000) || end[1]["read"].(float64) >= 30000 {
		t.Fatalf("the last run: %v (want 30000 published, fewer read)\n%s", end, s2.stderr)
	}
	sameRows(t, barRows(t, conn, schemas[1]), want)
	checkAudit(t, conn, schemas[1], want)
	t.Logf("bars at the server's kill %d, at the child's kill %d, at the stop %d, at the end %d; the last run re-read %v trades and kept %v",
		atKill, atCrash, atStop, len(want), end[1]["published"], end[1]["read"])
}
