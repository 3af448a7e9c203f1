package redissrc_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/crashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	crashtest.Cleanup()
	os.Exit(code)
}

// crashJob is provider.redis -> 1s bars -> SQLite (and the trades, to see
// progress) with checkpoints every 100ms.
func crashJob(t *testing.T, dir, name, url, stream, group, db string) string {
	t.Helper()
	job := fmt.Sprintf(`name: %s
dag:
  nodes:
    - {id: bus, type: provider.redis, params: {url: %q, stream: %q, group: %q, consumer: crash, count: 1}}
    - {id: b1s, type: operator.bars, params: {interval: 1s}}
    - {id: lite, type: sink.sqlite, params: {path: %q}}
  edges:
    - [bus, b1s]
    - [bus, lite]
    - [b1s, lite]
checkpoint: {interval: 100ms, store: %q, keep: 3}
`, name, url, stream, group, db, filepath.Join(dir, "ck-"+name))
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCrashResume: the job killed with SIGKILL at seeded moments and
// resumed ends with the bars of a clean run (entries are acknowledged only
// at checkpoints, so what a kill loses is read again, and the bars'
// checkpointed state makes nothing count twice).
func TestCrashResume(t *testing.T) {
	// Kills land right after a checkpoint is saved too: the entries it
	// covers and that were not acknowledged yet must not count twice.
	if testing.Short() {
		t.Skip("crash test: runs mdp processes")
	}
	url, c := redisURL(t)
	st := stream(t, c)
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 4}, map[string]any{"url": url, "stream": st})
	bin := crashtest.Binary(t)
	dir := t.TempDir()

	cleanDB := filepath.Join(dir, "clean.db")
	bustest.RunToEnd(t, bin, dir, crashJob(t, dir, "clean", url, st, "clean", cleanDB), cleanDB, len(want))
	clean := bustest.BarRows(t, cleanDB)
	if len(clean) < 50 {
		t.Fatalf("the clean run wrote %d bars", len(clean))
	}

	db := filepath.Join(dir, "crash.db")
	job := crashJob(t, dir, "crash", url, st, "crash", db)
	rng := rand.New(rand.NewPCG(14, 6379))
	kills := 0
	stored := func() int {
		lite, err := sql.Open("sqlite", db)
		if err != nil {
			return 0
		}
		defer lite.Close()
		return bustest.Count(lite, "trades")
	}
	for range 6 {
		if stored() >= len(want) {
			break // the stream is read: later kills would test nothing
		}
		p := crashtest.Start(t, bin, dir, "run", job, "--resume")
		select {
		case <-p.Done():
			_, stderr := p.Wait(t, time.Second)
			t.Fatalf("the job ended by itself; stderr:\n%s", stderr)
		case <-time.After(300*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond)))):
		}
		p.Signal(syscall.SIGKILL)
		if code, _ := p.Wait(t, 10*time.Second); code == 128+int(syscall.SIGKILL) {
			kills++
		}
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed before the stream was read: make it longer", kills)
	}
	t.Logf("%d of %d trades stored when the last kill landed", stored(), len(want))
	bustest.RunToEnd(t, bin, dir, job, db, len(want))
	got := bustest.BarRows(t, db)
	if strings.Join(got, "\n") != strings.Join(clean, "\n") {
		n := 0
		for i := range min(len(got), len(clean)) {
			if got[i] != clean[i] && n < 3 {
				t.Errorf("bar %d: got %s, clean %s", i, got[i], clean[i])
				n++
			}
		}
		t.Fatalf("%d bars after %d kills, %d in the clean run", len(got), kills, len(clean))
	}
	t.Logf("%d bars equal after %d kills", len(got), kills)
}
