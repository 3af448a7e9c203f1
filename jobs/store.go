package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mdpio/mdp/sink/sqlite"
)

// store is the registry of jobs: one row per job in a SQLite file.
type store struct {
	db *sql.DB
}

// schema is the registry's one table. Times are Unix nanoseconds, 0 for
// never.
const schema = `CREATE TABLE IF NOT EXISTS jobs (
	name       TEXT PRIMARY KEY,
	filename   TEXT NOT NULL,
	definition BLOB NOT NULL,
	desired    TEXT NOT NULL,
	observed   TEXT NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	started_at INTEGER NOT NULL DEFAULT 0,
	stopped_at INTEGER NOT NULL DEFAULT 0,
	restarts   INTEGER NOT NULL DEFAULT 0
)`

// row is one job as the registry keeps it.
type row struct {
	Name       string
	Filename   string // the name the job file was submitted under (error positions, default name)
	Definition []byte // the job file as submitted
	Desired    string
	Observed   string
	LastError  string // redacted
	Created    time.Time
	Started    time.Time
	Stopped    time.Time
	Restarts   int
}

func openStore(ctx context.Context, path string) (*store, error) {
	db, err := sql.Open("sqlite", sqlite.DSN(path, "full"))
	if err != nil {
		return nil, fmt.Errorf("open job registry %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open job registry %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *store) save(r row) error {
	_, err := s.db.Exec(`INSERT INTO jobs (name, filename, definition, desired, observed, last_error, created_at, started_at, stopped_at, restarts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET filename = excluded.filename, definition = excluded.definition,
			desired = excluded.desired, observed = excluded.observed, last_error = excluded.last_error,
			created_at = excluded.created_at, started_at = excluded.started_at, stopped_at = excluded.stopped_at,
			restarts = excluded.restarts`,
		r.Name, r.Filename, r.Definition, r.Desired, r.Observed, r.LastError,
		nanos(r.Created), nanos(r.Started), nanos(r.Stopped), r.Restarts)
	if err != nil {
		return fmt.Errorf("job registry: save %q: %w", r.Name, err)
	}
	return nil
}

func (s *store) delete(name string) error {
	if _, err := s.db.Exec(`DELETE FROM jobs WHERE name = ?`, name); err != nil {
		return fmt.Errorf("job registry: delete %q: %w", name, err)
	}
	return nil
}

func (s *store) all(ctx context.Context) ([]row, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT name, filename, definition, desired, observed, last_error, created_at, started_at, stopped_at, restarts FROM jobs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("job registry: read: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var c, st, sp int64
		if err := rs.Scan(&r.Name, &r.Filename, &r.Definition, &r.Desired, &r.Observed, &r.LastError, &c, &st, &sp, &r.Restarts); err != nil {
			return nil, fmt.Errorf("job registry: read: %w", err)
		}
		r.Created, r.Started, r.Stopped = fromNanos(c), fromNanos(st), fromNanos(sp)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("job registry: read: %w", err)
	}
	return out, nil
}

func (s *store) close() error { return s.db.Close() }
