package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func (a *app) componentsCommand() *cobra.Command {
	var asJSON, schema, markdown bool
	cmd := &cobra.Command{
		Use:     "components [TYPE...]",
		Aliases: []string{"list-components"},
		Short:   "List the registered components and their params",
		Long: `Components lists every registered component (providers, operators, sinks): its
type id, kind, the records it accepts and produces, a summary, and its params with
type, default, whether required, allowed values and description. Give type ids to
see only those. --json prints the same for machines; --markdown prints it as the
Markdown of docs/reference/components.md; --schema prints the JSON Schema of job
files (for editors and CI).`,
		Example: `  mdp components
  mdp components operator.bars sink.sqlite
  mdp components --json | jq '.[].type'
  mdp components --schema > mdp.schema.json`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return a.reg.Types(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if schema {
				if asJSON || markdown || len(args) > 0 {
					return fmt.Errorf("--schema takes no other flags or arguments")
				}
				b, err := config.Schema(a.reg)
				if err != nil {
					return exit(ExitFailure, fmt.Errorf("generate schema: %w", err))
				}
				if _, err := a.stdout.Write(b); err != nil {
					return exit(ExitFailure, err)
				}
				if len(b) > 0 && b[len(b)-1] != '\n' {
					fmt.Fprintln(a.stdout)
				}
				return nil
			}
			specs, err := selectSpecs(a.reg, args)
			if err != nil {
				return exit(ExitUsage, err)
			}
			if asJSON && markdown {
				return exit(ExitUsage, fmt.Errorf("--json and --markdown exclude each other"))
			}
			if markdown {
				if err := writeComponentsMarkdown(a.stdout, specs); err != nil {
					return exit(ExitFailure, err)
				}
				return nil
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(describeSpecs(specs)); err != nil {
					return exit(ExitFailure, err)
				}
				return nil
			}
			return writeComponents(a.stdout, specs, len(args) == 0, a.outputWidth())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print Markdown (the generated component reference)")
	cmd.Flags().BoolVar(&schema, "schema", false, "print the JSON Schema of job files")
	return cmd
}

func selectSpecs(reg *component.Registry, types []string) ([]*component.Spec, error) {
	if len(types) == 0 {
		return reg.All(), nil
	}
	var out []*component.Spec
	for _, t := range types {
		s, ok := reg.Lookup(t)
		if !ok {
			msg := fmt.Sprintf("unknown component type %q", t)
			if sug := suggestType(reg, t); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			return nil, fmt.Errorf("%s (mdp components lists them all)", msg)
		}
		out = append(out, s)
	}
	return out, nil
}

// suggestType is the registered type id nearest to t: the one t names
// without its kind prefix ("bars" for operator.bars), else the closest
// spelling.
func suggestType(reg *component.Registry, t string) string {
	var byName []string
	for _, id := range reg.Types() {
		if _, name, _ := strings.Cut(id, "."); strings.EqualFold(name, t) {
			byName = append(byName, id)
		}
	}
	if len(byName) == 1 {
		return byName[0]
	}
	if len(byName) > 1 {
		return strings.Join(byName, " or ")
	}
	return component.Suggest(t, reg.Types())
}

// ComponentDoc is the machine-readable description of a component printed
// by `mdp components --json`.
type ComponentDoc struct {
	Type        string            `json:"type"`
	Aliases     []string          `json:"aliases,omitempty"`
	Kind        string            `json:"kind"`
	Summary     string            `json:"summary"`
	Description string            `json:"description,omitempty"`
	Accepts     string            `json:"accepts,omitempty"`
	Produces    string            `json:"produces,omitempty"`
	Inputs      []InputDoc        `json:"inputs,omitempty"`
	Ports       map[string]string `json:"ports,omitempty"`
	// PortsFromParams says which further output ports the params create.
	PortsFromParams string     `json:"ports_from_params,omitempty"`
	Params          []ParamDoc `json:"params"`
}

// InputDoc is one named input port of a component.
type InputDoc struct {
	Name    string `json:"name"`
	Accepts string `json:"accepts"`
}

// ParamDoc describes one param of a component.
type ParamDoc struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Default     any      `json:"default,omitempty"`
	Required    bool     `json:"required"`
	Enum        []string `json:"enum,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Description string   `json:"description"`
	Example     any      `json:"example,omitempty"`
	Secret      bool     `json:"secret,omitempty"`
	// Path marks a file or directory param; relative values resolve
	// against the working directory.
	Path bool `json:"path,omitempty"`
}

func describeSpecs(specs []*component.Spec) []ComponentDoc {
	out := make([]ComponentDoc, 0, len(specs))
	for _, s := range specs {
		d := ComponentDoc{
			Type: s.Type, Aliases: s.Aliases, Kind: s.Kind.String(), Summary: s.Summary, Description: s.Description,
			Params: make([]ParamDoc, 0, len(s.Fields)),
		}
		if s.Kind != engine.KindSource {
			d.Accepts = kindText(s.Accepts)
		}
		if s.Kind != engine.KindSink {
			d.Produces = producesText(s)
		}
		for _, in := range s.Inputs {
			d.Inputs = append(d.Inputs, InputDoc{Name: in.Name, Accepts: kindText(in.Accepts)})
		}
		if len(s.Ports) > 0 {
			d.Ports = map[string]string{}
			for name, k := range s.Ports {
				d.Ports[name] = kindText(k)
			}
		}
		d.PortsFromParams = s.PortsDoc
		for _, f := range s.Fields {
			d.Params = append(d.Params, ParamDoc{
				Name: f.Name, Type: string(f.Type), Default: f.Default, Required: f.Required, Enum: f.Enum,
				Min: f.Min, Max: f.Max, Description: f.Description, Example: f.Example, Secret: f.Secret, Path: f.Path,
			})
		}
		out = append(out, d)
	}
	return out
}

func kindText(k md.Kind) string {
	if k == engine.SameAsInput {
		return "same as input"
	}
	return k.String()
}

func producesText(s *component.Spec) string {
	if s.ProducesFn != nil {
		if s.Produces != md.KindNone {
			return kindText(s.Produces) + " (depends on params)"
		}
		return "depends on params"
	}
	return kindText(s.Produces)
}

// ioText renders "accepts -> produces" for the listing.
func ioText(s *component.Spec) string {
	switch s.Kind {
	case engine.KindSource:
		return "-> " + producesText(s)
	case engine.KindSink:
		return kindText(s.Accepts) + " ->"
	}
	return kindText(s.Accepts) + " -> " + producesText(s)
}

// outputWidth is the width text output wraps to: the terminal's when
// stdout is one, else $COLUMNS, else 80.
func (a *app) outputWidth() int {
	if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 0 {
		return c
	}
	return 80
}

// minWrap is the narrowest a wrapped column gets, however narrow the
// terminal.
const minWrap = 24

// wrap breaks text into lines of at most width runes at spaces (a word
// longer than width gets a line of its own).
func wrap(text string, width int) []string {
	width = max(width, minWrap)
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
				line += " " + word
			default:
				lines = append(lines, line)
				line = word
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// writeIndented writes text wrapped to width, every line indented.
func writeIndented(w io.Writer, text string, indent, width int) {
	pad := strings.Repeat(" ", indent)
	for _, l := range wrap(text, width-indent) {
		fmt.Fprintf(w, "%s%s\n", strings.TrimRight(pad+l, " "), "")
	}
}

func writeComponents(w io.Writer, specs []*component.Spec, overview bool, width int) error {
	if len(specs) == 0 {
		_, err := fmt.Fprintln(w, "no components are registered")
		return err
	}
	if overview {
		rows := [][3]string{{"TYPE", "KIND", "ACCEPTS -> PRODUCES"}}
		for _, s := range specs {
			rows = append(rows, [3]string{s.Type, s.Kind.String(), ioText(s)})
		}
		var cw [3]int
		for _, r := range rows {
			for i, c := range r {
				cw[i] = max(cw[i], utf8.RuneCountInString(c))
			}
		}
		indent := cw[0] + cw[1] + cw[2] + 6
		if width-indent < 32 {
			// Too narrow for a table: each component on its own lines.
			for _, s := range specs {
				writeIndented(w, fmt.Sprintf("%s (%s)  %s", s.Type, s.Kind, ioText(s)), 0, width)
				writeIndented(w, s.Summary, 4, width)
			}
		}
		for i, r := range rows {
			if width-indent < 32 {
				break
			}
			summary := "SUMMARY"
			if i > 0 {
				summary = specs[i-1].Summary
			}
			lines := wrap(summary, width-indent)
			fmt.Fprintf(w, "%-*s  %-*s  %-*s  %s\n", cw[0], r[0], cw[1], r[1], cw[2], r[2], lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", indent), l)
			}
		}
	}
	for i, s := range specs {
		if overview || i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s)  %s\n", s.Type, s.Kind, ioText(s))
		if s.Summary != "" {
			writeIndented(w, s.Summary, 2, width)
		}
		if s.Description != "" && s.Description != s.Summary {
			writeIndented(w, strings.TrimSpace(s.Description), 2, width)
		}
		if len(s.Aliases) > 0 {
			writeIndented(w, "aliases: "+strings.Join(s.Aliases, ", "), 2, width)
		}
		if len(s.Inputs) > 0 {
			parts := make([]string, len(s.Inputs))
			for i, in := range s.Inputs {
				name := in.Name
				if name == engine.PortMain {
					name = "(main)"
				}
				parts[i] = fmt.Sprintf("%s (%s)", name, kindText(in.Accepts))
			}
			writeIndented(w, "input ports: "+strings.Join(parts, ", "), 2, width)
		}
		if s.PortsDoc != "" {
			writeIndented(w, "ports from params: "+s.PortsDoc, 2, width)
		}
		if len(s.Ports) > 0 {
			names := make([]string, 0, len(s.Ports))
			for name := range s.Ports {
				names = append(names, name)
			}
			sort.Strings(names)
			parts := make([]string, len(names))
			for i, n := range names {
				parts[i] = fmt.Sprintf("%s (%s)", n, kindText(s.Ports[n]))
			}
			writeIndented(w, "ports: "+strings.Join(parts, ", "), 2, width)
		}
		if len(s.Fields) == 0 {
			fmt.Fprintln(w, "  no params")
			continue
		}
		fmt.Fprintln(w, "  params:")
		for _, f := range s.Fields {
			writeIndented(w, f.Name+" ("+fieldFacts(f)+")", 4, width)
			desc := f.Description
			if f.Secret {
				desc += " (secret: never shown in logs or status)"
			}
			if desc != "" {
				writeIndented(w, desc, 8, width)
			}
		}
	}
	return nil
}

// fieldFacts is a param's type, whether it is required, its default and
// what values it allows: "duration, default 1s, >= 0.001s".
func fieldFacts(f component.Field) string {
	facts := []string{typeText(f.Type)}
	if f.Required {
		facts = append(facts, "required")
	}
	if f.Default != nil {
		facts = append(facts, "default "+valueText(f.Default))
	}
	if a := allowedText(f); a != "-" {
		if len(f.Enum) > 0 {
			a = "one of " + a
		}
		facts = append(facts, a)
	}
	return strings.Join(facts, ", ")
}

// typeText names a param type for people.
func typeText(t component.FieldType) string {
	switch t {
	case component.Strings:
		return "list of strings"
	case component.Map:
		return "mapping"
	case component.List:
		return "list"
	}
	return string(t)
}

func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func allowedText(f component.Field) string {
	if len(f.Enum) > 0 {
		return strings.Join(f.Enum, "|")
	}
	num := func(x float64) string {
		if f.Type == component.Duration {
			return strconv.FormatFloat(x, 'f', -1, 64) + "s"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	switch {
	case f.Min != nil && f.Max != nil:
		return num(*f.Min) + ".." + num(*f.Max)
	case f.Min != nil:
		return ">= " + num(*f.Min)
	case f.Max != nil:
		return "<= " + num(*f.Max)
	}
	return "-"
}
