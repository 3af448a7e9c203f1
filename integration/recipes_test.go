package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobtest"
)

// includeMarker precedes a YAML block of a recipe that is a shipped job
// file: <!-- include: configs/dag/bars.yaml -->.
const includeMarker = "<!-- include: "

// TestRecipesIncludeEveryShippedConfig holds docs/recipes to the shipped
// job files: every YAML block of a recipe is a job file included as it is in
// the repository (byte for byte), it validates, and a job test sits beside
// it; and every job file under configs/ is in a recipe.
func TestRecipesIncludeEveryShippedConfig(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "recipes", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Fatalf("found %d recipe pages", len(pages))
	}
	included := map[string]string{} // job file -> page
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, page)
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.TrimSpace(l) != "```yaml" {
				continue
			}
			if i == 0 || !strings.HasPrefix(lines[i-1], includeMarker) {
				t.Errorf("%s:%d: a YAML block that is not a shipped job file; precede it with %sconfigs/…/FILE.yaml -->", rel, i+1, includeMarker)
				continue
			}
			file := strings.TrimSuffix(strings.TrimPrefix(lines[i-1], includeMarker), " -->")
			var body strings.Builder
			closed := false
			for _, b := range lines[i+1:] {
				if strings.TrimSpace(b) == "```" {
					closed = true
					break
				}
				body.WriteString(b + "\n")
			}
			if !closed {
				t.Errorf("%s:%d: unclosed YAML block", rel, i+1)
				continue
			}
			want, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Errorf("%s:%d: includes %s: %v", rel, i, file, err)
				continue
			}
			if body.String() != string(want) {
				t.Errorf("%s:%d: the block differs from %s; copy the file into it", rel, i+1, file)
			}
			if prev, dup := included[file]; dup {
				t.Errorf("%s: includes %s, which %s includes already", rel, file, prev)
			}
			included[file] = rel
			if _, err := os.Stat(filepath.Join(root, strings.TrimSuffix(file, ".yaml")+jobtest.Suffix)); err != nil {
				t.Errorf("%s: %s has no job test beside it: %v", rel, file, err)
			}
			// The block as a job: it loads and builds, with relative paths
			// from the repository root, where the recipe runs it.
			t.Run(file, func(t *testing.T) {
				t.Chdir(root)
				doc, err := config.LoadBytes(file, []byte(body.String()), config.LoadOptions{Env: func(string) (string, bool) { return "", false }})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := doc.Graph(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	jobs, err := filepath.Glob(filepath.Join(root, "configs", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, j := range jobs {
		rel, _ := filepath.Rel(root, j)
		rel = filepath.ToSlash(rel)
		if !strings.HasSuffix(rel, jobtest.Suffix) && included[rel] == "" {
			missing = append(missing, rel)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is in no recipe under docs/recipes", m)
	}
}
