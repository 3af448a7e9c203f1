package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/metrics"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/scaleout"
)

// runScaleout is mdp run of a job with a scaleout section: its source as
// ingest and the rest as one worker, over the job's NATS stream.
func (a *app) runScaleout(ctx context.Context, doc *config.Document, f jobFlags) error {
	if f.resume || f.from != "" || f.allowGraphChange || f.drain {
		a.logger.Error("--resume, --from, --allow-graph-change and --drain do not apply to a scaleout job yet")
		return exit(ExitUsage, nil)
	}
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
	opts := scaleout.Options{Logger: log, Stdout: a.stdout, Abort: abort}
	if doc.Metrics.Enable {
		// The scale-out run serves the lag series (and the process's).
		reg := metrics.NewRegistry(metrics.NewCollector(doc.Mode))
		srv, err := metrics.Serve(metrics.ServerOptions{Listen: doc.Metrics.Listen, Gatherer: reg, Logger: log})
		if err != nil {
			log.Error("job failed", "job", doc.Name, "err", red.RedactError(err))
			return exit(ExitFailure, nil)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		log.Info("metrics listening", "addr", srv.Addr())
		opts.Metrics = reg
	}
	err := scaleout.Run(stopCtx, doc, opts)
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
