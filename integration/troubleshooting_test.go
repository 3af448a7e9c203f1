package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/cli"
)

// troubleshootingGuide is the page every user-facing error is listed in.
var troubleshootingGuide = filepath.Join(repoRoot, "docs", "troubleshooting.md")

// guideCatalogue returns the messages the troubleshooting guide lists: the
// code spans of the first column of its tables, each split at "…" (the
// parts that vary) into the parts a message must hold, in order.
func guideCatalogue(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile(troubleshootingGuide)
	if err != nil {
		t.Fatal(err)
	}
	span := regexp.MustCompile("`([^`]+)`")
	var out [][]string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "|---") {
			continue
		}
		first := strings.SplitN(strings.TrimPrefix(l, "| "), " | ", 2)[0]
		for _, m := range span.FindAllStringSubmatch(first, -1) {
			var parts []string
			for _, p := range strings.Split(m[1], "…") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			if len(parts) > 0 {
				out = append(out, parts)
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("found %d messages in %s; the table layout changed?", len(out), troubleshootingGuide)
	}
	return out
}

// listed returns the guide entry msg matches (all its parts, in order), or
// nil.
func listed(cat [][]string, msg string) []string {
	for _, parts := range cat {
		rest, ok := msg, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return parts
		}
	}
	return nil
}

// troubleCase is one way to get an error out of mdp at a user-facing
// boundary: the command, the files it needs, the exit code and a stable
// part of the message.
type troubleCase struct {
	name  string
	args  []string          // mdp arguments; {dir} is the case's directory
	files map[string]string // written into the case's directory first
	exit  int
	want  string // a stable part of the message, listed in the guide
}

// Every message mdp gives for a broken job, a failed start-up or a
// command-line mistake is listed in docs/troubleshooting.md: each case runs
// the real command, checks its exit code and message, and then checks that
// the guide lists that message. For config errors (exit 2) every line mdp
// printed must match an entry of the guide, not only the one the case is
// about.
func TestTroubleshootingListsEveryError(t *testing.T) {
	cat := guideCatalogue(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	job := func(nodes, edges string) string {
		return "mode: dag\nname: broken\ndag:\n  nodes:\n" + nodes + "  edges: " + edges + "\n"
	}
	const src = "    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 100}}\n"
	const null = "    - {id: out, type: sink.null}\n"
	validate := []string{"validate", "--config", "{dir}/job.yaml"}
	run := []string{"run", "--config", "{dir}/job.yaml"}
	cases := []troubleCase{
		{name: "scaleout without nats", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "scaleout: {partitions: 4}\n"}, exit: 2,
			want: "scaleout needs nats: embedded"},
		{name: "scaleout two sources", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: src2, type: provider.synthetic, params: {symbols: [MSFT], count: 100}}\n"+null,
			"[[src, out], [src2, out]]") + "scaleout: {nats: embedded, store: nats}\n"}, exit: 2,
			want: "scaleout runs jobs with one source node"},
		{name: "scaleout retention", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "scaleout: {nats: embedded, store: nats, retention: {max_age: 10ms}}\n"}, exit: 2,
			want: "scaleout.retention.max_age: must be at least 100ms"},
		{name: "missing job file", args: []string{"validate", "--config", "{dir}/none.yaml"}, exit: 2, want: "cannot read the job file"},
		{name: "yaml", args: validate, files: map[string]string{"job.yaml": "mode: dag\ndag:\n  nodes: [\n"}, exit: 2, want: "invalid yaml"},
		{name: "json", args: []string{"validate", "--config", "{dir}/job.json"}, files: map[string]string{"job.json": `{"mode": "dag",`}, exit: 2, want: "invalid json"},
		{name: "two documents", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "---\nname: x\n"}, exit: 2,
			want: "a job file holds one document; remove the second one"},
		{name: "no section", args: validate, files: map[string]string{"job.yaml": "name: x\nfoo: 1\n"}, exit: 2, want: "the job has no dag or classic section"},
		{name: "unknown key", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "foo: 1\n"}, exit: 2, want: "unknown key"},
		{name: "unknown type", args: validate, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.synthetc}\n"+null, "[[src, out]]")}, exit: 2,
			want: "unknown component type"},
		{name: "unknown param", args: validate, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.synthetic, params: {symbolz: [A]}}\n"+null, "[[src, out]]")}, exit: 2,
			want: "unknown param"},
		{name: "missing param", args: validate, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.replay}\n"+null, "[[src, out]]")}, exit: 2,
			want: "missing required param"},
		{name: "types and bounds", args: validate, files: map[string]string{"job.yaml": job(
			"    - {id: src, type: provider.synthetic, params: {count: -5, seed: abc}}\n"+
				"    - {id: bars, type: operator.bars, params: {interval: 1x}}\n"+
				"    - {id: out, type: sink.stdout, params: {format: xml}}\n", "[[src, bars], [bars, out]]")}, exit: 2,
			want: "is below the minimum"},
		{name: "wrong type", args: validate, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.synthetic, params: {seed: abc}}\n"+null, "[[src, out]]")}, exit: 2,
			want: "want an integer, got"},
		{name: "duration", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: bars, type: operator.bars, params: {interval: 1x}}\n"+null, "[[src, bars], [bars, out]]")}, exit: 2,
			want: "invalid duration"},
		{name: "enum", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: out, type: sink.stdout, params: {format: xml}}\n", "[[src, out]]")}, exit: 2,
			want: "is not allowed; want one of"},
		{name: "unset variable", args: validate, files: map[string]string{"job.yaml": strings.Replace(job(src+null, "[[src, out]]"), "name: broken", "name: ${MDP_TROUBLE_UNSET}", 1)}, exit: 2,
			want: "environment variable MDP_TROUBLE_UNSET is not set"},
		{name: "bad reference", args: validate, files: map[string]string{"job.yaml": strings.Replace(job(src+null, "[[src, out]]"), "name: broken", "name: ${1x}", 1)}, exit: 2,
			want: "bad variable reference"},
		{name: "set without value", args: append(slices.Clone(validate), "--set", "metrics"), files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2,
			want: "want path=value"},
		{name: "set out of range", args: append(slices.Clone(validate), "--set", "dag.nodes[5].params.count=1"), files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2,
			want: "is out of range"},
		{name: "bad node id", args: validate, files: map[string]string{"job.yaml": job("    - {id: 'a b', type: provider.synthetic}\n"+null, "[['a b', out]]")}, exit: 2,
			want: "may hold only letters, digits, _ and -"},
		{name: "duplicate id", args: validate, files: map[string]string{"job.yaml": job(src+src+null, "[[src, out]]")}, exit: 2, want: "duplicate node id"},
		{name: "bad edges", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out], 5, {from: src}]")}, exit: 2, want: "want an edge as"},
		{name: "no nodes", args: validate, files: map[string]string{"job.yaml": "mode: dag\nname: t\ndag:\n  nodes: []\n  edges: []\n"}, exit: 2, want: "the list of nodes is empty"},
		{name: "no node id", args: validate, files: map[string]string{"job.yaml": job("    - {type: provider.synthetic}\n"+null, "[[src, out]]")}, exit: 2, want: "missing required key"},
		{name: "key twice", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "name: again\n"}, exit: 2, want: "is given twice"},
		{name: "unknown mode", args: validate, files: map[string]string{"job.yaml": strings.Replace(job(src+null, "[[src, out]]"), "mode: dag", "mode: graph", 1)}, exit: 2, want: "unknown mode"},
		{name: "checkpoint incomplete", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "checkpoint: {keep: 2}\n"}, exit: 2, want: "checkpoint needs"},
		{name: "feedback inverted", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]") + "feedback: {soft_at: 0.9, hard_at: 0.5}\n"}, exit: 2, want: "must be below hard_at"},
		{name: "set into a string", args: append(slices.Clone(validate), "--set", "name.x=1"), files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2, want: "cannot set key"},
		{name: "set under nothing", args: append(slices.Clone(validate), "--set", "dag.x[0]=1"), files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2, want: "not set, so there is no item"},
		{name: "unclosed reference", args: validate, files: map[string]string{"job.yaml": strings.Replace(job(src+null, "[[src, out]]"), "name: broken", "name: ${X", 1)}, exit: 2, want: "unclosed ${"},
		{name: "unknown node", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out], [src, nowhere]]")}, exit: 2, want: "unknown node"},
		{name: "no such port", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src.nope, out]]")}, exit: 2, want: "has no output port"},
		{name: "no such input port", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out.nope]]")}, exit: 2, want: "has no input port"},
		{name: "cycle", args: validate, files: map[string]string{"job.yaml": job(src+
			"    - {id: a, type: operator.filter, params: {expr: 'size > 1'}}\n"+
			"    - {id: b, type: operator.filter, params: {expr: 'size > 1'}}\n"+null, "[[src, a], [a, b], [b, a], [b, out]]")}, exit: 2, want: "cycle:"},
		{name: "self", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: a, type: operator.filter, params: {expr: 'size > 1'}}\n"+null, "[[src, a], [a, a], [a, out]]")}, exit: 2,
			want: "feeds itself"},
		{name: "edge twice", args: validate, files: map[string]string{"job.yaml": job(src+null, "[[src, out], [src, out]]")}, exit: 2, want: "is listed twice"},
		{name: "out of a sink", args: validate, files: map[string]string{"job.yaml": job(src+null+"    - {id: out2, type: sink.null}\n", "[[src, out], [out, out2]]")}, exit: 2,
			want: "sinks have none"},
		{name: "into a source", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: src2, type: provider.synthetic}\n"+null, "[[src, src2], [src2, out]]")}, exit: 2,
			want: "sources take none"},
		{name: "dangling", args: validate, files: map[string]string{"job.yaml": job(src+null+"    - {id: f, type: operator.filter, params: {expr: 'size > 1'}}\n", "[[src, out], [src, f]]")}, exit: 2,
			want: "is not connected to any sink"},
		{name: "dead letter unwired", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: f, type: operator.filter, params: {expr: 'size > 1'}, on_error: dead_letter}\n"+null, "[[src, f], [f, out]]")}, exit: 2,
			want: "has on_error: dead_letter but no edge from"},
		{name: "kinds", args: validate, files: map[string]string{"job.yaml": job(src+
			"    - {id: bars, type: operator.bars, params: {interval: 1s}}\n"+
			"    - {id: vb, type: operator.bars, params: {bar_type: volume, threshold: 10}}\n"+null, "[[src, bars], [bars, vb], [vb, out]]")}, exit: 2,
			want: "records but"},
		{name: "parallelism", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: out, type: sink.null, parallelism: 0}\n", "[[src, out]]")}, exit: 2,
			want: "must be at least 1"},
		{name: "parallelism of a source", args: validate, files: map[string]string{"job.yaml": job(
			"    - {id: src, type: provider.replay, params: {path: "+filepath.Join("{root}", "testdata", "replay", "tardis_trades.csv")+", preset: tardis_trades}, parallelism: 2}\n"+null, "[[src, out]]")}, exit: 2,
			want: "runs as one instance"},
		{name: "expression", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: f, type: operator.filter, params: {expr: 'siez > 1'}}\n"+null, "[[src, f], [f, out]]")}, exit: 2,
			want: "unknown name"},
		{name: "missing input", args: validate, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.replay, params: {path: {dir}/none.csv, preset: tardis_trades}}\n"+null, "[[src, out]]")}, exit: 2,
			want: "no such file or directory"},
		{name: "store thresholds", args: validate, files: map[string]string{"job.yaml": job(src+"    - {id: out, type: sink.sqlite, params: {path: {dir}/x.db, soft_at: 0.9, hard_at: 0.5}}\n", "[[src, out]]")}, exit: 2,
			want: "must not exceed hard_at"},
		{name: "log level", args: []string{"validate", "--log-level", "loud", "--config", "{dir}/job.yaml"}, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2,
			want: "invalid --log-level"},
		{name: "no job file", args: []string{"validate"}, exit: 2, want: "no job file"},
		{name: "resume without checkpoints", args: []string{"run", "--resume", "--config", "{dir}/job.yaml"}, files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 2,
			want: "--resume and --from need a checkpoint section in the job"},
		{name: "parallel source with checkpoints", args: run, files: map[string]string{"job.yaml": job("    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 100}, parallelism: 2}\n"+null, "[[src, out]]") +
			"checkpoint: {interval: 1s, store: {dir}/ck}\n"}, exit: 2, want: "cannot take checkpoints yet"},

		// Start-up failures: the job is valid, its start is not.
		{name: "metrics port in use", args: append(slices.Clone(run), "--set", "metrics.enable=true", "--set", "metrics.listen="+busy.Addr().String()),
			files: map[string]string{"job.yaml": job(src+null, "[[src, out]]")}, exit: 1, want: "address already in use"},
		{name: "postgres unreachable", args: run, files: map[string]string{"job.yaml": job(src+
			"    - {id: out, type: sink.postgres, params: {dsn: 'postgres://postgres:secret@127.0.0.1:1/test?sslmode=disable', retry_max_attempts: 1}}\n", "[[src, out]]")}, exit: 1,
			want: "connect to postgres"},
		{name: "sqlite directory", args: run, files: map[string]string{"job.yaml": job(src+"    - {id: out, type: sink.sqlite, params: {path: {dir}/file/x.db}}\n", "[[src, out]]"), "file": "not a directory"},
			exit: 1, want: "not a directory"},
		{name: "malformed row under on_error fail", args: run, files: map[string]string{
			"job.yaml":   job("    - {id: src, type: provider.replay, params: {path: {dir}/trades.csv, preset: tardis_trades, on_error: fail}}\n"+null, "[[src, out]]"),
			"trades.csv": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\nbinance,BTCUSDT,1582329602111000,1582329602418379,1,buy,abc,0.1\n"},
			exit: 1, want: "on_error is fail"},
		{name: "serve without token", args: []string{"serve", "--listen", "0.0.0.0:0", "--state", "{dir}/state.db"}, exit: 2, want: "refusing to listen on"},
		{name: "no job server", args: []string{"list", "--server", "http://127.0.0.1:1"}, exit: 1, want: "no mdp job server at"},
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			subst := func(s string) string {
				return strings.NewReplacer("{dir}", dir, "{root}", root).Replace(s)
			}
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(subst(body)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = subst(a)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := cli.Run(ctx, args, &stdout, &stderr)
			out := stderr.String()
			if code != c.exit {
				t.Fatalf("mdp %s: exit %d, want %d\n%s", strings.Join(args, " "), code, c.exit, out)
			}
			line := ""
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, c.want) {
					line = l
					break
				}
			}
			if line == "" {
				t.Fatalf("mdp %s: the message does not hold %q:\n%s", strings.Join(args, " "), c.want, out)
			}
			if listed(cat, line) == nil {
				t.Errorf("docs/troubleshooting.md lists nothing matching this message:\n%s", line)
			}
			if c.exit != 2 {
				return
			}
			// A config error is one line per problem: each must be listed.
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(l, "Run 'mdp") || strings.HasPrefix(l, "Usage:") {
					continue
				}
				if listed(cat, l) == nil {
					t.Errorf("docs/troubleshooting.md lists nothing matching this error:\n%s", l)
				}
			}
		})
	}
}
