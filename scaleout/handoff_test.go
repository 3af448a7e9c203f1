package scaleout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// syncBuffer is a process's stderr that the test reads while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the JSON log lines with msg.
func (s *syncBuffer) lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// liveProc is an mdp process whose log the test follows.
type liveProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func startLive(t *testing.T, ctx context.Context, bin, name string, args ...string) *liveProc {
	t.Helper()
	p := &liveProc{name: name, cmd: exec.CommandContext(ctx, bin, args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// handoff is a scenario of §4 of the research note: a paced ingest, the
// workers started by start, act run once every partition has a checkpoint
// mid-stream; then every process must end with exit code 0 (except the
// ones act killed) and the bars equal the oracle's. Every row version the
// sink ever wrote is logged by a trigger into an audit table: each must
// be one of the oracle's rows (no partial bar, no other value, ever).
type handoff struct {
	workers []*liveProc
	// ingests are the ingests started after the first (startIngest).
	ingests []*liveProc
	killed  map[*liveProc]bool
	job     string
	bin     string
	ctx     context.Context
	js      jetstream.JetStream
	ingest  *liveProc
	conn    *pgx.Conn
	schema  string // the workers' bars
	oracle  string // the oracle's bars
	// direct is the job file naming the server and PostgreSQL directly
	// (job may name proxies).
	direct string
}

// startIngest starts another mdp ingest of job with args.
func (h *handoff) startIngest(t *testing.T, job string, args ...string) *liveProc {
	p := startLive(t, h.ctx, h.bin, fmt.Sprintf("ingest%d", len(h.ingests)+1), append([]string{"ingest", "--config", job}, args...)...)
	h.ingests = append(h.ingests, p)
	return p
}

func (h *handoff) worker(t *testing.T, id string, workers int) *liveProc {
	return h.workerOf(t, h.job, id, workers)
}

// workerOf starts a worker of job file job.
func (h *handoff) workerOf(t *testing.T, job, id string, workers int) *liveProc {
	p := startLive(t, h.ctx, h.bin, id, "worker", "--config", job, "--workers", fmt.Sprint(workers), "--id", id,
		"--lease-ttl", "3s", "--checkpoint-interval", "200ms")
	h.workers = append(h.workers, p)
	return p
}

func runHandoff(t *testing.T, start func(h *handoff), act func(h *handoff)) {
	runScene(t, scene{}, start, act)
}

// waitCheckpointed waits until every partition has a checkpoint taken
// mid-stream (a covered sequence, its end marker not read). It fails at
// once when a partition's checkpoint says its end marker was read (or it
// is done): the stream ended before every partition was checkpointed
// mid-stream, which can then never happen.
func waitCheckpointed(t testing.TB, ctx context.Context, js jetstream.JetStream, partitions int) {
	t.Helper()
	for {
		kv, err := js.KeyValue(ctx, namesOf("so-bars").bucket("ckpt"))
		if err == nil {
			var mid, ended []int
			for p := range partitions {
				e, err := kv.Get(ctx, leaseKey(p))
				if err != nil {
					continue
				}
				var pc piece
				if json.Unmarshal(e.Value(), &pc) != nil {
					continue
				}
				switch {
				case pc.Read.Ended || pc.Done:
					ended = append(ended, p)
				case pc.Read.Seq > 0:
					mid = append(mid, p)
				}
			}
			if len(ended) > 0 {
				t.Fatalf("the stream ended before every partition was checkpointed mid-stream: partitions %v are read to their end, only %v of %d have a mid-stream checkpoint", ended, mid, partitions)
			}
			if len(mid) == partitions {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the partitions were never checkpointed mid-stream")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// audit creates the workers' bars table like the oracle's, with a trigger
// logging every row version written into audit, in order (id).
func audit(t *testing.T, conn *pgx.Conn, oracle, schema string) {
	t.Helper()
	for _, q := range []string{
		"CREATE TABLE " + schema + ".bars (LIKE " + oracle + ".bars INCLUDING ALL)",
		"CREATE TABLE " + schema + ".audit (id bigserial, op text, row text, j jsonb)",
		"CREATE FUNCTION " + schema + ".audit_bars() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + schema + ".audit (op, row, j) VALUES (TG_OP, NEW::text, to_jsonb(NEW)); RETURN NEW; END $$",
		"CREATE TRIGGER audit AFTER INSERT OR UPDATE ON " + schema + ".bars FOR EACH ROW EXECUTE FUNCTION " + schema + ".audit_bars()",
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAudit checks that every row version ever written is one of the
// oracle's rows.
func checkAudit(t *testing.T, conn *pgx.Conn, schema string, want []string) {
	t.Helper()
	ok := map[string]bool{}
	for _, r := range want {
		ok[r] = true
	}
	rows, err := conn.Query(context.Background(), "SELECT op, row FROM "+schema+".audit")
	if err != nil {
		t.Fatal(err)
	}
	type version struct{ Op, Row string }
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[version])
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, v := range all {
		if !ok[v.Row] {
			t.Fatalf("the sink once wrote %s %s, which is no row of the oracle", v.Op, v.Row)
		}
		if v.Op == "UPDATE" {
			updates++
		}
	}
	if len(all) < len(want) {
		t.Fatalf("the audit logged %d row versions for %d rows", len(all), len(want))
	}
	t.Logf("audit: %d row versions (%d updates) for %d rows, each one of the oracle's", len(all), updates, len(want))
}

// logTime is the time of a JSON log line.
func logTime(t *testing.T, l map[string]any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// firstOwned is the partitions of p's first "reads its partitions" line.
func firstOwned(t *testing.T, p *liveProc) []int {
	t.Helper()
	ls := p.stderr.lines("scale-out worker reads its partitions")
	if len(ls) == 0 {
		t.Fatalf("%s never read partitions:\n%s", p.name, p.stderr)
	}
	var out []int
	for _, x := range ls[0]["owned"].([]any) {
		out = append(out, int(x.(float64)))
	}
	return out
}

// readsOver returns p's first "reads its partitions" line that covers
// every partition of parts, each partition it reads restored from a
// checkpoint (partitions already done are left out of a job).
func readsOver(p *liveProc, parts []int) map[string]any {
	for _, l := range p.stderr.lines("scale-out worker reads its partitions") {
		owned := map[int]bool{}
		for _, x := range l["owned"].([]any) {
			owned[int(x.(float64))] = true
		}
		all := len(parts) > 0
		for _, q := range parts {
			all = all && owned[q]
		}
		if r, _ := l["restored"].(float64); all && int(r) >= len(owned) {
			return l
		}
	}
	return nil
}

// firstRestored is the number of partitions restored from checkpoints in
// p's first "reads its partitions" line that restored any (0: none).
func firstRestored(p *liveProc) int {
	for _, l := range p.stderr.lines("scale-out worker reads its partitions") {
		if r, _ := l["restored"].(float64); r > 0 {
			return int(r)
		}
	}
	return 0
}

// TestSIGTERMHandsOver is §4.4 with 2 workers: SIGTERM of one mid-stream
// suspends it (a final checkpoint of its partitions, its leases
// released, exit 0); the other resumes every partition from the
// checkpoints; the bars equal the oracle's and no other value was ever
// written.
func TestSIGTERMHandsOver(t *testing.T) {
	var w0, w1 *liveProc
	var moved []int
	runHandoff(t, func(h *handoff) {
		w0 = h.worker(t, "w0", 2)
		w1 = h.worker(t, "w1", 2)
	}, func(h *handoff) {
		moved = firstOwned(t, w1)
		if err := w1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	})
	sus := w1.stderr.lines("job suspended")
	if len(sus) == 0 || sus[len(sus)-1]["reason"] != stopShutdown {
		t.Fatalf("w1 did not suspend on SIGTERM:\n%s", w1.stderr)
	}
	l := readsOver(w0, moved)
	if l == nil {
		t.Fatalf("w0 never read w1's partitions %v restored from checkpoints:\n%s", moved, w0.stderr)
	}
	t.Logf("handoff: w1 suspended at %s, w0 read w1's partitions from %s (%s later)",
		sus[len(sus)-1]["time"], l["time"], logTime(t, l).Sub(logTime(t, sus[len(sus)-1])))
}

// TestKillHandsOver is §4.2 with 2 workers: kill -9 of one mid-stream;
// its leases expire (3 s) and the other resumes its partitions from their
// last checkpoints.
func TestKillHandsOver(t *testing.T) {
	var w0, w1 *liveProc
	var moved []int
	var killedAt time.Time
	runHandoff(t, func(h *handoff) {
		w0 = h.worker(t, "w0", 2)
		w1 = h.worker(t, "w1", 2)
	}, func(h *handoff) {
		moved = firstOwned(t, w1)
		h.killed[w1] = true
		killedAt = time.Now()
		if err := w1.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
	})
	l := readsOver(w0, moved)
	if l == nil {
		t.Fatalf("w0 never read w1's partitions %v restored from checkpoints:\n%s", moved, w0.stderr)
	}
	t.Logf("takeover: w1 killed at %s, w0 read w1's partitions %s later (lease TTL 3s)", killedAt.UTC().Format(time.RFC3339Nano), logTime(t, l).Sub(killedAt))
}

// TestScaleOutOneToTwo is §4.3 with 1 -> 2 workers: a second worker joins
// mid-stream, takes about half the partitions from the first one's
// checkpoints (open bars travel in them).
func TestScaleOutOneToTwo(t *testing.T) {
	var w0, w1 *liveProc
	runHandoff(t, func(h *handoff) {
		w0 = h.worker(t, "w0", 1)
	}, func(h *handoff) {
		w1 = h.worker(t, "w1", 1)
	})
	moved := firstRestored(w1)
	if moved == 0 || moved > 8 {
		t.Fatalf("w1 restored %d partitions from checkpoints: want 1 to 8\n%s", moved, w1.stderr)
	}
	if len(w0.stderr.lines("job suspended")) == 0 {
		t.Fatalf("w0 never suspended to hand partitions over:\n%s", w0.stderr)
	}
}

// TestPausedWorkerFences is §4.6 with 2 workers: one is paused (SIGSTOP)
// mid-stream until the other has taken all 16 partitions over from their
// checkpoints, then resumed (SIGCONT): it finds its leases gone, stops its
// job without a checkpoint (or its checkpoint write is refused), rejoins
// and ends with the others; whatever it wrote meanwhile is one of the
// oracle's rows.
func TestPausedWorkerFences(t *testing.T) {
	var w0, w1 *liveProc
	runHandoff(t, func(h *handoff) {
		w0 = h.worker(t, "w0", 2)
		w1 = h.worker(t, "w1", 2)
	}, func(h *handoff) {
		moved := firstOwned(t, w1)
		if err := w1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		for readsOver(w0, moved) == nil {
			select {
			case <-h.ctx.Done():
				t.Fatalf("w0 never took w1's partitions over:\n%s", w0.stderr)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := w1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	})
	stopped := 0
	for _, msg := range []string{"partition fenced: no lease renewal in time", "partition lease lost"} {
		stopped += len(w1.stderr.lines(msg))
	}
	if stopped == 0 {
		t.Fatalf("w1 never noticed it lost its partitions:\n%s", w1.stderr)
	}
}
