package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/jobtest"
	"github.com/mdpio/mdp/runtime"
)

func (a *app) testCommand() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run job tests (*_test.yaml): given input records, expected records at nodes",
		Long: `Test runs the job tests in the given files, or in every *_test.yaml under the given
directories (default: the current directory). A test file sits next to the job it
tests (bars_test.yaml tests bars.yaml) and gives, per case, input records for the
job's sources and the records expected at named nodes. The job runs with its own
operators, params and edges; its sources are replaced by the test's records and its
sinks by collectors, so no real source is read and no store is written.

Each failing case prints what differs, record by record and field by field. The
exit code is 0 when every case passes, 1 when any fails or cannot run, 2 for a
test file that cannot be read. See the README (Job tests) for the file format.`,
		Example: `  mdp test
  mdp test configs/
  mdp test configs/dag/bars_test.yaml -v`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := jobtest.Find(args)
			if err != nil {
				return exit(ExitUsage, err)
			}
			if len(files) == 0 {
				return exit(ExitUsage, fmt.Errorf("no *%s files under %v", jobtest.Suffix, args))
			}
			var tests []*jobtest.File
			for _, path := range files {
				f, err := jobtest.Load(path)
				if err != nil {
					return exit(ExitUsage, err)
				}
				tests = append(tests, f)
			}
			cases, failed := 0, 0
			for _, f := range tests {
				for _, r := range jobtest.Run(cmd.Context(), f) {
					cases++
					switch {
					case r.Err != nil:
						failed++
						fmt.Fprintf(a.stdout, "FAIL %s: %s\n    %s\n", r.File, r.Case, runtime.Redact(r.Err.Error()))
					case !r.Passed():
						failed++
						fmt.Fprintf(a.stdout, "FAIL %s: %s\n", r.File, r.Case)
						for _, p := range r.Problems {
							fmt.Fprintf(a.stdout, "    %s\n", p)
						}
					case verbose:
						fmt.Fprintf(a.stdout, "ok   %s: %s\n", r.File, r.Case)
					}
				}
			}
			if failed > 0 {
				fmt.Fprintf(a.stdout, "FAIL: %d of %d cases in %d files failed\n", failed, cases, len(tests))
				return exit(ExitFailure, nil)
			}
			fmt.Fprintf(a.stdout, "ok: %d cases in %d files\n", cases, len(tests))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also list the cases that pass")
	return cmd
}
