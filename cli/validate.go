package cli

import (
	"fmt"

	"github.com/spf13/cobra"
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
"ok: FILE (MODE, N nodes, M edges)" and exits 0.`,
		Example: `  mdp validate --config job.yaml
  mdp validate job.yaml --mode classic
  for f in configs/*/*.yaml; do mdp validate "$f" || exit 1; done`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			doc, err := a.loadChecked(f)
			if err != nil {
				return err
			}
			name := f.config
			if name == "" {
				name = "environment"
			}
			fmt.Fprintf(a.stdout, "ok: %s (%s, %d nodes, %d edges)\n", name, doc.Mode, len(doc.Nodes), len(doc.Edges))
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}
