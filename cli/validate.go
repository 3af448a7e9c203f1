package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
)

func (a *app) validateCommand() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:   "validate [[--config] FILE]",
		Short: "Check a job file and report every problem",
		Long: `Validate loads the job file the way run does (environment and --set overrides
included), decodes every component's params and checks the graph, without opening
any store or connection. Every problem is printed, one per line, as
file:line:column: path: message, and the exit code is 2. A valid job prints
"ok: FILE (MODE, N nodes, M edges)" and exits 0.

Validate also checks what it can without running: addresses (metrics.listen, a
WebSocket URL's port) are host:port with a port from 0 to 65535; an input file
(provider.replay path) that is a plain path must exist, and a glob that matches
nothing is a warning; an output's directories must be ones the sink can create
(no existing file on the way, no ".." through a directory that does not exist).

Relative paths in params resolve against the working directory, not the job
file's directory: when the two differ, validate prints a warning for each
relative path on stderr (the exit code stays 0).`,
		Example: `  mdp validate --config job.yaml
  mdp validate job.yaml --mode classic
  for f in configs/*/*.yaml; do case $f in *_test.yaml) ;; *) mdp validate "$f" || exit 1;; esac; done`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			doc, err := a.loadChecked(f)
			if err != nil {
				return err
			}
			if a.checkPaths(doc) {
				return exit(ExitUsage, nil)
			}
			name := f.config
			if name == "" {
				name = "environment"
			} else {
				a.warnRelativePaths(doc, f.config)
			}
			fmt.Fprintf(a.stdout, "ok: %s (%s, %d nodes, %d edges)\n", name, doc.Mode, len(doc.Nodes), len(doc.Edges))
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

// checkPaths checks the file params of doc as far as can be done without
// running the job: an input that is a plain path must exist (a glob that
// matches nothing is a warning: the files may come later), and an output's
// directory must be one the sink can create. Problems are printed as
// file:line:col: path: message; it reports whether there was an error.
func (a *app) checkPaths(doc *config.Document) bool {
	failed := false
	for _, n := range doc.Nodes {
		if n.Spec == nil || n.Params == nil {
			continue
		}
		for _, fl := range n.Spec.Fields {
			if !fl.Path || !n.Params.Has(fl.Name) {
				continue
			}
			var paths []string
			switch v := n.Params.Value(fl.Name).(type) {
			case string:
				paths = []string{v}
			case []string:
				paths = v
			}
			for _, p := range paths {
				if p == "" {
					continue
				}
				where := fmt.Sprintf("%s:%d:%d: %s.params.%s", n.File, n.Line, n.Column, n.Path, fl.Name)
				switch {
				case fl.Input && strings.ContainsAny(p, "*?["):
					if m, err := filepath.Glob(p); err != nil {
						fmt.Fprintf(a.stderr, "%s: bad glob %q: %v\n", where, p, err)
						failed = true
					} else if len(m) == 0 {
						fmt.Fprintf(a.stderr, "warning: %s: %q matches no files (yet)\n", where, p)
					}
				case fl.Input:
					if st, err := os.Stat(p); err != nil {
						fmt.Fprintf(a.stderr, "%s: input %q: %v\n", where, p, statReason(err))
						failed = true
					} else if st.IsDir() {
						fmt.Fprintf(a.stderr, "%s: input %q is a directory; use a glob such as %s\n", where, p, filepath.Join(p, "*.csv"))
						failed = true
					}
				default:
					if msg := component.OutputDirProblem(p); msg != "" {
						fmt.Fprintf(a.stderr, "%s: output %q: %s\n", where, p, msg)
						failed = true
					}
				}
			}
		}
	}
	return failed
}

// statReason is a stat error without the operation and path the caller
// already prints.
func statReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// warnRelativePaths warns about every relative path param (component.Field
// Path) when the job file is not in the working directory, where mdp
// resolves them: the path would name another file than it seems to from
// the job file.
func (a *app) warnRelativePaths(doc *config.Document, file string) {
	wd, err := os.Getwd()
	if err != nil {
		return
	}
	jobDir, err := filepath.Abs(filepath.Dir(file))
	if err != nil || jobDir == wd {
		return
	}
	for _, n := range doc.Nodes {
		if n.Spec == nil || n.Params == nil {
			continue
		}
		for _, fl := range n.Spec.Fields {
			if !fl.Path || !n.Params.Has(fl.Name) {
				continue
			}
			var paths []string
			switch v := n.Params.Value(fl.Name).(type) {
			case string:
				paths = []string{v}
			case []string:
				paths = v
			}
			for _, p := range paths {
				if p == "" || filepath.IsAbs(p) {
					continue
				}
				fmt.Fprintf(a.stderr, "warning: %s:%d:%d: %s.params.%s: relative path %q resolves against the working directory %s, not the job file's directory %s\n",
					n.File, n.Line, n.Column, n.Path, fl.Name, p, wd, jobDir)
			}
		}
	}
}
