package scaleout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/config"
)

// TestWorkerRidesOutALongSinkStall: a sink that cannot write for longer
// than three checkpoint timeouts in a row (the worker's tolerable
// failures) used to end the worker (exit 1: "3 checkpoints in a row
// failed ... timed out"), every worker of the job alike, though nothing
// was wrong but a slow database. With the worker's checkpoint timeout
// at 500 ms (production: ten intervals, at least 10 s), its bars table
// is locked for 4 s mid-stream: the job fails on the timeouts, the
// worker counts a transient failure and starts it again from the
// checkpoints, keeping its leases, and once the lock is gone it reads
// every partition to its end; the bars equal the oracle's and the audit
// shows no row version the oracle never had.
func TestWorkerRidesOutALongSinkStall(t *testing.T) {
	const hold = 4 * time.Second
	conn, schemas := pgSchemas(t, "ss_oracle", "ss_worker")
	trades := writeTrades(t, 19, 30000, 40)
	runOracle(t, barsJob(trades, schemas[0], ""))
	want := barRows(t, conn, schemas[0])
	audit(t, conn, schemas[0], schemas[1])

	srv := loopbackServer(t)
	text := strings.Replace(barsJob(trades, schemas[1], fmt.Sprintf("scaleout: {nats: %q, partitions: 4}\n", srv.ClientURL())),
		"max_out_of_orderness: 500ms", "max_out_of_orderness: 500ms\n        speed: 10", 1)
	load := func() *config.Document {
		doc, err := config.LoadBytes("stall.yaml", []byte(text), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wdone, idone := make(chan error, 1), make(chan error, 1)
	wctx, stopWorker := context.WithCancel(ctx)
	defer func() {
		stopWorker()
		select {
		case <-wdone:
		case <-time.After(30 * time.Second):
		}
	}()
	go func() {
		wdone <- RunWorker(wctx, load(), WorkerOptions{Options: Options{Logger: log}, ID: "w0", CheckpointInterval: 100 * time.Millisecond,
			timing: timing{memberTTL: 3 * time.Second, leaseTTL: 3 * time.Second, margin: 500 * time.Millisecond}, checkpointTimeout: 500 * time.Millisecond})
	}()
	go func() { idone <- RunIngest(ctx, load(), Options{Logger: log}) }()
	_, js := testJS(t, srv)
	waitCheckpointed(t, ctx, js, 4)

	lkv, err := js.KeyValue(ctx, namesOf("so-bars").bucket("leases"))
	if err != nil {
		t.Fatal(err)
	}
	lockConn, err := pgx.Connect(ctx, pgDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer lockConn.Close(context.Background())
	tx, err := lockConn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // committed below; a no-op then
	if _, err := tx.Exec(ctx, "LOCK TABLE "+schemas[1]+".bars IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	revs := map[int]map[uint64]bool{}
	for time.Since(locked) < hold {
		select {
		case err := <-wdone:
			t.Fatalf("the worker ended while its sink was stalled: %v\n%s", err, logs)
		default:
		}
		for p := range 4 {
			e, err := lkv.Get(ctx, leaseKey(p))
			if err != nil || string(e.Value()) != "w0" {
				t.Fatalf("partition %d's lease during the stall: %v %v\n%s", p, e, err, logs)
			}
			if revs[p] == nil {
				revs[p] = map[uint64]bool{}
			}
			revs[p][e.Revision()] = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-idone; err != nil {
		t.Fatalf("ingest: %v\n%s", err, logs)
	}
	if err := <-wdone; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	wdone <- nil
	retries := logs.lines("scale-out worker: transient failure; its job starts again after a backoff")
	timedOut := 0
	for _, l := range retries {
		if strings.Contains(fmt.Sprint(l["err"]), "timed out after 500ms") {
			timedOut++
		}
	}
	if timedOut == 0 {
		t.Fatalf("no job failed on checkpoint timeouts during the %s stall: the test did not stall the sink long enough\n%s", hold, logs)
	}
	for p, rs := range revs {
		if len(rs) < 3 {
			t.Fatalf("partition %d's lease renewed %d times during the %s stall", p, len(rs)-1, hold)
		}
	}
	sameRows(t, barRows(t, conn, schemas[1]), want)
	checkAudit(t, conn, schemas[1], want)
	t.Logf("%d job restarts after checkpoint timeouts during the %s stall (%d transient failures in all); leases kept and renewed", timedOut, hold, len(retries))
}
