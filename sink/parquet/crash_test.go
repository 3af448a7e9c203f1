package parquet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/crashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// crashJob writes the job: replay → 1s bars (late_policy update) →
// sink.parquet rolling files by rows and age, checkpoints every 200ms.
func crashJob(t *testing.T, dir, name string, files []string, out string, speed float64) string {
	t.Helper()
	job := fmt.Sprintf(`name: pqcrash
dag:
  nodes:
    - {id: src, type: provider.replay, params: {path: [%s], preset: tardis_trades, speed: %g}}
    - {id: b1s, type: operator.bars, params: {interval: 1s, late_policy: update, allowed_lateness: 1m}}
    - {id: pq, type: sink.parquet, params: {dir: %q, max_rows: 300, max_age: 150ms}}
  edges:
    - [src, b1s]
    - [b1s, pq]
checkpoint: {interval: 200ms, store: %q, keep: 3}
`, strings.Join(files, ", "), speed, out, filepath.Join(dir, "ck-"+name))
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// barKey is a bar's natural key, as the SQL stores key it.
type barKey struct {
	provider, symbol, interval, barType, source string
	ts                                          int64
}

func keyOf(r barRow) barKey {
	return barKey{r.Provider, r.Symbol, r.Interval, r.BarType, r.Source, r.TS}
}

// datasetRows reads every row of the visible files under dir (hidden files
// fail the test: none may be left once the job has ended).
func datasetRows(t *testing.T, dir string) []barRow {
	t.Helper()
	var out []barRow
	for _, f := range files(t, dir) {
		if strings.HasPrefix(filepath.Base(f), ".") {
			t.Fatalf("a hidden file is left in %s: %s", dir, f)
		}
		rows, _ := readAll[barRow](t, filepath.Join(dir, f))
		out = append(out, rows...)
	}
	return out
}

// finalBars is how a reader gets the final bars from the append-only
// dataset: per key, the row with the highest trades count (a late update
// under late_policy update only adds trades). Two rows of one key and
// count with different values fail the test.
func finalBars(t *testing.T, rows []barRow) map[barKey]barRow {
	t.Helper()
	out := map[barKey]barRow{}
	for _, r := range rows {
		k := keyOf(r)
		have, ok := out[k]
		switch {
		case !ok || r.Trades > have.Trades:
			out[k] = r
		case r.Trades == have.Trades && r != have:
			t.Fatalf("two versions of %+v with %d trades: %+v and %+v", k, r.Trades, have, r)
		}
	}
	return out
}

// TestCrashResumeExactlyOnce: the replay → bars → sink.parquet job killed
// with SIGKILL at 12 seeded moments and resumed each time leaves exactly a
// clean run's rows: the same final bars, no row the clean run never wrote,
// no row more often than the clean run wrote it.
func TestCrashResumeExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	// BTCUSDT as recorded, and ETHUSDT with every 40th trade 3s early
	// (late for 1s bars, so late_policy update writes new versions of
	// closed bars).
	files := crashtest.TardisFiles(t, dir, []crashtest.TardisVariant{{Symbol: "BTCUSDT"}, {Symbol: "ETHUSDT", Shift: 7000, Late: 40}})
	const kills = 12

	cleanDir := filepath.Join(dir, "clean")
	crashtest.Run(t, bin, dir, 2*time.Minute, "run", crashJob(t, dir, "clean", files, cleanDir, 0))
	clean := datasetRows(t, cleanDir)
	cleanFinal := finalBars(t, clean)
	if len(cleanFinal) < 1000 || len(clean) <= len(cleanFinal) {
		t.Fatalf("the clean run wrote %d rows of %d bars: the workload must have late updates", len(clean), len(cleanFinal))
	}

	out := filepath.Join(dir, "crash")
	job := crashJob(t, dir, "crash", files, out, 300)
	res := crashtest.KillResume(t, crashtest.Options{
		Bin: bin, Dir: dir, Kills: kills, Seed: 19, MinDelay: 0, MaxDelay: 200 * time.Millisecond,
		Timeout: 2 * time.Minute, Store: filepath.Join(dir, "ck-crash"),
		Args: func(int) []string { return []string{"run", job} },
	})
	if res.FinishedEarly || res.Kills != kills {
		t.Fatalf("the job finished after %d of %d kills: make it longer", res.Kills, kills)
	}
	for i, stderr := range res.Stderr[1:] {
		if !strings.Contains(stderr, `"msg":"restored from checkpoint"`) {
			t.Errorf("run %d did not restore a checkpoint; stderr:\n%s", i+2, stderr)
		}
	}

	got := datasetRows(t, out)
	gotFinal := finalBars(t, got)
	for k, want := range cleanFinal {
		if g, ok := gotFinal[k]; !ok {
			t.Errorf("bar %+v missing", k)
		} else if g != want {
			t.Errorf("bar %+v:\n got %+v\nwant %+v", k, g, want)
		}
	}
	for k := range gotFinal {
		if _, ok := cleanFinal[k]; !ok {
			t.Errorf("bar %+v the clean run never wrote", k)
		}
	}
	cleanCount := map[barRow]int{}
	for _, r := range clean {
		cleanCount[r]++
	}
	gotCount := map[barRow]int{}
	for _, r := range got {
		gotCount[r]++
	}
	for r, n := range gotCount {
		if cleanCount[r] == 0 {
			t.Errorf("row %+v has values the clean run never wrote", r)
		} else if n > cleanCount[r] {
			t.Errorf("row %+v written %d times, by the clean run %d", r, n, cleanCount[r])
		}
	}
	t.Logf("%d kills, %d runs; clean: %d rows, %d bars; resumed: %d rows, %d bars", res.Kills, res.Runs, len(clean), len(cleanFinal), len(got), len(gotFinal))
}
