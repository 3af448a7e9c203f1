package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

func (a *app) graphCommand() *cobra.Command {
	var f jobFlags
	var format string
	cmd := &cobra.Command{
		Use:   "graph [--config] FILE",
		Short: "Print a job's graph as Graphviz DOT or Mermaid",
		Long: `Graph prints the job's nodes and edges (a classic job as its compiled chain).
Nodes are labelled with their id, component type and parallelism; edges with the
output port they leave from (when not the main one), their queue policy (when not
block) and their capacity (when set). Params are not shown, so no secret is.`,
		Example: `  mdp graph --config job.yaml | dot -Tsvg > job.svg
  mdp graph --config job.yaml --format mermaid`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			if format != "dot" && format != "mermaid" {
				return fmt.Errorf("invalid --format %q: want dot or mermaid", format)
			}
			doc, err := a.loadChecked(f)
			if err != nil {
				return err
			}
			if format == "mermaid" {
				writeMermaid(a.stdout, doc)
			} else {
				writeDOT(a.stdout, doc)
			}
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"dot", "mermaid"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func nodeKind(n *config.NodeSpec) engine.NodeKind {
	if n.Spec != nil {
		return n.Spec.Kind
	}
	return engine.KindOperator
}

// nodeLines are a node's label lines: id, type, parallelism.
func nodeLines(n *config.NodeSpec) []string {
	return []string{n.ID, n.Type, "parallelism " + strconv.Itoa(max(n.Parallelism, 1))}
}

// edgeLabel is the port, policy and capacity of an edge, "" when all are
// defaults.
func edgeLabel(e *config.EdgeSpec) string {
	var parts []string
	switch {
	case e.FromPort != engine.PortMain && e.ToPort != engine.PortMain:
		parts = append(parts, e.FromPort+" → "+e.ToPort)
	case e.FromPort != engine.PortMain:
		parts = append(parts, e.FromPort)
	case e.ToPort != engine.PortMain:
		parts = append(parts, "→ "+e.ToPort)
	}
	if e.Policy != engine.Block {
		parts = append(parts, e.Policy.String())
	}
	if e.Capacity > 0 {
		parts = append(parts, "capacity "+strconv.Itoa(e.Capacity))
	}
	return strings.Join(parts, ", ")
}

func writeDOT(w io.Writer, doc *config.Document) {
	fmt.Fprintf(w, "digraph %s {\n", dotQuote(doc.Name))
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintln(w, `  node [fontname="Helvetica", fontsize=11];`)
	fmt.Fprintln(w, `  edge [fontname="Helvetica", fontsize=10];`)
	for i := range doc.Nodes {
		n := &doc.Nodes[i]
		shape := "box"
		switch nodeKind(n) {
		case engine.KindSource:
			shape = "ellipse"
		case engine.KindSink:
			shape = "cylinder"
		}
		fmt.Fprintf(w, "  %s [label=%s, shape=%s];\n", dotQuote(n.ID), dotQuote(strings.Join(nodeLines(n), "\n")), shape)
	}
	for i := range doc.Edges {
		e := &doc.Edges[i]
		attrs := ""
		if l := edgeLabel(e); l != "" {
			attrs = " [label=" + dotQuote(l)
			if e.FromPort != engine.PortMain {
				attrs += ", style=dashed"
			}
			attrs += "]"
		}
		fmt.Fprintf(w, "  %s -> %s%s;\n", dotQuote(e.From), dotQuote(e.To), attrs)
	}
	fmt.Fprintln(w, "}")
}

// dotQuote renders s as a DOT quoted string; a newline becomes DOT's \n.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func writeMermaid(w io.Writer, doc *config.Document) {
	fmt.Fprintln(w, "flowchart LR")
	ids := map[string]string{}
	used := map[string]bool{}
	for i := range doc.Nodes {
		n := &doc.Nodes[i]
		id := mermaidID(n.ID)
		for used[id] {
			id += "_"
		}
		used[id] = true
		ids[n.ID] = id
		label := mermaidText(strings.Join(nodeLines(n), "\n"))
		open, end := "[", "]"
		switch nodeKind(n) {
		case engine.KindSource:
			open, end = "([", "])"
		case engine.KindSink:
			open, end = "[(", ")]"
		}
		fmt.Fprintf(w, "  %s%s\"%s\"%s\n", id, open, label, end)
	}
	for i := range doc.Edges {
		e := &doc.Edges[i]
		arrow := "-->"
		if e.FromPort != engine.PortMain {
			arrow = "-.->"
		}
		if l := edgeLabel(e); l != "" {
			arrow += "|\"" + mermaidText(l) + "\"|"
		}
		fmt.Fprintf(w, "  %s %s %s\n", ids[e.From], arrow, ids[e.To])
	}
}

// mermaidID makes a node id safe as a Mermaid id. Ids are prefixed so a
// node called "end" or "graph" does not collide with Mermaid keywords.
func mermaidID(id string) string {
	var b strings.Builder
	b.WriteString("n_")
	for _, r := range id {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// mermaidText escapes a label for a quoted Mermaid string.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", "<br/>")
	return r.Replace(s)
}
