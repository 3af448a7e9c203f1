// Package docgen generates the reference pages under docs/reference from
// the code itself, so they cannot drift: the component reference from the
// component registry, the CLI reference from the cobra commands, the job
// file reference from the JSON Schema of job files, the metrics reference
// from the series a running job registers, and the drop and error reasons
// from the calls that count them in the source. scripts/gendocs writes them (go generate ./internal/docgen); a test fails when the
// committed files differ from what Generate returns.
package docgen

//go:generate go run ../../scripts/gendocs -dir ../../docs/reference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/cli"
	_ "github.com/mdpio/mdp/components" // every shipped component, as the mdp binary has them
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/scaleout"
)

// Generate returns the reference pages, by file name under docs/reference.
func Generate(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	var buf, errs bytes.Buffer
	if code := cli.Run(ctx, []string{"components", "--markdown"}, &buf, &errs); code != cli.ExitOK {
		return nil, fmt.Errorf("mdp components --markdown: exit %d: %s", code, errs.String())
	}
	out["components.md"] = bytes.Clone(buf.Bytes())
	out["cli.md"] = cliReference(cli.Command(cli.Options{}))
	cfg, err := configReference()
	if err != nil {
		return nil, err
	}
	out["config.md"] = cfg
	m, err := metricsReference(ctx)
	if err != nil {
		return nil, err
	}
	out["metrics.md"] = m
	r, err := reasonsReference()
	if err != nil {
		return nil, err
	}
	out["reasons.md"] = r
	return out, nil
}

// cliReference is every command's usage, description, examples and flags.
func cliReference(root *cobra.Command) []byte {
	var b strings.Builder
	b.WriteString("# CLI reference\n\nGenerated from the cobra commands (`go generate ./internal/docgen`); do not edit.\n")
	b.WriteString("Exit codes of every command: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted.\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" && c.Parent() == root {
			return
		}
		fmt.Fprintf(&b, "\n## %s\n\n", c.CommandPath())
		if c.Short != "" {
			b.WriteString(c.Short + ".\n\n")
		}
		fmt.Fprintf(&b, "```\n%s\n```\n", c.UseLine())
		if c.Long != "" && c.Long != c.Short {
			fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Long))
		}
		if len(c.Aliases) > 0 {
			fmt.Fprintf(&b, "\nAliases: `%s`.\n", strings.Join(c.Aliases, "`, `"))
		}
		if c.Example != "" {
			fmt.Fprintf(&b, "\nExamples:\n\n```\n%s\n```\n", strings.TrimRight(c.Example, "\n"))
		}
		if f := c.NonInheritedFlags().FlagUsages(); strings.TrimSpace(f) != "" {
			fmt.Fprintf(&b, "\nFlags:\n\n```\n%s```\n", f)
		}
		if c == root {
			if f := c.PersistentFlags().FlagUsages(); strings.TrimSpace(f) != "" {
				fmt.Fprintf(&b, "\nGlobal flags (every command):\n\n```\n%s```\n", f)
			}
		}
		subs := c.Commands()
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			walk(s)
		}
	}
	walk(root)
	return []byte(b.String())
}

// configReference is the job file's keys, from the JSON Schema, without
// the per-component params (the component reference has those).
func configReference() ([]byte, error) {
	raw, err := config.Schema(nil)
	if err != nil {
		return nil, fmt.Errorf("job file schema: %w", err)
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("job file schema: %w", err)
	}
	defs, _ := s["$defs"].(map[string]any)
	var b strings.Builder
	b.WriteString("# Job file reference\n\nGenerated from the JSON Schema of job files (`mdp components --schema`; `go generate ./internal/docgen`); do not edit.\n")
	b.WriteString("A job file is YAML or JSON. Node params are in the [component reference](components.md).\n\n")
	if d, ok := s["description"].(string); ok {
		b.WriteString(d + "\n\n")
	}
	b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
	var walk func(prefix string, props map[string]any, required map[string]bool)
	walk = func(prefix string, props map[string]any, required map[string]bool) {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, _ := props[k].(map[string]any)
			p = resolve(p, defs)
			desc, _ := p["description"].(string)
			if required[k] {
				desc = "Required. " + desc
			}
			if e, ok := p["enum"].([]any); ok {
				var vs []string
				for _, v := range e {
					vs = append(vs, fmt.Sprint(v))
				}
				desc += " One of: `" + strings.Join(vs, "`, `") + "`."
			}
			def := ""
			if d, ok := p["default"]; ok {
				j, _ := json.Marshal(d)
				def = "`" + string(j) + "`"
			}
			fmt.Fprintf(&b, "| `%s%s` | %s | %s | %s |\n", prefix, k, typeOf(p, defs), cell(def), cell(desc))
			if sub, ok := p["properties"].(map[string]any); ok && k != "params" {
				req := map[string]bool{}
				if r, ok := p["required"].([]any); ok {
					for _, x := range r {
						req[fmt.Sprint(x)] = true
					}
				}
				walk(prefix+k+".", sub, req)
			}
		}
	}
	props, _ := s["properties"].(map[string]any)
	walk("", props, nil)
	return []byte(b.String()), nil
}

// resolve follows a $ref into defs, keeping the referring description and
// default.
func resolve(p map[string]any, defs map[string]any) map[string]any {
	ref, ok := p["$ref"].(string)
	if !ok {
		return p
	}
	d, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
	out := map[string]any{}
	for k, v := range d {
		out[k] = v
	}
	for k, v := range p {
		if k != "$ref" {
			out[k] = v
		}
	}
	out["$ref"] = ref
	return out
}

func typeOf(p map[string]any, defs map[string]any) string {
	if ref, ok := p["$ref"].(string); ok {
		return strings.TrimPrefix(ref, "#/$defs/")
	}
	if t, ok := p["type"].(string); ok {
		if t == "array" {
			if it, ok := p["items"].(map[string]any); ok {
				return "list of " + typeOf(resolve(it, defs), defs)
			}
		}
		return t
	}
	if alts, ok := p["anyOf"].([]any); ok {
		var ts []string
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok {
				ts = append(ts, typeOf(resolve(m, defs), defs))
			}
		}
		return strings.Join(ts, " or ")
	}
	if _, ok := p["enum"]; ok {
		return "string"
	}
	return "any"
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// referenceJob exercises the series a job registers: the engine's per-node
// and per-edge series, a store sink's, feedback's and checkpoints'.
const referenceJob = `mode: dag
name: metrics-reference
feedback: {enable_feedback: true}
checkpoint: {interval: 100ms, store: %q, keep: 1}
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 50000, seed: 3}}
    - {id: quality, type: operator.quality}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges:
    - [src, quality]
    - [quality, bars]
    - [bars, store]
`

// metricsReference runs referenceJob until every kind of series it has
// exists, and lists them (name, type, labels, help), leaving out the Go
// runtime's and the process's standard series.
func metricsReference(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp("", "mdp-docgen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c := metrics.NewCollector("dag")
	job := fmt.Sprintf(referenceJob, filepath.Join(dir, "checkpoints"), filepath.Join(dir, "bars.db"))
	u, err := runtime.NewFromBytes("metrics-reference.yaml", []byte(job), runtime.Options{Metrics: c})
	if err != nil {
		return nil, fmt.Errorf("reference job: %w", err)
	}
	if err := u.Start(ctx); err != nil {
		return nil, fmt.Errorf("reference job: %w", err)
	}
	defer func() { u.Abort(); _ = u.Wait() }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	var fams []*dto.MetricFamily
	deadline := time.Now().Add(60 * time.Second)
	for {
		fams, err = reg.Gather()
		if err != nil {
			return nil, fmt.Errorf("gather: %w", err)
		}
		if has(fams, "mdp_sink_rows_written_total") && has(fams, "mdp_checkpoint_last_timestamp_seconds") && has(fams, "mdp_node_watermark_lag_seconds") {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reference job: series missing after 60s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var b strings.Builder
	b.WriteString("# Metrics reference\n\nGenerated from the series a running job registers (`go generate ./internal/docgen`); do not edit.\n")
	b.WriteString("Served on `/metrics` by `mdp run` (with `metrics.enable`) and by `mdp serve`, beside the Go runtime's `go_*` and the process's `process_*` series.\n")
	b.WriteString("The job that produced this list: provider.synthetic → operator.quality → operator.bars → sink.sqlite, with feedback and checkpoints on. Connectors register series of their own (their connection state, messages by type), listed in their sections of the [component reference](components.md) where they have any.\n\n")
	b.WriteString("| series | type | labels | help |\n|---|---|---|---|\n")
	rows := map[string]string{}
	// Series that exist only once they count something (drops, errors,
	// component counters) come from the collector's descriptors.
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		c.Describe(descs)
		for _, d := range scaleout.WorkerDescs() { // served by a scaled-out run
			descs <- d
		}
		close(descs)
	}()
	for d := range descs {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		labels := strings.Split(strings.Trim(m[3], "{}"), ",")
		sort.Strings(labels)
		typ := "gauge"
		if strings.HasSuffix(m[1], "_total") {
			typ = "counter"
		}
		rows[m[1]] = fmt.Sprintf("| `%s` | %s | %s | %s |\n", m[1], typ, strings.Join(labels, ", "), cell(m[2]))
	}
	for _, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := make([]string, 0, len(labels))
		for l := range labels {
			names = append(names, l)
		}
		sort.Strings(names)
		rows[f.GetName()] = fmt.Sprintf("| `%s` | %s | %s | %s |\n", f.GetName(), strings.ToLower(f.GetType().String()), strings.Join(names, ", "), cell(f.GetHelp()))
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(rows[k])
	}
	return []byte(b.String()), nil
}

// descRE takes name, help and variable labels from prometheus.Desc.String.
var descRE = regexp.MustCompile(`fqName: "([^"]+)", help: "((?:[^"\\]|\\.)*)",(?: unit: "[^"]*",)? constLabels: \{[^}]*\}, variableLabels: (\{[^}]*\})`)

func has(fams []*dto.MetricFamily, name string) bool {
	for _, f := range fams {
		if f.GetName() == name {
			return true
		}
	}
	return false
}
