package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func (a *app) componentsCommand() *cobra.Command {
	var asJSON, schema bool
	cmd := &cobra.Command{
		Use:     "components [TYPE...]",
		Aliases: []string{"list-components"},
		Short:   "List the registered components and their params",
		Long: `Components lists every registered component (providers, operators, sinks): its
type id, kind, the records it accepts and produces, a summary, and its params with
type, default, whether required, allowed values and description. Give type ids to
see only those. --json prints the same for machines; --schema prints the JSON
Schema of job files (for editors and CI).`,
		Example: `  mdp components
  mdp components operator.bars sink.sqlite
  mdp components --json | jq '.[].type'
  mdp components --schema > mdp.schema.json`,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return component.Types(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if schema {
				if asJSON || len(args) > 0 {
					return fmt.Errorf("--schema takes no other flags or arguments")
				}
				b, err := config.Schema()
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
			specs, err := selectSpecs(args)
			if err != nil {
				return exit(ExitUsage, err)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(describeSpecs(specs)); err != nil {
					return exit(ExitFailure, err)
				}
				return nil
			}
			return writeComponents(a.stdout, specs, len(args) == 0)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&schema, "schema", false, "print the JSON Schema of job files")
	return cmd
}

func selectSpecs(types []string) ([]*component.Spec, error) {
	if len(types) == 0 {
		return component.All(), nil
	}
	var out []*component.Spec
	for _, t := range types {
		s, ok := component.Lookup(t)
		if !ok {
			msg := fmt.Sprintf("unknown component type %q", t)
			if sug := component.Suggest(t, component.Types()); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			return nil, fmt.Errorf("%s (mdp components lists them all)", msg)
		}
		out = append(out, s)
	}
	return out, nil
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
	Ports       map[string]string `json:"ports,omitempty"`
	Params      []ParamDoc        `json:"params"`
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
		if len(s.Ports) > 0 {
			d.Ports = map[string]string{}
			for name, k := range s.Ports {
				d.Ports[name] = kindText(k)
			}
		}
		for _, f := range s.Fields {
			d.Params = append(d.Params, ParamDoc{
				Name: f.Name, Type: string(f.Type), Default: f.Default, Required: f.Required, Enum: f.Enum,
				Min: f.Min, Max: f.Max, Description: f.Description, Example: f.Example, Secret: f.Secret,
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

func writeComponents(w io.Writer, specs []*component.Spec, overview bool) error {
	if len(specs) == 0 {
		_, err := fmt.Fprintln(w, "no components are registered")
		return err
	}
	if overview {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tKIND\tACCEPTS -> PRODUCES\tSUMMARY")
		for _, s := range specs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Type, s.Kind, ioText(s), s.Summary)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for i, s := range specs {
		if overview || i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s)  %s\n", s.Type, s.Kind, ioText(s))
		if s.Summary != "" {
			fmt.Fprintf(w, "  %s\n", s.Summary)
		}
		if s.Description != "" && s.Description != s.Summary {
			for _, line := range strings.Split(strings.TrimSpace(s.Description), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
		if len(s.Aliases) > 0 {
			fmt.Fprintf(w, "  aliases: %s\n", strings.Join(s.Aliases, ", "))
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
			fmt.Fprintf(w, "  ports: %s\n", strings.Join(parts, ", "))
		}
		if len(s.Fields) == 0 {
			fmt.Fprintln(w, "  no params")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARAM\tTYPE\tDEFAULT\tREQUIRED\tALLOWED\tDESCRIPTION")
		for _, f := range s.Fields {
			req := "no"
			if f.Required {
				req = "yes"
			}
			desc := f.Description
			if f.Secret {
				desc += " (secret: never shown in logs or status)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Type, valueText(f.Default), req, allowedText(f), desc)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
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
			return strconv.FormatFloat(x, 'g', -1, 64) + "s"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
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
