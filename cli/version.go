package cli

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version, commit and date are set at link time for releases (the
// Dockerfile, .goreleaser.yaml and scripts/release do it):
//
//	go build -ldflags "-X github.com/mdpio/mdp/cli.version=v1.2.3 \
//	  -X github.com/mdpio/mdp/cli.commit=$(git rev-parse HEAD) \
//	  -X github.com/mdpio/mdp/cli.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/mdp
//
// Otherwise the module version and the VCS stamp from the build info are
// used.
var version, commit, date string

// VersionInfo is what `mdp version` prints.
type VersionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"`
	CommitAt  string `json:"commit_time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	Platform  string `json:"platform"`
}

// BuildVersion reads the binary's version and VCS stamp.
func BuildVersion() VersionInfo {
	v := VersionInfo{Version: version, GoVersion: goruntime.Version(), Platform: goruntime.GOOS + "/" + goruntime.GOARCH, BuildDate: date}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		v.Commit = commit
		return v
	}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitAt = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if commit != "" && commit != v.Commit {
		// A stamped commit (a build from a source tree without .git, as
		// in a container build) wins over the VCS stamp it differs from.
		v.Commit, v.CommitAt, v.Modified = commit, "", false
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, Go version, commit and build date",
		Example: `  mdp version
  mdp version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := BuildVersion()
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			fmt.Fprintf(a.stdout, "mdp %s\n", v.Version)
			fmt.Fprintf(a.stdout, "go: %s %s\n", v.GoVersion, v.Platform)
			if v.Commit != "" {
				commit := v.Commit
				if v.Modified {
					commit += " (modified)"
				}
				fmt.Fprintf(a.stdout, "commit: %s\n", commit)
				if v.CommitAt != "" {
					fmt.Fprintf(a.stdout, "commit time: %s\n", v.CommitAt)
				}
			} else {
				fmt.Fprintln(a.stdout, "commit: unknown (built without VCS information)")
			}
			if v.BuildDate != "" {
				fmt.Fprintf(a.stdout, "built: %s\n", v.BuildDate)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
