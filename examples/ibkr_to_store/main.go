// Command ibkr_to_store is configs/dag/ibkr_to_store.yaml written from Go:
// AAPL and MSFT tick-by-tick trades and quotes from TWS / IB Gateway -> 1m
// trade bars and 1m mid-quote bars -> SQLite, or PostgreSQL when
// DATABASE_URL is set. It runs until Ctrl-C, then flushes the open bars and
// prints the job's status.
//
//	go run ./examples/ibkr_to_store -port 4002            # IB Gateway paper
//	DATABASE_URL=postgres://… go run ./examples/ibkr_to_store
//
// It needs a running TWS or IB Gateway with the API enabled (README,
// "Interactive Brokers"); its test runs it against the fake TWS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	_ "github.com/mdpio/mdp/components" // the built-in providers, operators and sinks
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// options are the command's flags.
type options struct {
	host     string
	port     int
	clientID int
	dataDir  string
	backfill string // IB duration of the 1m trade-bar backfill; "" for none
	dbURL    string // PostgreSQL DSN; "" for SQLite
	// started, when set, is called with the job once it runs (tests
	// watch its status through it).
	started func(*runtime.Unified)
}

func main() {
	var o options
	flag.StringVar(&o.host, "host", "127.0.0.1", "TWS / IB Gateway host")
	flag.IntVar(&o.port, "port", 4002, "API port: 4002 Gateway paper, 4001 Gateway live, 7497 TWS paper, 7496 TWS live")
	flag.IntVar(&o.clientID, "client-id", 17, "API client id (unique per TWS)")
	flag.StringVar(&o.dataDir, "data-dir", "data", "directory of the SQLite file")
	flag.StringVar(&o.backfill, "backfill", "1 D", `history of 1m trade bars to load before streaming (IB duration, "" for none)`)
	flag.Parse()
	o.dbURL = os.Getenv("DATABASE_URL")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// job builds the job document: the provider, two bar builders and one
// store per bar kind (trade bars and mid bars are both 1m bars of the same
// symbols, and a store keys a bar by provider, symbol, interval and start).
func job(o options) map[string]any {
	ib := map[string]any{
		"host": o.host, "port": o.port, "client_id": o.clientID,
		"contracts": []any{
			map[string]any{"symbol": "AAPL", "sec_type": "STK", "exchange": "SMART", "primary_exchange": "NASDAQ", "currency": "USD"},
			map[string]any{"symbol": "MSFT", "sec_type": "STK", "exchange": "SMART", "primary_exchange": "NASDAQ", "currency": "USD"},
		},
		"trades": "AllLast", "quotes": true, "on_unavailable": "fail",
		"max_out_of_orderness": "2s", "idle_timeout": "5s",
	}
	edges := []any{[]any{"ib", "trade_bars"}, []any{"ib.quotes", "mid_bars"}, []any{"trade_bars", "store"}, []any{"mid_bars", "mid_store"}}
	if o.backfill != "" {
		ib["backfill"] = map[string]any{"duration": o.backfill, "bar_size": "1 min", "what": "TRADES"}
		edges = append(edges, []any{"ib.bars", "store"})
	}
	store := func(table string) map[string]any {
		if o.dbURL != "" {
			return map[string]any{"type": "sink.postgres", "params": map[string]any{"dsn": o.dbURL, "table": table, "create_tables": true}}
		}
		return map[string]any{"type": "sink.sqlite", "params": map[string]any{"path": filepath.Join(o.dataDir, "ibkr.db"), "table": table}}
	}
	node := func(id string, m map[string]any) map[string]any { m["id"] = id; return m }
	return map[string]any{
		"mode": "dag", "name": "ibkr-to-store",
		"dag": map[string]any{
			"nodes": []any{
				map[string]any{"id": "ib", "type": "provider.ibkr", "params": ib},
				map[string]any{"id": "trade_bars", "type": "operator.bars", "params": map[string]any{"interval": "1m"}},
				map[string]any{"id": "mid_bars", "type": "operator.bars", "params": map[string]any{"interval": "1m", "price": "mid"}},
				node("store", store("bars_ohlcv")),
				node("mid_store", store("bars_mid")),
			},
			"edges": edges,
		},
	}
}

// run runs the job until ctx ends, prints its status and returns the exit
// code: 0 after a clean stop, 1 when the job failed, 2 for a bad job.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	doc, err := json.Marshal(job(o))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	u, err := runtime.NewFromBytes("ibkr_to_store.json", doc, runtime.Options{Logger: logger, LoadOptions: config.LoadOptions{}})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := u.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "job failed:", err)
		return 1
	}
	if o.started != nil {
		o.started(u)
	}
	runErr := u.Run(ctx)
	out, err := json.MarshalIndent(u.Status(), "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	if runErr != nil {
		fmt.Fprintln(stderr, "job failed:", runErr)
		return 1
	}
	return 0
}
