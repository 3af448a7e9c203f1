// Package cli is the mdp command line: run, validate, config, test,
// components, graph, version, shell completion, the job server (serve) and
// its clients (submit, list, status, stop, start, delete, logs), built with
// cobra. Execute runs it on the process's arguments and returns the exit
// code:
//
//	0   success (a job that drained after SIGINT/SIGTERM included)
//	1   runtime failure (a node failed, a store could not be opened)
//	2   config or usage error (bad job file, bad flag, unknown command)
//	130 aborted (a second signal, or the shutdown timeout expired)
//
// A program that adds its own components registers them and calls Execute,
// so its binary is mdp plus those components (see examples/custom_operator).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitAborted = 130
)

// exitError carries the exit code a command chose. An error that is not an
// exitError comes from cobra itself (unknown command, missing or bad flag,
// wrong arguments) and is a usage error.
type exitError struct {
	code int
	err  error // already reported when nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exit returns an error that ends the command with code; err (if not nil)
// is printed to stderr.
func exit(code int, err error) error { return &exitError{code: code, err: err} }

// Execute runs mdp on os.Args and returns the exit code. main is
// os.Exit(cli.Execute()).
func Execute() int {
	return Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs mdp with args (without the program name), writing output to
// stdout and diagnostics and logs to stderr, and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunWith(ctx, Options{}, args, stdout, stderr)
}

// Options configure RunWith.
type Options struct {
	// Registry holds the component types jobs may use and `mdp components`
	// lists; nil means component.Default().
	Registry *component.Registry
}

// RunWith is Run with options: a program that registers its own components
// in a separate registry runs the mdp commands over it.
func RunWith(ctx context.Context, opts Options, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, reg: component.Or(opts.Registry)}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "Error: %s\n", runtime.Redact(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %s\n", runtime.Redact(err.Error()))
	cmd := "mdp"
	if c, _, ferr := root.Find(args); ferr == nil && c != nil {
		cmd = c.CommandPath()
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd)
	return ExitUsage
}

// app holds what the commands share for one invocation.
type app struct {
	stdout, stderr io.Writer
	reg            *component.Registry
	logLevel       string
	logger         *slog.Logger
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mdp",
		Short: "mdp is a market-data streaming engine",
		Long: `mdp takes ticks (trades and quotes) from providers, runs them through operators
(OHLCV bars, batching) and writes the results to stores and files.
A job is a YAML or JSON file, run as a linear chain (classic mode) or a DAG.

Exit codes: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted.`,
		Example: `  mdp validate --config job.yaml
  mdp run --config job.yaml --set metrics.enable=true
  mdp components operator.bars
  mdp graph --config job.yaml --format mermaid`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			l, err := newLogger(a.stderr, a.logLevel)
			if err != nil {
				return err
			}
			a.logger = l
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return err // a flag error is a usage error (exit 2), reported with a hint
	})
	root.AddCommand(a.runCommand(), a.validateCommand(), a.configCommand(), a.testCommand(), a.componentsCommand(), a.graphCommand(), a.versionCommand(), a.serveCommand(), a.workerCommand(), a.ingestCommand())
	root.AddCommand(a.clientCommands()...)
	return root
}

// newLogger logs to w: text when w is a terminal, JSON otherwise (for log
// collectors).
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// jobFlags are the flags every command that loads a job takes.
type jobFlags struct {
	config string
	mode   string
	job    string
	sets   []string
	// run only
	progress, noProgress bool
	resume, drain        bool
	allowGraphChange     bool
	from                 string
	reportFD             int
}

func (f *jobFlags) add(cmd *cobra.Command, withJob bool) {
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "job file (YAML or JSON); may also be given as the first argument")
	fl.StringVar(&f.mode, "mode", "", "override the job's mode: classic or dag")
	if withJob {
		fl.StringVar(&f.job, "job", "", "override the job's name")
	}
	fl.StringArrayVar(&f.sets, "set", nil, "override a setting, path=value (repeatable), e.g. --set dag.nodes.src.params.rate=500")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"classic", "dag"}, cobra.ShellCompDirectiveNoFileComp))
}

// resolve takes the job file from --config or the one positional argument.
func (f *jobFlags) resolve(args []string) error {
	switch {
	case len(args) > 1:
		return fmt.Errorf("want one job file, got %d arguments", len(args))
	case len(args) == 1 && f.config != "" && args[0] != f.config:
		return fmt.Errorf("job file given twice: --config %s and argument %s", f.config, args[0])
	case len(args) == 1:
		f.config = args[0]
	}
	if f.config == "" && !envJob() {
		return fmt.Errorf("no job file: use --config FILE, or give the job in %s or %s", config.EnvDAGJSON, config.EnvClassicJSON)
	}
	if f.mode != "" && f.mode != "classic" && f.mode != "dag" {
		return fmt.Errorf("invalid --mode %q: want classic or dag", f.mode)
	}
	return nil
}

// envJob reports whether the environment holds a job section
// (MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON), so that no job file
// is needed.
func envJob() bool {
	for _, name := range []string{config.EnvDAGJSON, config.EnvClassicJSON} {
		if strings.TrimSpace(os.Getenv(name)) != "" {
			return true
		}
	}
	return false
}

// loadJob loads the job file, or with no file the job the environment
// holds (an empty file overlaid by the MDP_* variables and the flags).
func loadJob(file string, opts config.LoadOptions) (*config.Document, error) {
	if file == "" {
		return config.LoadBytes("", nil, opts)
	}
	return config.LoadFile(file, opts)
}

// loadChecked loads the job file of f (without --job) and checks its graph.
// On a problem it prints every one and returns the usage exit.
func (a *app) loadChecked(f jobFlags) (*config.Document, error) {
	doc, err := loadJob(f.config, config.LoadOptions{Mode: f.mode, Sets: f.sets, Registry: a.reg})
	if err == nil {
		_, err = doc.Graph()
	}
	if err != nil {
		a.printConfigErrors(err)
		return nil, exit(ExitUsage, nil)
	}
	return doc, nil
}

// printConfigErrors prints a load error: every problem, one per line.
func (a *app) printConfigErrors(err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(a.stderr, "%s\n", runtime.Redact(line))
	}
}
