package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

func TestClassifySQLState(t *testing.T) {
	cases := map[string]errClass{
		"08000": classTransient, "08003": classTransient, "08006": classTransient, "08001": classTransient, "08004": classTransient,
		"40001": classTransient, "40P01": classTransient, "53300": classTransient,
		"57P01": classTransient, "57P02": classTransient, "57P03": classTransient, "55P03": classTransient, "57014": classTransient,
		"23514": classData, "23502": classData, "23505": classData, "22003": classData, "22P02": classData, "22007": classData,
		"42P01": classFatal, "42703": classFatal, "42804": classFatal, "42P10": classFatal, "28P01": classFatal,
		"42501": classFatal, "3D000": classFatal, "53100": classFatal, "XX000": classFatal,
	}
	w := newWriter(Options{})
	for code, want := range cases {
		err := fmt.Errorf("upsert: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"})
		if got := classify(err); got != want {
			t.Errorf("SQLSTATE %s: class %v, want %v", code, got, want)
		}
		wantSK := map[errClass]storekit.ErrorClass{classTransient: storekit.ClassTransient, classData: storekit.ClassData, classFatal: storekit.ClassFatal}[want]
		if got := w.Classify(w.wrap(err, "write")); got != wantSK {
			t.Errorf("SQLSTATE %s: storekit class %v, want %v", code, got, wantSK)
		}
	}
}

func TestClassifyNetworkErrors(t *testing.T) {
	cases := []struct {
		err  error
		want errClass
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, classTransient},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), classTransient},
		{fmt.Errorf("write: %w", syscall.EPIPE), classTransient},
		{io.ErrUnexpectedEOF, classTransient},
		{fmt.Errorf("x: %w", io.EOF), classTransient},
		{errors.New("conn closed"), classTransient},
		{context.DeadlineExceeded, classTransient},
		{fmt.Errorf("write: %w", context.Canceled), classCanceled},
		{errors.New("something else"), classFatal},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("%v: class %v, want %v", c.err, got, c.want)
		}
	}
}

// Real errors from the driver and the server, not constructed ones.
func TestClassifyRealErrors(t *testing.T) {
	conn := connectTest(t)
	ctx := context.Background()

	// Connection refused: nothing listens on port 1.
	c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if err == nil {
		_ = c.Close(ctx)
		t.Fatal("connect to port 1 succeeded")
	}
	if got := classify(err); got != classTransient {
		t.Fatalf("connection refused (%v): class %v, want transient", err, got)
	}

	schema := newSchema(t, conn)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+".t (x INT CHECK (x > 0) NOT NULL, PRIMARY KEY (x))"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want errClass
	}{
		{"INSERT INTO " + schema + ".t VALUES (-1)", classData},           // 23514 check
		{"INSERT INTO " + schema + ".t VALUES (NULL)", classData},         // 23502 not null
		{"INSERT INTO " + schema + ".t VALUES (99999999999)", classData},  // 22003 out of range
		{"INSERT INTO " + schema + ".missing VALUES (1)", classFatal},     // 42P01
		{"INSERT INTO " + schema + ".t (y) VALUES (1)", classFatal},       // 42703
		{"SELECT pg_terminate_backend(pg_backend_pid())", classTransient}, // 57P01 on our own session
	} {
		cc := connectTest(t)
		_, err := cc.Exec(ctx, c.sql)
		if err == nil {
			t.Fatalf("%s: no error", c.sql)
		}
		if got := classify(err); got != c.want {
			t.Errorf("%s: %v: class %v, want %v", c.sql, err, got, c.want)
		}
	}

	// Serialization failure: two repeatable-read transactions updating the
	// same row.
	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	a, b := connectTest(t), connectTest(t)
	txa, _ := a.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	txb, _ := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if _, err := txa.Exec(ctx, "SELECT * FROM "+schema+".t"); err != nil {
		t.Fatal(err)
	}
	if _, err := txb.Exec(ctx, "SELECT * FROM "+schema+".t"); err != nil {
		t.Fatal(err)
	}
	if _, err := txa.Exec(ctx, "UPDATE "+schema+".t SET x = 2 WHERE x = 1"); err != nil {
		t.Fatal(err)
	}
	if err := txa.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = txb.Exec(ctx, "UPDATE "+schema+".t SET x = 3 WHERE x = 1")
	_ = txb.Rollback(ctx)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40001" || classify(err) != classTransient {
		t.Fatalf("serialization failure: %v, class %v", err, classify(err))
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://mdp:s3cret@db.example:5432/market?sslmode=disable": "postgres://mdp:xxxxx@db.example:5432/market?sslmode=disable",
		"postgresql://mdp:p%40ss%2Fw@h/db":                             "postgresql://mdp:xxxxx@h/db",
		"postgres://mdp@h/db?password=s3cret&sslmode=require":          "postgres://mdp@h/db?password=xxxxx&sslmode=require",
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable":      "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"host=h user=mdp password=s3cret dbname=market":                "host=h user=mdp password=xxxxx dbname=market",
		"host=h password='se cret\\'x' user=mdp":                       "host=h password=xxxxx user=mdp",
		"host=h user=mdp PASSWORD = s3cret":                            "host=h user=mdp PASSWORD = xxxxx",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactorRemovesPasswordFromAnyText(t *testing.T) {
	r := newRedactor("postgres://mdp:p%40ss%2Fw0rd@h/db", "p@ss/w0rd")
	for _, s := range []string{
		"failed: p@ss/w0rd",
		"failed: p%40ss%2Fw0rd",
		"cannot parse postgres://mdp:p%40ss%2Fw0rd@h/db",
		"x password=p@ss/w0rd y",
	} {
		got := r.String(s)
		if strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") || strings.Contains(got, "w0rd") {
			t.Errorf("redact %q = %q: password left", s, got)
		}
	}
	err := r.Wrap(fmt.Errorf("dial: %w", &pgconn.PgError{Code: "08006", Message: "bad p@ss/w0rd"}))
	if strings.Contains(err.Error(), "w0rd") || classify(err) != classTransient {
		t.Fatalf("wrapped error %q, class %v", err, classify(err))
	}
}

// The password must not appear in any error a user can see, for errors the
// driver, the server and the sink produce.
func TestPasswordNeverInErrors(t *testing.T) {
	connectTest(t)
	const secret = "Zx9-topsecret-Q"
	ctx := context.Background()
	for _, dsn := range []string{
		"postgres://postgres:" + secret + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5",                     // refused
		"postgres://postgres:" + secret + "@127.0.0.1:notaport/test",                                                // unparsable
		"host=127.0.0.1 port=1 user=postgres password=" + secret + " dbname=test sslmode=disable connect_timeout=5", // keyword form
		"postgres://postgres:" + secret + "@127.0.0.1:5432/no_such_db_" + randSuffix() + "?sslmode=disable",         // server error
	} {
		w := newWriter(Options{DSN: dsn, CreateTables: true})
		err := w.Open(ctx, storekit.Env{Workers: 1})
		if err == nil {
			t.Fatalf("open %s succeeded", redactDSN(dsn))
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Fatalf("password in error: %v", err)
		}
		if !strings.HasPrefix(err.Error(), "connect to postgres 127.0.0.1:") && !strings.HasPrefix(err.Error(), "parse dsn: cannot parse `postgres://postgres:xxxxx@") {
			t.Errorf("error does not say where it was connecting: %v", err)
		}
	}
	// Through the component: the status error of a job whose store cannot
	// be reached.
	_, err := runBars(t, map[string]any{"dsn": "postgres://postgres:" + secret + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"},
		[]md.Bar{{Start: t0, End: t0 + int64(time.Second), Interval: int64(time.Second)}}, 1, nil)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("job error %v", err)
	}
}
