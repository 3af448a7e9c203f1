package scaleout

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/internal/crashtest"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

// natsProcEnv makes the test binary a nats-server process ("port dir"):
// a server the test can kill -9 and start again on the same port and
// file store.
const natsProcEnv = "MDP_SCALEOUT_TEST_NATS"

// serveNATS runs the nats-server of natsProcEnv until the process is
// killed.
func serveNATS(v string) {
	port, dir, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", natsProcEnv, v)
		os.Exit(2)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n, JetStream: true, StoreDir: dir, SyncAlways: true, NoSigs: true, NoLog: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv.Start()
	if !srv.ReadyForConnections(time.Minute) {
		fmt.Fprintln(os.Stderr, "nats-server not ready")
		os.Exit(2)
	}
	select {}
}

// natsProc is a nats-server process of a test (the test binary itself),
// on a fixed loopback port with a file store that outlives it.
type natsProc struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNATSProc starts a nats-server process on a free port.
func startNATSProc(t *testing.T) *natsProc {
	t.Helper()
	n := &natsProc{port: freePort(t), dir: t.TempDir()}
	n.start(t)
	t.Cleanup(n.kill)
	return n
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start starts the server and waits until it accepts connections.
func (n *natsProc) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", natsProcEnv, n.port, n.dir))
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on port %d not up after a minute: %v", n.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill is kill -9 of the server.
func (n *natsProc) kill() {
	if n.cmd != nil && n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
	}
}

// scene configures runScene.
type scene struct {
	// url is the NATS server's (the ingest's and the test's); empty: an
	// in-process server on a free loopback port.
	url string
	// workerURL is the one in the workers' job file; empty: url.
	workerURL string
	// workerDSN is the PostgreSQL the workers' job file names; empty:
	// pgDSN().
	workerDSN string
	// now runs act as soon as the ingest started, not once every
	// partition has a checkpoint.
	now bool
	// trades is the input; empty: writeTrades(5, 30000, 40).
	trades string
	// speed is the replay's (10: 60 s of event time in about 6 s).
	speed int
	// late replaces the bars' "late_policy: drop" (the oracle's too).
	late string
	// extra is more keys for the job's scaleout section (", key: value").
	extra string
	// audit checks the audit instead of checkAudit (every version one of
	// the oracle's rows).
	audit func(t *testing.T, conn *pgx.Conn, schema string, want []string)
}

// runScene is runHandoff with the server, the workers' route to it and
// the input of cfg.
func runScene(t *testing.T, cfg scene, start func(h *handoff), act func(h *handoff)) {
	bin := crashtest.Binary(t)
	conn, schemas := pgSchemas(t, "ho_oracle", "ho_workers")
	trades := cfg.trades
	if trades == "" {
		trades = writeTrades(t, 5, 30000, 40)
	}
	bars := func(schema, extra string) string {
		return strings.Replace(barsJob(trades, schema, extra), "late_policy: drop", cmp.Or(cfg.late, "late_policy: drop"), 1)
	}
	runOracle(t, bars(schemas[0], ""))
	want := barRows(t, conn, schemas[0])
	audit(t, conn, schemas[0], schemas[1])

	url := cfg.url
	if url == "" {
		url = loopbackServer(t).ClientURL()
	}
	speed := cfg.speed
	if speed == 0 {
		speed = 10
	}
	jobFile := func(name, url, dsn string) string {
		path := filepath.Join(t.TempDir(), name)
		text := strings.Replace(bars(schemas[1], fmt.Sprintf("scaleout: {nats: %q, partitions: 16%s}\n", url, cfg.extra)),
			"max_out_of_orderness: 500ms", fmt.Sprintf("max_out_of_orderness: 500ms\n        speed: %d", speed), 1)
		text = strings.Replace(text, fmt.Sprintf("%q", pgDSN()), fmt.Sprintf("%q", dsn), 1)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	job := jobFile("job.yaml", url, pgDSN())
	wjob := job
	if cfg.workerURL != "" || cfg.workerDSN != "" {
		wjob = jobFile("worker.yaml", cmp.Or(cfg.workerURL, url), cmp.Or(cfg.workerDSN, pgDSN()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &handoff{killed: map[*liveProc]bool{}, job: wjob, bin: bin, ctx: ctx, js: js, schema: schemas[1], oracle: schemas[0], conn: conn, direct: job}
	start(h)
	h.ingest = startLive(t, ctx, bin, "ingest", "ingest", "--config", job)
	if !cfg.now {
		waitCheckpointed(t, ctx, js, 16)
	}
	act(h)
	procs := append(append(slices.Clone(h.workers), h.ingest), h.ingests...)
	var failed []string
	for _, p := range procs {
		err := <-p.done
		p.done <- err // for the test's checks after the scene
		if err != nil && !h.killed[p] {
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	if failed != nil {
		var logs strings.Builder
		for _, p := range procs {
			fmt.Fprintf(&logs, "--- %s:\n", p.name)
			for _, l := range strings.Split(p.stderr.String(), "\n") {
				if !strings.Contains(l, "late records dropped") {
					logs.WriteString(l + "\n")
				}
			}
		}
		t.Fatalf("%s\n%s", strings.Join(failed, "\n"), logs.String())
	}
	sameRows(t, barRows(t, conn, schemas[1]), want)
	if cfg.audit != nil {
		cfg.audit(t, conn, schemas[1], want)
	} else {
		checkAudit(t, conn, schemas[1], want)
	}
}

// running reports whether p has not exited yet.
func running(p *liveProc) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// retried is the workers' count of "transient failure" log lines.
func retried(ws ...*liveProc) int {
	n := 0
	for _, w := range ws {
		n += len(w.stderr.lines("scale-out worker: transient failure; its job starts again after a backoff"))
	}
	return n
}

// TestWorkerRetriesThroughPostgresOutage: the worker reaches PostgreSQL
// through a TCP proxy that refuses every connection when its first job
// starts. The sink's own start-up retries (5 attempts, about 1.5 s) run
// out and the job does not start; the worker logs the transient failure,
// counts it (the status's retries) and starts the job again after a
// backoff instead of exiting (it exited 1 before), and once the proxy
// lets connections through it reads every partition and the bars equal
// the oracle's.
func TestWorkerRetriesThroughPostgresOutage(t *testing.T) {
	proxy := tcpproxy.Start(t, "127.0.0.1:5432")
	proxy.Pause()
	dsn := strings.Replace(pgDSN(), "127.0.0.1:5432", proxy.Addr(), 1)
	if dsn == pgDSN() {
		t.Skip("MDP_TEST_PG_DSN is not on 127.0.0.1:5432")
	}
	var w0 *liveProc
	var retries int64
	runScene(t, scene{workerDSN: dsn, now: true}, func(h *handoff) {
		w0 = h.worker(t, "w0", 1)
	}, func(h *handoff) {
		for retried(w0) == 0 {
			select {
			case <-h.ctx.Done():
				t.Fatalf("w0 never retried its job:\n%s", w0.stderr)
			case err := <-w0.done:
				t.Fatalf("w0 ended: %v\n%s", err, w0.stderr)
			case <-time.After(20 * time.Millisecond):
			}
		}
		// The count reaches the status with the next heartbeat.
		for retries == 0 {
			st, err := ingestStatus(h.ctx, h.js, namesOf("so-bars"), 16)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range st.Workers {
				retries += w.Retries
			}
			if err := retry.Sleep(h.ctx, 50*time.Millisecond); err != nil {
				t.Fatalf("the status never counted w0's retry: %v", err)
			}
		}
		proxy.Resume()
	})
	if retries < 1 || retries > int64(retried(w0)) {
		t.Fatalf("the status said %d retries, w0 logged %d", retries, retried(w0))
	}
	l := w0.stderr.lines("scale-out worker: transient failure; its job starts again after a backoff")
	if l[0]["what"] != "starting the job" || !strings.Contains(fmt.Sprint(l[0]["err"]), "postgres") {
		t.Fatalf("the first retry: %v", l[0])
	}
	t.Logf("w0 retried %d times; the status said %d retries when the proxy resumed", len(l), retries)
}

// TestNATSKilledAndRestarted is §4.5: the nats-server process (file
// store, sync always) is killed with SIGKILL while two workers are
// mid-stream, and started again 1 s later on the same port and store. The
// workers are paused (SIGSTOP) mid-stream until the ingest has published
// everything (an ingest does not ride out a server restart: its
// unacknowledged publishes fail it), the server is killed, the workers
// resumed (SIGCONT) during the outage: their leases are past their
// deadlines (fenced) and expire, and once the server is back they take
// the partitions again and restart their jobs from the checkpoints the
// file store kept, retrying through the server's start-up. The bars equal
// the oracle's.
func TestNATSKilledAndRestarted(t *testing.T) {
	ns := startNATSProc(t)
	var ws []*liveProc
	var restarted time.Time
	runScene(t, scene{url: ns.url()}, func(h *handoff) {
		ws = append(ws, h.worker(t, "w0", 2), h.worker(t, "w1", 2))
	}, func(h *handoff) {
		for _, w := range ws {
			if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-h.ingest.done; err != nil {
			t.Fatalf("ingest: %v\n%s", err, h.ingest.stderr)
		}
		h.ingest.done <- nil
		ns.kill()
		for _, w := range ws {
			if err := w.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		ns.start(t)
		restarted = time.Now()
	})
	for _, w := range ws {
		l := w.stderr.lines("partitions read to their end")
		if len(l) == 0 || logTime(t, l[len(l)-1]).Before(restarted) {
			t.Fatalf("%s read no partition to its end after the server's restart:\n%s", w.name, w.stderr)
		}
	}
	t.Logf("the workers retried their jobs %d times", retried(ws...))
}

// TestWorkerCutOffFromNATS is §4.7: of two workers, w1 reaches NATS
// through a TCP proxy that cuts and refuses its connections for 2 × the
// lease TTL mid-stream. w1 cannot renew its leases: it fences its
// partitions before they could expire and stops its job without a
// checkpoint; w0 takes them over from their checkpoints once they expire.
// When the proxy lets w1 through again it rejoins and takes its share
// back. Whatever w1 wrote is one of the oracle's rows.
func TestWorkerCutOffFromNATS(t *testing.T) {
	srv := loopbackServer(t)
	proxy := tcpproxy.Start(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	var w0, w1 *liveProc
	var moved []int
	runScene(t, scene{url: srv.ClientURL(), workerURL: "nats://" + proxy.Addr()}, func(h *handoff) {
		w0 = h.workerOf(t, h.direct, "w0", 2)
		w1 = h.worker(t, "w1", 2)
	}, func(h *handoff) {
		moved = firstOwned(t, w1)
		proxy.Pause()
		for readsOver(w0, moved) == nil {
			select {
			case <-h.ctx.Done():
				t.Fatalf("w0 never took w1's partitions over:\n%s", w0.stderr)
			case <-time.After(20 * time.Millisecond):
			}
		}
		time.Sleep(2 * time.Second) // 2 × TTL in all
		proxy.Resume()
	})
	if len(w1.stderr.lines("partition fenced: no lease renewal in time")) == 0 {
		t.Fatalf("w1 never fenced its partitions:\n%s", w1.stderr)
	}
	t.Logf("w1 fenced; w0 took %v over; w1 retried %d times", moved, retried(w1))
}

// TestScaleOutOneToFour is §4.3: one worker reads all 16 partitions; three
// more join mid-stream, while bars are open. Each newcomer takes its
// share from the checkpoints (at most ceil(16/2) = 8 at its join; 4 once
// all four are there), open bars travel in the checkpoints, and the bars
// equal the oracle's with no other value ever written.
func TestScaleOutOneToFour(t *testing.T) {
	var ws []*liveProc
	runScene(t, scene{}, func(h *handoff) {
		ws = append(ws, h.worker(t, "w0", 1))
	}, func(h *handoff) {
		for i := 1; i < 4; i++ {
			ws = append(ws, h.worker(t, fmt.Sprintf("w%d", i), 1))
		}
	})
	for _, w := range ws[1:] {
		restored := firstRestored(w)
		if restored == 0 || restored > 8 {
			t.Fatalf("%s restored %d partitions from checkpoints: want 1 to 8\n%s", w.name, restored, w.stderr)
		}
	}
	if len(ws[0].stderr.lines("job suspended")) == 0 {
		t.Fatalf("w0 never suspended to hand partitions over:\n%s", ws[0].stderr)
	}
}

// TestSIGTERMTwoOfFour is §4.4: four workers, SIGTERM of two at once
// mid-stream. Both suspend (a final checkpoint, leases released, exit 0)
// and the other two take their partitions over from those checkpoints
// without waiting for the leases' TTL.
func TestSIGTERMTwoOfFour(t *testing.T) {
	var ws []*liveProc
	var moved []int
	var termAt time.Time
	runScene(t, scene{}, func(h *handoff) {
		for i := range 4 {
			ws = append(ws, h.worker(t, fmt.Sprintf("w%d", i), 4))
		}
	}, func(h *handoff) {
		moved = append(firstOwned(t, ws[2]), firstOwned(t, ws[3])...)
		termAt = time.Now()
		for _, w := range ws[2:] {
			if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, w := range ws[2:] {
		sus := w.stderr.lines("job suspended")
		if len(sus) == 0 || sus[len(sus)-1]["reason"] != stopShutdown {
			t.Fatalf("%s did not suspend on SIGTERM:\n%s", w.name, w.stderr)
		}
	}
	// Every moved partition is read again by w0 or w1, restored.
	taken := map[int]time.Time{}
	for _, w := range ws[:2] {
		for _, l := range w.stderr.lines("scale-out worker reads its partitions") {
			at := logTime(t, l)
			if at.Before(termAt) {
				continue
			}
			for _, x := range l["owned"].([]any) {
				if _, ok := taken[int(x.(float64))]; !ok {
					taken[int(x.(float64))] = at
				}
			}
		}
	}
	var last time.Duration
	for _, p := range moved {
		at, ok := taken[p]
		if !ok && !partitionDone(t, ws[:2], p) {
			t.Fatalf("partition %d of the stopped workers was never read by w0 or w1:\n%s\n%s", p, ws[0].stderr, ws[1].stderr)
		}
		if ok {
			last = max(last, at.Sub(termAt))
		}
	}
	t.Logf("w2 and w3's %d partitions read by w0/w1 within %s of the SIGTERM (lease TTL 3s)", len(moved), last)
}

// partitionDone reports whether one of ws logged p read to its end.
func partitionDone(t *testing.T, ws []*liveProc, p int) bool {
	t.Helper()
	for _, w := range ws {
		for _, l := range w.stderr.lines("partitions read to their end") {
			for _, x := range l["partitions"].([]any) {
				if int(x.(float64)) == p {
					return true
				}
			}
		}
	}
	return false
}

// TestIdlePartitionsAdvance is §4.8: every symbol of three of the 16
// partitions stops trading after the first tenth of the input. Those
// partitions carry only watermark markers from then on, and the workers'
// watermark (the least of their partitions') still advances: the last bar
// of each silent symbol is in PostgreSQL while the ingest still runs,
// before any end-of-stream marker.
func TestIdlePartitionsAdvance(t *testing.T) {
	const n, symbols = 30000, 40
	idle := map[int]bool{}
	for _, s := range []string{"S000", "S001", "S002"} {
		idle[md.Split(md.HashSymbol(s), md.SplitInstances, 16)] = true
	}
	silentSym := map[int]bool{}
	for s := range symbols {
		if idle[md.Split(md.HashSymbol(fmt.Sprintf("S%03d", s)), md.SplitInstances, 16)] {
			silentSym[s] = true
		}
	}
	if len(silentSym) >= symbols/2 {
		t.Fatalf("%d of %d symbols in the idle partitions", len(silentSym), symbols)
	}
	trades := writeTradesSilent(t, 11, n, symbols, func(s, i int) bool { return silentSym[s] && i > n/10 })
	var w0 *liveProc
	var seen, want []string
	runScene(t, scene{trades: trades, speed: 5}, func(h *handoff) {
		w0 = h.worker(t, "w0", 2)
		h.worker(t, "w1", 2)
	}, func(h *handoff) {
		// The silent symbols' last bars, as the oracle has them.
		q := `SELECT symbol || ' ' || max(ts)::text FROM %s.bars WHERE symbol = ANY($1) GROUP BY symbol ORDER BY 1`
		var names []string
		for s := range silentSym {
			names = append(names, fmt.Sprintf("S%03d", s))
		}
		last := func(schema string) []string { return textRows(t, h.conn, fmt.Sprintf(q, schema), names) }
		want = last(h.oracle)
		if len(want) != len(names) {
			t.Fatalf("the oracle has bars of %d of the %d silent symbols", len(want), len(names))
		}
		for {
			if !running(h.ingest) {
				t.Fatalf("the ingest ended before the silent symbols' last bars were written: %v, want %v", seen, want)
			}
			if seen = last(h.schema); slices.Equal(seen, want) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Logf("the last bars of the silent symbols %v were in PostgreSQL before the ingest ended (w0 read %v first)", want, firstOwned(t, w0))
}

// TestLateUpdatesNeverMoveBackwards: bars under late_policy: update (1 s
// of allowed lateness: some late trades update a written bar, later ones
// are dropped), and kill -9 of one of two workers mid-stream. The new
// owner replays from the last checkpoint and emits again bars the killed
// worker had written, some at a version (trade count) older than the
// stored one; the sink's monotone upsert (rowschema.Bar.Version) leaves
// those rows alone. Every row version the audit logged, per bar in write
// order, has a trade count at least the previous one's, and the bars end
// equal to the oracle's.
func TestLateUpdatesNeverMoveBackwards(t *testing.T) {
	var w1 *liveProc
	runScene(t, scene{late: "late_policy: update, allowed_lateness: 1s", audit: checkMonotone}, func(h *handoff) {
		h.worker(t, "w0", 2)
		w1 = h.worker(t, "w1", 2)
	}, func(h *handoff) {
		h.killed[w1] = true
		if err := w1.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
	})
}

// checkMonotone checks that no bar's row version ever had fewer trades
// than the one before it, that late updates did update rows, and that
// every final row was written.
func checkMonotone(t *testing.T, conn *pgx.Conn, schema string, want []string) {
	t.Helper()
	var versions, updates, backwards int
	err := conn.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE op = 'UPDATE'), count(*) FILTER (WHERE n < p)
		FROM (SELECT op, (j->>'trades')::bigint n, lag((j->>'trades')::bigint) OVER (PARTITION BY j->>'provider', j->>'symbol', j->>'interval', j->>'ts' ORDER BY id) p
		FROM `+schema+`.audit) v`).Scan(&versions, &updates, &backwards)
	if err != nil {
		t.Fatal(err)
	}
	if backwards != 0 {
		t.Fatalf("%d of %d row versions had fewer trades than the bar's version before", backwards, versions)
	}
	if updates == 0 {
		t.Fatal("no late trade updated a written bar: the data does not test late_policy update")
	}
	if versions < len(want) {
		t.Fatalf("the audit logged %d row versions for %d rows", versions, len(want))
	}
	t.Logf("audit: %d row versions (%d updates) for %d rows, none with fewer trades than the one before", versions, updates, len(want))
}

// TestSlowSinkLockTable is §4.11: mid-stream, a separate connection
// locks the workers' bars table (ACCESS EXCLUSIVE) for 8 s: 8 lease
// renewals (TTL 3 s) and 40 checkpoint intervals (200 ms). Every sink
// write waits on the lock, so no checkpoint barrier passes the sinks:
// once a worker's sink is seen waiting, at most the one checkpoint already
// past its sink may still be stored (the engine has at most one in
// flight), then its checkpoints stall. Meanwhile every partition keeps
// its owner and its lease is renewed (the renewals do not wait on the
// sink), and no worker exits. Before the unlock w1 is killed -9 and its
// waiting PostgreSQL backends terminated, so that nothing w1 read after
// its last checkpoint reaches the table from w1: w0 takes its partitions
// over from their checkpoints, and the bars can equal the oracle's only
// if no checkpoint claimed a bar the table did not hold.
func TestSlowSinkLockTable(t *testing.T) {
	const hold = 8 * time.Second
	var w0, w1 *liveProc
	var blockedAt map[string]time.Time
	var renewals map[int]int
	var stalledAt map[string]int64
	var moved []int
	var killedAt time.Time
	runScene(t, scene{speed: 5}, func(h *handoff) {
		// Each worker names itself to PostgreSQL (application_name), so
		// the test sees whose writes wait on the lock.
		for _, id := range []string{"w0", "w1"} {
			text, err := os.ReadFile(h.job)
			if err != nil {
				t.Fatal(err)
			}
			dsn := pgDSN()
			named := dsn + map[bool]string{true: "&", false: "?"}[strings.Contains(dsn, "?")] + "application_name=" + id
			job := filepath.Join(t.TempDir(), id+".yaml")
			if err := os.WriteFile(job, []byte(strings.Replace(string(text), fmt.Sprintf("%q", dsn), fmt.Sprintf("%q", named), 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			p := h.workerOf(t, job, id, 2)
			if id == "w0" {
				w0 = p
			} else {
				w1 = p
			}
		}
	}, func(h *handoff) {
		n := namesOf("so-bars")
		lkv, err := h.js.KeyValue(h.ctx, n.bucket("leases"))
		if err != nil {
			t.Fatal(err)
		}
		ckv, err := h.js.KeyValue(h.ctx, n.bucket("ckpt"))
		if err != nil {
			t.Fatal(err)
		}
		type lease struct {
			owner string
			rev   uint64
		}
		leasesNow := func() map[int]lease {
			out := map[int]lease{}
			for p := range 16 {
				if e, err := lkv.Get(h.ctx, leaseKey(p)); err == nil {
					out[p] = lease{string(e.Value()), e.Revision()}
				}
			}
			return out
		}
		// ckptIDs is the highest checkpoint id of each worker's pieces.
		ckptIDs := func() map[string]int64 {
			out := map[string]int64{}
			for p := range 16 {
				e, err := ckv.Get(h.ctx, leaseKey(p))
				if err != nil {
					t.Fatalf("checkpoint of partition %d: %v", p, err)
				}
				var pc piece
				if err := json.Unmarshal(e.Value(), &pc); err != nil {
					t.Fatal(err)
				}
				out[pc.Worker] = max(out[pc.Worker], pc.ID)
			}
			return out
		}

		lockConn, err := pgx.Connect(h.ctx, pgDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer lockConn.Close(context.Background())
		tx, err := lockConn.Begin(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // committed below; a no-op then
		if _, err := tx.Exec(h.ctx, "LOCK TABLE "+h.schema+".bars IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		locked := time.Now()
		before := leasesNow()
		if len(before) != 16 {
			t.Fatalf("%d of 16 partitions leased when the table was locked", len(before))
		}
		owners := map[string]bool{}
		for _, l := range before {
			owners[l.owner] = true
		}
		if !owners["w0"] || !owners["w1"] {
			t.Fatalf("leases when the table was locked: %v", before)
		}
		for p := range 16 {
			if before[p].owner == "w1" {
				moved = append(moved, p)
			}
		}
		renewals = map[int]int{}
		seen := before
		blockedAt = map[string]time.Time{}
		stalledAt = map[string]int64{}
		for time.Since(locked) < hold {
			for _, w := range []*liveProc{w0, w1} {
				if !running(w) {
					t.Fatalf("%s exited while the table was locked: %v\n%s", w.name, <-w.done, w.stderr)
				}
			}
			now := leasesNow()
			for p, l := range now {
				if l.owner != before[p].owner {
					t.Fatalf("partition %d's lease went from %s to %s while the table was locked", p, before[p].owner, l.owner)
				}
				if l.rev != seen[p].rev {
					renewals[p]++
				}
			}
			if len(now) != 16 {
				t.Fatalf("%d of 16 partitions leased %s after the lock", len(now), time.Since(locked))
			}
			seen = now
			// Whose sink waits on the lock.
			waiting := textRows(t, h.conn, `SELECT DISTINCT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = ANY($1)`, []string{"w0", "w1"})
			ids := ckptIDs()
			for _, w := range waiting {
				if _, ok := blockedAt[w]; !ok {
					blockedAt[w] = time.Now()
					stalledAt[w] = ids[w] // read after the block was seen
				}
			}
			for w, id := range stalledAt {
				// At most the one checkpoint in flight past the sink.
				if ids[w] > id+1 {
					t.Fatalf("%s stored checkpoint %d while its sink waited on the lock (checkpoint %d when the wait was seen): a checkpoint ahead of the sink", w, ids[w], id)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(blockedAt) != 2 {
			t.Fatalf("sinks waiting on the lock: %v; want both workers'", blockedAt)
		}
		for p := range 16 {
			if renewals[p] < 3 {
				t.Fatalf("partition %d's lease renewed %d times during the %s lock: %v", p, renewals[p], hold, renewals)
			}
		}
		// w1 dies with its writes waiting: they never reach the table.
		h.killed[w1] = true
		killedAt = time.Now()
		if err := w1.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-w1.done
		w1.done <- nil
		if _, err := h.conn.Exec(h.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'w1'`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(h.ctx); err != nil {
			t.Fatal(err)
		}
	})
	// Every partition of w1 is read by w0 after the kill, restored from
	// its checkpoint (maybe over several jobs: the leases expire one by
	// one, and a partition w0 read to its end is left out of the next).
	taken := map[int]bool{}
	for _, l := range w0.stderr.lines("scale-out worker reads its partitions") {
		if r, _ := l["restored"].(float64); logTime(t, l).Before(killedAt) || r == 0 {
			continue
		}
		for _, x := range l["owned"].([]any) {
			taken[int(x.(float64))] = true
		}
	}
	for _, p := range moved {
		if !taken[p] {
			t.Fatalf("w0 never read w1's partition %d (of %v) restored from checkpoints after the kill:\n%s", p, moved, w0.stderr)
		}
	}
	t.Logf("sinks waiting on the lock from %v; checkpoints then %v; lease renewals per partition during the lock %v", blockedAt, stalledAt, renewals)
}
