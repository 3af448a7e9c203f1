package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobtest"
	"github.com/mdpio/mdp/runtime"
)

// repoRoot is the repository, seen from this package.
const repoRoot = ".."

// untilStopped marks a README job block that runs until it is stopped (a
// live feed): it is validated, not run.
const untilStopped = "# runs until stopped"

// fencedBlocks returns the bodies of the ```lang blocks of a Markdown file,
// with the line each starts on.
func fencedBlocks(t *testing.T, path, lang string) (bodies []string, lines []int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in := false
	start := 0
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```"+lang:
			in, cur, start = true, nil, i+2
		case in && strings.TrimSpace(l) == "```":
			in = false
			bodies, lines = append(bodies, strings.Join(cur, "\n")+"\n"), append(lines, start)
		case in:
			cur = append(cur, l)
		}
	}
	return bodies, lines
}

// Every YAML job in the README and in the guides under docs/ validates,
// and every one that does not say it runs until stopped runs to its end by
// itself, as written.
func TestReadmeJobsValidateAndFinish(t *testing.T) {
	guides, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(repoRoot, "README.md")}
	for _, g := range guides {
		if filepath.Base(g) != "DESIGN.md" { // its YAML shows the job file's shape, not a job
			files = append(files, g)
		}
	}
	var bodies, names []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		b, lines := fencedBlocks(t, abs, "yaml")
		if f == files[0] && len(b) < 2 {
			t.Fatalf("found %d YAML blocks in the README", len(b))
		}
		rel, _ := filepath.Rel(repoRoot, f)
		for i := range b {
			bodies, names = append(bodies, b[i]), append(names, filepath.ToSlash(rel)+":"+strconv.Itoa(lines[i]))
		}
	}
	dagDir, err := filepath.Abs(filepath.Join(repoRoot, "configs", "dag"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // the jobs write relative paths
	for i, body := range bodies {
		name := names[i]
		if strings.HasPrefix(body, "job:") {
			// A job test: it passes against the shipped job it names
			// (configs/dag, where such a file would sit).
			t.Run(name, func(t *testing.T) { runReadmeJobTest(t, body, dagDir) })
			continue
		}
		t.Run(name, func(t *testing.T) {
			// A metrics port of its own, so the test never collides with
			// another process on the documented one.
			doc, err := config.LoadBytes(name, []byte(body), config.LoadOptions{Sets: []string{"metrics.listen=127.0.0.1:0"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := doc.Graph(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(body, untilStopped) {
				return
			}
			u, err := runtime.New(doc, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := u.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("the job did not finish by itself within a minute; give it an end (count, duration) or mark it %q", untilStopped)
			}
		})
	}
}

// Every job file a README command names exists.
func TestReadmeCommandsNameFilesThatExist(t *testing.T) {
	bodies, _ := fencedBlocks(t, filepath.Join(repoRoot, "README.md"), "sh")
	re := regexp.MustCompile(`--config\s+(\S+)`)
	n := 0
	for _, b := range bodies {
		for _, m := range re.FindAllStringSubmatch(b, -1) {
			n++
			if _, err := os.Stat(filepath.Join(repoRoot, m[1])); err != nil {
				t.Errorf("README command names %s: %v", m[1], err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no --config in the README's commands")
	}
}

// markdownLink is [text](target) (images included), not inside code.
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link in every Markdown file of the repository resolves to a
// file inside the repository, and every #anchor to a heading of its file.
func TestMarkdownLinksResolveInsideTheRepo(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range markdownLink.FindAllStringSubmatch(stripCode(string(data)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
				if r, err := filepath.Rel(root, dest); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s: link %s leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: %v", rel, target, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !hasAnchor(t, dest, anchor) {
				t.Errorf("%s: link %s: no heading with that anchor", rel, target)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found")
	}
	// Markdown files named in code spans (`docs/bench/WORKLOAD.md`) exist
	// too, relative to the file or to the repository root.
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range codeSpanMD.FindAllStringSubmatch(string(data), -1) {
			name := m[1]
			inRepo := func(p string) bool {
				r, err := filepath.Rel(root, p)
				_, serr := os.Stat(p)
				return err == nil && !strings.HasPrefix(r, "..") && serr == nil
			}
			if !inRepo(filepath.Join(filepath.Dir(f), name)) && !inRepo(filepath.Join(root, name)) {
				t.Errorf("%s: names %s, which is not a file in the repository", rel, name)
			}
		}
	}
}

// codeSpanMD is a Markdown file's path in a code span.
var codeSpanMD = regexp.MustCompile("`([^`\\s]+\\.md)`")

// stripCode removes fenced blocks and inline code, where brackets are not
// links.
func stripCode(s string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(regexp.MustCompile("`[^`]*`").ReplaceAllString(l, ""))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// hasAnchor reports whether the Markdown file has a heading whose GitHub
// anchor is anchor.
func hasAnchor(t *testing.T, path, anchor string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(stripCode(string(data)), "\n") {
		if h, ok := strings.CutPrefix(l, "#"); ok {
			if githubAnchor(strings.TrimLeft(h, "#")) == anchor {
				return true
			}
		}
	}
	return false
}

// githubAnchor is the id GitHub gives a heading: lower case, spaces to
// hyphens, punctuation other than - and _ dropped.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// runReadmeJobTest runs a job test from the README as if it sat in dir.
func runReadmeJobTest(t *testing.T, body, dir string) {
	first, rest, _ := strings.Cut(body, "\n")
	job := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(first, "#", 2)[0], "job:"))
	path := filepath.Join(t.TempDir(), "readme_test.yaml")
	if err := os.WriteFile(path, []byte("job: "+filepath.Join(dir, job)+"\n"+rest), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := jobtest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range jobtest.Run(context.Background(), f) {
		if !r.Passed() {
			t.Errorf("%s: %v %s", r.Case, r.Err, strings.Join(r.Problems, "; "))
		}
	}
}
