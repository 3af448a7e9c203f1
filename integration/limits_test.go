package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/jobtest"
	"github.com/mdpio/mdp/runtime"
)

// shippedConfigs are the job files under configs/ (not their job tests).
func shippedConfigs(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob("../configs/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range m {
		if !strings.HasSuffix(f, jobtest.Suffix) {
			files = append(files, f)
		}
	}
	return files
}

var indexPath = regexp.MustCompile(`\[(\d+)\]`)

// TestSizeLimitsInEveryShippedConfig: every size-like param (an integer with
// an upper bound) of every node of every shipped config is rejected one
// above its bound, with the bound in the message, and accepted at the bound,
// where the job still builds without a crash (a capacity no machine can
// honour used to panic in makechan or makeslice, or exhaust memory).
func TestSizeLimitsInEveryShippedConfig(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", true
		}
		return os.LookupEnv(k)
	}
	checked := 0
	for _, f := range shippedConfigs(t) {
		doc, err := config.LoadFile(f, config.LoadOptions{Env: env})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, n := range doc.Nodes {
			if n.Spec == nil {
				continue
			}
			base := indexPath.ReplaceAllString(n.Path, ".$1") + ".params."
			for _, fl := range n.Spec.Fields {
				if fl.Type != component.Int || fl.Max == nil {
					continue
				}
				maxV := int64(*fl.Max)
				set := func(v int64) []string { return []string{base + fl.Name + "=" + strconv.FormatInt(v, 10)} }
				_, err := config.LoadFile(f, config.LoadOptions{Env: env, Sets: set(maxV + 1)})
				want := fmt.Sprintf("%d is above the maximum %d", maxV+1, maxV)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s %s%s=%d: got %v, want …%s", f, base, fl.Name, maxV+1, err, want)
				}
				d, err := config.LoadFile(f, config.LoadOptions{Env: env, Sets: set(maxV)})
				if err != nil {
					if strings.Contains(err.Error(), "maximum") {
						t.Errorf("%s %s%s=%d (the maximum) rejected: %v", f, base, fl.Name, maxV, err)
					}
					continue // a rule between params (max_pending_rows >= max_rows)
				}
				g, err := d.Graph()
				if err == nil {
					_, err = engine.New(g, engine.Options{Job: "limits"})
				}
				if err != nil && strings.Contains(err.Error(), "panic") {
					t.Errorf("%s %s%s=%d: %v", f, base, fl.Name, maxV, err)
				}
				checked++
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d bounded params checked", checked)
	}
}

// TestJobLimits: the job-level sizes (batch_size, parallelism, an edge's
// capacity) are rejected one above their bound with the bound in the
// message, and build at the bound.
func TestJobLimits(t *testing.T) {
	job := func(batch, par, capacity int) []byte {
		return []byte(fmt.Sprintf(`mode: dag
batch_size: %d
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {count: 10}}
    - {id: bars, type: operator.bars, params: {interval: 1s}, parallelism: %d}
    - {id: out, type: sink.null}
  edges:
    - {from: src, to: bars, capacity: %d}
    - [bars, out]
`, batch, par, capacity))
	}
	const mb, mp, mc = 1 << 20, engine.MaxParallelism, engine.MaxQueueCapacity
	for _, c := range []struct {
		data []byte
		want string
	}{
		{job(mb+1, 1, 64), fmt.Sprintf("batch_size: must be at most %d, got %d", mb, mb+1)},
		{job(64, mp+1, 64), fmt.Sprintf("parallelism: must be at most %d, got %d", mp, mp+1)},
		{job(64, 1, mc+1), fmt.Sprintf("capacity: must be at most %d, got %d", mc, mc+1)},
		{job(64, 1, 9223372036854775807), "capacity: must be at most"},
	} {
		if _, err := config.LoadBytes("j.yaml", c.data, config.LoadOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want …%s", err, c.want)
		}
	}
	for _, data := range [][]byte{job(mb, 1, 64), job(64, 1, mc), job(64, 64, 64)} {
		d, err := config.LoadBytes("j.yaml", data, config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		g, err := d.Graph()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := engine.New(g, engine.Options{Job: "limits"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShippedDemoRunsAtItsMaximums runs the demo job in both modes with
// batch_size and every bounded param of its nodes at its maximum at once
// (those a rule between params allows): it finishes and gives the same bars
// as with the defaults.
func TestShippedDemoRunsAtItsMaximums(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ file, sink string }{{"../configs/dag/bars.yaml", "dag.nodes.out"}, {"../configs/classic/bars.yaml", "classic.spec.sink"}} {
		out := filepath.Join(dir, filepath.Base(filepath.Dir(c.file))+".jsonl")
		sets := []string{c.sink + ".type=sink.file", c.sink + ".params.path=" + out}
		run := func(sets []string) []byte {
			u, err := runtime.NewFromFile(c.file, runtime.Options{LoadOptions: config.LoadOptions{Sets: sets}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := u.Run(ctx); err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
			return readFile(t, out)
		}
		want := run(sets)
		maxed := append(append([]string{}, sets...), "batch_size=1048576")
		doc, err := config.LoadFile(c.file, config.LoadOptions{Sets: maxed})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range doc.Nodes {
			for _, fl := range n.Spec.Fields {
				if fl.Type != component.Int || fl.Max == nil {
					continue
				}
				s := indexPath.ReplaceAllString(n.Path, ".$1") + ".params." + fl.Name + "=" + strconv.FormatInt(int64(*fl.Max), 10)
				if _, err := config.LoadFile(c.file, config.LoadOptions{Sets: append(maxed, s)}); err == nil {
					maxed = append(maxed, s)
				}
			}
		}
		if len(maxed) < 4 {
			t.Fatalf("%s: only %v at the maximum", c.file, maxed)
		}
		t.Logf("%s at the maximum: %v", c.file, maxed[2:])
		if got := run(maxed); string(got) != string(want) {
			t.Fatalf("%s with %v: bars differ from the defaults'", c.file, maxed[2:])
		}
	}
}
