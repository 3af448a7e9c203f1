package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobtest"
	"github.com/mdpio/mdp/runtime"
)

// TestEveryShippedConfigValidates loads and builds every job file under
// configs/, so none of them rots (examples/ test their own).
func TestEveryShippedConfigValidates(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../configs/*/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if !strings.HasSuffix(f, jobtest.Suffix) { // job tests, not jobs
				files = append(files, f)
			}
		}
	}
	if len(files) < 8 {
		t.Fatalf("found only %d job files: %v", len(files), files)
	}
	env := func(k string) (string, bool) { return os.LookupEnv(k) }
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			doc, err := config.LoadFile(f, config.LoadOptions{Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := doc.Graph(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDemoConfigsAgreeAcrossModes runs configs/dag/bars.yaml and
// configs/classic/bars.yaml into files: the same job written two ways gives
// byte-identical bars.
func TestDemoConfigsAgreeAcrossModes(t *testing.T) {
	dir := t.TempDir()
	run := func(file, set string) []byte {
		out := filepath.Join(dir, filepath.Base(filepath.Dir(file))+".jsonl")
		u, err := runtime.NewFromFile(file, runtime.Options{LoadOptions: config.LoadOptions{Sets: []string{
			set + ".type=sink.file", set + ".params.path=" + out,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return readFile(t, out)
	}
	dag := run("../configs/dag/bars.yaml", "dag.nodes.out")
	classic := run("../configs/classic/bars.yaml", "classic.spec.sink")
	if len(dag) == 0 || string(dag) != string(classic) {
		t.Fatalf("dag and classic bars differ:\n%s\n---\n%s", dag, classic)
	}
	if n := countLines(dag); n != 20 {
		t.Fatalf("got %d bars, want 20 (2 symbols x 10 event-seconds)", n)
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestEveryShippedConfigHasPassingJobTests runs the job tests next to the
// shipped configs, with operator chaining on (the default) and off, so the
// chained and unchained runs of every shipped shape give the same records;
// and checks that every job file has a test.
func TestEveryShippedConfigHasPassingJobTests(t *testing.T) {
	tests, err := jobtest.Find([]string{"../configs"})
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := filepath.Glob("../configs/*/*.yaml")
	tested := map[string]bool{}
	for _, path := range tests {
		f, err := jobtest.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		tested[filepath.Clean(f.Job)] = true
		for _, noChaining := range []bool{false, true} {
			f.NoChaining = noChaining
			for _, r := range jobtest.Run(context.Background(), f) {
				if !r.Passed() {
					t.Errorf("%s: %s (chaining off: %v): %v %s", r.File, r.Case, noChaining, r.Err, strings.Join(r.Problems, "; "))
				}
			}
		}
	}
	for _, j := range jobs {
		if !strings.HasSuffix(j, jobtest.Suffix) && !tested[filepath.Clean(j)] {
			t.Errorf("%s has no job test (%s next to it)", j, strings.TrimSuffix(filepath.Base(j), ".yaml")+jobtest.Suffix)
		}
	}
}
