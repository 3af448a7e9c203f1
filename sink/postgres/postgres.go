// Package postgres is the PostgreSQL / TimescaleDB store sink, registered as
// sink.postgres with the aliases sink.timescale and sink.store. It writes
// bars to the established bars table (provider, symbol, interval, ts, open,
// high, low, close, volume, vwap, trades, bar_type, source, partial; primary
// key provider, symbol, bar_type, source, interval, ts), trades and quotes to
// their own tables and derived records to a table named by their schema,
// chosen by record kind, with package rowschema's columns. The tables of
// the kinds the graph sends are created on start when missing (others at
// the first write of their kind) and become hypertables on ts where the
// timescaledb extension is available.
//
// Every write is an idempotent, diff-aware upsert on the natural key, so
// retries and re-runs leave the table exactly as one clean run would, and
// rows that are already stored with the same values are not rewritten (no
// new row versions, no WAL). Large batches are streamed with binary COPY into
// a per-connection temp table and merged with one INSERT … ON CONFLICT DO
// UPDATE … WHERE … IS DISTINCT FROM; small ones are sent as one array per
// column to a single INSERT … SELECT FROM unnest(…). Within a batch the last
// row for a key wins (a bar re-emitted with Update=true replaces the first);
// duplicates are resolved in Go before sending, so the merge needs no sort.
//
// New data is the common case of a streaming job, and for it the merge is
// pure overhead: with direct_copy (off by default) a large batch is first
// copied straight into the table, one atomic statement that fails with a
// unique violation, writing nothing, as soon as one of its keys is stored.
// Such a batch then takes the merge, and the direct attempt backs off for
// 1, 2, 4 … 64 batches, so a re-run pays for a failed attempt rarely.
//
// The queueing, per-symbol workers, retries, circuit breaker, dead-letter
// file and feedback reporting come from package storekit; this package
// supplies the Writer: one pgx connection per worker, errors classified by
// SQLSTATE (connection loss, serialization failure, deadlock, too many
// connections and server shutdown are retried; rejected values go to the
// dead-letter file; a wrong schema fails the job), and a DSN whose password
// never appears in logs, errors or status.
package postgres

import (
	"os"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

func init() {
	component.Register(component.Spec{
		Type:    "sink.postgres",
		Aliases: []string{"sink.timescale", "sink.store"},
		Kind:    engine.KindSink,
		Summary: "Upsert bars, trades, quotes and derived records into PostgreSQL / TimescaleDB (COPY + diff-aware upsert).",
		Description: "Writes bars to `table` (default bars_ohlcv: provider, symbol, interval, ts, open, high, low, " +
			"close, volume, vwap, trades, bar_type, source, partial; primary key provider, symbol, bar_type, source, interval, ts), " +
			"trades to `trades_table`, quotes to `quotes_table` and derived records to a table named by their schema " +
			"(provider, symbol, ts and the declared fields; primary key provider, symbol, ts), creating only the tables " +
			"of the kinds the job sends it, upserting on the natural key so retries and re-runs are idempotent. Batches " +
			"of at least copy_threshold rows are streamed with binary COPY into a temp table and merged with one " +
			"upsert (or, with direct_copy, copied straight into the table when none of their keys is stored yet); " +
			"smaller ones use one array upsert. Rows already stored with the same values are not rewritten. " +
			"Connection loss, server restarts, serialization failures, deadlocks and too many connections are " +
			"retried; values the database rejects go to the dead-letter file; a table with the wrong schema fails " +
			"the job. With the timescaledb extension available, new tables become hypertables on ts.",
		Accepts: md.KindAny,
		Fields: append([]component.Field{
			{Name: "dsn", Type: component.String, Default: "${DATABASE_URL}", Secret: true,
				Description: "PostgreSQL connection string (URL or keyword/value). ${VAR} and ${VAR:-default} are expanded from the environment. The password is never shown in logs, errors or status.",
				Example:     "postgres://mdp:secret@127.0.0.1:5432/market?sslmode=disable"},
			{Name: "schema", Type: component.String, Default: "public",
				Description: "Schema holding the tables; created when create_tables is true."},
			{Name: "table", Type: component.String, Default: defaultBarsTable,
				Description: "Table for bars."},
			{Name: "trades_table", Type: component.String, Default: defaultTradesTable,
				Description: "Table for trades (provider, symbol, ts, price, size, side, trade_id, seq; key provider, symbol, ts, trade_id)."},
			{Name: "quotes_table", Type: component.String, Default: defaultQuotesTable,
				Description: "Table for quotes (provider, symbol, ts, bid, bid_size, ask, ask_size, seq; key provider, symbol, ts, seq)."},
			{Name: "create_tables", Type: component.Bool, Default: true,
				Description: "Create the schema and tables when missing (hypertables on ts where TimescaleDB is available). Existing tables are checked either way."},
			{Name: "copy_threshold", Type: component.Int, Default: defaultCopyThreshold, Min: component.Bound(1), Max: component.Bound(1 << 24),
				Description: "Batches of at least this many rows go through COPY into a temp table and one upsert; smaller ones through one array upsert."},
			{Name: "direct_copy", Type: component.Bool, Default: false,
				Description: "Opt-in: let a COPY batch first try COPY straight into the table, which succeeds when none of its keys is stored yet (new data, about twice as fast). If some key exists the attempt is rolled back (the server logs a unique violation) and the batch takes the temp table and upsert; after such a conflict the direct attempt is skipped for up to 64 batches."},
		}, storekit.Fields(storekit.Defaults{Workers: 2, BatchRows: 10000, DeadLetter: "postgres.<table>.dead_letter.jsonl"})...),
		Validate: func(p *component.Params) error {
			for _, k := range []string{"table", "trades_table", "quotes_table"} {
				if p.String(k) == "" {
					return p.Errorf(k, "must not be empty")
				}
			}
			return storekit.Validate(p)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			cfg, err := storekit.ConfigFrom(p)
			if err != nil {
				return nil, err
			}
			dsn := expandEnv(p.String("dsn"), os.Getenv)
			if dsn == "" {
				return nil, p.Errorf("dsn", "%v", errEmptyDSN)
			}
			cfg.DefaultDeadLetterPath = "postgres." + p.String("table") + ".dead_letter.jsonl"
			w := newWriter(Options{
				DSN: dsn, Schema: p.String("schema"),
				BarsTable: p.String("table"), TradesTable: p.String("trades_table"), QuotesTable: p.String("quotes_table"),
				CreateTables: p.Bool("create_tables"), CopyThreshold: int(p.Int("copy_threshold")),
				DirectCopy: p.Bool("direct_copy"),
			})
			return storekit.New(w, cfg), nil
		},
	})
}
