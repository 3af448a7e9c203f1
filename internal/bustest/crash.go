package bustest

import (
	"database/sql"
	"fmt"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the crash tests read the SQLite stores

	"github.com/mdpio/mdp/internal/crashtest"
)

// Count is the number of rows in table (-1 when it cannot be read).
func Count(db *sql.DB, table string) int {
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

// RunToEnd starts the job (resumed), waits until every trade is in the
// store, then stops it with SIGTERM and --drain (open bars flushed).
func RunToEnd(t testing.TB, bin, dir, job, db string, want int) {
	t.Helper()
	p := crashtest.Start(t, bin, dir, "run", job, "--resume", "--drain")
	started := time.Now()
	deadline := started.Add(2 * time.Minute)
	var lite *sql.DB
	for time.Now().Before(deadline) {
		if lite == nil {
			lite, _ = sql.Open("sqlite", db)
		}
		if lite != nil && Count(lite, "trades") >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lite != nil {
		lite.Close()
	}
	// Let the process install its signal handling and restore first.
	if d := time.Until(started.Add(2 * time.Second)); d > 0 {
		time.Sleep(d)
	}
	p.Signal(syscall.SIGTERM)
	if code, stderr := p.Wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
}
