package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/scaleout"
	"github.com/mdpio/mdp/server"
)

// runScaleout is mdp run of a job with a scaleout section: its source as
// ingest and the rest as one worker, over the job's NATS stream; with
// --resume it continues a run that died from the partitions' checkpoints.
func (a *app) runScaleout(ctx context.Context, doc *config.Document, f jobFlags) error {
	if f.from != "" || f.allowGraphChange || f.drain {
		a.logger.Error("--from, --allow-graph-change and --drain do not apply to a scaleout job yet")
		return exit(ExitUsage, nil)
	}
	if f.resume && doc.Checkpoint == nil {
		a.logger.Error("--resume of a scaleout job needs a checkpoint section: without one its worker checkpoints nothing")
		return exit(ExitUsage, nil)
	}
	return a.scaleoutRole(ctx, doc, func(ctx context.Context, log *slog.Logger, abort <-chan struct{}) error {
		role := runtime.NewRole(doc, runtime.NewRedactor(doc))
		sm, err := scaleoutMetrics(doc, log, role)
		if err != nil {
			return err
		}
		defer sm.stop()
		if f.reportFD > 0 {
			// A job server runs this job as its child (mdp serve
			// --isolation process): the listener's address now (the
			// signal handlers are in place already), the final status
			// and metrics at the end.
			rep := &reporter{w: os.NewFile(uintptr(f.reportFD), "report")}
			if sm.addr != "" {
				_ = rep.write(jobs.ChildReport{Addr: sm.addr})
			}
			defer rep.finalRole(role, sm.gather, log)
		}
		err = scaleout.Run(ctx, doc, scaleout.Options{Logger: log, Stdout: a.stdout, Abort: abort, Metrics: sm.reg, Status: role,
			Resume: f.resume})
		role.Finish(err)
		return err
	})
}

// roleMetrics is a scaleout role's metrics listener (scaleoutMetrics).
type roleMetrics struct {
	// reg is the role's registry: nil (a nil interface, which the roles
	// test for) without metrics.enable.
	reg prometheus.Registerer
	// gather is the same registry, to read; nil without metrics.enable.
	gather prometheus.Gatherer
	// addr is the listener's address, "" without metrics.enable.
	addr string
	stop func()
}

// scaleoutMetrics serves /metrics for a scaleout role when the job has
// metrics.enable: the process's series and the lag series the role
// registers, and on the same listener the read-only job API (mdp list,
// mdp status) answering from role. Without it there is no registry and
// stop does nothing.
func scaleoutMetrics(doc *config.Document, log *slog.Logger, role *runtime.Role) (roleMetrics, error) {
	if !doc.Metrics.Enable {
		return roleMetrics{stop: func() {}}, nil
	}
	reg := metrics.NewRegistry(metrics.NewCollector(doc.Mode))
	api := server.New(server.Options{Jobs: jobs.NewRole(role), Logger: log})
	srv, err := metrics.Serve(metrics.ServerOptions{Listen: doc.Metrics.Listen, Gatherer: reg, API: api, Logger: log})
	if err != nil {
		api.Close()
		return roleMetrics{}, err
	}
	log.Info("metrics listening", "addr", srv.Addr())
	return roleMetrics{reg: reg, gather: reg, addr: srv.Addr(), stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		api.Close()
	}}, nil
}

// scaleoutRole runs one role of a scaleout job: the first SIGINT or
// SIGTERM cancels its context, a second closes abort; the exit code
// follows the role's error.
func (a *app) scaleoutRole(ctx context.Context, doc *config.Document, role func(context.Context, *slog.Logger, <-chan struct{}) error) error {
	red := runtime.NewRedactor(doc)
	log := slog.New(red.Handler(a.logger.Handler()))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	abort := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		for n := 1; ; n++ {
			select {
			case sig := <-sigs:
				if n == 1 {
					log.Info("signal received: stopping gracefully (send it again to abort)", "signal", sig.String())
					stop()
					continue
				}
				log.Warn("second signal: aborting", "signal", sig.String())
				close(abort)
				return
			case <-done:
				return
			}
		}
	}()
	err := role(stopCtx, log, abort)
	switch {
	case err == nil:
		log.Info("job finished", "job", doc.Name)
		return nil
	case errors.Is(err, engine.ErrAborted):
		log.Error("job aborted", "job", doc.Name, "err", red.RedactError(err))
		return exit(ExitAborted, nil)
	}
	log.Error("job failed", "job", doc.Name, "err", red.RedactError(err))
	return exit(ExitFailure, nil)
}

// scaleoutDoc loads a job file that must have a scaleout section.
func (a *app) scaleoutDoc(f jobFlags, cmd string) (*config.Document, error) {
	doc, err := a.loadChecked(f)
	if err != nil {
		return nil, err
	}
	if doc.Scaleout == nil {
		a.logger.Error("mdp " + cmd + " runs a job with a scaleout section; this job has none (use mdp run)")
		return nil, exit(ExitUsage, nil)
	}
	if doc.Scaleout.Embedded() {
		a.logger.Error("mdp " + cmd + " needs scaleout.nats to be the URL of a NATS server the processes share, not embedded")
		return nil, exit(ExitUsage, nil)
	}
	return doc, nil
}

func (a *app) workerCommand() *cobra.Command {
	var f jobFlags
	var id string
	var workers int
	var leaseTTL, interval time.Duration
	cmd := &cobra.Command{
		Use:   "worker [[--config] FILE]",
		Short: "Run one worker of a scaleout job: the keyed part of the graph for its partitions",
		Long: `Worker joins the membership of a job with scaleout.nats set to a NATS server URL,
waits until --workers workers are live (a minimum for the first assignment),
then holds the partitions that rendezvous hashing over the live workers gives
it (at most ceil(partitions/workers)) through their leases, and runs the job's
graph after its source (bars, windows, features, sinks) over those partitions,
each restored from its checkpoint in the job's KV bucket mdp_ckpt_<job> and
checkpointed every --checkpoint-interval after the sinks flushed. Start one
mdp ingest for the same job file.

A worker joining or leaving moves about partitions/workers partitions: their
old owner suspends its graph with a final checkpoint and releases them, the
new owner resumes them from that checkpoint. A worker that dies loses its
leases after --lease-ttl; the others resume its partitions from their last
checkpoints. A worker that loses a lease, or cannot renew it before it would
expire, stops reading at once without a checkpoint and goes on with the
partitions it still holds. The worker exits 0 once every partition was read
to the ingest's end markers.

On SIGINT or SIGTERM the worker suspends: a final checkpoint of its
partitions (open bars stay in it, nothing partial is written), its leases
released, the membership left, exit 0; the other workers take over at once.
A second signal aborts (130).

Exit codes: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted.`,
		Example: `  mdp worker --config job.yaml --workers 3`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			doc, err := a.scaleoutDoc(f, "worker")
			if err != nil {
				return err
			}
			return a.scaleoutRole(cmd.Context(), doc, func(ctx context.Context, log *slog.Logger, abort <-chan struct{}) error {
				role := runtime.NewRole(doc, runtime.NewRedactor(doc))
				sm, err := scaleoutMetrics(doc, log, role)
				if err != nil {
					return err
				}
				defer sm.stop()
				err = scaleout.RunWorker(ctx, doc, scaleout.WorkerOptions{Options: scaleout.Options{Logger: log, Stdout: a.stdout, Abort: abort, Metrics: sm.reg, Status: role},
					ID: id, Workers: workers, LeaseTTL: leaseTTL, CheckpointInterval: interval})
				role.Finish(err)
				return err
			})
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&id, "id", "", "the worker's id in the membership (default host-pid)")
	cmd.Flags().IntVar(&workers, "workers", 1, "how many workers must be live before the first assignment (later joins and leaves rebalance)")
	cmd.Flags().DurationVar(&leaseTTL, "lease-ttl", 6*time.Second, "how long the worker's membership and partition leases live without a renewal: a dead worker's partitions move after it")
	cmd.Flags().DurationVar(&interval, "checkpoint-interval", time.Second, "how often the worker checkpoints its partitions into mdp_ckpt_<job>")
	return cmd
}

func (a *app) ingestCommand() *cobra.Command {
	var f jobFlags
	var reread bool
	cmd := &cobra.Command{
		Use:   "ingest [[--config] FILE]",
		Short: "Run the source of a scaleout job, publishing into its NATS stream",
		Long: `Ingest runs the source of a job with scaleout.nats set to a NATS server URL and
publishes its records per symbol, with watermark markers, into the job's
stream; mdp worker processes read it. The stream must be empty: ingest refuses
one that holds an earlier run's messages, unless --reread. --reread is for an
ingest that crashed (or was killed): the same input, read again from its
start, is published after what the stream holds, and the workers (running or
restarted from their checkpoints) drop each record they have read already, by
its number among its partition's records. The input must be the same records
in the same order; scaleout.records_per_message may differ.
When the source ends, or on SIGINT or SIGTERM, the ingest publishes its end
markers and exits 0; a second signal aborts (130).

With metrics.enable, the metrics listener serves the process's series and the
read-only job API for the ingest (GET /api/v1/jobs, /jobs/{name}, its
WebSocket), so mdp list and mdp status work against it: the ingest's source
and publisher, and the job's workers, leases and lag as the buckets hold them.

Exit codes: 0 success, 1 runtime failure, 2 config or usage error, 130 aborted.`,
		Example: `  mdp ingest --config job.yaml
  mdp ingest --config job.yaml --reread   # after a crashed ingest`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.resolve(args); err != nil {
				return err
			}
			doc, err := a.scaleoutDoc(f, "ingest")
			if err != nil {
				return err
			}
			return a.scaleoutRole(cmd.Context(), doc, func(ctx context.Context, log *slog.Logger, abort <-chan struct{}) error {
				role := runtime.NewRole(doc, runtime.NewRedactor(doc))
				sm, err := scaleoutMetrics(doc, log, role)
				if err != nil {
					return err
				}
				defer sm.stop()
				err = scaleout.RunIngest(ctx, doc, scaleout.Options{Logger: log, Stdout: a.stdout, Abort: abort, Status: role, Reread: reread})
				role.Finish(err)
				return err
			})
		},
	}
	f.add(cmd, false)
	cmd.Flags().BoolVar(&reread, "reread", false, "publish the input again after an earlier run's messages in the stream (after a crashed ingest); workers drop what they have read")
	return cmd
}
