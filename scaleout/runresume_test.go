package scaleout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/internal/crashtest"
)

// runMDPFor runs bin with args to its end (at most timeout) and returns
// its exit code and standard error.
func runMDPFor(t *testing.T, bin string, timeout time.Duration, args ...string) (int, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stderr := &syncBuffer{}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mdp %v did not end within %s:\n%s", args, timeout, stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr
}

// TestRunResumesAfterKill kills -9 an mdp run of an embedded scaled-out
// job with checkpoints mid-stream, once it has checkpointed and written
// bars, and runs it again with --resume: the stream and checkpoints are
// kept, the worker restores every partition, the ingest re-reads its
// input and the worker drops what it had read, and PostgreSQL ends with
// exactly the oracle's bars; the audit trigger shows no row version the
// oracle never had. The first run is itself a --resume on an empty store:
// with no checkpoint and no stream it starts from the beginning. A third
// --resume, of the finished run, has nothing to do.
func TestRunResumesAfterKill(t *testing.T) {
	bin := crashtest.Binary(t)
	conn, schemas := pgSchemas(t, "rr_oracle", "rr_run")
	trades := writeTrades(t, 11, 30000, 40)
	runOracle(t, barsJob(trades, schemas[0], ""))
	want := barRows(t, conn, schemas[0])
	audit(t, conn, schemas[0], schemas[1])

	dir := t.TempDir()
	// 30000 trades 2 ms apart at 15x real time: 4 s, long enough to kill
	// the run mid-stream after its first checkpoints.
	job := resumableJob(trades, schemas[1], dir, 15)
	cfg := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(cfg, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	cmd := exec.Command(bin, "--log-level", "debug", "run", "--config", cfg, "--resume")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Kill once two checkpoints are complete and bars are in PostgreSQL.
	deadline := time.Now().Add(60 * time.Second)
	var bars int
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no two checkpoints and a bar within 60s:\n%s", stderr.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before its kill: the data is too short for this machine\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if len(stderr.lines("checkpoint complete")) < 2 {
			continue
		}
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+schemas[1]+".bars").Scan(&bars); err != nil {
			t.Fatal(err)
		}
		if bars > 0 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the run was not killed: %v\n%s", err, stderr.String())
	}
	exited <- nil // for the cleanup
	first := &stderr
	if len(first.lines("no checkpoint and no message to resume from: starting from the beginning")) != 1 {
		t.Fatalf("--resume on an empty store did not start from the beginning:\n%s", first)
	}
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+schemas[1]+".bars").Scan(&bars); err != nil {
		t.Fatal(err)
	}
	if bars >= len(want) {
		t.Fatalf("%d bars at the kill, the oracle has %d: the kill was not mid-stream", bars, len(want))
	}
	t.Logf("killed with %d of %d bars written, after %d checkpoints", bars, len(want), len(first.lines("checkpoint complete")))

	code, second := runMDPFor(t, bin, 2*time.Minute, "run", "--config", cfg, "--resume")
	if code != 0 {
		t.Fatalf("--resume: exit %d\n%s", code, second)
	}
	res := second.lines("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read")
	if len(res) != 1 || res[0]["restored"] != float64(8) {
		t.Fatalf("the resumed run did not restore its 8 partitions: %v\n%s", res, second)
	}
	end := second.lines("scale-out run ended")
	if len(end) != 1 {
		t.Fatalf("no end of the resumed run:\n%s", second)
	}
	published, read := end[0]["published"].(float64), end[0]["read"].(float64)
	if published != 30000 || read <= 0 || read >= published {
		t.Fatalf("the resumed run published %v and its worker read %v: want 30000, and fewer read (the records read before the kill dropped)", published, read)
	}
	t.Logf("resumed: the ingest re-read %v trades, the worker kept %v", published, read)
	sameRows(t, barRows(t, conn, schemas[1]), want)
	checkAudit(t, conn, schemas[1], want)

	// The run is complete: a further --resume has nothing to do.
	code, third := runMDPFor(t, bin, time.Minute, "run", "--config", cfg, "--resume")
	if code != 0 || len(third.lines("scale-out run: every partition's checkpoint says done: nothing to resume")) != 1 {
		t.Fatalf("--resume of a finished run: exit %d\n%s", code, third)
	}
	sameRows(t, barRows(t, conn, schemas[1]), want)
}

// TestRunResumeNeedsCheckpoints: resuming a scaled-out run without a
// checkpoint section is refused before anything starts.
func TestRunResumeNeedsCheckpoints(t *testing.T) {
	store := filepath.Join(t.TempDir(), "nats")
	job := barsJob("trades.csv", "s", fmt.Sprintf("scaleout: {nats: embedded, partitions: 4, store: %q}\n", store))
	doc, err := config.LoadBytes("nockpt.yaml", []byte(job), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), doc, Options{Resume: true})
	if err == nil || err.Error() != `job "so-bars": resuming a scaled-out run needs a checkpoint section (its worker checkpoints nothing without one)` {
		t.Fatalf("resume without a checkpoint section: %v", err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("the refused run made its store: %v", err)
	}
}

// resumableJob is barsJob into schema, scaled out over the embedded server
// (8 partitions, its store under dir) with checkpoints every 200 ms under
// dir, its replay paced at speed times real time.
func resumableJob(trades, schema, dir string, speed int) string {
	return strings.Replace(barsJob(trades, schema, fmt.Sprintf(
		"scaleout: {nats: embedded, partitions: 8, store: %q}\ncheckpoint: {interval: 200ms, store: %q}\n",
		filepath.Join(dir, "nats"), filepath.Join(dir, "ckpt"))),
		"max_out_of_orderness: 500ms", fmt.Sprintf("max_out_of_orderness: 500ms\n        speed: %d", speed), 1)
}
