package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/component"
)

// Command returns mdp's root command over opts' registry, for tools that
// walk the command tree (the generated CLI reference); its output goes
// nowhere.
func Command(opts Options) *cobra.Command {
	a := &app{stdout: io.Discard, stderr: io.Discard, reg: component.Or(opts.Registry)}
	return a.rootCommand()
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// writeComponentsMarkdown writes the component reference as Markdown: an
// index table, then one section per component with its ports and a table
// of its params. `mdp components --markdown` prints it and
// docs/reference/components.md is this output.
func writeComponentsMarkdown(w io.Writer, specs []*component.Spec) error {
	docs := describeSpecs(specs)
	var b strings.Builder
	b.WriteString("# Component reference\n\n")
	b.WriteString("Generated from the component registry by `mdp components --markdown`; do not edit.\n")
	b.WriteString("Every type id below is what a job file's `type:` takes.\n\n")
	b.WriteString("| type | kind | accepts → produces | summary |\n|---|---|---|---|\n")
	for i, d := range docs {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", d.Type, anchor(d.Type), d.Kind, mdCell(ioText(specs[i])), mdCell(d.Summary))
	}
	for i, d := range docs {
		fmt.Fprintf(&b, "\n## %s\n\n", d.Type)
		fmt.Fprintf(&b, "%s (%s). %s\n", strings.ToUpper(d.Kind[:1])+d.Kind[1:], mdCell(ioText(specs[i])), d.Summary)
		if d.Description != "" {
			fmt.Fprintf(&b, "\n%s\n", d.Description)
		}
		if len(d.Aliases) > 0 {
			fmt.Fprintf(&b, "\nAliases: `%s`.\n", strings.Join(d.Aliases, "`, `"))
		}
		if len(d.Inputs) > 0 {
			b.WriteString("\nInput ports:")
			for _, in := range d.Inputs {
				fmt.Fprintf(&b, " `%s` (%s)", in.Name, in.Accepts)
			}
			b.WriteString(".\n")
		}
		if len(d.Ports) > 0 {
			names := make([]string, 0, len(d.Ports))
			for n := range d.Ports {
				names = append(names, n)
			}
			sort.Strings(names)
			b.WriteString("\nOutput ports:")
			for _, n := range names {
				fmt.Fprintf(&b, " `%s` (%s)", n, d.Ports[n])
			}
			b.WriteString(".\n")
		}
		if d.PortsFromParams != "" {
			fmt.Fprintf(&b, "\nPorts from params: %s\n", d.PortsFromParams)
		}
		if len(d.Params) == 0 {
			b.WriteString("\nNo params.\n")
			continue
		}
		b.WriteString("\n| param | type | default | required | allowed | description |\n|---|---|---|---|---|---|\n")
		for j, p := range d.Params {
			def := ""
			if p.Default != nil {
				def = "`" + valueText(p.Default) + "`"
			}
			req := ""
			if p.Required {
				req = "yes"
			}
			f := specs[i].Fields[j]
			allowed := allowedText(f)
			if allowed == "-" {
				allowed = ""
			}
			desc := p.Description
			if p.Secret {
				desc += " Secret: masked in status, logs and API responses."
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", p.Name, typeText(f.Type), mdCell(def), req, mdCell(allowed), mdCell(desc))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// anchor is GitHub's heading anchor for a type id heading: lower case,
// dots dropped.
func anchor(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), ".", "")
}
