package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/server"
)

func (a *app) runCommand() *cobra.Command {
	var f jobFlags
	cmd := &cobra.Command{
		Use:   "run [[--config] FILE]",
		Short: "Run a job until its sources end or it is stopped",
		Long: `Run loads the job file, builds its graph and runs it. Without a file the job
comes from the environment: MDP_UNIFIED_DAG_JSON or MDP_UNIFIED_CLASSIC_JSON.

A finite job (a replay, a bounded synthetic source) ends by itself. On the first
SIGINT or SIGTERM the sources stop, every queue drains, open bars flush and the
sinks close; then mdp exits 0. A second signal, or a drain longer than the job's
shutdown_timeout, aborts the job: exit 130.

With a checkpoint section the job checkpoints its sources' positions and its
operators' state every interval. An unbounded job (a live feed, a generator
without a count) then suspends on the first signal instead of draining: it
takes a final checkpoint and exits 0 without writing its open bars, which
--resume continues. --drain keeps the draining behaviour. --resume restores
the latest complete checkpoint (a torn one is skipped with a warning; with
none the job starts from the beginning), --from a chosen one (an id in the
store or a file). A checkpoint of another graph (node ids and types) is
refused unless --allow-graph-change, which restores state by node id.

A job with a scaleout section runs its source as ingest and the rest as one
worker over the job's NATS stream, which a run starts empty. With a checkpoint
section the worker checkpoints each partition into the stream's KV bucket every
interval (checkpoint.store is not used), and --resume continues a run that
died (kill -9, a crash): the stream is kept, the worker restores its
partitions' checkpoints and the ingest reads its input again from the start,
the worker dropping the records it had read; with no checkpoint and an empty
stream it starts from the beginning. Stopped by a signal, a run with a
checkpoint section suspends (a final checkpoint, no end markers; --resume
continues it), one without drains to the ingest's end markers. --from,
--allow-graph-change and --drain do not apply to a scaleout job.

Exit codes: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted.`,
		Example: `  mdp run --config configs/dag/bars.yaml
  mdp run job.yaml --mode classic --job replay-2024-01-02
  mdp run --config job.yaml --set metrics.enable=true --set metrics.listen=127.0.0.1:9108
  mdp run job.yaml --resume`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			return a.run(cmd.Context(), f)
		},
	}
	f.add(cmd, true)
	cmd.Flags().BoolVar(&f.progress, "progress", false, "draw replay progress bars on stderr even when it is not a terminal")
	cmd.Flags().BoolVar(&f.noProgress, "no-progress", false, "never draw replay progress bars")
	cmd.MarkFlagsMutuallyExclusive("progress", "no-progress")
	cmd.Flags().BoolVar(&f.resume, "resume", false, "restore the latest complete checkpoint of the job's checkpoint store")
	cmd.Flags().StringVar(&f.from, "from", "", "restore this checkpoint: an id in the job's checkpoint store or a checkpoint file")
	cmd.Flags().BoolVar(&f.allowGraphChange, "allow-graph-change", false, "restore a checkpoint taken from another graph, by node id")
	cmd.Flags().BoolVar(&f.drain, "drain", false, "on a stop, drain and flush open bars even when the job would suspend")
	cmd.MarkFlagsMutuallyExclusive("resume", "from")
	// A job server running the job as its child process (mdp serve
	// --isolation process) reads the child's listener address and final
	// figures from this descriptor.
	cmd.Flags().IntVar(&f.reportFD, "report-fd", 0, "write the metrics listener's address and, at the end, the final status and metrics as JSON lines to this file descriptor")
	_ = cmd.Flags().MarkHidden("report-fd")
	return cmd
}

func (a *app) run(ctx context.Context, f jobFlags) error {
	log := a.logger
	doc, err := loadJob(f.config, config.LoadOptions{Mode: f.mode, Job: f.job, Sets: f.sets, Registry: a.reg})
	if err != nil {
		a.printConfigErrors(err)
		return exit(ExitUsage, nil)
	}
	if doc.Scaleout != nil {
		return a.runScaleout(ctx, doc, f)
	}
	// With metrics enabled, the metrics listener also serves the read-only
	// job API (list, status, status WebSocket) for this one job.
	var api *server.Handler
	defer func() {
		if api != nil {
			api.Close()
		}
	}()
	u, err := runtime.New(doc, runtime.Options{Logger: log, Progress: a.progressOptions(f, doc), Stdout: a.stdout,
		Resume: f.resume, From: f.from, AllowGraphChange: f.allowGraphChange, Drain: f.drain,
		API: func(u *runtime.Unified) http.Handler {
			api = server.New(server.Options{Jobs: jobs.NewSingle(u), Logger: log})
			// The dashboard's taps record the job's bars from its start.
			api.Run(u.Name(), u)
			return api
		}})
	if err != nil {
		if errors.As(err, new(*engine.PanicError)) {
			// A component's constructor panicked: a bug in the node, not a
			// problem with the job file.
			log.Error("job failed to build", "err", err)
			return exit(ExitFailure, nil)
		}
		a.printConfigErrors(err)
		return exit(ExitUsage, nil)
	}
	// Signals: the first stops gracefully, the second aborts. Registered
	// before Start so a signal during start-up is not lost, and before the
	// address is reported, so a parent that signals once it has the
	// address never finds the default action (exit) still in place.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if f.reportFD > 0 {
		rep := &reporter{w: os.NewFile(uintptr(f.reportFD), "report")}
		go rep.addr(u)
		defer rep.final(u, log)
	}
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	signalled := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case sig := <-sigs:
				n++
				if n == 1 {
					close(signalled)
					log.Info("signal received: stopping gracefully (send it again to abort)", "signal", sig.String())
					u.Stop()
					cancelStart() // interrupts a start that is still opening stores
					continue
				}
				log.Warn("second signal: aborting", "signal", sig.String())
				u.Abort()
				return
			case <-u.Done():
				return
			}
		}
	}()

	// The runtime logs the end of the job once: a start failure with its
	// error, any other end with the job's summary, which a terminal also
	// gets as text.
	if err := u.Start(startCtx); err != nil {
		select {
		case <-signalled:
			return exit(ExitAborted, nil)
		default:
		}
		return exit(ExitFailure, nil)
	}
	err = u.Wait()
	if isTerminal(a.stderr) {
		u.Summary().WriteText(a.stderr)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrAborted):
		return exit(ExitAborted, nil)
	}
	return exit(ExitFailure, nil)
}

// progressOptions is the job's progress setting: the flags' override, and
// the terminal a bar may be drawn on. That is stderr when it is a terminal,
// unless stdout is a terminal too and the job writes records to it (the
// two would share one screen, and the bar would land inside the data).
func (a *app) progressOptions(f jobFlags, doc *config.Document) engine.ProgressOptions {
	var p engine.ProgressOptions
	switch {
	case f.progress:
		p.Mode = "always"
	case f.noProgress:
		p.Mode = "never"
	}
	if !isTerminal(a.stderr) {
		return p
	}
	if isTerminal(a.stdout) {
		for _, n := range doc.Nodes {
			if n.Type == "sink.stdout" {
				return p
			}
		}
	}
	p.Terminal = a.stderr
	return p
}

// reporter writes a child job's reports (jobs.ChildReport, one JSON line
// each) to the descriptor its job server gave it.
type reporter struct {
	mu sync.Mutex
	w  *os.File
}

func (r *reporter) write(rep jobs.ChildReport) error {
	data, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.w.Write(append(data, '\n'))
	return err
}

// addr reports the metrics listener once it listens (Start binds it
// before any node opens).
func (r *reporter) addr(u *runtime.Unified) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		if a := u.MetricsAddr(); a != "" {
			_ = r.write(jobs.ChildReport{Addr: a})
			return
		}
		select {
		case <-u.Done():
			return
		case <-t.C:
		}
	}
}

// final reports the job's status and metrics after it ended, then closes
// the descriptor.
func (r *reporter) final(u *runtime.Unified, log *slog.Logger) {
	st, _ := jobs.NewSingle(u).Status(u.Name(), true)
	r.finish(st, metrics.NewRegistry(metrics.NewCollector(u.Mode(), u)), log)
}

// finalRole is final for a scaleout role: its status (with the scale-out
// section) and the metrics of its registry (its lag series).
func (r *reporter) finalRole(role *runtime.Role, g prometheus.Gatherer, log *slog.Logger) {
	st, _ := jobs.NewRole(role).Status(role.Name(), true)
	r.finish(st, g, log)
}

// finish writes the final report, then closes the descriptor.
func (r *reporter) finish(st jobs.JobStatus, g prometheus.Gatherer, log *slog.Logger) {
	var text bytes.Buffer
	var err error
	var fams []*dto.MetricFamily
	if g != nil {
		fams, err = g.Gather()
	}
	if err == nil {
		enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if err = enc.Encode(f); err != nil {
				break
			}
		}
	}
	if err != nil {
		log.Error("final metrics for the job server", "err", err)
	}
	if err := r.write(jobs.ChildReport{Final: &st, Metrics: text.String()}); err != nil {
		log.Error("final report to the job server", "err", err)
	}
	r.mu.Lock()
	_ = r.w.Close()
	r.mu.Unlock()
}
