package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/retry"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/server"
)

type serveFlags struct {
	listen, state, jobsDir, token string
	interval                      time.Duration
	backoff, backoffMax           time.Duration
	drain                         time.Duration
	isolation, sched, cpus        string
	nice                          int
}

func (a *app) serveCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a job server: many jobs, an HTTP API, a registry that survives restarts",
		Long: `Serve runs jobs submitted over its HTTP API (mdp submit, list, status, stop, start,
delete, logs talk to it) and keeps a registry of them in a SQLite file (--state):
each job's file as submitted, desired and observed state, last error, times and
restart count. A restarted server starts again the jobs that should run: a job
running when the previous server was killed is restarted under its restart
policy (always, on-failure) and left failed under never.

A job that ends by itself follows its restart key: always restarts it,
on-failure (the default) restarts it when it failed, never leaves it. Restarts
wait an exponential backoff with full jitter (--restart-backoff doubling up to
--restart-backoff-max).

--jobs DIR registers every job file in DIR (*.yaml, *.yml, *.json; not the
*_test.yaml job tests) at start-up and starts the new ones; a registered job
whose file changed is replaced.

The API is under /api/v1 (the OpenAPI document at /api/v1/openapi.json), with
/metrics, /healthz and /readyz on the same listener. A --listen address that is
not loopback is refused without --token (or MDP_API_TOKEN); with a token every
route but /healthz and /readyz needs "Authorization: Bearer TOKEN".

The first SIGINT or SIGTERM drains every job (they start again with the next
server) and exits 0; a second one aborts them: exit 130.`,
		Example: `  mdp serve
  mdp serve --listen 127.0.0.1:8080 --state /var/lib/mdp/state.db --jobs /etc/mdp/jobs
  MDP_API_TOKEN=$(cat token) mdp serve --listen 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.token == "" {
				f.token = os.Getenv(server.TokenEnv)
			}
			return a.serve(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", server.DefaultListen, "host:port to serve the API on")
	fl.StringVar(&f.state, "state", jobs.DefaultState, "the job registry's SQLite file")
	fl.StringVar(&f.jobsDir, "jobs", "", "register every job file in this directory at start-up")
	fl.StringVar(&f.token, "token", "", "API token required as Bearer on every route but /healthz and /readyz (default $"+server.TokenEnv+")")
	fl.DurationVar(&f.interval, "status-interval", time.Second, "how often the status WebSockets push a snapshot")
	fl.DurationVar(&f.backoff, "restart-backoff", jobs.DefaultBackoff.Base, "first step of the restart backoff")
	fl.DurationVar(&f.backoffMax, "restart-backoff-max", jobs.DefaultBackoff.Max, "largest step of the restart backoff")
	fl.DurationVar(&f.drain, "drain-timeout", time.Minute, "how long a shutdown waits for the jobs to drain before aborting them")
	fl.StringVar(&f.isolation, "isolation", jobs.IsolationInProcess, "where jobs run: inprocess (one process for the API and every job) or process (each job a child process; the API answers from polled snapshots)")
	fl.IntVar(&f.nice, "child-nice", 0, "with --isolation process: run the children at this niceness (1-19), below the API process (Linux)")
	fl.StringVar(&f.sched, "child-sched", jobs.SchedNormal, "with --isolation process: the children's scheduling policy (Linux): normal, batch (SCHED_BATCH) or idle (SCHED_IDLE: jobs get only the CPU the API and other processes leave)")
	fl.StringVar(&f.cpus, "child-cpus", "", "with --isolation process: the CPUs the children may run on, as a list like 1 or 2-3,5 (Linux; the rest stay free for the API)")
	_ = cmd.RegisterFlagCompletionFunc("isolation", cobra.FixedCompletions([]string{jobs.IsolationInProcess, jobs.IsolationProcess}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("child-sched", cobra.FixedCompletions([]string{jobs.SchedNormal, jobs.SchedBatch, jobs.SchedIdle}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("jobs")
	return cmd
}

func (a *app) serve(ctx context.Context, f serveFlags) error {
	log := a.logger
	if f.interval < 10*time.Millisecond {
		return fmt.Errorf("invalid --status-interval %s: want at least 10ms", f.interval)
	}
	if f.isolation != jobs.IsolationInProcess && f.isolation != jobs.IsolationProcess {
		return exit(ExitUsage, fmt.Errorf("invalid --isolation %q: want %s or %s", f.isolation, jobs.IsolationInProcess, jobs.IsolationProcess))
	}
	if f.nice < 0 || f.nice > 19 || (f.nice > 0 && f.isolation != jobs.IsolationProcess) {
		return exit(ExitUsage, fmt.Errorf("invalid --child-nice %d: want 0 to 19, with --isolation process", f.nice))
	}
	switch {
	case !slices.Contains([]string{jobs.SchedNormal, jobs.SchedBatch, jobs.SchedIdle}, f.sched):
		return exit(ExitUsage, fmt.Errorf("invalid --child-sched %q: want %s, %s or %s", f.sched, jobs.SchedNormal, jobs.SchedBatch, jobs.SchedIdle))
	case f.sched != jobs.SchedNormal && f.isolation != jobs.IsolationProcess:
		return exit(ExitUsage, fmt.Errorf("--child-sched %s needs --isolation process (jobs in process share the API's threads)", f.sched))
	}
	cpus, err := parseCPUList(f.cpus)
	switch {
	case err != nil:
		return exit(ExitUsage, fmt.Errorf("invalid --child-cpus %q: %w", f.cpus, err))
	case len(cpus) > 0 && f.isolation != jobs.IsolationProcess:
		return exit(ExitUsage, fmt.Errorf("--child-cpus needs --isolation process (jobs in process share the API's threads)"))
	}
	if f.backoff <= 0 || f.backoffMax < f.backoff {
		return fmt.Errorf("invalid restart backoff %s..%s: want 0 < --restart-backoff <= --restart-backoff-max", f.backoff, f.backoffMax)
	}
	var files []string
	if f.jobsDir != "" {
		entries, err := os.ReadDir(f.jobsDir)
		if err != nil {
			return exit(ExitUsage, fmt.Errorf("--jobs: %w", err))
		}
		for _, e := range entries {
			n := e.Name()
			ext := filepath.Ext(n)
			if e.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, ext) || strings.HasSuffix(strings.TrimSuffix(n, ext), "_test") {
				continue
			}
			files = append(files, filepath.Join(f.jobsDir, n))
		}
	}
	// Every file of --jobs, the security rule and the port are checked
	// before any job starts.
	bad := false
	for _, file := range files {
		doc, err := config.LoadFile(file, config.LoadOptions{Registry: a.reg})
		if err == nil {
			_, err = doc.Graph()
		}
		if err != nil {
			a.printConfigErrors(err)
			bad = true
		}
	}
	if bad {
		return exit(ExitUsage, nil)
	}
	ln, err := server.Bind(f.listen, f.token)
	if err != nil {
		return exit(ExitUsage, err)
	}
	var hp atomic.Pointer[server.Handler]
	m, err := jobs.New(ctx, jobs.Options{
		State: f.state, Registry: a.reg, Logger: log,
		Backoff:   retry.Backoff{Base: f.backoff, Max: f.backoffMax},
		Isolation: f.isolation, PollInterval: f.interval, Nice: f.nice, Sched: f.sched, CPUs: cpus,
		OnChange: func(name string) {
			if h := hp.Load(); h != nil {
				h.Notify(name)
			}
		},
		OnRun: func(name string, u *runtime.Unified) {
			if h := hp.Load(); h != nil {
				h.Run(name, u)
			}
		},
	})
	if err != nil {
		_ = ln.Close()
		if errors.Is(err, jobs.ErrInvalid) {
			return exit(ExitUsage, err)
		}
		return exit(ExitFailure, err)
	}
	shutdown := func() {
		dctx, cancel := context.WithTimeout(context.Background(), f.drain)
		defer cancel()
		if err := m.Close(dctx); err != nil {
			log.Error("job server: close", "err", err)
		}
	}
	h := server.New(server.Options{
		Manager: m, Token: f.token, Gatherer: m.Gatherer(), StatusInterval: f.interval, Logger: log,
		Ready: func() (bool, any) {
			return true, map[string]any{"status": "ready", "jobs": len(m.Names())}
		},
		Components: func() any { return describeSpecs(a.reg.All()) },
	})
	hp.Store(h)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil {
			_, err = m.Apply(ctx, file, data)
		}
		if err != nil {
			log.Error("--jobs: job did not start", "file", file, "err", err)
		}
	}
	srv := server.Serve(ln, h, log)
	log.Info("job server listening", "addr", srv.Addr(), "state", f.state, "jobs", len(m.Names()), "token", f.token != "")

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case sig := <-sigs:
		log.Info("signal received: draining every job (send it again to abort)", "signal", sig.String())
	case <-ctx.Done():
	}
	aborted := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: aborting", "signal", sig.String())
			close(aborted)
		case <-done:
		}
	}()
	h.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	go func() {
		shutdown()
		close(done)
	}()
	select {
	case <-done:
		log.Info("job server stopped")
		return nil
	case <-aborted:
		return exit(ExitAborted, nil)
	}
}

// maxCPU is the highest CPU number a CPU set (sched_setaffinity's, as
// golang.org/x/sys/unix sizes it) holds.
const maxCPU = 1023

// parseCPUList reads a CPU list as taskset -c and cpuset(7) write it:
// comma-separated CPU numbers and inclusive ranges ("1", "0,2-3"); "" is
// no list.
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a {
			return nil, fmt.Errorf("%q is not a CPU number or range (want e.g. 1 or 2-3)", part)
		}
		if b > maxCPU {
			return nil, fmt.Errorf("CPU %d: numbers go up to %d", b, maxCPU)
		}
		for c := a; c <= b; c++ {
			if !slices.Contains(cpus, c) {
				cpus = append(cpus, c)
			}
		}
	}
	return cpus, nil
}
