package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/runtime"
)

func (a *app) configCommand() *cobra.Command {
	var f jobFlags
	var format string
	var defaults bool
	cmd := &cobra.Command{
		Use:   "config [[--config] FILE]",
		Short: "Print the effective job: what run would run",
		Long: `Config loads the job the way run does — ${VAR} interpolation, the MDP_* environment
overlay, --set, --mode and --job — checks it as validate does, and prints the
result as a job file: the graph in dag form (a classic job as its compiled chain),
every param each node was given (after interpolation and overrides), each node's
parallelism and on_error, every edge with its capacity and policy, and the job's
metrics, feedback, shutdown_timeout, batch_size, restart and checkpoint. Secrets (params marked secret,
passwords in URLs and DSNs) are masked as xxxxx, so the output is safe to share;
it runs as written once the masked values are put back. --defaults adds every
param left at its default (for reading: some defaults belong to settings the job
does not use, and validate rejects them when given). --format json prints the
same as JSON.`,
		Example: `  mdp config --config job.yaml
  mdp config job.yaml --set dag.nodes.src.params.rate=500 --format json
  MDP_METRICS_ENABLE=true mdp config job.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			if format != "yaml" && format != "json" {
				return fmt.Errorf("invalid --format %q: want yaml or json", format)
			}
			doc, err := a.loadChecked(f)
			if err != nil {
				return err
			}
			eff := effectiveJob(doc, defaults)
			if format == "json" {
				return writeOrderedJSON(a.stdout, eff)
			}
			return writeOrderedYAML(a.stdout, eff, doc)
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&format, "format", "yaml", "output format: yaml or json")
	cmd.Flags().BoolVar(&defaults, "defaults", false, "also print every param left at its default")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// omap is an ordered mapping, so the printed job reads in the order a job
// file is written.
type omap []kv

type kv struct {
	k string
	v any
}

func (m *omap) add(k string, v any) { *m = append(*m, kv{k, v}) }

// effectiveJob is the loaded job as an ordered tree of plain values.
// With defaults, params the job left at their default are included.
func effectiveJob(doc *config.Document, defaults bool) omap {
	red := runtime.NewRedactor(doc)
	var job omap
	job.add("mode", config.ModeDAG)
	job.add("name", doc.Name)
	var nodes []any
	for i := range doc.Nodes {
		n := &doc.Nodes[i]
		var node omap
		node.add("id", n.ID)
		node.add("type", n.Type)
		if n.Spec != nil && n.Params != nil {
			var params omap
			masked := red.RedactedParams(n.Spec, n.Params)
			for _, fl := range n.Spec.Fields {
				v, ok := masked[fl.Name]
				if !ok || !(defaults || n.Params.Has(fl.Name)) {
					continue
				}
				params.add(fl.Name, paramText(fl, v))
			}
			if len(params) > 0 {
				node.add("params", params)
			}
		}
		node.add("parallelism", max(n.Parallelism, 1))
		node.add("on_error", n.OnError.String())
		nodes = append(nodes, node)
	}
	var edges []any
	for _, e := range doc.Edges {
		from := e.From
		if e.FromPort != engine.PortMain {
			from += "." + e.FromPort
		}
		var edge omap
		edge.add("from", from)
		edge.add("to", e.To)
		capacity := e.Capacity
		if capacity <= 0 {
			capacity = engine.DefaultQueueCapacity
		}
		edge.add("capacity", capacity)
		edge.add("policy", e.Policy.String())
		edges = append(edges, edge)
	}
	var dag omap
	dag.add("nodes", nodes)
	dag.add("edges", edges)
	job.add("dag", dag)
	var metrics omap
	metrics.add("enable", doc.Metrics.Enable)
	metrics.add("listen", doc.Metrics.Listen)
	job.add("metrics", metrics)
	fb := doc.Feedback
	var feedback omap
	feedback.add("enable_feedback", fb.Enable)
	feedback.add("scale_ok", fb.ScaleOK)
	feedback.add("scale_soft", fb.ScaleSoft)
	feedback.add("scale_hard", fb.ScaleHard)
	feedback.add("soft_at", fb.SoftAt)
	feedback.add("hard_at", fb.HardAt)
	job.add("feedback", feedback)
	job.add("shutdown_timeout", durationText(doc.ShutdownTimeout))
	if doc.BatchSize > 0 {
		job.add("batch_size", doc.BatchSize)
	}
	job.add("restart", doc.Restart)
	if c := doc.Checkpoint; c != nil {
		var ck omap
		ck.add("interval", durationText(c.Interval))
		ck.add("store", c.Store)
		ck.add("keep", c.Keep)
		ck.add("tolerable_failures", c.TolerableFailures)
		job.add("checkpoint", ck)
	}
	return job
}

// paramText writes a decoded param back in job-file spelling: durations as
// 1s / 250ms, times as RFC 3339.
func paramText(f component.Field, v any) any {
	switch x := v.(type) {
	case time.Duration:
		return durationText(x)
	case int64:
		if f.Type == component.Time {
			return md.FormatTime(x)
		}
	}
	return v
}

func durationText(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		return d.String()
	}
	return md.FormatInterval(int64(d))
}

// toYAML builds the node tree of v, keeping omap order.
func toYAML(v any) *yaml.Node {
	switch x := v.(type) {
	case omap:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, e := range x {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.k}, toYAML(e.v))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			n.Content = append(n.Content, toYAML(e))
		}
		return n
	case float64:
		t := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.ContainsAny(t, ".eEnN") {
			t += ".0"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: t}
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(v)}
	}
	if n.Kind == yaml.SequenceNode && scalarsOnly(&n) {
		n.Style = yaml.FlowStyle // [AAPL, MSFT]
	}
	return &n
}

func scalarsOnly(n *yaml.Node) bool {
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return false
		}
	}
	return true
}

func writeOrderedYAML(w io.Writer, job omap, doc *config.Document) error {
	from := doc.File
	if from == "" {
		from = "the environment"
	}
	fmt.Fprintf(w, "# The effective job of %s (%s mode): interpolation, environment and --set applied; secrets masked.\n", from, doc.Mode)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(toYAML(job)); err != nil {
		return exit(ExitFailure, fmt.Errorf("encode the job: %w", err))
	}
	if err := enc.Close(); err != nil {
		return exit(ExitFailure, fmt.Errorf("encode the job: %w", err))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// MarshalJSON keeps the order of the keys.
func (m omap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeOrderedJSON(w io.Writer, job omap) error {
	raw, err := json.Marshal(job)
	if err != nil {
		return exit(ExitFailure, fmt.Errorf("encode the job: %w", err))
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return exit(ExitFailure, fmt.Errorf("encode the job: %w", err))
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}
