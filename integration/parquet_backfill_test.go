package integration

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"github.com/mdpio/mdp/runtime"
)

// backfillJob writes 1s bars of one symbol for one hour of one day into dir.
func backfillJob(name, symbol, dir string) []byte {
	return fmt.Appendf(nil, `mode: dag
name: %s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [%s], count: 5000, seed: 3, start: "2024-03-01T10:00:00Z", step: 100ms}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.parquet, params: {dir: %q}}
  edges: [[src, bars], [bars, store]]
`, name, symbol, dir)
}

func runJob(t *testing.T, data []byte) {
	t.Helper()
	u, err := runtime.NewFromBytes("backfill.yaml", data, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// barSymbols reads every bars file under dir: bar rows per symbol, and the
// file names.
func barSymbols(t *testing.T, dir string) (map[string]int, []string) {
	t.Helper()
	counts := map[string]int{}
	var names []string
	err := filepath.WalkDir(filepath.Join(dir, "bars"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, strings.TrimPrefix(p, dir+"/"))
		rows, err := pq.ReadFile[struct {
			Symbol string `parquet:"symbol"`
		}](p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, r := range rows {
			counts[r.Symbol]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return counts, names
}

// The backfill pattern: two jobs, one symbol each, one dataset. Neither
// replaces the other's files; re-running one replaces its own output
// instead of adding a copy.
func TestParquetBackfillJobsShareADataset(t *testing.T) {
	dir := t.TempDir()
	runJob(t, backfillJob("backfill", "AAPL", dir))
	runJob(t, backfillJob("backfill", "MSFT", dir)) // same job name, other symbols
	counts, names := barSymbols(t, dir)
	if counts["AAPL"] != 500 || counts["MSFT"] != 500 || len(names) != 2 {
		t.Fatalf("rows per symbol %v in %v", counts, names)
	}
	runJob(t, backfillJob("backfill", "AAPL", dir)) // a re-run
	again, names2 := barSymbols(t, dir)
	if again["AAPL"] != 500 || again["MSFT"] != 500 || strings.Join(names2, ",") != strings.Join(names, ",") {
		t.Fatalf("after a re-run: rows %v in %v (before %v)", again, names2, names)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "bars/date=2024-03-01/part-20240301T100000.000000Z-backfill-") {
			t.Fatalf("file name %s", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bars")); err != nil {
		t.Fatal(err)
	}
}
