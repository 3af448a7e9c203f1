package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
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
	Job       string // job name, for logs, status and metrics
	Logger    *slog.Logger
	Symbols   *md.SymbolTable // nil: a new table
	BatchSize int             // default record capacity of pooled batches
	Feedback  *Feedback       // nil: feedback disabled
	// Progress is how this job's sources report their progress.
	Progress ProgressOptions
}

// NodeError is a node failure: which node and instance, and why.
type NodeError struct {
	Node     string
	Instance int
	Err      error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %v", e.Node, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

// Job is a graph instantiated and wired, ready to start. A Job runs once.
type Job struct {
	opts    Options
	graph   *Graph
	nodes   []*nodeRun
	edges   []*edgeState
	symbols *md.SymbolTable
	pool    *md.Pool

	abortCtx    context.Context
	abort       context.CancelCauseFunc
	stopSources context.CancelFunc
	srcCtx      context.Context

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
}

type instance struct {
	job   *Job
	node  *nodeRun
	idx   int
	impl  any
	nc    *NodeContext
	out   *Output
	state atomic.Value // string
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
	if opts.Symbols == nil {
		opts.Symbols = md.NewSymbolTable()
	}
	j := &Job{opts: opts, graph: g, symbols: opts.Symbols, pool: md.NewPool(opts.BatchSize), done: make(chan struct{})}
	j.abortCtx, j.abort = context.WithCancelCause(context.Background())
	j.srcCtx, j.stopSources = context.WithCancel(j.abortCtx)

	byID := map[string]*nodeRun{}
	for _, n := range g.Nodes {
		p := max(n.Parallelism, 1)
		nr := &nodeRun{n: n, instances: make([]*instance, p), inQueues: make([][]*queue, p)}
		byID[n.ID] = nr
		j.nodes = append(j.nodes, nr)
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
		for _, src := range from.instances {
			t := &target{edge: es}
			for ri := range to.instances {
				q := &queue{ch: make(chan message, capacity), edge: es}
				es.queues = append(es.queues, q)
				t.qs = append(t.qs, q)
				to.inQueues[ri] = append(to.inQueues[ri], q)
			}
			p := ports[src][e.FromPort]
			if p == nil { // an implicit port such as dead_letter
				p = &port{name: e.FromPort, dropKey: "unconnected_port_" + e.FromPort}
				ports[src][e.FromPort] = p
			}
			p.targets = append(p.targets, t)
		}
	}
	for _, nr := range j.nodes {
		for i, in := range nr.instances {
			in.nc = &NodeContext{
				Job: opts.Job, Node: nr.n.ID, Type: nr.n.Type, Instance: i, Instances: len(nr.instances),
				Symbols: j.symbols, Pool: j.pool, Feedback: opts.Feedback, Stats: newNodeStats(),
				Logger: opts.Logger.With("node", nr.n.ID), SourceTotals: j.SourceTotals,
				Progress: opts.Progress,
			}
			if len(nr.instances) > 1 {
				in.nc.Logger = in.nc.Logger.With("instance", i)
			}
			in.out = newOutput(j.abortCtx, in.nc, ports[in])
			if nr.n.Kind == KindSource {
				in.out.source = true
				in.out.ooo = nr.n.MaxOutOfOrderness.Nanoseconds()
				if nr.n.IdleTimeout > 0 {
					in.out.mu = &sync.Mutex{}
				}
			}
			impl, err := nr.n.New(i)
			if err != nil {
				return nil, fmt.Errorf("node %q: %w", nr.n.ID, err)
			}
			switch nr.n.Kind {
			case KindSource:
				if _, ok := impl.(Source); !ok {
					return nil, fmt.Errorf("node %q: component %s is not a source", nr.n.ID, nr.n.Type)
				}
			default:
				if _, ok := impl.(Processor); !ok {
					return nil, fmt.Errorf("node %q: component %s is not a processor", nr.n.ID, nr.n.Type)
				}
			}
			in.impl = impl
			if os, ok := impl.(OrderedSource); ok && nr.n.Kind == KindSource {
				in.out.ordered = os.EventTimeOrdered()
			}
		}
	}
	return j, nil
}

// Symbols is the job's symbol table.
func (j *Job) Symbols() *md.SymbolTable { return j.symbols }

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

// Start opens every node (sinks first, so a store that cannot be reached
// fails the job before any data flows) and starts one goroutine per instance.
// Cancelling ctx stops the job gracefully, like Stop.
func (j *Job) Start(ctx context.Context) error {
	if !j.started.CompareAndSwap(false, true) {
		return errors.New("job already started")
	}
	var opened []*instance
	for i := len(j.nodes) - 1; i >= 0; i-- {
		for _, in := range j.nodes[i].instances {
			if op, ok := in.impl.(Opener); ok {
				if err := op.Open(ctx, in.nc); err != nil {
					j.abort(err)
					for _, o := range opened {
						if c, ok := o.impl.(Closer); ok {
							_ = c.Close(j.abortCtx, o.out)
						}
					}
					err = &NodeError{Node: in.nc.Node, Instance: in.idx, Err: fmt.Errorf("open: %w", err)}
					j.setErr(err)
					close(j.done)
					return err
				}
			}
			opened = append(opened, in)
		}
	}
	for _, nr := range j.nodes {
		for _, in := range nr.instances {
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
	j.opts.Logger.Error("node failed", "node", in.nc.Node, "instance", in.idx, "err", err)
	j.abort(ne)
}

func (in *instance) run() {
	defer in.job.wg.Done()
	in.state.Store("running")
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		if in.node.n.Kind == KindSource {
			err = in.runSource()
		} else {
			err = in.runProcessor()
		}
	}()
	switch {
	case err == nil:
		in.state.Store("done")
	case in.job.abortCtx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ErrAborted) ||
		errors.Is(err, context.Cause(in.job.abortCtx))):
		// Stopped because the job was aborted or another node failed.
		in.state.Store("aborted")
	default:
		in.job.fail(in, err)
	}
}

func (in *instance) runSource() error {
	src := in.impl.(Source)
	if in.node.n.IdleTimeout > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go in.idleLoop(stop)
	}
	err := src.Run(in.job.srcCtx, in.out)
	if err != nil && !(in.job.srcCtx.Err() != nil && errors.Is(err, context.Canceled)) {
		return err
	}
	if in.job.abortCtx.Err() != nil {
		return context.Cause(in.job.abortCtx)
	}
	if c, ok := in.impl.(Closer); ok {
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
	ctx := in.job.abortCtx
	proc := in.impl.(Processor)
	wh, _ := in.impl.(WatermarkHandler)
	holder, _ := in.impl.(WatermarkHolder)
	th, _ := in.impl.(TimerHandler)
	st := in.nc.Stats
	out := in.out
	policy := in.node.n.OnError

	var timerC <-chan time.Time
	if th != nil {
		if d := th.TimerInterval(); d > 0 {
			t := time.NewTicker(d)
			defer t.Stop()
			timerC = t.C
		}
	}
	box := newInbox(in.node.inQueues[in.idx])
	inWM := make([]int64, len(box.qs))
	for i := range inWM {
		inWM[i] = minTime
	}
	cur := int64(minTime)
	eos := 0
	for {
		idx, m, now, err := box.recv(ctx, timerC)
		if err != nil {
			return context.Cause(ctx)
		}
		if idx < 0 { // timer
			t0 := time.Now()
			err := th.OnTimer(ctx, now, out)
			st.BusyNs.Add(time.Since(t0).Nanoseconds())
			if err != nil {
				return fmt.Errorf("timer: %w", err)
			}
			continue
		}
		if m.b != nil {
			n := int64(m.b.Len())
			st.EventsIn.Add(n)
			st.BatchesIn.Add(1)
			if st.FirstEventAt.Load() == 0 {
				st.FirstEventAt.Store(time.Now().UnixNano())
			}
			t0 := time.Now()
			perr := proc.Process(ctx, m.b, out)
			st.BusyNs.Add(time.Since(t0).Nanoseconds())
			if perr != nil {
				if err := in.onError(m.b, perr, policy); err != nil {
					m.b.Release()
					return err
				}
			}
			m.b.Release()
		}
		if m.wm > inWM[idx] {
			inWM[idx] = m.wm
			low := inWM[0]
			for _, w := range inWM[1:] {
				low = min(low, w)
			}
			if low > cur {
				cur = low
				st.Watermark.Store(cur)
				st.WatermarkAt.Store(time.Now().UnixNano())
				fw := cur
				if wh != nil {
					t0 := time.Now()
					err := wh.OnWatermark(ctx, cur, out)
					st.BusyNs.Add(time.Since(t0).Nanoseconds())
					if err != nil {
						return fmt.Errorf("watermark: %w", err)
					}
				}
				if holder != nil && cur != md.MaxTime {
					fw = min(holder.OutputWatermark(cur), cur)
				}
				if err := out.advance(fw); err != nil {
					return err
				}
			}
		}
		if m.eos {
			eos++
			box.closeInput(idx)
			if eos == len(box.qs) {
				if c, ok := in.impl.(Closer); ok {
					if err := c.Close(ctx, out); err != nil {
						return fmt.Errorf("close: %w", err)
					}
				}
				return out.close()
			}
		}
	}
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

// recv returns the input index and message, or index -1 and the time when
// the timer fired, or an error when ctx ends.
func (b *inbox) recv(ctx context.Context, timer <-chan time.Time) (int, message, time.Time, error) {
	if len(b.qs) == 1 {
		// Fast path: one input, no reflection. Poll briefly before parking:
		// a batch usually follows within microseconds on a busy stream, and
		// a parked goroutine costs a futex wake-up per batch to restart.
		ch := b.qs[0].ch
		for range spinPolls {
			select {
			case m := <-ch:
				return 0, m, time.Time{}, nil
			default:
			}
			runtime.Gosched()
		}
		select {
		case m := <-b.qs[0].ch:
			return 0, m, time.Time{}, nil
		case now := <-timer:
			return -1, message{}, now, nil
		case <-ctx.Done():
			return 0, message{}, time.Time{}, ctx.Err()
		}
	}
	n := len(b.qs)
	b.cases[n].Chan = reflect.ValueOf(ctx.Done())
	if timer != nil {
		b.cases[n+1].Chan = reflect.ValueOf(timer)
	} else {
		b.cases[n+1].Chan = reflect.Value{}
	}
	i, v, _ := reflect.Select(b.cases)
	switch {
	case i < n:
		return i, v.Interface().(message), time.Time{}, nil
	case i == n:
		return 0, message{}, time.Time{}, ctx.Err()
	}
	return -1, message{}, v.Interface().(time.Time), nil
}
