package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestGoreleaserSnapshot checks .goreleaser.yaml with goreleaser and makes
// a snapshot release from a clone of the repository's HEAD: the config as
// committed, narrowed to two of its four targets (linux/amd64, which this
// machine runs, and darwin/arm64) to keep CI short. It checks the archives,
// that the checksum file matches them, the CycloneDX SBOM of each binary,
// and that the linux binary is static and prints the stamped version.
func TestGoreleaserSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("a snapshot release builds mdp twice")
	}
	goreleaser := tool(t, "goreleaser")
	tool(t, "cyclonedx-gomod") // the SBOM step runs it from PATH
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	run(t, root, goreleaser, "check")

	dir := filepath.Join(t.TempDir(), "mdp")
	run(t, root, "git", "clone", "-q", "--no-hardlinks", root, dir)
	raw, err := os.ReadFile(filepath.Join(dir, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	build := cfg["builds"].([]any)[0].(map[string]any)
	if !strings.Contains(strings.Join(strs(build["goos"]), ","), "darwin") || len(strs(build["goarch"])) != 2 {
		t.Fatalf("builds goos %v goarch %v, want linux and darwin on amd64 and arm64", build["goos"], build["goarch"])
	}
	delete(build, "goos")
	delete(build, "goarch")
	build["targets"] = []string{"linux_amd64", "darwin_arm64"}
	narrowed, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "release-test.yaml")
	if err := os.WriteFile(cfgPath, narrowed, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, goreleaser, "release", "--snapshot", "--clean", "--config", cfgPath, "--parallelism", "1")

	dist := filepath.Join(dir, "dist")
	sums, err := os.ReadFile(mustGlob(t, dist, "mdp_*_checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("checksum line %q", line)
		}
		listed[name] = sum
	}
	for _, target := range []string{"linux_amd64", "darwin_arm64"} {
		archive := filepath.Base(mustGlob(t, dist, "mdp_*_"+target+".tar.gz"))
		data, err := os.ReadFile(filepath.Join(dist, archive))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		if listed[archive] != hex.EncodeToString(h[:]) {
			t.Errorf("%s: checksum file says %q, archive hashes to %x", archive, listed[archive], h)
		}
		var sbom struct {
			BOMFormat string `json:"bomFormat"`
			Metadata  struct {
				Component struct {
					Name string `json:"name"`
				} `json:"component"`
			} `json:"metadata"`
			Components []struct {
				Name string `json:"name"`
			} `json:"components"`
		}
		raw, err := os.ReadFile(mustGlob(t, dist, "mdp_*_"+target+".cdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &sbom); err != nil {
			t.Fatalf("%s SBOM: %v", target, err)
		}
		var deps []string
		for _, c := range sbom.Components {
			deps = append(deps, c.Name)
		}
		if sbom.BOMFormat != "CycloneDX" || sbom.Metadata.Component.Name != "github.com/mdpio/mdp" || !strings.Contains(strings.Join(deps, " "), "github.com/jackc/pgx/v5") {
			t.Errorf("%s SBOM: format %q, component %q, %d components", target, sbom.BOMFormat, sbom.Metadata.Component.Name, len(deps))
		}
	}
	bin := mustGlob(t, dist, "mdp_linux_amd64*/mdp")
	info := run(t, dir, "go", "version", "-m", bin)
	if !strings.Contains(info, "CGO_ENABLED=0") || !strings.Contains(info, "-trimpath=true") {
		t.Errorf("linux binary not static and trimmed:\n%s", info)
	}
	if v := run(t, dir, bin, "version"); !strings.Contains(v, "-snapshot+") {
		t.Errorf("mdp version printed %q, want the stamped snapshot version", v)
	}
}

// mustGlob returns the one file matching pattern under dir.
func mustGlob(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s: %d matches in %v", pattern, len(m), names)
	}
	return m[0]
}
