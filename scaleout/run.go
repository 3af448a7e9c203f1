package scaleout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// publisherID is the ingest graph's node that publishes into the stream.
const publisherID = "scaleout_publish"

// Options configure a scaled-out run.
type Options struct {
	// Logger receives the run's logs; nil discards them.
	Logger *slog.Logger
	// Stdout is the jobs' standard output; nil means os.Stdout.
	Stdout io.Writer
	// Abort, when closed, aborts both roles at once (a second signal).
	Abort <-chan struct{}
	// Metrics, when set, gets the worker's lag series (mdp_scaleout_*)
	// for the run's length.
	Metrics prometheus.Registerer
	// Status, when set, is given the worker's job and the measure of the
	// job's scale-out status (workers, owners, lag) for mdp status.
	Status StatusSink
	// Reread lets RunIngest start over a stream that holds an earlier
	// run's messages: it reads the same input again from its start (after
	// an ingest crashed, say) and publishes it after them, and workers drop
	// the records they have read already. The input must be the same, in
	// the same order: records are told apart by their number among their
	// partition's records.
	Reread bool
	// Resume makes Run continue the job's earlier run that died (kill -9,
	// a crash): it keeps the stream, restores the worker from the
	// partitions' checkpoints and re-reads the input as Reread does. It
	// needs the job's checkpoint section.
	Resume bool

	// memory, frameRecords and markerInterval are the benchmark's knobs:
	// a stream in memory rather than files, records per data message and
	// the interval of the ingest's marker rounds.
	memory         bool
	frameRecords   int
	markerInterval time.Duration
}

// Run runs a job that has a scaleout section in one process: the embedded
// (or configured) NATS server's stream, the job's source as ingest and
// the rest of the graph as one worker reading every partition.
//
// Without opts.Resume the stream starts empty: what an earlier run left
// is purged, and so are its checkpoints. With a checkpoint section the
// worker runs every operator as one instance per partition and
// checkpoints each partition into the job's KV bucket every
// checkpoint.interval, as RunWorker does. opts.Resume (which needs the
// checkpoint section) keeps the stream, restores the worker from those
// checkpoints (a partition without one reads from the stream's start) and
// runs the ingest as a re-read of its input under a new epoch, so the
// worker drops the records it had read; with neither a checkpoint nor a
// message in the stream it is a fresh start, and when every partition's
// checkpoint says done there is nothing to resume and it returns nil.
//
// Cancelling ctx without a checkpoint section (or with a source that
// cannot be read again, which --resume refuses) stops the source; the
// ingest then publishes its end markers and the worker drains to them,
// within the job's shutdown_timeout. With one it suspends: the ingest is
// aborted (no end markers), the worker takes a final checkpoint and ends
// without draining, nothing is marked done and it returns nil, so that
// opts.Resume continues it. It returns the first role's error, or
// engine.ErrAborted.
func Run(ctx context.Context, doc *config.Document, opts Options) error {
	so := doc.Scaleout
	if so == nil {
		return fmt.Errorf("job %q has no scaleout section", doc.Name)
	}
	if opts.Resume && doc.Checkpoint == nil {
		return fmt.Errorf("job %q: resuming a scaled-out run needs a checkpoint section (its worker checkpoints nothing without one)", doc.Name)
	}
	if opts.Resume {
		if err := doc.ScaleoutRereadable(); err != nil {
			return fmt.Errorf("job %q: resuming a scaled-out run re-reads its input: %w", doc.Name, err)
		}
	}
	log := logger(opts, doc)
	conn, err := connect(so, log)
	if err != nil {
		return err
	}
	defer conn.close()
	n := namesOf(doc.Name)
	pub := newPublisher(nil, n, so.Partitions)
	pub.configure(so)
	if opts.frameRecords > 0 {
		pub.setTarget(opts.frameRecords)
	}
	if opts.markerInterval > 0 {
		pub.interval = opts.markerInterval
	}
	js, err := publishingJS(conn.nc, pub)
	if err != nil {
		return err
	}
	pub.js = js
	all := make([]int, so.Partitions)
	for i := range all {
		all[i] = i
	}
	r := newReader(js, n, all)
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := ensureStream(setup, js, n, so, opts.memory)
	if err != nil {
		return err
	}
	var msgs uint64
	if opts.Resume {
		// The ingest's epoch is the next sequence, as a re-read's
		// (RunIngest); the reader starts where the checkpoints say.
		info, err := stream.Info(setup)
		if err != nil {
			return fmt.Errorf("stream %s: %w", n.stream, err)
		}
		pub.epoch, msgs = info.State.LastSeq+1, info.State.Msgs
	} else {
		if pub.epoch, err = purge(setup, stream); err != nil {
			return err
		}
		r.start = pub.epoch
	}
	var ck *runCheckpoints
	if doc.Checkpoint != nil {
		if ck, err = openRunCheckpoints(setup, js, n, doc, stream.CachedInfo().Created.UnixNano(), opts.Resume); err != nil {
			return err
		}
	}
	fb := engine.NewFeedback(doc.Feedback)
	var worker *engine.Job
	if ck == nil {
		worker, err = workerJob(doc, r, fb, log.With("role", "worker"), opts.Stdout)
	} else {
		worker, err = ck.job(setup, doc, r, fb, log.With("role", "worker"), opts.Stdout)
	}
	if err != nil {
		return err
	}
	if ck != nil && opts.Resume {
		if len(ck.store.parts) == 0 {
			log.Info("scale-out run: every partition's checkpoint says done: nothing to resume", "stream", n.stream)
			return nil
		}
		if msgs == 0 && ck.restored == 0 {
			log.Info("no checkpoint and no message to resume from: starting from the beginning", "stream", n.stream)
		} else {
			log.Info("scale-out run resumes: the ingest re-reads its input after the stream's messages, the worker drops what it had read",
				"stream", n.stream, "messages", msgs, "restored", ck.restored, "epoch", pub.epoch)
		}
	}
	cancel()
	ingest, err := ingestJob(doc, pub, log.With("role", "ingest"), opts.Stdout)
	if err != nil {
		return err
	}
	if opts.Status != nil {
		// One process reads every partition: the status has one worker.
		host, _ := os.Hostname()
		self := MemberInfo{ID: DefaultWorkerID(), Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
		owners := make(map[int]string, len(all))
		for _, p := range all {
			owners[p] = self.ID
		}
		opts.Status.ScaleoutStatus(func(ctx context.Context) (Status, error) {
			m := self
			m.Progress = r.progress.snapshot()
			var pieces map[int]*piece
			if ck != nil {
				pieces = ck.latest()
			}
			return buildStatus(ctx, js, n, so.Partitions, []MemberInfo{m}, owners, pieces)
		})
	}
	if opts.Metrics != nil {
		c := &lagCollector{job: doc.Name, r: r, log: log}
		if ck != nil {
			c.store = ck.store
		}
		if err := opts.Metrics.Register(c); err != nil {
			return fmt.Errorf("register the lag series: %w", err)
		}
		defer opts.Metrics.Unregister(c)
	}
	log.Info("scale-out run", "nats", conn.where, "stream", n.stream, "partitions", so.Partitions, "checkpoints", ck != nil)
	if err := worker.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if opts.Status != nil {
		opts.Status.WorkerJob(worker, fb)
	}
	if err := ingest.Start(context.WithoutCancel(ctx)); err != nil {
		worker.Abort()
		_ = worker.Wait()
		return fmt.Errorf("ingest: %w", err)
	}
	// A stop suspends a run that --resume can continue; one whose source
	// cannot be read again drains, as without checkpoints.
	suspended, err := wait(ctx, doc.ShutdownTimeout, opts.Abort, ingest, worker, ck != nil && doc.ScaleoutRereadable() == nil, log)
	if err == nil && ck != nil && !suspended {
		err = ck.done(ctx, r, log)
	}
	published, _ := ingest.SourceTotals()
	read, _ := worker.SourceTotals()
	log.Info("scale-out run ended", "published", published, "read", read, "duplicates", pub.dups, "frames", pub.frames, "markers", pub.markers, "carried", pub.carried)
	return err
}

// wait runs the two jobs to their ends: a failure of one aborts the other.
// ctx's end stops the run: without checkpoints (suspend false) it stops
// the ingest's source, which publishes its end markers, and the worker
// drains to them within timeout; with checkpoints it suspends (as
// RunWorker does on SIGTERM): the ingest is aborted without end markers
// and the worker takes a final checkpoint and ends without draining, so
// that a --resume continues where it stopped (a drain to the end markers
// would leave every partition done, the rest of the input never read).
// It reports whether the run was suspended.
func wait(ctx context.Context, timeout time.Duration, abort <-chan struct{}, ingest, worker *engine.Job, suspend bool, log *slog.Logger) (bool, error) {
	var deadline <-chan time.Time
	stopCtx := ctx.Done()
	ingestDone, workerDone := ingest.Done(), worker.Done()
	var err error
	suspended := false
	abortAll := func() {
		ingest.Abort()
		worker.Abort()
	}
	for ingestDone != nil || workerDone != nil {
		select {
		case <-stopCtx:
			stopCtx = nil
			if !suspend || workerDone == nil {
				ingest.Stop()
				deadline = time.After(timeout)
				continue
			}
			log.Info("scale-out run suspending: the ingest stops without its end markers, the worker takes a final checkpoint")
			ingest.Abort()
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			id, serr := worker.Suspend(sctx)
			cancel()
			if serr != nil {
				worker.Abort()
				err = errors.Join(err, fmt.Errorf("suspend (its partitions resume from their previous checkpoints): %w: %w", serr, engine.ErrAborted))
				continue
			}
			suspended = true
			log.Info("scale-out run suspended: mdp run --resume continues it", "checkpoint", id)
		case <-deadline:
			abortAll()
			deadline = nil
			err = errors.Join(err, fmt.Errorf("stop took longer than shutdown_timeout %s: %w", timeout, engine.ErrAborted))
		case <-abort:
			abort = nil
			abortAll()
		case <-ingestDone:
			ingestDone = nil
			if e := ingest.Err(); e != nil && !(suspend && stopCtx == nil && errors.Is(e, engine.ErrAborted)) {
				err = errors.Join(err, fmt.Errorf("ingest: %w", e))
				worker.Abort()
			}
		case <-workerDone:
			workerDone = nil
			if e := worker.Err(); e != nil {
				err = errors.Join(err, fmt.Errorf("worker: %w", e))
				ingest.Abort()
			}
		}
	}
	return suspended, err
}

// ingestJob is the job's source feeding the publisher.
func ingestJob(doc *config.Document, pub *publisher, log *slog.Logger, stdout io.Writer) (*engine.Job, error) {
	g, err := doc.Graph()
	if err != nil {
		return nil, err
	}
	src := nodeOf(g, doc.Scaleout.Source)
	ig := &engine.Graph{
		Nodes: []*engine.Node{src, {
			ID: publisherID, Type: "scaleout.publish", Kind: engine.KindSink, Accepts: md.KindAny,
			NewProcessor: func(int) (engine.Processor, error) { return pub, nil },
		}},
		Edges: []*engine.Edge{{From: src.ID, To: publisherID}},
	}
	j, err := engine.New(ig, engine.Options{Job: doc.Name, Fingerprint: doc.Fingerprint(), Logger: log, BatchSize: doc.BatchSize,
		Feedback: engine.NewFeedback(doc.Feedback), Stdout: stdout})
	if err != nil {
		return nil, fmt.Errorf("build the ingest of job %q: %w", doc.Name, err)
	}
	return j, nil
}

// workerJob is the job's graph with its source replaced by the reader.
func workerJob(doc *config.Document, r *reader, fb *engine.Feedback, log *slog.Logger, stdout io.Writer) (*engine.Job, error) {
	g, err := workerGraph(doc, r, 0)
	if err != nil {
		return nil, err
	}
	j, err := engine.New(g, engine.Options{Job: doc.Name, Fingerprint: doc.Fingerprint(), Logger: log, BatchSize: doc.BatchSize,
		Feedback: fb, Stdout: stdout})
	if err != nil {
		return nil, fmt.Errorf("build the worker of job %q: %w", doc.Name, err)
	}
	return j, nil
}

// workerGraph is the job's graph with its source replaced by the reader.
// With partitions > 0 every operator runs one instance per partition:
// the engine routes a symbol to instance md.Split(symbol, instances),
// the publisher to partition md.Split(symbol, partitions), so instance p
// holds exactly partition p's keyed state and checkpoints cut by
// partition (ckpt.go).
func workerGraph(doc *config.Document, r *reader, partitions int) (*engine.Graph, error) {
	g, err := doc.Graph()
	if err != nil {
		return nil, err
	}
	src := nodeOf(g, doc.Scaleout.Source)
	src.Type = "scaleout.read"
	src.Parallelism, src.ParallelSource = 1, false
	src.MaxOutOfOrderness, src.IdleTimeout = inBandOutOfOrderness, 0
	src.NewSource = func(int) (engine.Source, error) { return r, nil }
	if partitions > 0 {
		for _, n := range g.Nodes {
			if n.Kind == engine.KindOperator {
				n.Parallelism = partitions
			}
		}
	}
	return g, nil
}

func nodeOf(g *engine.Graph, id string) *engine.Node {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	panic("scaleout: source node " + id + " not in the graph") // config guarantees it
}

// conn is a connection to the job's NATS server, and the embedded server
// when the job runs one.
type conn struct {
	nc    *nats.Conn
	srv   *server.Server
	where string
}

// embeddedMaxPayload is the embedded server's max_payload: 8 MiB, the
// largest nats-server takes without a warning, so a frame of
// scaleout.records_per_message (at most 65536 records: ~1.2 MB of packed
// trades, ~5.6 MB of version 1 bars) is never cut. The worker pulls up to
// pullMaxBytes (16 MiB) at a time, more than one message.
const embeddedMaxPayload = 8 << 20

// connect starts the embedded server, or connects to the job's URL.
func connect(so *config.ScaleoutConfig, log *slog.Logger) (*conn, error) {
	if !so.Embedded() {
		nc, err := nats.Connect(so.NATS, nats.MaxReconnects(-1), nats.Name("mdp"))
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", so.NATS, err)
		}
		return &conn{nc: nc, where: so.NATS}, nil
	}
	if err := os.MkdirAll(so.Store, 0o755); err != nil {
		return nil, fmt.Errorf("embedded NATS store: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "mdp", JetStream: true, StoreDir: so.Store, DontListen: true, NoSigs: true, NoLog: true,
		SyncAlways: so.Sync == config.SyncAlways, MaxPayload: embeddedMaxPayload,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS server: not ready after 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("mdp"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	log.Debug("embedded NATS server started", "store", so.Store, "sync", so.Sync)
	return &conn{nc: nc, srv: srv, where: "embedded (" + so.Store + ")"}, nil
}

func (c *conn) close() {
	c.nc.Close()
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}
