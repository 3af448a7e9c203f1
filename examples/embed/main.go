// Command embed runs an mdp job from inside another Go program: the job is
// defined inline, run to completion through the unified runtime, and its
// status printed as JSON. Ctrl-C stops it gracefully (the runtime drains
// the queues and flushes open bars before Run returns).
//
//	go run ./examples/embed
//
// This example lives inside the mdp module. A program of your own depends on
// mdp through a clone until the module is served by a proxy: in its go.mod,
//
//	require github.com/mdpio/mdp v0.0.0
//	replace github.com/mdpio/mdp => ../mdp
//
// or a workspace, go work init ./myprogram ../mdp.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/mdpio/mdp/components" // the built-in providers, operators and sinks
	"github.com/mdpio/mdp/runtime"
)

// job is a complete job file: 200,000 synthetic trades over two symbols, one
// every millisecond of event time, built into 1-second OHLCV bars.
const job = `
mode: dag
name: embedded-bars
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 200000, step: 1ms}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges:
    - [src, bars]
    - [bars, out]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the job, prints its status to stdout and returns the exit code.
func run(ctx context.Context, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	u, err := runtime.NewFromBytes("embedded.yaml", []byte(job), runtime.Options{Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, err) // every problem with the job, one per line
		return 2
	}
	runErr := u.Run(ctx)

	// Edge names hold "->": no HTML escaping, so they print as written.
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(u.Status()); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "job failed:", runErr)
		return 1
	}
	return 0
}
