package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mdpio/mdp/config"
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
		files = append(files, m...)
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
