package scaleout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/sink/sqlite"
)

// propSeedEnv replays one seed of TestCheckpointsUnderRandomSchedules.
const propSeedEnv = "MDP_SO_PROP_SEED"

// TestCheckpointsUnderRandomSchedules is the in-process property test of
// the research note's §4.12 with checkpoints and bars: for each seed a
// seeded trade file (late trades, silent symbols), an in-process
// nats-server on a free loopback port, a paced ingest (1 to 1.8 s), 1 to
// 3 workers (RunWorker, each with its own connection, membership and
// leases (TTL 4 s), checkpointing every 150 ms), then a seeded schedule of joins,
// SIGTERMs (ctx cancelled: suspend, final checkpoint, leases released) and
// kills (Abort: the job ends without a checkpoint, so its partitions
// resume from their previous one and replay), each join and leave
// rebalancing the partitions. The bars in the workers' SQLite file must
// equal those of a one-process run of the same job (the oracle), and a
// trigger logging every row version the sinks inserted or updated must
// show none the oracle never wrote. Each run draws new seeds (logged);
// MDP_SO_PROP_SEED=<seed> replays one: the same data and schedule (the
// goroutines' interleaving is the scheduler's).
func TestCheckpointsUnderRandomSchedules(t *testing.T) {
	var seeds []uint64
	if s := os.Getenv(propSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", propSeedEnv, s, err)
		}
		seeds = []uint64{seed}
	} else {
		base := uint64(time.Now().UnixNano()) % 1e9
		seeds = []uint64{base, base + 1, base + 2}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			t.Logf("seed %d (replay: %s=%d go test -run TestCheckpointsUnderRandomSchedules ./scaleout/)", seed, propSeedEnv, seed)
			propSchedule(t, seed)
		})
	}
}

// propWorker is one in-process worker of the schedule.
type propWorker struct {
	id    string
	stop  context.CancelFunc
	abort chan struct{}
	done  chan error
	how   string // "", "sigterm" or "kill"
}

func propSchedule(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 412))
	partitions := []int{4, 8}[r.IntN(2)]
	trades := writeTrades(t, seed, 2500+r.IntN(2000), 24+r.IntN(24))
	dir := t.TempDir()
	oracleDB, scaledDB := filepath.Join(dir, "oracle.db"), filepath.Join(dir, "scaled.db")
	propAuditTable(t, oracleDB)
	propAuditTable(t, scaledDB)

	u, err := runtime.NewFromBytes("oracle.yaml", []byte(propJob(trades, oracleDB, 0, "")), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()

	srv := loopbackServer(t)
	// 2 ms between trades: speed 5 publishes them over 1 to 1.8 s.
	text := propJob(trades, scaledDB, 5, fmt.Sprintf("scaleout: {nats: %q, partitions: %d}\n", srv.ClientURL(), partitions))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	}()
	load := func() *config.Document {
		doc, err := config.LoadBytes("scaled.yaml", []byte(text), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	tm := timing{memberTTL: 4 * time.Second, leaseTTL: 4 * time.Second, margin: time.Second}
	var all, live []*propWorker
	next := 0
	join := func() {
		w := &propWorker{id: fmt.Sprintf("w%d", next), abort: make(chan struct{}), done: make(chan error, 1)}
		next++
		wctx, stop := context.WithCancel(ctx)
		w.stop = stop
		doc := load()
		go func() {
			w.done <- RunWorker(wctx, doc, WorkerOptions{Options: Options{Logger: log, Abort: w.abort}, ID: w.id,
				CheckpointInterval: 150 * time.Millisecond, timing: tm})
		}()
		all, live = append(all, w), append(live, w)
	}
	defer func() { // a failed test's workers
		for _, w := range live {
			w.stop()
			<-w.done
		}
	}()
	for range 1 + r.IntN(3) {
		join()
	}
	ingestDone := make(chan error, 1)
	ingestDoc := load()
	go func() { ingestDone <- RunIngest(ctx, ingestDoc, Options{Logger: log}) }()

	var events []string
	for range 3 + r.IntN(3) {
		time.Sleep(time.Duration(100+r.IntN(400)) * time.Millisecond)
		k := r.IntN(3) // keep one to four workers
		switch {
		case len(live) == 1:
			k = 0
		case len(live) >= 4 && k == 0:
			k = 1 + r.IntN(2)
		}
		if k == 0 {
			join()
			events = append(events, "join "+live[len(live)-1].id)
			continue
		}
		i := r.IntN(len(live))
		w := live[i]
		live = slices.Delete(live, i, i+1)
		if k == 1 {
			w.how = "sigterm"
			w.stop()
		} else {
			w.how = "kill"
			close(w.abort)
		}
		events = append(events, w.how+" "+w.id)
	}
	t.Logf("%d partitions, events: %s", partitions, strings.Join(events, ", "))

	if err := <-ingestDone; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	t2 := time.Now()
	for _, w := range all {
		select {
		case err := <-w.done:
			w.done <- err
			switch {
			case w.how == "kill" && (err == nil || errors.Is(err, engine.ErrAborted)):
			case w.how == "sigterm" && errors.Is(err, context.Canceled):
				// SIGTERM while it was joining or starting a job: RunWorker
				// returns that step's error (context canceled) rather than
				// nil; what it held is released all the same, and the bars
				// are checked below.
			case err != nil:
				t.Fatalf("worker %s (%s): %v", w.id, w.how, err)
			}
		case <-ctx.Done():
			t.Fatalf("worker %s (%s) never ended", w.id, w.how)
		}
	}
	live = nil
	t.Logf("oracle %s, ingest %s, workers done %s later", t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))

	want := propRows(t, oracleDB, "bars_ohlcv")
	sameRows(t, propRows(t, scaledDB, "bars_ohlcv"), want)
	had := map[string]bool{}
	for _, v := range propRows(t, oracleDB, "audit") {
		had[v] = true
	}
	versions := propRows(t, scaledDB, "audit")
	for _, v := range versions {
		if !had[v] {
			t.Fatalf("a sink once wrote %s, a row version the oracle never wrote", v)
		}
	}
	t.Logf("%d bars equal to the oracle's; %d row versions written, each one the oracle wrote", len(want), len(versions))
}

// propJob is a replay -> 1 s bars -> sink.sqlite job; speed > 0 paces the
// replay.
func propJob(trades, db string, speed int, extra string) string {
	pace := ""
	if speed > 0 {
		pace = fmt.Sprintf("\n        speed: %d", speed)
	}
	return fmt.Sprintf(`mode: dag
name: so-prop
dag:
  nodes:
    - id: replay
      type: provider.replay
      params:
        path: %q
        kind: trade
        columns: {provider: provider, symbol: symbol, ts: ts, price: price, size: size, side: side, trade_id: trade_id}
        max_out_of_orderness: 500ms%s
    - id: bars
      type: operator.bars
      params: {interval: 1s, late_policy: drop}
      parallelism: 2
    - id: store
      type: sink.sqlite
      params: {path: %q}
  edges:
    - [replay, bars]
    - [bars, store]
%s`, trades, pace, db, extra)
}

// propAuditTable creates the bars table of sink.sqlite in the file at path,
// and an audit table that triggers fill with every row version inserted
// or updated.
func propAuditTable(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path, "normal"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(sqlite.CreateTable("bars_ohlcv", rowschema.Bar)); err != nil {
		t.Fatal(err)
	}
	cols := rowschema.Bar.StoredNames()
	news := make([]string, len(cols))
	for i, c := range cols {
		news[i] = "NEW." + c
	}
	row := strings.Join(news, ", ")
	for _, q := range []string{
		"CREATE TABLE audit AS SELECT * FROM bars_ohlcv WHERE 0",
		"CREATE TRIGGER audit_insert AFTER INSERT ON bars_ohlcv BEGIN INSERT INTO audit VALUES (" + row + "); END",
		"CREATE TRIGGER audit_update AFTER UPDATE ON bars_ohlcv BEGIN INSERT INTO audit VALUES (" + row + "); END",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// propRows returns every row of table in the file at path as text, in
// the bars' key order.
func propRows(t *testing.T, path, table string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.DSN(path, "normal"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols := rowschema.Bar.StoredNames()
	rows, err := db.Query("SELECT " + strings.Join(cols, ", ") + " FROM " + table + " ORDER BY provider, symbol, interval, ts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
