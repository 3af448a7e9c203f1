package bustest

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the crash tests read the SQLite stores

	"github.com/mdpio/mdp/internal/crashtest"
)

// count is the number of rows in table (-1 when it cannot be read).
func count(db *sql.DB, table string) int {
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		return -1
	}
	return n
}

// BarRows are the bars_ohlcv rows of the SQLite file at path, sorted.
func BarRows(t testing.TB, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Query("SELECT symbol, ts, open, high, low, close, volume, vwap, trades FROM bars_ohlcv ORDER BY symbol, ts")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var s, ts string
		var o, h, l, c, v, w float64
		var n int64
		if err := r.Scan(&s, &ts, &o, &h, &l, &c, &v, &w, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%v|%v|%v|%v|%v|%v|%d", s, ts, o, h, l, c, v, w, n))
	}
	return out
}

// CrashResume is the crash test of a bus source: a clean run of
// source -> 1s bars -> SQLite (the trades too, to see progress), then the
// same job on a fresh copy of the stream killed with SIGKILL at up to six
// seeded moments, each after the run saved a checkpoint (checkpoints every
// 100ms), and resumed until every one of the want trades is stored. The
// bars must equal the clean run's row for row, and at least three kills
// must land before the stream is read; each run may take 10 minutes on a
// loaded machine. source(run) is the YAML of the
// source node of run "clean" or "crash" (id bus), each reading its own
// copy of the same stream.
func CrashResume(t *testing.T, source func(run string) string, want int, seed uint64) {
	t.Helper()
	bin := crashtest.Binary(t)
	dir := t.TempDir()
	job := func(run string) (path, db, ckpt string) {
		db, ckpt = filepath.Join(dir, run+".db"), filepath.Join(dir, "ck-"+run)
		y := fmt.Sprintf(`name: %s
dag:
  nodes:
    - %s
    - {id: b1s, type: operator.bars, params: {interval: 1s}}
    - {id: lite, type: sink.sqlite, params: {path: %q}}
  edges:
    - [bus, b1s]
    - [bus, lite]
    - [b1s, lite]
checkpoint: {interval: 100ms, store: %q, keep: 3}
`, run, source(run), db, ckpt)
		path = filepath.Join(dir, run+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return path, db, ckpt
	}
	stored := func(db string) func() bool {
		return func() bool { return Stored(db) >= want }
	}

	cleanJob, cleanDB, _ := job("clean")
	crashtest.KillResume(t, crashtest.Options{Bin: bin, Dir: dir, Timeout: 10 * time.Minute, Done: stored(cleanDB),
		Args: func(int) []string { return []string{"run", cleanJob, "--drain"} }})
	clean := BarRows(t, cleanDB)
	if len(clean) < 50 {
		t.Fatalf("the clean run wrote %d bars", len(clean))
	}

	crashJob, db, ckpt := job("crash")
	res := crashtest.KillResume(t, crashtest.Options{Bin: bin, Dir: dir, Timeout: 10 * time.Minute, Done: stored(db),
		Args:  func(int) []string { return []string{"run", crashJob, "--drain"} },
		Kills: 6, Seed: seed, MinDelay: 0, MaxDelay: 400 * time.Millisecond, Store: ckpt})
	// Two kills at least: one resume from a restored run, one from a
	// resumed run. MQTT's stream is bounded by the broker's session queue
	// (600 messages), which a quiet machine reads with two or three kills
	// landing; the other buses' streams take all six.
	if res.Kills < 2 {
		t.Fatalf("only %d kills landed before the stream was read: make it longer", res.Kills)
	}
	got := BarRows(t, db)
	if strings.Join(got, "\n") != strings.Join(clean, "\n") {
		n := 0
		for i := range min(len(got), len(clean)) {
			if got[i] != clean[i] && n < 3 {
				t.Errorf("bar %d: got %s, clean %s", i, got[i], clean[i])
				n++
			}
		}
		t.Fatalf("%d bars after %d kills, %d in the clean run", len(got), res.Kills, len(clean))
	}
	t.Logf("%d bars equal after %d kills in %d runs", len(got), res.Kills, res.Runs)
}

// Stored is the number of trades in the SQLite store at path (0 while it
// cannot be read).
func Stored(path string) int {
	lite, err := sql.Open("sqlite", path)
	if err != nil {
		return 0
	}
	defer lite.Close()
	return max(count(lite, "trades"), 0)
}
