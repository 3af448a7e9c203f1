package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/md"
)

// ErrAborted is returned by Wait when the job was aborted (a second signal or
// a shutdown timeout) instead of draining.
var ErrAborted = errors.New("job aborted before it drained")

// Options configure a job.
type Options struct {
	Job string // job name, for logs, status and metrics
	// Fingerprint identifies what the job computes (config.Document's
	// Fingerprint); sinks that share a destination with other jobs name
	// their output with it.
	Fingerprint string
	Logger      *slog.Logger
	Symbols     *md.SymbolTable // nil: a new table
	BatchSize   int             // default record capacity of pooled batches
	Feedback    *Feedback       // nil: feedback disabled
	// Progress is how this job's sources report their progress.
	Progress ProgressOptions
	// Stdout is the job's standard output, where sink.stdout and
	// sink.checksum write; nil means os.Stdout. A program running several
	// jobs gives each its own.
	Stdout io.Writer
	// Checkpoint, when set, turns checkpoints on (and may restore one).
	Checkpoint *CheckpointOptions
	// NoChaining runs every node instance in a goroutine of its own,
	// connected by queues, even where an edge could be chained (see
	// chain.go and Node.NoChain).
	NoChaining bool
}

// NodeError is a node failure: which node and instance, and why.
type NodeError struct {
	Node     string
	Instance int
	Err      error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %v", e.Node, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a node's code (its constructor, Open,
// Run, Process, OnWatermark, OnTimer, Close or Cleanup). It becomes the
// node's error, wrapped in a NodeError, so a bug in one component fails its
// job with the node named instead of crashing the process.
type PanicError struct {
	Op    string // the method that panicked: "New", "Open", "Process", …
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("%s panicked: %v", e.Op, e.Value) }

// Limits on what one job may allocate for its queues, so that a setting no
// machine can honour is an error from New rather than a crash or an
// exhausted memory at start.
const (
	// MaxQueueCapacity is the most batches one edge's queue may hold.
	MaxQueueCapacity = 1 << 20
	// MaxParallelism is the most instances one node may run.
	MaxParallelism = 4096
	// maxQueueSlots bounds the batches all of a job's physical queues hold
	// together (an edge between parallel nodes has one queue per pair of
	// instances).
	maxQueueSlots = 1 << 24
)

// Job is a graph instantiated and wired, ready to start. A Job runs once.
type Job struct {
	opts    Options
	graph   *Graph
	nodes   []*nodeRun // in declaration order
	opening []*nodeRun // in the order Start opens them: reverse topological
	edges   []*edgeState
	symbols *md.SymbolTable
	metrics *MetricSet

	abortCtx    context.Context
	abort       context.CancelCauseFunc
	stopSources context.CancelFunc
	srcCtx      context.Context

	taps map[string]*tapPoint // by "node" or "node.port"

	ck        *coordinator // nil: checkpoints off
	suspended atomic.Bool

	started atomic.Bool
	done    chan struct{}
	errMu   sync.Mutex
	err     error
	wg      sync.WaitGroup
}

type nodeRun struct {
	n         *Node
	instances []*instance
	inQueues  [][]*queue // per instance: the queues it reads
	inPorts   [][]int    // per instance: the input port of each queue
}

type instance struct {
	job   *Job
	node  *nodeRun
	idx   int
	impl  any
	nc    *NodeContext
	out   *Output
	state atomic.Value // string

	op      string // the node method running now, for a recovered panic
	opened  bool   // passed by the open sequence in Start: Cleanup is due
	cleaned bool

	// Operator chaining (chain.go). upstream is set on an instance that
	// runs in its upstream's goroutine; chain, on the instance whose
	// goroutine runs a chain, lists the instances chained behind it in
	// topological order. loop is a chained instance's input state and
	// ended says it has stopped. chainNs is the time this instance has
	// spent running the chained instance it sends to, which is not its
	// own busy time; only the goroutine running the instance touches it.
	upstream *instance
	chain    []*instance
	loop     *procLoop
	ended    bool
	chainNs  int64
	// span is the time between the first and the last clock reading of
	// the message the instance handled last (0: none taken), which its
	// upstream, when chained, counts as chained time.
	span int64
}

// New validates g, builds every node instance and wires the queues.
func New(g *Graph, opts Options) (*Job, error) {
	if errs := g.Validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Msg
		}
		return nil, fmt.Errorf("invalid graph: %s", strings.Join(msgs, "; "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Symbols == nil {
		opts.Symbols = md.NewSymbolTable()
	}
	if c := opts.Checkpoint; c != nil {
		if c.Interval <= 0 || c.Store == nil {
			return nil, errors.New("checkpoints need an interval above 0 and a store")
		}
		if cp := c.Restore; cp != nil && !c.AllowGraphChange {
			if fp := GraphFingerprint(g); cp.Graph != fp {
				return nil, fmt.Errorf("%w: checkpoint %d of job %q has nodes %s, this job has %s",
					ErrGraphChanged, cp.ID, cp.Job, shapeString(cp.Shape), shapeString(graphShape(g)))
			}
		}
	}
	j := &Job{opts: opts, graph: g, symbols: opts.Symbols, metrics: &MetricSet{}, done: make(chan struct{})}
	j.abortCtx, j.abort = context.WithCancelCause(context.Background())
	j.srcCtx, j.stopSources = context.WithCancel(j.abortCtx)

	byID := map[string]*nodeRun{}
	for _, n := range g.Nodes {
		p := g.Instances(n)
		if opts.Checkpoint != nil && n.Kind == KindSource && n.ParallelSource && p > 1 {
			// Several instances of a splitting source do not yet resume
			// exactly from a checkpoint (their positions are taken at
			// different barriers of one generated stream): one instance
			// when the parallelism only followed the receivers, a refusal
			// when the job file asked for it.
			if n.Parallelism > 1 {
				return nil, fmt.Errorf("node %q: a %s source at parallelism %d cannot take checkpoints yet; set its parallelism to 1 (the nodes after it keep theirs)", n.ID, n.Type, n.Parallelism)
			}
			p = 1
		}
		nr := &nodeRun{n: n, instances: make([]*instance, p), inQueues: make([][]*queue, p), inPorts: make([][]int, p)}
		byID[n.ID] = nr
		j.nodes = append(j.nodes, nr)
	}
	topo := g.topological()
	for i := len(topo) - 1; i >= 0; i-- {
		j.opening = append(j.opening, byID[topo[i]])
	}
	// Ports of every instance, then queues per edge.
	ports := map[*instance]map[string]*port{}
	for _, nr := range j.nodes {
		for i := range nr.instances {
			in := &instance{job: j, node: nr, idx: i}
			in.state.Store("created")
			nr.instances[i] = in
			ports[in] = map[string]*port{}
			for name := range nr.n.Ports {
				key := "unconnected_port"
				if name != PortMain {
					key += "_" + name
				}
				ports[in][name] = &port{name: name, dropKey: key}
			}
		}
	}
	for _, e := range g.Edges {
		es := &edgeState{e: e}
		j.edges = append(j.edges, es)
		from, to := byID[e.From], byID[e.To]
		capacity := e.Capacity
		if capacity <= 0 {
			capacity = DefaultQueueCapacity
		}
		inPort, _, _ := to.n.input(e.ToPort)
		es.forward = isForward(from, to)
		for si, src := range from.instances {
			t := &target{edge: es, key: to.n.PartitionKey}
			for ri := range to.instances {
				if es.forward && ri != si {
					continue // instance si of the source holds only the symbols of receiver si
				}
				q := &queue{ch: make(chan message, capacity), edge: es}
				es.queues = append(es.queues, q)
				t.qs = append(t.qs, q)
				to.inQueues[ri] = append(to.inQueues[ri], q)
				to.inPorts[ri] = append(to.inPorts[ri], inPort)
			}
			p := ports[src][e.FromPort]
			if p == nil { // an implicit port such as dead_letter
				p = &port{name: e.FromPort, dropKey: "unconnected_port_" + e.FromPort}
				ports[src][e.FromPort] = p
			}
			p.targets = append(p.targets, t)
		}
	}
	j.buildTaps(ports)
	for _, nr := range j.nodes {
		for i, in := range nr.instances {
			in.nc = &NodeContext{
				Job: opts.Job, Node: nr.n.ID, Type: nr.n.Type, Instance: i, Instances: len(nr.instances),
				Symbols: j.symbols, Pool: md.NewPool(opts.BatchSize), Feedback: opts.Feedback, Stats: newNodeStats(),
				Logger: opts.Logger.With("node", nr.n.ID), SourceTotals: j.SourceTotals,
				Progress: opts.Progress, Fingerprint: opts.Fingerprint, Stdout: opts.Stdout,
				metrics: &NodeMetrics{set: j.metrics, node: nr.n.ID, typ: nr.n.Type, instance: i},
				Inputs:  nr.n.inKind, InputSchemas: nr.n.inSchemas,
			}
			if c := opts.Checkpoint; c != nil {
				in.nc.Checkpointing = true
				if c.Restore != nil {
					in.nc.RestoreID = c.Restore.ID
				}
			}
			if len(nr.instances) > 1 {
				in.nc.Logger = in.nc.Logger.With("instance", i)
			}
			in.nc.Stats.log = in.nc.Logger
			in.out = newOutput(j.abortCtx, in.nc, ports[in])
			in.out.in = in
			if nr.n.Kind == KindSource {
				in.out.source = true
				in.out.ooo = nr.n.MaxOutOfOrderness.Nanoseconds()
				if nr.n.IdleTimeout > 0 {
					in.out.mu = &sync.Mutex{}
				}
			}
			impl, err := construct(nr.n, i)
			if err != nil {
				if pe := (*PanicError)(nil); errors.As(err, &pe) {
					opts.Logger.Error("node constructor panicked", "node", nr.n.ID, "instance", i, "err", err, "stack", string(pe.Stack))
				}
				return nil, &NodeError{Node: nr.n.ID, Instance: i, Err: err}
			}
			if impl == nil {
				return nil, fmt.Errorf("node %q: component %s returned no instance", nr.n.ID, nr.n.Type)
			}
			in.impl = impl
			if os, ok := impl.(OrderedSource); ok && nr.n.Kind == KindSource {
				err := in.guard("EventTimeOrdered", func() error {
					in.out.ordered = os.EventTimeOrdered()
					return nil
				})
				if err != nil {
					return nil, &NodeError{Node: nr.n.ID, Instance: i, Err: err}
				}
			}
			if opts.Checkpoint != nil && nr.n.Kind == KindSource {
				ck := &sourceCk{mode: ResumeLive}
				if sk, ok := impl.(Seeker); ok {
					ck.seeker, ck.mode = sk, ResumeSeek
				}
				in.out.ck = ck
			}
		}
	}
	j.wireChains(byID)
	if opts.Checkpoint != nil {
		j.ck = newCoordinator(j, *opts.Checkpoint)
		for _, nr := range j.nodes {
			impl := nr.instances[0].impl
			_, snap := impl.(Snapshotter)
			_, bh := impl.(BarrierHandler)
			_, wh := impl.(WatermarkHandler)
			_, th := impl.(TimerHandler)
			if nr.n.Kind == KindOperator && !snap && !bh && (wh || th) {
				opts.Logger.Warn("this operator keeps no state in checkpoints: after a restore it starts empty", "node", nr.n.ID, "type", nr.n.Type)
			}
		}
	}
	return j, nil
}

// shapeString renders a graph shape as "id (type), …".
func shapeString(es []GraphEntry) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.ID + " (" + e.Type + ")"
	}
	return strings.Join(parts, ", ")
}

// construct calls the node's constructor (NewSource for a source,
// NewProcessor otherwise), turning a panic into an error.
func construct(n *Node, instance int) (impl any, err error) {
	defer func() {
		if r := recover(); r != nil {
			impl, err = nil, &PanicError{Op: "New", Value: r, Stack: debug.Stack()}
		}
	}()
	switch {
	case n.Kind == KindSource && n.NewSource != nil && n.NewProcessor == nil:
		return n.NewSource(instance)
	case n.Kind != KindSource && n.NewProcessor != nil && n.NewSource == nil:
		return n.NewProcessor(instance)
	case n.Kind == KindSource:
		return nil, errors.New("a source sets NewSource and not NewProcessor")
	}
	return nil, errors.New("an operator or a sink sets NewProcessor and not NewSource")
}

// Symbols is the job's symbol table.
func (j *Job) Symbols() *md.SymbolTable { return j.symbols }

// Metrics is the set of series the job's components registered.
func (j *Job) Metrics() *MetricSet { return j.metrics }

// SourceTotals returns the records all sources emitted and the wall-clock
// time (ns) the first of them was emitted (0 if none yet).
func (j *Job) SourceTotals() (events int64, firstAt int64) {
	for _, nr := range j.nodes {
		if nr.n.Kind != KindSource {
			continue
		}
		for _, in := range nr.instances {
			events += in.nc.Stats.EventsOut.Load()
			if f := in.nc.Stats.FirstEventAt.Load(); f != 0 && (firstAt == 0 || f < firstAt) {
				firstAt = f
			}
		}
	}
	return events, firstAt
}

// Ready reports whether every node instance that implements Readiness is
// ready (a live source that has connected once).
func (j *Job) Ready() bool {
	for _, nr := range j.nodes {
		for _, in := range nr.instances {
			if r, ok := in.impl.(Readiness); ok && !r.Ready() {
				return false
			}
		}
	}
	return true
}

// NodeSummary sums the Summary counts of node id's instances (nil when
// the node does not implement Summarizer).
func (j *Job) NodeSummary(id string) map[string]int64 {
	var out map[string]int64
	for _, nr := range j.nodes {
		if nr.n.ID != id {
			continue
		}
		for _, in := range nr.instances {
			sm, ok := in.impl.(Summarizer)
			if !ok {
				continue
			}
			if out == nil {
				out = map[string]int64{}
			}
			for k, v := range sm.Summary() {
				out[k] += v
			}
		}
	}
	return out
}

// NodeContexts returns the context of every instance of node id (for tests
// and components that inspect a running job).
func (j *Job) NodeContexts(id string) []*NodeContext {
	for _, nr := range j.nodes {
		if nr.n.ID == id {
			out := make([]*NodeContext, len(nr.instances))
			for i, in := range nr.instances {
				out[i] = in.nc
			}
			return out
		}
	}
	return nil
}

// Start opens every node in reverse topological order (sinks first, so a
// store that cannot be reached fails the job before any data flows, and a
// node's consumers are open before it) and starts one goroutine per
// instance. If an Open fails, every instance opened before it gets its
// Cleanup (latest first) and no node runs. Cancelling ctx stops the job
// gracefully, like Stop.
func (j *Job) Start(ctx context.Context) error {
	if !j.started.CompareAndSwap(false, true) {
		return errors.New("job already started")
	}
	var opened []*instance
	for _, nr := range j.opening {
		for _, in := range nr.instances {
			if op, ok := in.impl.(Opener); ok {
				err := in.guard("Open", func() error { return op.Open(ctx, in.nc) })
				if err != nil {
					if !errors.As(err, new(*PanicError)) {
						err = fmt.Errorf("open: %w", err)
					}
					j.logFailure("node failed to open", in, err)
					err = &NodeError{Node: in.nc.Node, Instance: in.idx, Err: err}
					in.state.Store("failed")
					in.nc.Stats.Error("failed", err.Error())
					j.setErr(err)
					j.abort(err)
					for k := len(opened) - 1; k >= 0; k-- {
						if cerr := opened[k].cleanup(); cerr != nil {
							j.opts.Logger.Error("cleanup failed", "node", opened[k].nc.Node, "instance", opened[k].idx, "err", cerr)
						}
					}
					close(j.done)
					return err
				}
			}
			in.opened = true
			opened = append(opened, in)
		}
	}
	if j.ck != nil && j.opts.Checkpoint.Restore != nil {
		if err := j.restore(ctx, j.opts.Checkpoint.Restore); err != nil {
			j.opts.Logger.Error("restore failed", "err", err)
			j.setErr(err)
			j.abort(err)
			for k := len(opened) - 1; k >= 0; k-- {
				if cerr := opened[k].cleanup(); cerr != nil {
					j.opts.Logger.Error("cleanup failed", "node", opened[k].nc.Node, "instance", opened[k].idx, "err", cerr)
				}
			}
			close(j.done)
			return err
		}
		j.opts.Logger.Info("restored from checkpoint", "id", j.opts.Checkpoint.Restore.ID, "taken", j.opts.Checkpoint.Restore.Time)
	}
	// The checkpoint coordinator stops after the last instance and before
	// Done closes, so no checkpoint is saved after Wait has returned.
	stopCk, ckDone := func() {}, make(chan struct{})
	if j.ck != nil {
		var ckCtx context.Context
		ckCtx, stopCk = context.WithCancel(context.WithoutCancel(j.abortCtx))
		go func() {
			defer close(ckDone)
			j.ck.run(ckCtx)
		}()
	} else {
		close(ckDone)
	}
	for _, nr := range j.nodes {
		for _, in := range nr.instances {
			if in.upstream != nil {
				continue // runs in its upstream's goroutine
			}
			j.wg.Add(1)
			go in.run()
		}
	}
	go func() {
		select {
		case <-ctx.Done():
			j.Stop()
		case <-j.done:
		}
	}()
	go func() {
		j.wg.Wait()
		stopCk()
		<-ckDone
		close(j.done)
	}()
	return nil
}

// Run starts the job and waits for it. Cancelling ctx stops it gracefully.
func (j *Job) Run(ctx context.Context) error {
	if err := j.Start(ctx); err != nil {
		return err
	}
	return j.Wait()
}

// Wait blocks until every node has finished and returns the job's error.
func (j *Job) Wait() error {
	<-j.done
	return j.Err()
}

// Done is closed when the job has finished.
func (j *Job) Done() <-chan struct{} { return j.done }

// Err is the job's error: the first node failure, ErrAborted, or nil.
func (j *Job) Err() error {
	j.errMu.Lock()
	defer j.errMu.Unlock()
	return j.err
}

// Stop stops the sources; everything already emitted drains through the
// graph, open windows flush and sinks close. Wait returns when that is done.
func (j *Job) Stop() {
	j.stopSources()
}

// Abort ends the job without draining; Wait returns ErrAborted.
func (j *Job) Abort() {
	j.setErr(ErrAborted)
	j.abort(ErrAborted)
}

func (j *Job) setErr(err error) {
	j.errMu.Lock()
	if j.err == nil {
		j.err = err
	}
	j.errMu.Unlock()
}

func (j *Job) fail(in *instance, err error) {
	in.state.Store("failed")
	in.nc.Stats.Error("failed", err.Error())
	ne := &NodeError{Node: in.nc.Node, Instance: in.idx, Err: err}
	j.setErr(ne)
	j.logFailure("node failed", in, err)
	j.abort(ne)
}

// logFailure logs a node's error, with the stack when it was a panic.
func (j *Job) logFailure(msg string, in *instance, err error) {
	args := []any{"node", in.nc.Node, "instance", in.idx, "err", err}
	if pe := (*PanicError)(nil); errors.As(err, &pe) {
		args = append(args, "stack", string(pe.Stack))
	}
	j.opts.Logger.Error(msg, args...)
}

// guard calls f as node method op, turning a panic into a *PanicError.
func (in *instance) guard(op string, f func() error) (err error) {
	in.op = op
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Op: in.op, Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

// cleanup calls the instance's Cleanup once, if it was opened.
func (in *instance) cleanup() error {
	if !in.opened || in.cleaned {
		return nil
	}
	in.cleaned = true
	c, ok := in.impl.(Cleaner)
	if !ok {
		return nil
	}
	ctx := context.WithoutCancel(in.job.abortCtx)
	err := in.guard("Cleanup", func() error { return c.Cleanup(ctx) })
	if err != nil && !errors.As(err, new(*PanicError)) {
		err = fmt.Errorf("cleanup: %w", err)
	}
	return err
}

func (in *instance) run() {
	defer in.job.wg.Done()
	in.nc.Stats.StartedAt.Store(time.Now().UnixNano())
	in.state.Store("running")
	in.startChain()
	err := in.guard("Run", func() error {
		if in.node.n.Kind == KindSource {
			return in.runSource()
		}
		return in.runProcessor()
	})
	in.finish(err)
	in.endChain()
}

// finish ends an instance that stopped with err: it fails the job unless
// the job was aborted, calls Cleanup and sets the instance's final state.
func (in *instance) finish(err error) {
	defer func() { in.nc.Stats.EndedAt.Store(time.Now().UnixNano()) }()
	in.ended = true
	// Stopped because the job was aborted or another node failed.
	aborted := err != nil && in.job.abortCtx.Err() != nil && (errors.Is(err, context.Canceled) ||
		errors.Is(err, ErrAborted) || errors.Is(err, context.Cause(in.job.abortCtx)))
	if err != nil && !aborted {
		in.job.fail(in, err)
	}
	cerr := in.cleanup()
	in.nc.Stats.FlushDropLog()
	switch {
	case err == nil && cerr == nil:
		in.state.Store("done")
	case err == nil:
		in.job.fail(in, cerr)
	case aborted:
		in.state.Store("aborted")
		fallthrough
	default:
		if cerr != nil {
			in.nc.Logger.Error("cleanup failed", "err", cerr)
		}
	}
}

func (in *instance) runSource() error {
	src := in.impl.(Source)
	if in.node.n.IdleTimeout > 0 {
		// The idle loop has stopped when runSource returns, so Cleanup never
		// runs alongside the source's EventNow.
		stop, stopped := make(chan struct{}), make(chan struct{})
		defer func() {
			close(stop)
			<-stopped
		}()
		go func() {
			defer close(stopped)
			in.idleLoop(stop)
		}()
	}
	in.op = "Run"
	err := src.Run(in.job.srcCtx, in.out)
	if in.job.ck != nil {
		in.job.ck.sourceEnded()
	}
	if err != nil && !(in.job.srcCtx.Err() != nil && errors.Is(err, context.Canceled)) {
		return err
	}
	if in.job.abortCtx.Err() != nil {
		return context.Cause(in.job.abortCtx)
	}
	if c, ok := in.impl.(Closer); ok {
		in.op = "Close"
		if err := c.Close(in.job.abortCtx, in.out); err != nil {
			return fmt.Errorf("close: %w", err)
		}
	}
	if in.out.mu != nil {
		in.out.mu.Lock()
		defer in.out.mu.Unlock()
	}
	in.nc.Stats.Watermark.Store(md.MaxTime)
	return in.out.close()
}

func (in *instance) idleLoop(stop <-chan struct{}) {
	defer func() {
		if r := recover(); r != nil { // in the source's EventNow
			in.job.fail(in, &PanicError{Op: "EventNow", Value: r, Stack: debug.Stack()})
		}
	}()
	idle := in.node.n.IdleTimeout
	tick := time.NewTicker(max(idle/4, time.Millisecond))
	defer tick.Stop()
	clock, _ := in.impl.(EventClock)
	for {
		select {
		case <-stop:
			return
		case <-in.job.abortCtx.Done():
			return
		case now := <-tick.C:
			last := in.out.lastEmit.Load()
			if now.UnixNano()-last < idle.Nanoseconds() {
				continue
			}
			evNow := now.UnixNano()
			if clock != nil {
				evNow = clock.EventNow()
			}
			if err := in.out.idleAdvance(evNow); err != nil {
				return
			}
		}
	}
}

func (in *instance) runProcessor() error {
	p := in.newProcLoop()
	var timerC <-chan time.Time
	if p.th != nil {
		in.op = "TimerInterval"
		if d := p.th.TimerInterval(); d > 0 {
			t := time.NewTicker(d)
			defer t.Stop()
			timerC = t.C
		}
	}
	for {
		idx, m, now, err := p.box.recv(p.ctx, timerC)
		if err != nil {
			return context.Cause(p.ctx)
		}
		if idx < 0 { // timer
			t0, before := time.Now(), in.chainNs
			in.op = "OnTimer"
			err := p.th.OnTimer(p.ctx, now, p.out)
			p.st.BusyNs.Add(time.Since(t0).Nanoseconds() - (in.chainNs - before))
			if err != nil {
				return fmt.Errorf("timer: %w", err)
			}
			continue
		}
		if done, err := p.handle(idx, m); done || err != nil {
			return err
		}
	}
}

// procLoop is a processor instance's input state: what its goroutine's
// loop (runProcessor) or, for a chained instance, its upstream's sends
// (instance.deliver) feed with each message.
type procLoop struct {
	in     *instance
	ctx    context.Context
	proc   Processor
	pp     PortProcessor
	inPort []int // the input port of each queue
	wh     WatermarkHandler
	holder WatermarkHolder
	th     TimerHandler
	st     *NodeStats
	out    *Output
	policy ErrorPolicy
	box    *inbox
	inWM   []int64 // per input: its watermark
	cur    int64   // the node's input watermark: the least of inWM
	eos    int     // inputs that ended
	al     *aligner
}

func (in *instance) newProcLoop() *procLoop {
	p := &procLoop{in: in, ctx: in.job.abortCtx, proc: in.impl.(Processor), inPort: in.node.inPorts[in.idx],
		st: in.nc.Stats, out: in.out, policy: in.node.n.OnError, cur: minTime}
	p.pp, _ = in.impl.(PortProcessor)
	p.wh, _ = in.impl.(WatermarkHandler)
	p.holder, _ = in.impl.(WatermarkHolder)
	p.th, _ = in.impl.(TimerHandler)
	p.box = newInbox(in.node.inQueues[in.idx])
	p.inWM = make([]int64, len(p.box.qs))
	for i := range p.inWM {
		p.inWM[i] = minTime
	}
	p.al = &aligner{got: make([]bool, len(p.box.qs))}
	if in.job.ck != nil {
		p.al.gauge = in.nc.metrics.Gauge("mdp_checkpoint_alignment_seconds",
			"Time the last checkpoint barrier took to pass all of the node's inputs (the largest over its instances).", MaxAcrossInstances())
	}
	return p
}

// handle acts on message m from input idx: a checkpoint barrier, a batch
// and its watermark, or end of stream. done is true once every input has
// ended and the node has closed its output.
func (p *procLoop) handle(idx int, m message) (done bool, err error) {
	in, st, out, ctx := p.in, p.st, p.out, p.ctx
	if m.barrier != 0 {
		in.onBarrier(p.al, p.box, idx, m.barrier)
		if p.al.aligned(p.eos) {
			if err := in.completeBarrier(ctx, p.al, p.box); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	// One clock reading between the callbacks: the end of Process is the
	// time the watermark advanced and the start of OnWatermark (a reading
	// costs 20-80 ns on a VM's clock, on every batch of every node). The
	// first and last readings make the message's span, which a chained
	// instance's upstream counts as chained time (queue.deliver).
	var t0, t time.Time
	in.span = 0
	if m.b != nil {
		n := int64(m.b.Len())
		st.EventsIn.Add(n)
		st.BatchesIn.Add(1)
		t0 = time.Now()
		t = t0
		if st.FirstEventAt.Load() == 0 {
			st.FirstEventAt.Store(t0.UnixNano())
		}
		before := in.chainNs
		var perr error
		if p.pp != nil {
			in.op = "ProcessPort"
			perr = p.pp.ProcessPort(ctx, p.inPort[idx], m.b, out)
		} else {
			in.op = "Process"
			perr = p.proc.Process(ctx, m.b, out)
		}
		// Time spent in chained downstream nodes is theirs, not this node's.
		t = time.Now()
		st.BusyNs.Add(t.Sub(t0).Nanoseconds() - (in.chainNs - before))
		if perr != nil {
			if err := in.onError(m.b, perr, p.policy); err != nil {
				m.b.Release()
				return false, err
			}
		}
		m.b.Release()
	}
	if m.wm > p.inWM[idx] {
		p.inWM[idx] = m.wm
		low := p.inWM[0]
		for _, w := range p.inWM[1:] {
			low = min(low, w)
		}
		if low > p.cur {
			p.cur = low
			if t.IsZero() {
				t = time.Now()
				t0 = t
			}
			st.Watermark.Store(p.cur)
			st.WatermarkAt.Store(t.UnixNano())
			fw := p.cur
			if p.wh != nil {
				tw, before := t, in.chainNs
				in.op = "OnWatermark"
				err := p.wh.OnWatermark(ctx, p.cur, out)
				t = time.Now()
				st.BusyNs.Add(t.Sub(tw).Nanoseconds() - (in.chainNs - before))
				if err != nil {
					return false, fmt.Errorf("watermark: %w", err)
				}
			}
			if p.holder != nil && p.cur != md.MaxTime {
				in.op = "OutputWatermark"
				fw = min(p.holder.OutputWatermark(p.cur), p.cur)
			}
			cAt := in.chainNs
			if err := out.advance(fw); err != nil {
				return false, err
			}
			// A chained downstream's handling of the watermark ran after the
			// last reading: its span is in chainNs.
			in.span = in.chainNs - cAt
		}
	}
	if !t.IsZero() {
		in.span += t.Sub(t0).Nanoseconds()
	}
	if m.eos {
		p.eos++
		p.box.closeInput(idx)
		if p.al.aligned(p.eos) {
			if err := in.completeBarrier(ctx, p.al, p.box); err != nil {
				return false, err
			}
		}
		if p.eos == len(p.box.qs) {
			if c, ok := in.impl.(Closer); ok {
				in.op = "Close"
				if err := c.Close(ctx, out); err != nil {
					return false, fmt.Errorf("close: %w", err)
				}
			}
			return true, out.close()
		}
	}
	return false, nil
}

// onError applies the node's error policy to a failed batch. A nil return
// means the job goes on.
func (in *instance) onError(b *md.Batch, err error, policy ErrorPolicy) error {
	if errors.Is(err, context.Canceled) && in.job.abortCtx.Err() != nil {
		return err
	}
	switch policy {
	case OnErrorSkip:
		in.nc.Stats.Error("skipped", err.Error())
		in.nc.Stats.Drop("error", int64(b.Len()))
		in.nc.Logger.Warn("batch skipped after error", "records", b.Len(), "err", err)
		return nil
	case OnErrorDeadLetter:
		in.nc.Stats.Error("dead_lettered", err.Error())
		dl := b.Clone()
		dl.Reason = err.Error()
		in.nc.Logger.Warn("batch dead-lettered after error", "records", b.Len(), "err", err)
		return in.out.EmitTo(PortDeadLetter, dl)
	}
	return err
}

// spinPolls is how many times a node polls its empty input, yielding in
// between, before it parks; about ten microseconds on an idle core.
const spinPolls = 50

// inbox receives from a node instance's input queues.
type inbox struct {
	qs    []*queue
	cases []reflect.SelectCase // used with more than one input
	next  int                  // the input polled first, round robin
}

func newInbox(qs []*queue) *inbox {
	b := &inbox{qs: qs}
	if len(qs) > 1 {
		for _, q := range qs {
			b.cases = append(b.cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(q.ch)})
		}
		b.cases = append(b.cases, reflect.SelectCase{Dir: reflect.SelectRecv}, reflect.SelectCase{Dir: reflect.SelectRecv})
	}
	return b
}

func (b *inbox) closeInput(i int) {
	if b.cases != nil {
		b.cases[i].Chan = reflect.Value{}
	}
}

// block stops receiving from input i (it delivered a checkpoint barrier the
// other inputs have not yet). With one input there is nothing to block: the
// barrier is aligned as it arrives.
func (b *inbox) block(i int) {
	if b.cases != nil {
		b.cases[i].Chan = reflect.Value{}
	}
}

// unblock receives from input i again.
func (b *inbox) unblock(i int) {
	if b.cases != nil {
		b.cases[i].Chan = reflect.ValueOf(b.qs[i].ch)
	}
}

// recv returns the input index and message, or index -1 and the time when
// the timer fired, or an error when ctx ends. Once ctx has ended it returns
// the error even when messages are waiting: an aborted job does not work
// through what its queues still hold (a drain is Stop's, not Abort's).
func (b *inbox) recv(ctx context.Context, timer <-chan time.Time) (int, message, time.Time, error) {
	if len(b.qs) == 1 {
		// Fast path: one input, no reflection. Poll briefly before parking:
		// a batch usually follows within microseconds on a busy stream, and
		// a parked goroutine costs a futex wake-up per batch to restart.
		ch := b.qs[0].ch
		for range spinPolls {
			select {
			case m := <-ch:
				return b.take(ctx, 0, m)
			default:
			}
			runtime.Gosched()
		}
		select {
		case m := <-b.qs[0].ch:
			return b.take(ctx, 0, m)
		case now := <-timer:
			return -1, message{}, now, nil
		case <-ctx.Done():
			return 0, message{}, time.Time{}, ctx.Err()
		}
	}
	// Several inputs: poll them in turn (from where the last poll left
	// off, so none starves) before parking in reflect.Select, as the fast
	// path does for one: a parked receiver costs a wake-up per batch.
	n := len(b.qs)
	for range spinPolls {
		for k := range n {
			i := (b.next + k) % n
			if !b.cases[i].Chan.IsValid() { // blocked by a barrier, or ended
				continue
			}
			select {
			case m := <-b.qs[i].ch:
				b.next = (i + 1) % n
				return b.take(ctx, i, m)
			default:
			}
		}
		runtime.Gosched()
	}
	b.cases[n].Chan = reflect.ValueOf(ctx.Done())
	if timer != nil {
		b.cases[n+1].Chan = reflect.ValueOf(timer)
	} else {
		b.cases[n+1].Chan = reflect.Value{}
	}
	i, v, _ := reflect.Select(b.cases)
	switch {
	case i < n:
		return b.take(ctx, i, v.Interface().(message))
	case i == n:
		return 0, message{}, time.Time{}, ctx.Err()
	}
	return -1, message{}, v.Interface().(time.Time), nil
}

// take returns message m from input i unless ctx has ended (one atomic load
// per message): then it releases m's batch and returns ctx's error, so a
// ready message never wins over an abort.
func (b *inbox) take(ctx context.Context, i int, m message) (int, message, time.Time, error) {
	if err := ctx.Err(); err != nil {
		if m.b != nil {
			m.b.Release()
		}
		return 0, message{}, time.Time{}, err
	}
	return i, m, time.Time{}, nil
}
