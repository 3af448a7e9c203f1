package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

// barSource emits bars (Sym indexing names) in batches of bs, calling after
// (if set) once each batch has been emitted with the number emitted so far.
type barSource struct {
	bars  []md.Bar
	names []string
	bs    int
	after func(ctx context.Context, emitted int) error
}

func (s *barSource) Run(ctx context.Context, out *engine.Output) error {
	ids := make([]md.SymID, len(s.names))
	for i, n := range s.names {
		ids[i] = out.Symbols().Intern("test", n)
	}
	for i := 0; i < len(s.bars); i += s.bs {
		b := out.NewBatch(md.KindBar)
		for _, x := range s.bars[i:min(i+s.bs, len(s.bars))] {
			x.Sym = ids[x.Sym]
			b.Bars = append(b.Bars, x)
		}
		if err := out.Emit(b); err != nil {
			return err
		}
		if s.after != nil {
			if err := s.after(ctx, min(i+s.bs, len(s.bars))); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

func symNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("SYM%03d", i)
	}
	return out
}

func lookupSpec(tb testing.TB) *component.Spec {
	tb.Helper()
	spec, ok := component.Lookup("sink.postgres")
	if !ok {
		tb.Fatal("sink.postgres is not registered")
	}
	return spec
}

// newBarsJob builds source -> sink.postgres with params (dsn defaults to the
// test server).
func newBarsJob(tb testing.TB, params map[string]any, src *barSource) (*engine.Job, error) {
	tb.Helper()
	spec := lookupSpec(tb)
	if _, ok := params["dsn"]; !ok {
		params["dsn"] = testDSN()
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		return nil, err
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindBar},
				NewSource: func(int) (engine.Source, error) { return src, nil }},
			component.Node(spec, p, component.NodeOptions{ID: "store"}),
		},
		Edges: []*engine.Edge{{From: "src", To: "store"}},
	}
	return engine.New(g, engine.Options{Job: "pgtest", Feedback: engine.NewFeedback(engine.DefaultFeedback())})
}

// runBars runs a job writing bars (Sym indexing SYM000..) in batches of bs.
func runBars(tb testing.TB, params map[string]any, bars []md.Bar, bs int, after func(context.Context, int) error) (*engine.Job, error) {
	tb.Helper()
	nsyms := 0
	for i := range bars {
		nsyms = max(nsyms, int(bars[i].Sym)+1)
	}
	j, err := newBarsJob(tb, params, &barSource{bars: bars, names: symNames(nsyms), bs: bs, after: after})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return j, j.Run(ctx)
}

func TestRegisteredWithAliasesAndSecretDSN(t *testing.T) {
	spec := lookupSpec(t)
	for _, id := range []string{"sink.timescale", "sink.store"} {
		if s, ok := component.Lookup(id); !ok || s != spec {
			t.Fatalf("%s is not an alias of sink.postgres", id)
		}
	}
	secret := false
	for _, f := range spec.Fields {
		if f.Name == "dsn" {
			secret = f.Secret
		}
	}
	if !secret {
		t.Fatal("dsn is not marked Secret")
	}
	p, err := component.NewParams(spec, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"dsn": "${DATABASE_URL}", "schema": "public", "table": "bars_ohlcv",
		"trades_table": "trades", "quotes_table": "quotes", "create_tables": true, "copy_threshold": int64(1000), "direct_copy": false,
		"workers": int64(2), "batch_rows": int64(10000)} {
		if got := p.Value(k); got != want {
			t.Errorf("default %s = %#v, want %#v", k, got, want)
		}
	}
}

func TestDSNFromEnvironment(t *testing.T) {
	conn := connectTest(t)
	schema := newSchema(t, conn)
	t.Setenv("DATABASE_URL", testDSN())
	bars := genBars(10, 2)
	if _, err := runBars(t, map[string]any{"dsn": "${DATABASE_URL}", "schema": schema}, bars, 10, nil); err != nil {
		t.Fatal(err)
	}
	_, syms := testSymbols(2)
	compareBars(t, readBars(t, conn, schema+".bars_ohlcv"), expectBars(bars, syms))

	t.Setenv("DATABASE_URL", "")
	_, err := runBars(t, map[string]any{"dsn": "${DATABASE_URL}", "schema": schema}, bars, 10, nil)
	want := `node "store": params.dsn: dsn is empty: set params.dsn or the DATABASE_URL environment variable`
	if err == nil || err.Error() != want {
		t.Fatalf("empty DATABASE_URL:\n got  %v\n want %s", err, want)
	}
	if got := expandEnv("a${X:-dflt}b${Y}c", func(k string) string { return map[string]string{"Y": "why"}[k] }); got != "adfltbwhyc" {
		t.Fatalf("expandEnv = %q", got)
	}
}

func TestJobWritesEveryBarOnceAcrossWorkers(t *testing.T) {
	conn := connectTest(t)
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers_%d", workers), func(t *testing.T) {
			schema := newSchema(t, conn)
			bars := genBars(25000, 40)
			// Late corrections re-emitted with Update=true, in later batches.
			for i := 0; i < 200; i++ {
				u := bars[i*97]
				u.Close += 1.5
				u.Update = true
				bars = append(bars, u)
			}
			params := map[string]any{"schema": schema, "workers": workers, "batch_rows": 5000, "copy_threshold": 1000}
			j, err := runBars(t, params, bars, 700, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, syms := testSymbols(40)
			compareBars(t, readBars(t, conn, schema+".bars_ohlcv"), expectBars(bars, syms))
			st := storetest.Stats(t, j)
			if st.RowsWritten.Load() != int64(len(bars)) || st.RowsChanged.Load() < 25000 {
				t.Fatalf("stats: written %d changed %d", st.RowsWritten.Load(), st.RowsChanged.Load())
			}
			// The same job again ends in the same table. (The first
			// emission of a corrected bar is rewritten and then corrected
			// again, so some rows change on the way.)
			if _, err = runBars(t, params, bars, 700, nil); err != nil {
				t.Fatal(err)
			}
			compareBars(t, readBars(t, conn, schema+".bars_ohlcv"), expectBars(bars, syms))
			// Writing what is already stored changes no row.
			final := make([]md.Bar, 0, 25000)
			fixed := map[[2]int64]md.Bar{}
			for _, b := range bars[25000:] {
				fixed[[2]int64{int64(b.Sym), b.Start}] = b
			}
			for _, b := range bars[:25000] {
				if u, ok := fixed[[2]int64{int64(b.Sym), b.Start}]; ok {
					b = u
				}
				final = append(final, b)
			}
			j, err = runBars(t, params, final, 700, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := storetest.Stats(t, j).RowsChanged.Load(); n != 0 {
				t.Fatalf("re-writing the stored bars changed %d rows, want 0", n)
			}
		})
	}
}

func TestRejectedRowsGoToDeadLetterFile(t *testing.T) {
	conn := connectTest(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		threshold int
		direct    bool
	}{{"direct_copy", 1000, true}, {"copy_upsert", 1000, false}, {"array_upsert", 100000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			schema := newSchema(t, conn)
			w := newWriter(Options{Schema: schema})
			if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, w.targets[0].createSQL); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "ALTER TABLE "+w.targets[0].name+" ADD CONSTRAINT volume_nonneg CHECK (volume >= 0)"); err != nil {
				t.Fatal(err)
			}
			bars := genBars(3000, 10)
			bars[1234].Volume = -5
			bars[2999].Volume = -1
			dl := filepath.Join(t.TempDir(), "dl", "bars.jsonl")
			j, err := runBars(t, map[string]any{"schema": schema, "copy_threshold": tc.threshold, "dead_letter_path": dl,
				"create_tables": false, "direct_copy": tc.direct}, bars, 1500, nil)
			if err != nil {
				t.Fatalf("job failed: %v", err)
			}
			_, syms := testSymbols(10)
			good := append(append([]md.Bar{}, bars[:1234]...), bars[1235:2999]...)
			compareBars(t, readBars(t, conn, w.targets[0].name), expectBars(good, syms))

			recs := storetest.ReadDeadLetters(t, dl)
			if len(recs) != 2 {
				t.Fatalf("%d dead-letter records, want 2", len(recs))
			}
			wantErr := `upsert 1 bars into ` + w.targets[0].name + `: new row for relation "bars_ohlcv" violates check constraint "volume_nonneg" (SQLSTATE 23514, constraint volume_nonneg): Failing row contains (test, `
			seen := map[string]bool{}
			for _, r := range recs {
				if !strings.HasPrefix(r.Error, wantErr) || r.Class != "data" || r.Kind != "bar" || r.Node != "store" {
					t.Fatalf("dead-letter record: %+v\nwant error prefix %s", r, wantErr)
				}
				seen[fmt.Sprintf("%s %s %v", r.Symbol, r.Start, float64(*r.Volume))] = true
			}
			for _, i := range []int{1234, 2999} {
				k := fmt.Sprintf("%s %s %v", syms[bars[i].Sym].Symbol, md.FormatTime(bars[i].Start), bars[i].Volume)
				if !seen[k] {
					t.Fatalf("bar %d (%s) not in the dead-letter file: %v", i, k, seen)
				}
			}
			var ns engine.NodeStatus
			for _, n := range j.Status().Nodes {
				if n.ID == "store" {
					ns = n
				}
			}
			if ns.Drops["dead_letter"] != 2 || ns.Errors["rejected"] != 2 {
				t.Fatalf("status drops %v errors %v, want 2 dead_letter and 2 rejected", ns.Drops, ns.Errors)
			}
			wantLast := "1 bar row(s) rejected by the store, written to " + dl + ": upsert 1 bars into "
			if !strings.HasPrefix(ns.LastError, wantLast) || !strings.Contains(ns.LastError, "volume_nonneg") {
				t.Fatalf("status last error %q, want prefix %q", ns.LastError, wantLast)
			}
		})
	}
}

// A table changed under a running job (a column dropped) is a permanent
// error: the job fails with the server's message, the DSN redacted.
func TestSchemaBrokenMidJobFailsJob(t *testing.T) {
	conn := connectTest(t)
	schema := newSchema(t, conn)
	dropped := false
	after := func(ctx context.Context, emitted int) error {
		if !dropped {
			dropped = true
			if _, err := conn.Exec(ctx, "ALTER TABLE "+schema+".bars_ohlcv DROP COLUMN vwap"); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := runBars(t, map[string]any{"schema": schema, "dsn": testDSN()}, genBars(5000, 10), 1000, after)
	// The server names the relation the statement used: the target on the
	// batched-upsert path, the per-connection staging table on the COPY path
	// (created like the target, so it lacks the column too).
	target := " bars into " + `"` + schema + `"."bars_ohlcv": `
	wantTarget := `column "vwap" of relation "bars_ohlcv" does not exist (SQLSTATE 42703)`
	wantStage := `copy: column "vwap" of relation "_mdp_stage_bars" does not exist (SQLSTATE 42703)`
	if err == nil || !strings.HasPrefix(err.Error(), `node "store": `) ||
		!(strings.Contains(err.Error(), target+wantTarget) || strings.Contains(err.Error(), target+wantStage)) {
		t.Fatalf("job error %v, want one naming %s", err, wantTarget)
	}
	if strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("job error shows the DSN: %v", err)
	}
}

// TestPostgresOutageMidJob takes PostgreSQL away from a writing job for a
// few seconds and gives it back: every connection of the job goes through
// a proxy (internal/tcpproxy) that cuts the open ones and refuses new ones
// for 3 s. The job must retry, complete, and leave every bar in the table
// exactly once. (It used to stop the shared server itself with
// pg_ctlcluster, which also cut the sessions of other packages' tests
// running at the same time.)
func TestPostgresOutageMidJob(t *testing.T) {
	conn := connectTest(t)
	u, err := url.Parse(testDSN())
	if err != nil || u.Host == "" {
		t.Fatalf("MDP_TEST_PG_DSN %s is not a URL with a host", redactDSN(testDSN()))
	}
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	schema := newSchema(t, conn)

	bars := genBars(40000, 50)
	const stopAt = 12000
	stopped := false
	restarted := make(chan struct{})
	after := func(ctx context.Context, emitted int) error {
		if stopped || emitted < stopAt {
			return nil
		}
		stopped = true
		// Let some rows commit first, so the outage hits a job that is
		// really writing.
		// (This runs on the source's goroutine: errors are returned, not
		// t.Fatal'ed.)
		deadline := time.Now().Add(time.Minute)
		for {
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".bars_ohlcv").Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no rows committed before the planned outage")
			}
			time.Sleep(20 * time.Millisecond)
		}
		proxy.Pause()
		t.Logf("PostgreSQL cut off after %d bars emitted", emitted)
		go func() {
			time.Sleep(3 * time.Second)
			proxy.Resume()
			close(restarted)
		}()
		// The rest of the bars are emitted while the server is away.
		return nil
	}
	params := map[string]any{"dsn": u.String(), "schema": schema, "workers": 2, "batch_rows": 2000, "copy_threshold": 500,
		"retry_max_attempts": 1000, "retry_backoff": "50ms", "retry_backoff_max": "500ms",
		"breaker_failures": 5, "breaker_cooldown": "300ms", "queue_size": 100000}
	j, err := runBars(t, params, bars, 500, after)
	if !stopped {
		t.Fatal("the server was never cut off")
	}
	<-restarted
	if err != nil {
		t.Fatalf("job failed across the outage: %v", err)
	}
	st := storetest.Stats(t, j)
	if st.Retries.Load() == 0 || st.BatchesFailed.Load() == 0 {
		t.Fatalf("no write failed during the outage (retries %d): the test did not exercise an outage", st.Retries.Load())
	}
	if n := st.RowsDeadLettered.Load(); n != 0 {
		t.Fatalf("%d rows dead-lettered", n)
	}
	t.Logf("retries %d, failed attempts %d, breaker opened %d times", st.Retries.Load(), st.BatchesFailed.Load(), st.BreakerOpens.Load())
	check := connectTest(t)
	_, syms := testSymbols(50)
	compareBars(t, readBars(t, check, schema+".bars_ohlcv"), expectBars(bars, syms))
}

// The kill -9 helper: a child process (this test binary, re-executed) runs
// one finite job; the parent kills it mid-way.
const killHelperEnv = "MDP_PG_KILL_HELPER"

func TestKillHelperProcess(t *testing.T) {
	spec := os.Getenv(killHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestKill9MidJobThenRerun")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want schema,table,pace_ms", killHelperEnv, spec)
	}
	schema, table := parts[0], parts[1]
	pace, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	bars := killJobBars()
	after := func(ctx context.Context, emitted int) error {
		if pace > 0 {
			time.Sleep(time.Duration(pace) * time.Millisecond)
		}
		return nil
	}
	if _, err := runBars(t, map[string]any{"schema": schema, "table": table, "workers": 2, "batch_rows": 3000,
		"copy_threshold": 1000}, bars, 1000, after); err != nil {
		t.Fatal(err)
	}
}

// killJobBars is the kill test's input: bars with corrections re-emitted
// later (Update=true), so the final state depends on last-wins ordering.
func killJobBars() []md.Bar {
	base := genBars(60000, 30)
	bars := make([]md.Bar, 0, len(base)+3000)
	for i := range base {
		bars = append(bars, base[i])
		// Corrections of every 17th bar arrive 5000 bars later,
		// interleaved with newer data.
		if j := i - 5000; j >= 0 && j%17 == 0 && j/17 < 3000 {
			u := base[j]
			u.High += 2
			u.Close++
			u.Update = true
			bars = append(bars, u)
		}
	}
	return bars
}

// runHelper starts the helper process; its output is collected in out.
func runHelper(t *testing.T, schema, table string, paceMs int, out *bytes.Buffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", killHelperEnv, schema, table, paceMs))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestKill9MidJobThenRerun kills the process running a finite job with
// SIGKILL while it is writing, runs the same job again, and checks the
// table equals the one a single clean run produces.
func TestKill9MidJobThenRerun(t *testing.T) {
	if os.Getenv(killHelperEnv) != "" {
		t.Skip("inside the helper")
	}
	conn := connectTest(t)
	ctx := context.Background()
	schema := newSchema(t, conn)
	total := int64(len(expectBars(killJobBars(), func() []md.Instrument { _, s := testSymbols(30); return s }())))

	// Run 1, killed with SIGKILL once part of the table is written.
	var out bytes.Buffer
	cmd := runHelper(t, schema, "killed", 40, &out)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	var n int64
	for {
		var exists bool
		_ = conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".killed").Scan(&exists)
		if exists {
			n = count(t, conn, schema+".killed")
			if n >= total/4 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("helper finished before it could be killed (%d rows): %v\n%s", n, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("helper wrote only %d rows in 2 minutes\n%s", n, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if ee, ok := err.(*exec.ExitError); !ok || ee.ProcessState.String() != "signal: killed" {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
	partial := count(t, conn, schema+".killed")
	if partial >= total {
		t.Fatalf("the killed run had already written all %d rows", partial)
	}
	t.Logf("killed after %d of %d rows", partial, total)

	// Run 2: the same job again, to completion. Run 3: one clean run.
	for _, table := range []string{"killed", "clean"} {
		var out bytes.Buffer
		if err := runHelper(t, schema, table, 0, &out).Wait(); err != nil {
			t.Fatalf("run into %s: %v\n%s", table, err, out.String())
		}
	}
	var diff int64
	q := fmt.Sprintf(`SELECT count(*) FROM ((SELECT * FROM %[1]s.killed EXCEPT ALL SELECT * FROM %[1]s.clean)
		UNION ALL (SELECT * FROM %[1]s.clean EXCEPT ALL SELECT * FROM %[1]s.killed)) d`, schema)
	if err := conn.QueryRow(ctx, q).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("killed-and-rerun table differs from a clean run in %d rows", diff)
	}
	if got := count(t, conn, schema+".clean"); got != total {
		t.Fatalf("clean run holds %d rows, want %d", got, total)
	}
	_, syms := testSymbols(30)
	compareBars(t, readBars(t, conn, schema+".killed"), expectBars(killJobBars(), syms))
}

// TestRefusedAtStartIsRetried: a job started a moment before its database
// does not fail. The DSN points at a loopback port that refuses connections
// for the first second; then a TCP proxy to the test server listens there.
// (The shared server itself is never stopped.)
func TestRefusedAtStartIsRetried(t *testing.T) {
	conn := connectTest(t)
	schema := newSchema(t, conn)
	target, err := url.Parse(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the proxy starts
	proxyUp := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("proxy: %v", err)
			close(proxyUp)
			return
		}
		close(proxyUp)
		t.Cleanup(func() { l.Close() })
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target.Host)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	dsn := *target
	dsn.Host = addr
	bars := genBars(100, 4)
	start := time.Now()
	j, err := runBars(t, map[string]any{"dsn": dsn.String(), "schema": schema, "retry_max_attempts": 10,
		"retry_backoff": "200ms", "retry_backoff_max": "500ms"}, bars, 50, nil)
	<-proxyUp
	if err != nil {
		t.Fatalf("job failed after %v: %v", time.Since(start), err)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("job finished in %v, before the proxy started", time.Since(start))
	}
	_, syms := testSymbols(4)
	compareBars(t, readBars(t, conn, schema+".bars_ohlcv"), expectBars(bars, syms))
	_ = j
	// With one attempt the refusal fails the job at once.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := *target
	dead.Host = ln2.Addr().String()
	ln2.Close()
	if _, err := runBars(t, map[string]any{"dsn": dead.String(), "schema": schema, "retry_max_attempts": 1}, bars, 50, nil); err == nil ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

// A bars-only job creates the bars table and no trades or quotes table.
func TestBarsJobCreatesOnlyTheBarsTable(t *testing.T) {
	conn := connectTest(t)
	schema := newSchema(t, conn)
	if _, err := runBars(t, map[string]any{"schema": schema}, genBars(40, 4), 10, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(context.Background(), "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "bars_ohlcv" {
		t.Fatalf("tables %v, want [bars_ohlcv]", got)
	}
	if n := count(t, conn, pgx.Identifier{schema, "bars_ohlcv"}.Sanitize()); n != 40 {
		t.Fatalf("%d bars stored, want 40", n)
	}
}
