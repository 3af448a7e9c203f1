package jobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdpio/mdp/runtime"
)

// ChildReport is one line a child process (`mdp run --report-fd N`) writes
// to its report descriptor, as JSON: first the address of its metrics
// listener (which also serves the read-only job API), and as it exits its
// final status and metrics, so the figures of a run that ended stay exact.
type ChildReport struct {
	// Addr is the child's listener, host:port on loopback.
	Addr string `json:"addr,omitempty"`
	// Final is the job's status after it ended (with per-node detail).
	Final *JobStatus `json:"final,omitempty"`
	// Metrics is the Prometheus text exposition of the job's metrics after
	// it ended.
	Metrics string `json:"metrics,omitempty"`
}

// processLauncher runs each job as a child process: the mdp binary's `run`
// command on the job file, written under the state file's directory.
type processLauncher struct {
	m       *Manager
	command []string
	dir     string
	poll    time.Duration
	client  *http.Client
	spawn   chan spawnReq
	stopped sync.Once
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newProcessLauncher(m *Manager) (*processLauncher, error) {
	command := m.opts.Command
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("isolation process: the mdp binary: %w", err)
		}
		command = []string{exe}
	}
	dir := m.opts.State + ".jobs"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("isolation process: job files directory: %w", err)
	}
	p := &processLauncher{
		m: m, command: command, dir: dir, poll: m.opts.PollInterval,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}},
		spawn:  make(chan spawnReq),
	}
	ready := make(chan error, 1)
	go p.spawner(spawnerSched{nice: m.opts.Nice, sched: m.opts.Sched, cpus: m.opts.CPUs}, ready)
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("isolation process: %w", err)
	}
	return p, nil
}

// spawnerSched is what every child inherits from the spawner's thread.
type spawnerSched struct {
	nice  int
	sched string
	cpus  []int
}

// spawner starts every child from one OS thread that never exits: the
// parent-death signal a child asks for (Linux) fires when the thread that
// forked it ends, not the process, and Go may end an idle thread. The
// thread first takes the niceness, scheduling policy and CPU set of the
// children (setSpawnerSched), which they inherit at fork; ready reports
// whether it could.
func (p *processLauncher) spawner(s spawnerSched, ready chan<- error) {
	goruntime.LockOSThread()
	if err := setSpawnerSched(s); err != nil {
		// The thread's priority may be lowered already: it ends with
		// the goroutine (still locked), not back into Go's pool.
		ready <- err
		return
	}
	ready <- nil
	for req := range p.spawn {
		req.done <- req.cmd.Start()
	}
	// The thread stays locked: it ends with this goroutine, after every
	// child it started has ended (close).
}

func (p *processLauncher) stop() { p.stopped.Do(func() { close(p.spawn) }) }

func (p *processLauncher) release(run) {}

func (p *processLauncher) newRun(l launch) (run, error) {
	return &childRun{p: p, l: l, red: runtime.NewRedactor(l.doc), state: runtime.StateCreated, done: make(chan struct{})}, nil
}

// childRun is one run of a job as a child process.
type childRun struct {
	p    *processLauncher
	l    launch
	red  *runtime.Redactor
	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	state    runtime.State
	addr     string
	addrc    chan struct{} // closed when addr is known
	snap     JobStatus     // the latest polled status
	snapAt   time.Time
	final    string // metrics text after the end
	lastErr  string // the child's last error log record
	err      error
	signaled bool
}

// args is the child's command line.
func (c *childRun) args(file string) []string {
	o := c.l.opts
	args := append(append([]string(nil), c.p.command[1:]...), "run", file, "--job", c.l.name, "--no-progress", "--log-level", "info",
		"--set", "metrics.enable=true", "--set", "metrics.listen=127.0.0.1:0", "--report-fd", "3")
	switch {
	case o.From != "":
		args = append(args, "--from", o.From)
	case o.Resume:
		args = append(args, "--resume")
	}
	if o.AllowGraphChange {
		args = append(args, "--allow-graph-change")
	}
	if o.Drain {
		args = append(args, "--drain")
	}
	return args
}

// Start writes the job file, starts the child and returns once the child
// reports the job running (or with why it did not start).
func (c *childRun) Start(ctx context.Context) error {
	file := filepath.Join(c.p.dir, c.l.name+".yaml")
	// The file holds the job as submitted, secrets included, like the
	// registry: readable by the server's user only.
	if err := os.WriteFile(file, c.l.def, 0o600); err != nil {
		err = fmt.Errorf("start job %q: write its file for the child process: %w", c.l.name, err)
		c.end(runtime.StateFailed, err)
		return err
	}
	rep, repW, err := os.Pipe()
	if err != nil {
		err = fmt.Errorf("start job %q: report pipe: %w", c.l.name, err)
		c.end(runtime.StateFailed, err)
		return err
	}
	cmd := exec.Command(c.p.command[0], c.args(file)...)
	cmd.Stdout = c.l.stdout
	stderr := &stdoutWriter{line: c.logLine}
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{repW}
	cmd.SysProcAttr = childAttr()
	c.mu.Lock()
	c.state = runtime.StateStarting
	c.addrc = make(chan struct{})
	c.cmd = cmd
	c.mu.Unlock()
	req := spawnReq{cmd: cmd, done: make(chan error, 1)}
	c.p.spawn <- req
	err = <-req.done
	_ = repW.Close()
	if err != nil {
		_ = rep.Close()
		err = fmt.Errorf("start job %q: child process: %w", c.l.name, err)
		c.end(runtime.StateFailed, err)
		return err
	}
	go c.wait(rep, stderr)
	select {
	case <-c.addrc:
	case <-c.done:
		return c.startErr()
	case <-ctx.Done():
		return c.cancelStart(ctx)
	}
	// The child answers once its listener is up, before its nodes open:
	// wait for the job to run, as runtime.Unified.Start does.
	c.pollOnce()
	for c.State() == runtime.StateStarting {
		select {
		case <-c.done:
			return c.startErr()
		case <-ctx.Done():
			return c.cancelStart(ctx)
		case <-time.After(10 * time.Millisecond):
		}
		c.pollOnce()
	}
	select {
	case <-c.done:
		return c.startErr()
	default:
	}
	go c.poller()
	return nil
}

// cancelStart stops a child whose start was cancelled and waits for it.
func (c *childRun) cancelStart(ctx context.Context) error {
	c.Stop()
	<-c.done
	return fmt.Errorf("start job %q: %w", c.l.name, ctx.Err())
}

// startErr is what Start returns for a child that ended while starting:
// its error when it failed, nil when it ran its course already.
func (c *childRun) startErr() error {
	if c.State() == runtime.StateFailed {
		return c.Err()
	}
	return nil
}

// wait reads the child's reports until it exits, then records how it
// ended.
func (c *childRun) wait(rep *os.File, stderr *stdoutWriter) {
	sc := bufio.NewScanner(rep)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var final *ChildReport
	for sc.Scan() {
		var r ChildReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			c.p.m.log.Warn("child process: bad report line", "job", c.l.name, "err", err)
			continue
		}
		if r.Addr != "" {
			c.mu.Lock()
			c.addr = r.Addr
			close(c.addrc)
			c.mu.Unlock()
		}
		if r.Final != nil {
			final = &r
		}
	}
	_ = rep.Close()
	werr := c.cmd.Wait()
	stderr.flush()
	c.mu.Lock()
	if final != nil {
		c.snap, c.snapAt, c.final = *final.Final, time.Now(), final.Metrics
	}
	lastErr := c.lastErr
	signaled := c.signaled
	c.mu.Unlock()
	if werr == nil {
		c.end(runtime.StateStopped, nil)
		return
	}
	msg := ""
	if final != nil {
		msg = final.Final.LastError
	}
	if msg == "" {
		msg = lastErr
	}
	var ee *exec.ExitError
	how := werr.Error()
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = "killed by " + ws.Signal().String()
			if ws.Signal() == syscall.SIGKILL && signaled {
				how = "aborted (killed)"
			}
		} else {
			how = fmt.Sprintf("exit code %d", ee.ExitCode())
		}
	}
	if msg == "" {
		c.end(runtime.StateFailed, fmt.Errorf("job process ended: %s", how))
		return
	}
	c.end(runtime.StateFailed, fmt.Errorf("%s (job process %s)", msg, how))
}

// end records the end of the run once.
func (c *childRun) end(st runtime.State, err error) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	c.state, c.err = st, err
	c.snap.State = string(st)
	close(c.done)
	c.mu.Unlock()
}

// poller refreshes the snapshot every poll interval while the child runs.
func (c *childRun) poller() {
	t := time.NewTicker(c.p.poll)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			before := c.State()
			c.pollOnce()
			if c.State() != before {
				c.l.changed()
			}
		}
	}
}

// pollOnce reads the child's status; a child that does not answer in time
// keeps its previous snapshot.
func (c *childRun) pollOnce() {
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(c.p.poll, 2*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/jobs/"+url.PathEscape(c.l.name), nil)
	if err != nil {
		return
	}
	resp, err := c.p.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var st JobStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return // the final status is in
	default:
	}
	c.snap, c.snapAt = st, time.Now()
	switch s := runtime.State(st.State); {
	case c.state == runtime.StateStopping && s != runtime.StateStopped && s != runtime.StateFailed:
		// Stop was asked; the child may not have seen the signal yet.
	case s != "":
		c.state = s
	}
}

// logLine takes one line of the child's stderr: a JSON slog record (or any
// other text) into the job's log ring, with job=NAME, and to the manager's
// logger with its attributes in the child's order.
func (c *childRun) logLine(line []byte) {
	rec := LogRecord{Level: slog.LevelInfo.String(), Attrs: map[string]any{}}
	var attrs []slog.Attr
	kvs, ok := jsonObject(line)
	if !ok {
		rec.Time = time.Now().UTC().Format(time.RFC3339Nano)
		rec.Message = c.red.String(string(line))
		attrs = append(attrs, slog.String("stream", "stderr"))
	} else {
		for _, kv := range kvs {
			switch v := kv.v.(type) {
			case string:
				switch kv.k {
				case "time":
					rec.Time = v
					if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
						rec.Time = t.UTC().Format(time.RFC3339Nano)
					}
					continue
				case "level":
					rec.Level = v
					continue
				case "msg":
					rec.Message = c.red.String(v)
					continue
				}
			}
			attrs = appendAttr(attrs, kv.k, kv.v, c.red)
		}
	}
	hasJob := false
	for _, a := range attrs {
		rec.Attrs[a.Key] = a.Value.Any()
		hasJob = hasJob || a.Key == "job"
	}
	if !hasJob {
		attrs = append([]slog.Attr{slog.String("job", c.l.name)}, attrs...)
		rec.Attrs["job"] = c.l.name
	}
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(rec.Level))
	if lv >= slog.LevelError {
		last := rec.Message
		if e, ok := rec.Attrs["err"].(string); ok && e != "" {
			last += ": " + e
		}
		c.mu.Lock()
		c.lastErr = last
		c.mu.Unlock()
	}
	if lv >= slog.LevelInfo {
		c.l.ring.add(rec)
	}
	if log := c.p.m.log; log.Enabled(context.Background(), lv) {
		log.LogAttrs(context.Background(), lv, rec.Message, attrs...)
	}
}

type keyValue struct {
	k string
	v any
}

// jsonObject decodes a JSON object keeping its keys' order.
func jsonObject(line []byte) ([]keyValue, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var kvs []keyValue
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		kvs = append(kvs, keyValue{k, v})
	}
	return kvs, true
}

// appendAttr appends a JSON record's attribute, a group's keys prefixed
// with its name (as the in-process ring keeps them), strings redacted.
func appendAttr(attrs []slog.Attr, key string, v any, red *runtime.Redactor) []slog.Attr {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			attrs = appendAttr(attrs, key+"."+k, v[k], red)
		}
		return attrs
	case string:
		return append(attrs, slog.String(key, red.String(v)))
	case float64:
		if v == float64(int64(v)) {
			return append(attrs, slog.Int64(key, int64(v)))
		}
		return append(attrs, slog.Float64(key, v))
	case bool:
		return append(attrs, slog.Bool(key, v))
	}
	return append(attrs, slog.Any(key, v))
}

// Stop asks the child to drain (SIGTERM), as a first signal asks `mdp run`.
func (c *childRun) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	if c.state == runtime.StateStopping {
		return // signalled already: a second signal would abort
	}
	if c.state == runtime.StateStarting || c.state == runtime.StateRunning {
		c.state = runtime.StateStopping
	}
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	proc, addrc, done := c.cmd.Process, c.addrc, c.done
	select {
	case <-addrc:
		_ = proc.Signal(syscall.SIGTERM)
	default:
		// The child reports its address only once its signal handlers
		// are in place; before that a SIGTERM would kill it instead of
		// draining it, so the signal waits for the report.
		go func() {
			select {
			case <-addrc:
				_ = proc.Signal(syscall.SIGTERM)
			case <-done:
			}
		}()
	}
}

// Abort ends the child as a second signal ends `mdp run`: SIGTERM (unless
// Stop sent it) then SIGINT, two distinct signals so neither merges into
// the other; the child aborts its job, logs it and exits. One that has not
// exited after abortGrace is killed.
func (c *childRun) Abort() {
	c.mu.Lock()
	if c.cmd == nil || c.cmd.Process == nil {
		c.mu.Unlock()
		return
	}
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	proc := c.cmd.Process
	if c.state != runtime.StateStopping {
		_ = proc.Signal(syscall.SIGTERM)
	}
	_ = proc.Signal(syscall.SIGINT)
	c.mu.Unlock()
	select {
	case <-c.done:
	case <-time.After(abortGrace):
		c.mu.Lock()
		c.signaled = true
		c.mu.Unlock()
		_ = proc.Kill()
	}
}

// abortGrace is how long an aborted child has to exit before it is killed.
const abortGrace = 5 * time.Second

func (c *childRun) Done() <-chan struct{} { return c.done }

func (c *childRun) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *childRun) State() runtime.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Status is the latest snapshot's runtime status, with the state as the
// manager knows it (a child that exited is stopped or failed whatever it
// last answered).
func (c *childRun) Status() runtime.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs runtime.Status
	if c.snap.Runtime != nil {
		rs = *c.snap.Runtime
	} else {
		rs = runtime.Status{Job: c.l.name, Mode: c.l.doc.Mode, UptimeSeconds: c.snap.UptimeSeconds}
	}
	rs.State = c.state
	return rs
}

// Health is the child's health verdict as last polled.
func (c *childRun) Health() runtime.Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := runtime.HealthStatus(c.snap.Health)
	if h == "" {
		h = runtime.HealthOK
		if c.state == runtime.StateFailed {
			h = runtime.HealthError
		}
	}
	return runtime.Health{Status: h, Job: c.l.name, State: c.state}
}

func (c *childRun) Redactor() *runtime.Redactor { return c.red }

func (c *childRun) observedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapAt
}

// metricsText is the child's metrics: scraped from its listener while it
// runs, the final ones it reported once it ended.
func (c *childRun) metricsText(ctx context.Context) (string, error) {
	c.mu.Lock()
	addr, final := c.addr, c.final
	c.mu.Unlock()
	select {
	case <-c.done:
		return final, nil
	default:
	}
	if addr == "" {
		return "", nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.p.client.Do(req)
	if err != nil {
		select {
		case <-c.done: // it ended meanwhile
			return c.metricsText(ctx)
		default:
		}
		return "", fmt.Errorf("job %q: scrape its process: %w", c.l.name, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return "", fmt.Errorf("job %q: scrape its process: %w", c.l.name, err)
	}
	return b.String(), nil
}
