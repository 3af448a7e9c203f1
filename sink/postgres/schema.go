package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/md"
)

// schemaLockKey serialises DDL from concurrent mdp jobs (and workers) on one
// database: CREATE TABLE IF NOT EXISTS is not safe against a concurrent
// identical CREATE (it can fail on the pg_type unique index).
const schemaLockKey = 0x6d64705f73636800 // "mdp_sch\0"

// ensureTables creates the schema and tables (when create) and checks that
// every target has the columns, types and unique key the sink writes. A
// table that does not fit is a fatal, clearly worded error: retrying cannot
// fix it.
func ensureTables(ctx context.Context, conn *pgx.Conn, schema string, targets []*target, create bool, log *slog.Logger) error {
	if create {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin schema setup: %w", err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLockKey)); err != nil {
			return fmt.Errorf("lock schema setup: %w", err)
		}
		if schema != "" {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", schema, err)
			}
		}
		for _, t := range targets {
			if _, err := tx.Exec(ctx, t.createSQL); err != nil {
				return fmt.Errorf("create table %s: %w", t.name, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit schema setup: %w", err)
		}
		for _, t := range targets {
			if err := makeHypertable(ctx, conn, t, log); err != nil {
				return err
			}
		}
	}
	for _, t := range targets {
		if err := checkTable(ctx, conn, t, create); err != nil {
			if errors.Is(err, errMissingTable) {
				// Without create_tables a job that writes only bars
				// needs no trades or quotes table: a missing table is
				// an error at the first write of its kind.
				t.missing = err
				continue
			}
			return err
		}
	}
	return nil
}

// errMissingTable marks checkTable's error for a table that does not exist.
var errMissingTable = errors.New("table does not exist")

// makeHypertable turns t into a TimescaleDB hypertable on ts when the
// extension is installed in the database or available to install. Without
// TimescaleDB the table stays a plain table, which is correct, only slower
// for very large histories.
func makeHypertable(ctx context.Context, conn *pgx.Conn, t *target, log *slog.Logger) error {
	var available, installed bool
	err := conn.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')`).Scan(&available, &installed)
	if err != nil {
		return fmt.Errorf("look for timescaledb: %w", err)
	}
	if !available {
		return nil
	}
	if !installed {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
			// Typically: not in shared_preload_libraries, or no privilege.
			log.Warn("timescaledb is available but cannot be enabled; keeping a plain table",
				"table", t.name, "err", pgMessage(err))
			return nil
		}
	}
	if _, err := conn.Exec(ctx, "SELECT create_hypertable($1::regclass, 'ts', if_not_exists => TRUE, migrate_data => TRUE)", t.name); err != nil {
		return fmt.Errorf("make %s a hypertable on ts: %s", t.name, pgMessage(err))
	}
	return nil
}

// isHypertable reports whether t is a TimescaleDB hypertable.
func isHypertable(ctx context.Context, conn *pgx.Conn, t *target) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')`).Scan(&ok)
	if err != nil || !ok {
		return false, err
	}
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
		WHERE hypertable_schema = $1 AND hypertable_name = $2)`, t.ident[0], t.ident[1]).Scan(&ok)
	return ok, err
}

// checkTable verifies that t exists with every column the sink writes, of
// the right type, and a unique index on exactly the key columns (what ON
// CONFLICT needs).
func checkTable(ctx context.Context, conn *pgx.Conn, t *target, created bool) error {
	var oid uint32
	err := conn.QueryRow(ctx, "SELECT COALESCE(to_regclass($1)::oid, 0)", t.name).Scan(&oid)
	if err != nil {
		return fmt.Errorf("look up table %s: %w", t.name, err)
	}
	if oid == 0 {
		if created {
			return fmt.Errorf("table %s does not exist after creating it", t.name)
		}
		return &missingError{msg: fmt.Sprintf("table %s does not exist and create_tables is false: create it or set create_tables: true", t.name)}
	}
	rows, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return fmt.Errorf("read columns of %s: %w", t.name, err)
	}
	have := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("read columns of %s: %w", t.name, err)
		}
		have[name] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read columns of %s: %w", t.name, err)
	}
	var problems []string
	var add []column // Added columns the table lacks
	for _, c := range t.def.cols {
		typ, ok := have[c.name]
		switch {
		case !ok && c.added:
			add = append(add, c)
		case !ok:
			problems = append(problems, fmt.Sprintf("column %s is missing (want %s)", c.name, c.typ.sqlType()))
		case typ != c.typ.pgType():
			problems = append(problems, fmt.Sprintf("column %s is %s, want %s", c.name, typ, c.typ.sqlType()))
		}
	}
	for _, c := range add {
		if len(problems) > 0 {
			problems = append(problems, fmt.Sprintf("column %s is missing (want %s)", c.name, c.typ.sqlType()))
		}
	}
	if len(problems) > 0 {
		err := fmt.Errorf("table %s does not fit the %s schema: %s", t.name, kindWord(t.def.kind), strings.Join(problems, "; "))
		if _, ok := have["bar_type"]; !ok && t.def.kind == md.KindBar && len(have) > 0 {
			err = fmt.Errorf("%w (bars tables made before mdp keyed bars by bar_type and source need both in the primary key: rename the table, or set table to a new one)", err)
		}
		return err
	}
	// A unique index (or primary key) whose columns are exactly the key and
	// that has no predicate: the arbiter ON CONFLICT (key) needs.
	rows, err = conn.Query(ctx, `SELECT array_agg(a.attname::text) FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
		GROUP BY i.indexrelid`, oid)
	if err != nil {
		return fmt.Errorf("read indexes of %s: %w", t.name, err)
	}
	want := append([]string(nil), t.def.key...)
	sort.Strings(want)
	found := false
	for rows.Next() {
		var cols []string
		if err := rows.Scan(&cols); err != nil {
			rows.Close()
			return fmt.Errorf("read indexes of %s: %w", t.name, err)
		}
		sort.Strings(cols)
		found = found || strings.Join(cols, ",") == strings.Join(want, ",")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read indexes of %s: %w", t.name, err)
	}
	if !found {
		return fmt.Errorf("table %s has no primary key or unique index on (%s), which the upsert needs",
			t.name, strings.Join(t.def.key, ", "))
	}
	if len(add) > 0 {
		// Only a table that fits otherwise is changed.
		return addColumns(ctx, conn, t, add, created)
	}
	return nil
}

// addColumns migrates a table made by an earlier mdp: it adds the columns
// rowschema marks Added (a bar's partial flag), with the zero value as
// default so existing rows read as they were written. Without
// create_tables mdp changes no table and says what to run.
func addColumns(ctx context.Context, conn *pgx.Conn, t *target, add []column, create bool) error {
	var stmts []string
	for _, c := range add {
		zero := "0"
		if c.typ == colText {
			zero = "''"
		}
		stmts = append(stmts, "ALTER TABLE "+t.name+" ADD COLUMN IF NOT EXISTS "+pgx.Identifier{c.name}.Sanitize()+" "+c.typ.sqlType()+" NOT NULL DEFAULT "+zero)
	}
	if !create {
		return fmt.Errorf("table %s lacks column(s) this mdp writes and create_tables is false: run %s", t.name, strings.Join(stmts, "; "))
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin adding columns to %s: %w", t.name, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLockKey)); err != nil {
		return fmt.Errorf("lock schema setup: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("add a column to %s: %s", t.name, pgMessage(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit adding columns to %s: %w", t.name, err)
	}
	return nil
}

type missingError struct{ msg string }

func (e *missingError) Error() string        { return e.msg }
func (e *missingError) Is(target error) bool { return target == errMissingTable }
