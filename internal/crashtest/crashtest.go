// Package crashtest runs a real mdp binary the way a crash does: it builds
// mdp once per test binary, starts a job, kills it with SIGKILL at seeded
// random moments or stops it with SIGTERM, and resumes it from its
// checkpoints until it finishes. Tests of several packages use it to check
// that a job killed at any moment and resumed ends exactly as one clean
// run.
package crashtest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdpio/mdp/checkpoint"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// Binary builds ./cmd/mdp of the module under test once per test binary
// and returns its path. Call Cleanup from TestMain to remove it.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "mdp-crashtest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(buildDir, "mdp")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mdp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/mdp: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the binary Binary built.
func Cleanup() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("crashtest: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// Proc is a running mdp.
type Proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

// Start starts bin with args in dir.
func Start(tb testing.TB, bin, dir string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits for the exit (at most timeout) and returns the exit code and
// the standard error.
func (p *Proc) Wait(tb testing.TB, timeout time.Duration) (int, string) {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		tb.Fatalf("mdp did not exit within %s; stderr:\n%s", timeout, p.stderr.String())
	}
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(p.err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if p.err != nil {
		tb.Fatalf("mdp: %v", p.err)
	}
	return code, p.stderr.String()
}

// Run runs bin to its end and fails the test unless it exits 0.
func Run(tb testing.TB, bin, dir string, timeout time.Duration, args ...string) string {
	tb.Helper()
	code, stderr := Start(tb, bin, dir, args...).Wait(tb, timeout)
	if code != 0 {
		tb.Fatalf("mdp %s: exit %d; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stderr
}

// Options are a kill-and-resume schedule.
type Options struct {
	Bin, Dir string
	// Args returns the arguments of run i (0 first); --resume is added.
	Args func(run int) []string
	// Kills is how many times the job is killed with SIGKILL.
	Kills int
	// Seed seeds the kill moments, each uniform in [MinDelay, MaxDelay)
	// after the process started, or, with Store, after the run saved its
	// first checkpoint.
	Seed               uint64
	MinDelay, MaxDelay time.Duration
	// Store, when set, is the job's checkpoint directory: a run is killed
	// only after it has saved a checkpoint there (one newer than any there
	// when it started), and the delay counts from then. Every run then
	// leaves a checkpoint for the next to restore, however long a loaded
	// machine takes to start it; without Store, a slow start can use up
	// every delay before the first checkpoint, and the runs test nothing.
	Store string
	// Timeout bounds the last run, which must finish (exit 0), and each
	// wait for a run's first checkpoint.
	Timeout time.Duration
	// Done, when set, makes the schedule one for an unbounded job (a bus
	// source never ends by itself): it reports whether the job has done
	// all its work (say, every record is in the store). No run is started
	// or killed once it does, a run that ends by itself fails the test, and
	// the last run is stopped with SIGTERM once Done reports true (Args
	// should hold --drain, so that open windows are flushed).
	Done func() bool
}

// Result is what a kill-and-resume schedule did.
type Result struct {
	Kills int // processes killed
	Runs  int // processes started, the finishing one included
	// Finished reports whether the job ended by itself before every kill
	// was made (the kills left were not needed).
	FinishedEarly bool
	Last          string   // the last run's standard error
	Stderr        []string // every run's standard error, in order
}

// KillResume runs the job with --resume, kills it at o.Kills seeded random
// moments, and finally lets a resumed run finish.
func KillResume(tb testing.TB, o Options) Result {
	tb.Helper()
	rng := rand.New(rand.NewPCG(o.Seed, 0x6d6470))
	var res Result
	for res.Kills < o.Kills {
		if o.Done != nil && o.Done() {
			break // the work is done: later kills would test nothing
		}
		args := append(o.Args(res.Runs), "--resume")
		newest := newestCheckpoint(tb, o.Store)
		p := Start(tb, o.Bin, o.Dir, args...)
		res.Runs++
		d := o.MinDelay + time.Duration(rng.Int64N(int64(o.MaxDelay-o.MinDelay)))
		ended := false
		if o.Store != "" {
			ended = !waitCheckpoint(tb, p, o.Store, newest, o.Timeout)
		}
		if !ended {
			select {
			case <-p.Done():
				ended = true
			case <-time.After(d):
			}
		}
		if ended {
			code, stderr := p.Wait(tb, time.Second)
			res.Stderr = append(res.Stderr, stderr)
			if o.Done != nil {
				tb.Fatalf("run %d of an unbounded job ended by itself (exit %d); stderr:\n%s", res.Runs, code, stderr)
			}
			if code != 0 {
				tb.Fatalf("run %d exited %d before its kill; stderr:\n%s", res.Runs, code, stderr)
			}
			res.FinishedEarly, res.Last = true, stderr
			return res
		}
		p.Signal(syscall.SIGKILL)
		code, stderr := p.Wait(tb, 10*time.Second)
		res.Stderr = append(res.Stderr, stderr)
		if code == 0 {
			// It finished just before the kill landed.
			res.FinishedEarly, res.Last = true, stderr
			return res
		}
		if code != 128+int(syscall.SIGKILL) {
			tb.Fatalf("run %d: exit %d, want a kill; stderr:\n%s", res.Runs, code, stderr)
		}
		res.Kills++
	}
	args := append(o.Args(res.Runs), "--resume")
	if o.Done != nil {
		res.Last = runUntil(tb, o, args)
	} else {
		res.Last = Run(tb, o.Bin, o.Dir, o.Timeout, args...)
	}
	res.Stderr = append(res.Stderr, res.Last)
	res.Runs++
	return res
}

// runUntil runs an unbounded job until o.Done reports true (at most
// o.Timeout), stops it with SIGTERM and fails the test unless it exits 0.
func runUntil(tb testing.TB, o Options, args []string) string {
	tb.Helper()
	p := Start(tb, o.Bin, o.Dir, args...)
	started := time.Now()
	deadline := started.Add(o.Timeout)
	for !o.Done() {
		if time.Now().After(deadline) {
			p.Signal(syscall.SIGKILL)
			_, stderr := p.Wait(tb, 10*time.Second)
			tb.Fatalf("the job's work was not done within %s; stderr:\n%s", o.Timeout, stderr)
		}
		select {
		case <-p.Done():
			code, stderr := p.Wait(tb, time.Second)
			tb.Fatalf("the unbounded job ended by itself (exit %d); stderr:\n%s", code, stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Let the process install its signal handling (and restore) first: a
	// SIGTERM before that ends it with 143.
	if d := time.Until(started.Add(2 * time.Second)); d > 0 {
		time.Sleep(d)
	}
	p.Signal(syscall.SIGTERM)
	code, stderr := p.Wait(tb, time.Minute)
	if code != 0 {
		tb.Fatalf("mdp %s: exit %d after SIGTERM; stderr:\n%s", strings.Join(args, " "), code, stderr)
	}
	return stderr
}

// newestCheckpoint is the id of the newest checkpoint in the directory
// store (0 for none or no store).
func newestCheckpoint(tb testing.TB, store string) int64 {
	tb.Helper()
	if store == "" {
		return 0
	}
	d, err := checkpoint.Open(store, 1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ids, err := d.IDs()
	if err != nil {
		tb.Fatal(err)
	}
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

// waitCheckpoint waits until store holds a checkpoint newer than after
// (true) or p has exited (false); it fails the test after timeout.
func waitCheckpoint(tb testing.TB, p *Proc, store string, after int64, timeout time.Duration) bool {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for newestCheckpoint(tb, store) <= after {
		if time.Now().After(deadline) {
			p.Signal(syscall.SIGKILL)
			_, stderr := p.Wait(tb, 10*time.Second)
			tb.Fatalf("no checkpoint saved in %s within %s; stderr:\n%s", store, timeout, stderr)
		}
		select {
		case <-p.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// TardisVariant is one replay file TardisFiles makes from the real tardis
// trades in testdata/replay/tardis_trades.csv.
type TardisVariant struct {
	Symbol string  // the symbol every trade is given
	Shift  int64   // µs added to every timestamp
	Scale  float64 // price factor (0: 1)
	// Late, when > 0, moves every Late-th trade 3s early: late for 1s
	// bars, so late_policy update writes new versions of closed bars.
	Late int
}

// TardisFiles writes one replay CSV per variant into dir (trades-<i>.csv)
// and returns their paths.
func TardisFiles(tb testing.TB, dir string, variants []TardisVariant) []string {
	tb.Helper()
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "testdata", "replay", "tardis_trades.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	var paths []string
	for i, v := range variants {
		scale := v.Scale
		if scale == 0 {
			scale = 1
		}
		var b strings.Builder
		b.WriteString(strings.Join(rows[0], ",") + "\n")
		for k, r := range rows[1:] {
			ts, _ := strconv.ParseInt(r[2], 10, 64)
			ts += v.Shift
			if v.Late > 0 && k%v.Late == v.Late-1 {
				ts -= 3_000_000
			}
			price, _ := strconv.ParseFloat(r[6], 64)
			fmt.Fprintf(&b, "%s,%s,%d,%s,%s,%s,%s,%s\n", r[0], v.Symbol, ts, r[3], r[4], r[5], strconv.FormatFloat(price*scale, 'f', -1, 64), r[7])
		}
		p := filepath.Join(dir, fmt.Sprintf("trades-%d.csv", i))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}
