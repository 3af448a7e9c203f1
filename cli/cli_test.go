package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mdpio/mdp/cli"
	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/engine/enginetest"
)

// The subprocess tests run two binaries:
//   - mdpBin, the real command built once by TestMain from ./cmd/mdp, for
//     what does not need test components (version, flags, built-in
//     components, the drain of a real bars job);
//   - the test binary itself with MDP_CLI_TEST_EXEC=1, which is mdp plus
//     the test components of components_test.go, for deterministic runtime
//     failures, aborts and signals.
const execEnv = "MDP_CLI_TEST_EXEC"

var (
	mdpBin   string
	buildErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		os.Exit(cli.Execute())
	}
	dir, err := os.MkdirTemp("", "mdp-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mdpBin = filepath.Join(dir, "mdp")
	build := exec.Command("go", "build", "-o", mdpBin, "./cmd/mdp")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/mdp: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func realMDP(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mdpBin
}

// testMDP returns the test binary as an mdp command with the test components.
func testMDP(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *enginetest.SyncBuffer
	done           chan struct{}
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &enginetest.SyncBuffer{}, stderr: &enginetest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), execEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code; a process still running after 60s is killed
// and fails the test.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%v did not exit\nstdout:\n%s\nstderr:\n%s", p.cmd.Args, p.stdout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitLog waits until stderr holds a JSON log line whose msg is msg, and
// returns that line decoded.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := findLog(p.stderr.String(), msg); l != nil {
			return l
		}
		select {
		case <-p.done:
			if l := findLog(p.stderr.String(), msg); l != nil {
				return l
			}
			p.t.Fatalf("process exited (%d) before logging %q\nstderr:\n%s", p.cmd.ProcessState.ExitCode(), msg, p.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.t.Fatalf("no %q log within 30s\nstderr:\n%s", msg, p.stderr)
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func findLog(stderr, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

// runMDP runs a binary to completion and returns exit code, stdout, stderr.
func runMDP(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	p := start(t, bin, args...)
	code := p.wait()
	return code, p.stdout.String(), p.stderr.String()
}

// runInProcess runs the CLI in this process (test components included).
func runInProcess(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testJob is a dag job of the test components.
func testJob(name, srcParams, sinkParams, extra string) string {
	return fmt.Sprintf(`mode: dag
name: %s
dag:
  nodes:
    - id: src
      type: provider.test_cli_src
      params: {%s}
    - id: store
      type: sink.test_cli_sink
      params: {%s}
  edges:
    - [src, store]
%s`, name, srcParams, sinkParams, extra)
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ok.out")
	ok := writeFile(t, dir, "ok.yaml", testJob("ok", "count: 25, batch: 5", "path: "+out, ""))
	failing := writeFile(t, dir, "fail.yaml", testJob("fail", "count: 25, batch: 5",
		`fail_on: 2, password: hunter2secret, dsn: "postgres://app:s3cr3tpw@db/x"`, ""))
	openFail := writeFile(t, dir, "openfail.yaml", testJob("openfail", "count: 1", `open_error: "connection refused", dsn: "postgres://u:pw9876@h/db"`, ""))
	badConfig := writeFile(t, dir, "bad.yaml", testJob("bad", "count: 5, bogus: 1", "", ""))
	panicking := func(method string) string {
		job := strings.Replace(testJob("panic", "count: 25, batch: 5", "panic_in: "+method, ""), "sink.test_cli_sink", "sink.test_cli_panic", 1)
		return writeFile(t, dir, "panic"+method+".yaml", job)
	}
	timeout := writeFile(t, dir, "timeout.yaml", testJob("timeout", "count: 5, hold: true", "close_wait: true", "shutdown_timeout: 200ms\n"))

	for _, tc := range []struct {
		name      string
		real      bool
		args      []string
		code      int
		stdout    string // substring
		stderr    string // substring
		sigterm   bool
		noSecrets bool
	}{
		{name: "version", real: true, args: []string{"version"}, code: 0, stdout: "go: go1."},
		{name: "completion", real: true, args: []string{"completion", "bash"}, code: 0, stdout: "# bash completion V2 for mdp"},
		{name: "help", real: true, args: []string{"run", "--help"}, code: 0, stdout: "Exit codes: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted."},
		{name: "bad flag", real: true, args: []string{"run", "--bogus"}, code: 2, stderr: "Error: unknown flag: --bogus\nRun 'mdp run --help' for usage.\n"},
		{name: "bad flag value", real: true, args: []string{"--log-level", "loud", "version"}, code: 2, stderr: `Error: invalid --log-level "loud": want debug, info, warn or error`},
		{name: "unknown command", real: true, args: []string{"frobnicate"}, code: 2, stderr: `Error: unknown command "frobnicate" for "mdp"`},
		{name: "no config", real: true, args: []string{"run"}, code: 2, stderr: "Error: no job file: use --config FILE, or give the job in MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON\n"},
		{name: "bad mode", real: true, args: []string{"run", "--config", ok, "--mode", "tree"}, code: 2, stderr: `Error: invalid --mode "tree": want classic or dag`},
		{name: "missing file", real: true, args: []string{"run", "--config", filepath.Join(dir, "none.yaml")}, code: 2,
			stderr: filepath.Join(dir, "none.yaml") + ": cannot read the job file: no such file or directory\n"},
		{name: "success", args: []string{"run", "--config", ok}, code: 0},
		{name: "positional config", args: []string{"run", ok}, code: 0},
		{name: "runtime failure", args: []string{"run", "--config", failing}, code: 1,
			stderr: `"err":"node \"store\": write to postgres://app:xxxxx@db/x failed: password xxxxx rejected"`, noSecrets: true},
		{name: "open failure", args: []string{"run", "--config", openFail}, code: 1,
			stderr: `open: connection refused (dsn postgres://u:xxxxx@h/db)`, noSecrets: true},
		{name: "panic in New", args: []string{"run", "--config", panicking("New")}, code: 1, stderr: `node \"store\": New panicked: test panic in New`},
		{name: "panic in Open", args: []string{"run", "--config", panicking("Open")}, code: 1, stderr: `"node":"store","instance":0,"err":"Open panicked: test panic in Open"`},
		{name: "panic in Process", args: []string{"run", "--config", panicking("Process")}, code: 1, stderr: `node \"store\": Process panicked: test panic in Process`},
		{name: "panic in Close", args: []string{"run", "--config", panicking("Close")}, code: 1, stderr: `node \"store\": Close panicked: test panic in Close`},
		{name: "panic in Cleanup", args: []string{"run", "--config", panicking("Cleanup")}, code: 1, stderr: `node \"store\": Cleanup panicked: test panic in Cleanup`},
		{name: "config error", args: []string{"run", "--config", badConfig}, code: 2, stderr: badConfig + ":7:26: dag.nodes[0].params.bogus: unknown param \"bogus\""},
		{name: "aborted by shutdown timeout", args: []string{"run", "--config", timeout}, code: 130, sigterm: true, stderr: `"msg":"shutdown timeout: aborting the job"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := testMDP(t)
			if tc.real {
				bin = realMDP(t)
			}
			p := start(t, bin, tc.args...)
			if tc.sigterm {
				p.waitLog("job running")
				p.signal(syscall.SIGTERM)
			}
			code := p.wait()
			stdout, stderr := p.stdout.String(), p.stderr.String()
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nwant in stdout %q\nstderr:\n%s\nwant in stderr %q", code, tc.code, stdout, tc.stdout, stderr, tc.stderr)
			}
			if tc.name == "open failure" && strings.Count(stderr, "connection refused") != 1 {
				t.Fatalf("a start failure must be logged once:\n%s", stderr)
			}
			if tc.noSecrets {
				for _, s := range []string{"hunter2secret", "s3cr3tpw", "pw9876"} {
					if strings.Contains(stdout+stderr, s) {
						t.Fatalf("secret %q in output:\n%s%s", s, stdout, stderr)
					}
				}
			}
		})
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "records 25\n" {
		t.Fatalf("ok job output %q, %v", b, err)
	}
}

func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "drain.out")
	// 40 trades, then the source holds until stopped: the sink must see all
	// of them and close (writing the file) before the process exits 0.
	cfg := writeFile(t, dir, "drain.yaml", testJob("drain", "count: 40, batch: 4, interval: 1ms, hold: true", "path: "+out, ""))
	p := start(t, testMDP(t), "run", "--config", cfg)
	p.waitLog("job running")
	time.Sleep(100 * time.Millisecond) // let the batches flow; the drain must not depend on it
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	fin := findLog(p.stderr.String(), "job finished")
	if fin == nil || findLog(p.stderr.String(), "signal received: stopping gracefully (send it again to abort)") == nil {
		t.Fatalf("logs:\n%s", p.stderr)
	}
	emitted := int(fin["records_in"].(float64))
	// The end record is the job's summary: per node in, out and written.
	src, _ := fin["src"].(map[string]any)
	store, _ := fin["store"].(map[string]any)
	if src["kind"] != "source" || src["out"] != float64(emitted) || store["kind"] != "sink" ||
		store["in"] != float64(emitted) || store["written"] != float64(emitted) || fin["elapsed"] == nil || fin["records_per_second"] == nil {
		t.Fatalf("summary %v", fin)
	}
	if strings.Count(p.stderr.String(), `"msg":"job finished"`) != 1 {
		t.Fatalf("the end logged more than once:\n%s", p.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("records %d\n", emitted); string(b) != want {
		t.Fatalf("sink wrote %q, want %q (everything the source emitted)", b, want)
	}
}

func TestSecondSignalAborts(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "stuck.yaml", testJob("stuck", "count: 5, hold: true", "close_wait: true", "shutdown_timeout: 1h\n"))
	p := start(t, testMDP(t), "run", "--config", cfg)
	p.waitLog("job running")
	p.signal(syscall.SIGTERM)
	p.waitLog("job stopping: draining")
	p.signal(syscall.SIGINT)
	if code := p.wait(); code != 130 {
		t.Fatalf("exit %d after a second signal, want 130\n%s", code, p.stderr)
	}
	if findLog(p.stderr.String(), "second signal: aborting") == nil || findLog(p.stderr.String(), "job aborted") == nil {
		t.Fatalf("logs:\n%s", p.stderr)
	}
}

func TestMetricsEndpointDuringRun(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "metrics.yaml", testJob("scraped", "count: 30, batch: 10, hold: true", "",
		"metrics: {enable: true, listen: \"127.0.0.1:0\"}\n"))
	p := start(t, testMDP(t), "run", "--config", cfg)
	addr := p.waitLog("metrics server listening")["addr"].(string)
	p.waitLog("job running")
	base := "http://" + addr
	want := []string{
		`runtime_up{mode="dag"} 1`,
		`runtime_jobs_running{mode="dag"} 1`,
		`mdp_node_events_out_total{job="scraped",node="src",type="provider.test_cli_src"} 30`,
		`mdp_node_events_in_total{job="scraped",node="store",type="sink.test_cli_sink"} 30`,
		`mdp_node_queue_depth{job="scraped",node="store",type="sink.test_cli_sink"} 0`,
		`mdp_edge_queue_depth{edge="src -> store",from="src",job="scraped",policy="block",to="store"} 0`,
	}
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		body = httpGet(t, base+"/metrics", 200)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b := httpGet(t, base+"/healthz", 200); !strings.Contains(b, `"alive"`) {
		t.Fatalf("/healthz %s", b)
	}
	var h struct {
		Status string `json:"status"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/readyz", 200)), &h); err != nil || h.Status != "OK" || h.State != "running" {
		t.Fatalf("/readyz %+v %v", h, err)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
}

func httpGet(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d\n%s", url, resp.StatusCode, code, b)
	}
	return string(b)
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", testJob("good", "count: 5", "path: x", ""))
	code, stdout, stderr := runInProcess("validate", "--config", good)
	if code != 0 || stdout != fmt.Sprintf("ok: %s (dag, 2 nodes, 1 edges)\n", good) || stderr != "" {
		t.Fatalf("valid: %d %q %q", code, stdout, stderr)
	}
	bad := writeFile(t, dir, "bad.yaml", `mode: dag
dag:
  nodes:
    - {id: src, type: provider.test_cli_src, params: {count: -1}}
    - {id: store, type: sink.test_cli_sink, params: {mode: upsret, ratio: 2}}
  edges:
    - [src, store]
`)
	code, stdout, stderr = runInProcess("validate", bad)
	want := bad + `:4:62: dag.nodes[0].params.count: -1 is below the minimum 0
` + bad + `:5:60: dag.nodes[1].params.mode: "upsret" is not allowed; want one of insert, upsert (did you mean "upsert"?)
` + bad + `:5:75: dag.nodes[1].params.ratio: 2 is above the maximum 1
`
	if code != 2 || stdout != "" || stderr != want {
		t.Fatalf("invalid: exit %d\nstdout %q\nstderr:\n%s\nwant:\n%s", code, stdout, stderr, want)
	}
	// Overrides apply as in run.
	code, stdout, _ = runInProcess("validate", good, "--set", "dag.nodes.src.params.count=-3")
	if code != 2 || stdout != "" {
		t.Fatalf("--set: %d %q", code, stdout)
	}
}

func TestComponentsJSONAndText(t *testing.T) {
	t.Setenv("COLUMNS", "200")
	code, stdout, stderr := runInProcess("components", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var docs []cli.ComponentDoc
	if err := json.Unmarshal([]byte(stdout), &docs); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
	}
	byType := map[string]cli.ComponentDoc{}
	for i, d := range docs {
		byType[d.Type] = d
		if i > 0 && docs[i-1].Type >= d.Type {
			t.Fatalf("not sorted by type: %s before %s", docs[i-1].Type, d.Type)
		}
	}
	src, ok := byType["provider.test_cli_src"]
	if !ok || src.Kind != "source" || src.Produces != "trade" || src.Accepts != "" || len(src.Params) != 6 {
		t.Fatalf("provider.test_cli_src: %+v", src)
	}
	if p := src.Params[0]; p.Name != "count" || p.Type != "int" || p.Default != float64(10) || p.Required || *p.Min != 0 || p.Description != "trades to emit" {
		t.Fatalf("count param: %+v", p)
	}
	if p := src.Params[4]; p.Name != "max_out_of_orderness" || p.Default != "0s" {
		t.Fatalf("common source param: %+v", p)
	}
	op := byType["operator.test_cli_pass"]
	if op.Accepts != "trade|quote" || op.Produces != "same as input" || op.Ports["late"] != "same as input" {
		t.Fatalf("operator: %+v", op)
	}
	sink := byType["sink.test_cli_sink"]
	if sink.Produces != "" || sink.Accepts != "trade|quote|bar|derived" || !sink.Params[4].Secret || sink.Params[6].Enum[1] != "upsert" {
		t.Fatalf("sink: %+v", sink)
	}

	code, stdout, _ = runInProcess("components", "sink.test_cli_sink")
	wantText := `sink.test_cli_sink (sink)  trade|quote|bar|derived ->
  CLI test sink
  params:
    path (string)
        file that receives the record count on close
    fail_on (int, default 0, >= 0)
        fail on this batch (1-based); 0 never
    close_wait (bool, default false)
        block in Close until aborted
    open_error (string)
        fail Open with this message
    password (string)
        a secret (secret: never shown in logs or status)
    dsn (string)
        a DSN that may hold a password
    mode (string, default upsert, one of insert|upsert)
        write mode
    ratio (float, 0..1)
        a fraction
`
	if code != 0 || stdout != wantText {
		t.Fatalf("text:\n%s\nwant:\n%s", stdout, wantText)
	}
	code, stdout, _ = runInProcess("components")
	if code != 0 || !strings.HasPrefix(stdout, "TYPE") || !regexp.MustCompile(`(?m)^operator\.test_cli_pass\s+operator\s+trade\|quote -> same as input\s+CLI test pass-through$`).MatchString(stdout) {
		t.Fatalf("overview:\n%s", stdout)
	}
	code, _, stderr = runInProcess("components", "sink.test_cli_snk")
	if code != 2 || stderr != "Error: unknown component type \"sink.test_cli_snk\"; did you mean \"sink.test_cli_sink\"? (mdp components lists them all)\n" {
		t.Fatalf("unknown type: %d %q", code, stderr)
	}
	code, stdout, stderr = runInProcess("components", "--schema")
	var schema map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &schema) != nil || !strings.Contains(stdout, "provider.test_cli_src") {
		t.Fatalf("--schema: %d %s %s", code, stdout, stderr)
	}
}

// The text listing of the real components fits the width it is given, shows
// ranges as plain numbers, names a type for every param, and suggests the
// full type id for a bare name.
func TestComponentsTextFitsAndReads(t *testing.T) {
	t.Setenv("COLUMNS", "72")
	code, stdout, stderr := runMDP(t, realMDP(t), "components", "provider.synthetic", "operator.bars", "provider.replay", "sink.parquet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if n := utf8.RuneCountInString(l); n > 72 && strings.Contains(strings.TrimSpace(l), " ") {
			t.Errorf("line of %d runes: %q", n, l)
		}
	}
	for _, want := range []string{
		"    symbols (list of strings)\n",
		"    symbol_count (int, default 100, 1..1000)\n",
		"    rate (float, default 0, 0..1000000000)\n",
		"    batch_size (int, default 1024, 1..1048576)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "e+") || regexp.MustCompile(`\((any)[,)]`).MatchString(stdout) {
		t.Errorf("scientific notation or an any type in\n%s", stdout)
	}
	code, _, stderr = runMDP(t, realMDP(t), "components", "bars")
	if code != 2 || stderr != "Error: unknown component type \"bars\"; did you mean \"operator.bars\"? (mdp components lists them all)\n" {
		t.Fatalf("bars: %d %q", code, stderr)
	}
	code, stdout, _ = runMDP(t, realMDP(t), "components")
	if code != 0 {
		t.Fatalf("components: exit %d", code)
	}
	for _, l := range strings.Split(stdout, "\n") {
		if n := utf8.RuneCountInString(l); n > 72 && strings.Contains(strings.TrimSpace(l), " ") {
			t.Errorf("overview line of %d runes: %q", n, l)
		}
	}
}

func TestComponentsJSONRealBinary(t *testing.T) {
	code, stdout, stderr := runMDP(t, realMDP(t), "components", "--json")
	var docs []cli.ComponentDoc
	if code != 0 || json.Unmarshal([]byte(stdout), &docs) != nil {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, d := range docs {
		if strings.Contains(d.Type, "test_cli") {
			t.Fatalf("test component %s in the real binary", d.Type)
		}
		if d.Kind == "" || d.Summary == "" {
			t.Errorf("component %s lacks kind or summary: %+v", d.Type, d)
		}
	}
}

const graphJob = `mode: dag
name: g
dag:
  nodes:
    - {id: src, type: provider.test_cli_src}
    - {id: pass, type: operator.test_cli_pass, parallelism: 2}
    - {id: end, type: sink.test_cli_sink}
    - {id: late-store, type: sink.test_cli_sink}
  edges:
    - [src, pass]
    - {from: pass, to: end, capacity: 16, policy: drop_oldest}
    - [pass.late, late-store]
`

func TestGraph(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "g.yaml", graphJob)
	code, stdout, stderr := runInProcess("graph", "--config", cfg)
	wantDOT := `digraph "g" {
  rankdir=LR;
  node [fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=10];
  "src" [label="src\nprovider.test_cli_src\nparallelism 1", shape=ellipse];
  "pass" [label="pass\noperator.test_cli_pass\nparallelism 2", shape=box];
  "end" [label="end\nsink.test_cli_sink\nparallelism 1", shape=cylinder];
  "late-store" [label="late-store\nsink.test_cli_sink\nparallelism 1", shape=cylinder];
  "src" -> "pass";
  "pass" -> "end" [label="drop_oldest, capacity 16"];
  "pass" -> "late-store" [label="late", style=dashed];
}
`
	if code != 0 || stdout != wantDOT {
		t.Fatalf("dot: exit %d %s\n%s\nwant:\n%s", code, stderr, stdout, wantDOT)
	}
	code, stdout, _ = runInProcess("graph", "--config", cfg, "--format", "mermaid")
	wantMermaid := `flowchart LR
  n_src(["src<br/>provider.test_cli_src<br/>parallelism 1"])
  n_pass["pass<br/>operator.test_cli_pass<br/>parallelism 2"]
  n_end[("end<br/>sink.test_cli_sink<br/>parallelism 1")]
  n_late_store[("late-store<br/>sink.test_cli_sink<br/>parallelism 1")]
  n_src --> n_pass
  n_pass -->|"drop_oldest, capacity 16"| n_end
  n_pass -.->|"late"| n_late_store
`
	if code != 0 || stdout != wantMermaid {
		t.Fatalf("mermaid:\n%s\nwant:\n%s", stdout, wantMermaid)
	}
	code, _, stderr = runInProcess("graph", "--config", cfg, "--format", "png")
	if code != 2 || !strings.Contains(stderr, `invalid --format "png": want dot or mermaid`) {
		t.Fatalf("bad format: %d %s", code, stderr)
	}
}

// TestSIGTERMDrainsRealBarsJob runs the real binary on a paced synthetic
// feed into 100ms bars and a file, stops it with SIGTERM, and checks that
// every trade the source emitted is in exactly one bar of the file.
func TestSIGTERMDrainsRealBarsJob(t *testing.T) {
	bin := realMDP(t)
	code, stdout, _ := runMDP(t, bin, "components", "--json")
	var docs []cli.ComponentDoc
	if code != 0 || json.Unmarshal([]byte(stdout), &docs) != nil {
		t.Fatalf("components: %d", code)
	}
	have := map[string]bool{}
	for _, d := range docs {
		have[d.Type] = true
	}
	for _, typ := range []string{"provider.synthetic", "operator.bars", "sink.file"} {
		if !have[typ] {
			t.Skipf("%s is not registered in the mdp binary (components/components.go); this test runs once it is", typ)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "bars.jsonl")
	cfg := writeFile(t, dir, "drain.yaml", fmt.Sprintf(`mode: dag
name: drain-bars
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 2000, batch_size: 64}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: out, type: sink.file, params: {path: %q}}
  edges:
    - [src, bars]
    - [bars, out]
`, out))
	p := start(t, bin, "run", "--config", cfg)
	p.waitLog("job running")
	time.Sleep(700 * time.Millisecond) // several bars close while running, one is open at the signal
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	fin := findLog(p.stderr.String(), "job finished")
	if fin == nil {
		t.Fatalf("no job finished log:\n%s", p.stderr)
	}
	emitted := int64(fin["records_in"].(float64))
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var trades int64
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var bar struct {
			Type, Symbol, Start string
			Trades              int64
		}
		if err := json.Unmarshal(sc.Bytes(), &bar); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		key := bar.Symbol + " " + bar.Start
		if bar.Type != "bar" || seen[key] {
			t.Fatalf("unexpected or duplicate bar %q", sc.Text())
		}
		seen[key] = true
		trades += bar.Trades
	}
	if emitted < 100 || trades != emitted {
		t.Fatalf("bars hold %d trades, the source emitted %d: a bar was lost", trades, emitted)
	}
}

// BenchmarkRunOneEvent measures mdp run start to exit for a one-event job
// with the real binary (the target is well under 30ms).
func BenchmarkRunOneEvent(b *testing.B) {
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	code, stdout, _ := runBench(b, "components", "--json")
	if code != 0 || !strings.Contains(stdout, `"provider.synthetic"`) || !strings.Contains(stdout, `"sink.null"`) {
		b.Skip("provider.synthetic and sink.null are not registered in the mdp binary yet")
	}
	cfg := filepath.Join(b.TempDir(), "one.yaml")
	if err := os.WriteFile(cfg, []byte(`mode: dag
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 1}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if code, _, stderr := runBench(b, "run", "--config", cfg, "--log-level", "error"); code != 0 {
			b.Fatalf("exit %d: %s", code, stderr)
		}
	}
}

func runBench(b *testing.B, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	cmd := exec.Command(mdpBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		b.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestJobFromEnvironmentAlone: mdp run and validate with the job in
// MDP_UNIFIED_DAG_JSON and no --config, as the README says, through the
// real binary.
func TestJobFromEnvironmentAlone(t *testing.T) {
	bin := realMDP(t)
	out := filepath.Join(t.TempDir(), "trades.jsonl")
	job := fmt.Sprintf(`{"nodes":[{"id":"src","type":"provider.synthetic","params":{"count":7}},`+
		`{"id":"out","type":"sink.file","params":{"path":%q}}],"edges":[["src","out"]]}`, out)
	for _, args := range [][]string{{"validate"}, {"run"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MDP_UNIFIED_DAG_JSON="+job)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mdp %s: %v\n%s", args[0], err, b)
		}
		if args[0] == "validate" && !strings.Contains(string(b), "ok: environment (dag, 2 nodes, 1 edges)") {
			t.Fatalf("validate: %s", b)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 7 {
		t.Fatalf("%d records written, want 7:\n%s", n, data)
	}
}

// TestValidateChecksAddressesAndPaths: validate checks what it can without
// running: ports, input files, output directories.
func TestValidateChecksAddressesAndPaths(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	writeFile(t, dir, "afile", "")
	writeFile(t, dir, "in.csv", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
	n := 0
	job := func(listen, url, input, output string) string {
		n++
		return writeFile(t, dir, fmt.Sprintf("j%d.yaml", n), fmt.Sprintf(`mode: dag
metrics: {listen: %q}
dag:
  nodes:
    - {id: src, type: provider.replay, params: {path: [%s], preset: tardis_trades}}
    - {id: ws, type: provider.websocket, params: {url: %q, preset: binance}}
    - {id: out, type: sink.file, params: {path: %q}}
    - {id: out2, type: sink.null}
  edges: [[src, out], [ws, out2]]
`, listen, input, url, output))
	}
	for _, c := range []struct {
		file         string
		code         int
		stderr, warn string
	}{
		{job("127.0.0.1:9108", "ws://127.0.0.1:9443/ws", "in.csv", "out/bars.jsonl"), 0, "", ""},
		{job("127.0.0.1:99999", "ws://127.0.0.1:9443/ws", "in.csv", "bars.jsonl"), 2, `metrics.listen: address "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`, ""},
		{job("0.0.0.0:abc", "ws://127.0.0.1:9443/ws", "in.csv", "bars.jsonl"), 2, `metrics.listen: address "0.0.0.0:abc": port "abc" is not a number from 0 to 65535`, ""},
		{job("127.0.0.1:9108", "ws://127.0.0.1:99999/ws", "in.csv", "bars.jsonl"), 2, `dag.nodes[1].params.url: port "99999" is not a number from 0 to 65535`, ""},
		{job("127.0.0.1:9108", "ws://h/ws", "missing.csv", "bars.jsonl"), 2, `dag.nodes[0].params.path: input "missing.csv": no such file or directory`, ""},
		{job("127.0.0.1:9108", "ws://h/ws", `in.csv, "later/*.csv"`, "bars.jsonl"), 0, "", `:5:7: dag.nodes[0].params.path: "later/*.csv" matches no files (yet)`},
		{job("127.0.0.1:9108", "ws://h/ws", "in.csv", "newdir/../bars.jsonl"), 2, `dag.nodes[2].params.path: output "newdir/../bars.jsonl": directory "newdir" does not exist, and "newdir/.." goes up from it`, ""},
		{job("127.0.0.1:9108", "ws://h/ws", "in.csv", "afile/bars.jsonl"), 2, `dag.nodes[2].params.path: output "afile/bars.jsonl": "afile" is not a directory`, ""},
	} {
		code, _, stderr := runInProcess("validate", c.file)
		if code != c.code || !strings.Contains(stderr, c.stderr) || !strings.Contains(stderr, c.warn) {
			t.Errorf("%s:\nexit %d, want %d\nstderr: %s\nwant: %s%s", readFileT(t, c.file), code, c.code, stderr, c.stderr, c.warn)
		}
	}
}

func readFileT(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
