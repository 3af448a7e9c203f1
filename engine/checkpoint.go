package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/md"
)

// Checkpoints (Flink's aligned barriers, in one process).
//
// Every interval the coordinator asks each source for barrier N. A source
// injects it at its next Emit, between two batches: it records its position
// (Seeker) and its watermark,
// and sends the barrier on every queue it feeds, behind the data. An operator
// or sink blocks each input that delivered barrier N until every input has
// (an input that has ended counts as delivered); then it makes what it
// accepted durable (Flusher; PreCommitter for a sink that publishes in two
// phases), snapshots its state (Snapshotter), forwards the barrier on every
// queue it feeds and acknowledges. Checkpoint N is complete
// when every instance has acknowledged; only then is it saved to the store,
// so a saved checkpoint never claims records whose results are not in the
// stores. With no checkpoint configured no barrier exists: the per-batch cost
// is one nil check at a source and one comparison per message at a receiver.

// CheckpointFormat is the version of the checkpoint encoding.
const CheckpointFormat = 1

// Seeker is a source that reports its position and resumes from one.
// Position is called on the source's goroutine, inside Emit, after the
// batch was sent: it describes everything emitted so far, as of checkpoint
// id. A source that commits or acknowledges what it read only once a
// checkpoint is complete (a message bus, through CheckpointListener) keeps
// what Position(id) covered under id and commits it when
// NotifyCheckpointComplete(id) arrives; ids grow, and a checkpoint that
// fails is never notified, so a later id covers it. Seek is called
// after Open and before Run with a position Position returned. A source
// that is not a Seeker cannot go back: after a restore it resumes live,
// and the job records the gap (its status and log).
type Seeker interface {
	Position(id int64) ([]byte, error)
	Seek(ctx context.Context, pos []byte) error
}

// Unbounded is implemented by sources that never end by themselves (a live
// feed, a generator without a count). A job with such a source and
// checkpoints on suspends on a graceful stop instead of draining.
type Unbounded interface {
	Unbounded() bool
}

// Snapshotter is an operator or sink with state to checkpoint. Snapshot
// runs on the instance's goroutine when the barrier has passed all its
// inputs and returns the state in a versioned encoding of the component's
// choice. Restore runs after Open, before any record, with the states of
// every instance of the node in the checkpoint (the parallelism may have
// changed): a keyed operator restores the keys it owns
// (keyed.Key.Owner(nc.Instances)).
type Snapshotter interface {
	Snapshot(ctx context.Context) ([]byte, error)
	Restore(ctx context.Context, states [][]byte) error
}

// BarrierHandler is an operator that holds records it has not emitted yet
// (a batcher): OnBarrier runs when a barrier has passed all its inputs,
// before Snapshot, and emits them so that they travel ahead of the barrier.
type BarrierHandler interface {
	OnBarrier(ctx context.Context, out *Output) error
}

// Flusher is a sink that makes everything it accepted durable on a
// checkpoint barrier: Flush returns once every record it was given before
// the barrier is in the store.
type Flusher interface {
	Flush(ctx context.Context) error
}

// PreCommitter is a sink that commits its output in two phases, as Flink's
// FileSink does. On checkpoint id's barrier PreCommit runs after Flush and
// before Snapshot: it makes everything the sink received before the
// barrier durable but not yet visible (pending under id), and Snapshot
// then records what is pending. When checkpoint id is complete and saved,
// NotifyCheckpointComplete(id) (CheckpointListener) makes pending output
// of id and earlier visible; a checkpoint that failed is never notified,
// so a later id covers its output. Restore (Snapshotter) publishes what
// the restored checkpoint covers and discards what came after it, which
// the replay from the checkpoint's source positions produces again.
type PreCommitter interface {
	PreCommit(ctx context.Context, id int64) error
}

// CheckpointListener is told when a checkpoint is complete and saved, for
// sources that commit offsets or acknowledge messages only then (a message
// bus) and sinks that publish pending output only then (PreCommitter). It
// is called before the checkpoint's waiters (Job.Checkpoint, Suspend) hear
// of it, and it is called from the coordinator's goroutine, concurrently with
// the node's other methods.
type CheckpointListener interface {
	NotifyCheckpointComplete(ctx context.Context, id int64) error
}

// Checkpoint is one complete checkpoint: what the store saves and a
// restore reads.
type Checkpoint struct {
	Format   int          `json:"format"`
	ID       int64        `json:"id"`
	Job      string       `json:"job"`
	Graph    string       `json:"graph"` // GraphFingerprint
	Time     time.Time    `json:"time"`  // when it completed
	Duration int64        `json:"duration_ns"`
	Final    bool         `json:"final,omitempty"` // taken to suspend the job
	Nodes    []NodeState  `json:"nodes"`
	Shape    []GraphEntry `json:"shape"` // the graph's node ids and types
	// SizeDecimals are the size decimals the job's symbol table knew when
	// the checkpoint completed (md.SymbolTable.SizeDecimals), by provider
	// and symbol text since ids differ between runs. A restore notes them
	// before any node restores, so a bar restored open whose symbol sends
	// nothing after the restore rounds its volume as the uninterrupted run
	// does. Absent in checkpoints written before it existed; those restore
	// with the decimals unknown until the sources see sizes again.
	SizeDecimals []SymbolDecimals `json:"size_decimals,omitempty"`
}

// GraphEntry is one node of a checkpointed graph.
type GraphEntry struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// SymbolDecimals is one instrument's size decimals in a checkpoint.
type SymbolDecimals struct {
	Provider string `json:"provider"`
	Symbol   string `json:"symbol"`
	Decimals int    `json:"decimals"`
}

// NodeState is one node's state in a checkpoint, per instance.
type NodeState struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Instances []InstanceState `json:"instances"`
}

// InstanceState is one instance's part of a checkpoint.
type InstanceState struct {
	State     []byte `json:"state,omitempty"`    // Snapshotter or Seeker bytes
	Watermark int64  `json:"watermark"`          // the watermark the instance had forwarded
	Emitted   int64  `json:"emitted,omitempty"`  // a source: records emitted
	Resume    string `json:"resume,omitempty"`   // a source: seek, rewind or live
	AlignNs   int64  `json:"align_ns,omitempty"` // time from first barrier to aligned
	Complete  bool   `json:"complete,omitempty"` // always true in a saved checkpoint
}

// Source resume modes.
const (
	ResumeSeek = "seek"
	ResumeLive = "live"
)

// CheckpointStore saves and loads checkpoints.
type CheckpointStore interface {
	// Save records c atomically: a crash while saving leaves the previous
	// checkpoint as the latest. It returns the bytes written.
	Save(ctx context.Context, c *Checkpoint) (int64, error)
}

// CheckpointOptions turn checkpoints on for a job.
type CheckpointOptions struct {
	Interval time.Duration // between checkpoints; > 0
	Store    CheckpointStore
	// TolerableFailures is how many checkpoints in a row may fail (a
	// snapshot or flush error, a store that cannot save, a timeout) before
	// the job fails: 0 tolerates none, -1 any.
	TolerableFailures int
	// Timeout is how long a checkpoint may take before it counts as
	// failed; 0 means ten intervals, at least 10s.
	Timeout time.Duration
	// Restore, when set, is the checkpoint the job resumes from.
	Restore *Checkpoint
	// AllowGraphChange restores a checkpoint of another graph by node id.
	AllowGraphChange bool
	// OwnInstanceState restores each instance of an operator or a sink
	// from its own index's state in Restore only, instead of from every
	// instance's; the checkpoint must then hold as many instances of the
	// node as the job runs. A scale-out worker sets it: its operators run
	// one instance per partition, and each instance's state comes from
	// that partition's own checkpoint, taken at its own stream position.
	OwnInstanceState bool
}

// ErrGraphChanged is returned by New when the checkpoint to restore was
// taken from another graph and AllowGraphChange is not set.
var ErrGraphChanged = errors.New("the checkpoint was taken from another graph")

// GraphFingerprint hashes the graph's node ids and types (not their
// parallelism or params): a checkpoint restores into a graph with the same
// fingerprint.
func GraphFingerprint(g *Graph) string {
	es := graphShape(g)
	h := sha256.New()
	for _, e := range es {
		fmt.Fprintf(h, "%s\x00%s\x00", e.ID, e.Type)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func graphShape(g *Graph) []GraphEntry {
	es := make([]GraphEntry, len(g.Nodes))
	for i, n := range g.Nodes {
		es[i] = GraphEntry{ID: n.ID, Type: n.Type}
	}
	slices.SortFunc(es, func(a, b GraphEntry) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return es
}

// CheckpointStatus is what a job reports about its checkpoints.
type CheckpointStatus struct {
	Enabled       bool             `json:"enabled"`
	Last          int64            `json:"last_id"`
	LastAt        time.Time        `json:"last_time,omitzero"`
	LastDuration  int64            `json:"last_duration_ns"`
	LastSize      int64            `json:"last_size_bytes"`
	Completed     int64            `json:"completed"`
	Failed        int64            `json:"failed"`
	RestoredFrom  int64            `json:"restored_from,omitempty"`
	Gaps          []string         `json:"gaps,omitempty"` // live sources resumed with a gap
	Suspended     bool             `json:"suspended,omitempty"`
	AlignNsByNode map[string]int64 `json:"alignment_ns,omitempty"` // last checkpoint, max over instances
}

// barrierAck is one instance's acknowledgement of barrier id.
type barrierAck struct {
	id    int64
	in    *instance
	state InstanceState
	err   error
}

// sourceCk is a source output's side of the checkpoint protocol.
type sourceCk struct {
	want    atomic.Int64 // latest barrier requested
	done    int64        // latest barrier injected (source goroutine)
	emitted int64        // records emitted (source goroutine)
	seeker  Seeker
	mode    string
}

// coordinator triggers checkpoints, collects acknowledgements and saves.
type coordinator struct {
	j     *Job
	opts  CheckpointOptions
	acks  chan barrierAck
	total int // instances that acknowledge each checkpoint

	// finalID is the id of the checkpoint taken to suspend the job: a
	// source parks after injecting its barrier, so nothing flows past it.
	finalID atomic.Int64
	release chan struct{} // closed when the final checkpoint failed: sources go on

	mu        sync.Mutex
	status    CheckpointStatus
	next      int64
	inflight  *inflight
	ended     bool // a source ended: no further checkpoint can complete
	failedRow int
	waiters   map[int64][]chan error

	mCompleted, mFailed *Counter
	mLastID, mLastTime  *Gauge
	mLastDur, mLastSize *Gauge
}

type inflight struct {
	id      int64
	started time.Time
	final   bool
	states  map[*instance]InstanceState
}

func newCoordinator(j *Job, opts CheckpointOptions) *coordinator {
	c := &coordinator{j: j, opts: opts, acks: make(chan barrierAck, 64), waiters: map[int64][]chan error{}, release: make(chan struct{})}
	if c.opts.Timeout <= 0 {
		c.opts.Timeout = max(10*opts.Interval, 10*time.Second)
	}
	for _, nr := range j.nodes {
		c.total += len(nr.instances)
	}
	c.status.Enabled = true
	m := j.metrics.For("checkpoint", "engine.checkpoint", 0)
	c.mCompleted = m.Counter("mdp_checkpoint_completed_total", "Checkpoints completed and saved.")
	c.mFailed = m.Counter("mdp_checkpoint_failed_total", "Checkpoints that failed (snapshot, flush, store or timeout).")
	c.mLastID = m.Gauge("mdp_checkpoint_last_id", "Id of the last completed checkpoint.")
	c.mLastTime = m.Gauge("mdp_checkpoint_last_timestamp_seconds", "Unix time the last checkpoint completed.")
	c.mLastDur = m.Gauge("mdp_checkpoint_last_duration_seconds", "Time from trigger to saved of the last checkpoint.")
	c.mLastSize = m.Gauge("mdp_checkpoint_last_size_bytes", "Size of the last saved checkpoint.")
	return c
}

// run triggers checkpoints every interval and handles acks until ctx ends.
func (c *coordinator) run(ctx context.Context) {
	tick := time.NewTicker(c.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			for id, ws := range c.waiters {
				for _, w := range ws {
					w <- errors.New("the job ended before the checkpoint completed")
				}
				delete(c.waiters, id)
			}
			c.mu.Unlock()
			return
		case <-tick.C:
			c.mu.Lock()
			if c.inflight != nil && time.Since(c.inflight.started) > c.opts.Timeout {
				id := c.inflight.id
				c.inflight = nil
				c.mu.Unlock()
				c.fail(id, &CheckpointTimeoutError{ID: id, Timeout: c.opts.Timeout})
				c.mu.Lock()
			}
			if c.inflight == nil && !c.ended {
				c.triggerLocked(false)
			}
			c.mu.Unlock()
		case a := <-c.acks:
			c.ack(ctx, a)
		}
	}
}

// triggerLocked starts the next checkpoint at every source.
func (c *coordinator) triggerLocked(final bool) int64 {
	c.next++
	id := c.next
	c.inflight = &inflight{id: id, started: time.Now(), final: final, states: map[*instance]InstanceState{}}
	if final {
		c.finalID.Store(id)
	}
	for _, nr := range c.j.nodes {
		if nr.n.Kind != KindSource {
			continue
		}
		for _, in := range nr.instances {
			in.out.ck.want.Store(id)
		}
	}
	return id
}

// sourceEnded notes that a source finished: a checkpoint it has not
// joined can no longer complete, and none is started any more.
func (c *coordinator) sourceEnded() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
}

func (c *coordinator) ack(ctx context.Context, a barrierAck) {
	c.mu.Lock()
	f := c.inflight
	if f == nil || f.id != a.id {
		c.mu.Unlock()
		return // a checkpoint that already failed
	}
	if a.err != nil {
		c.inflight = nil
		c.mu.Unlock()
		c.fail(a.id, fmt.Errorf("node %q instance %d: %w", a.in.nc.Node, a.in.idx, a.err))
		return
	}
	f.states[a.in] = a.state
	if len(f.states) < c.total {
		c.mu.Unlock()
		return
	}
	c.inflight = nil
	c.mu.Unlock()

	cp := &Checkpoint{
		Format: CheckpointFormat, ID: f.id, Job: c.j.opts.Job, Graph: GraphFingerprint(c.j.graph),
		Time: time.Now().UTC(), Final: f.final, Shape: graphShape(c.j.graph),
		// Taken now, when every instance has acknowledged: decimals only
		// grow, so this covers every record before the barrier.
		SizeDecimals: sizeDecimals(c.j.symbols),
	}
	align := map[string]int64{}
	for _, nr := range c.j.nodes {
		ns := NodeState{ID: nr.n.ID, Type: nr.n.Type}
		for _, in := range nr.instances {
			st := f.states[in]
			st.Complete = true
			align[nr.n.ID] = max(align[nr.n.ID], st.AlignNs)
			ns.Instances = append(ns.Instances, st)
		}
		cp.Nodes = append(cp.Nodes, ns)
	}
	cp.Duration = time.Since(f.started).Nanoseconds()
	size, err := c.opts.Store.Save(ctx, cp)
	if err != nil {
		c.fail(f.id, fmt.Errorf("save checkpoint %d: %w", f.id, err))
		return
	}
	c.mu.Lock()
	c.failedRow = 0
	c.status.Last, c.status.LastAt, c.status.LastDuration, c.status.LastSize = cp.ID, cp.Time, cp.Duration, size
	c.status.Completed++
	c.status.AlignNsByNode = align
	ws := c.waiters[f.id]
	delete(c.waiters, f.id)
	c.mu.Unlock()
	c.mCompleted.Inc()
	c.mLastID.Set(float64(cp.ID))
	c.mLastTime.Set(float64(cp.Time.UnixNano()) / 1e9)
	c.mLastDur.Set(float64(cp.Duration) / 1e9)
	c.mLastSize.Set(float64(size))
	c.j.opts.Logger.Debug("checkpoint complete", "id", cp.ID, "duration", time.Duration(cp.Duration), "bytes", size)
	// Listeners first: a suspended job ends as soon as its waiter hears,
	// and what they commit belongs to the checkpoint.
	for _, nr := range c.j.nodes {
		for _, in := range nr.instances {
			if l, ok := in.impl.(CheckpointListener); ok {
				if err := in.guardQuiet(func() error { return l.NotifyCheckpointComplete(ctx, cp.ID) }); err != nil {
					c.j.opts.Logger.Warn("checkpoint listener failed", "node", in.nc.Node, "id", cp.ID, "err", err)
				}
			}
		}
	}
	for _, w := range ws {
		w <- nil
	}
}

// CheckpointTimeoutError is a checkpoint that did not complete within
// CheckpointOptions.Timeout: a barrier held up (a sink that cannot write,
// a drop_oldest edge that lost it), not a failed snapshot or store.
type CheckpointTimeoutError struct {
	ID      int64
	Timeout time.Duration
}

func (e *CheckpointTimeoutError) Error() string {
	return fmt.Sprintf("checkpoint %d timed out after %s", e.ID, e.Timeout)
}

// fail counts a failed checkpoint and fails the job past the tolerance.
func (c *coordinator) fail(id int64, err error) {
	c.mu.Lock()
	c.status.Failed++
	c.failedRow++
	row := c.failedRow
	ws := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	c.mFailed.Inc()
	if id == c.finalID.Load() {
		close(c.release)
	}
	for _, w := range ws {
		w <- err
	}
	c.j.opts.Logger.Warn("checkpoint failed", "id", id, "err", err, "failed_in_a_row", row, "tolerable_failures", c.opts.TolerableFailures)
	if c.opts.TolerableFailures >= 0 && row > c.opts.TolerableFailures {
		ce := fmt.Errorf("%d checkpoints in a row failed (tolerable_failures %d): %w", row, c.opts.TolerableFailures, err)
		c.j.setErr(ce)
		c.j.abort(ce)
	}
}

// triggerNow starts a checkpoint at once (or joins the one in flight when
// final is false) and returns a channel that receives its outcome.
func (c *coordinator) triggerNow(final bool) (int64, <-chan error) {
	ch := make(chan error, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		ch <- errors.New("a source has ended: the job is draining")
		return 0, ch
	}
	if c.inflight != nil {
		// Let the one in flight finish, then take ours after it: waiting
		// for it keeps barriers in order at every source.
		f := c.inflight
		f.final = f.final || final
		c.waiters[f.id] = append(c.waiters[f.id], ch)
		return f.id, ch
	}
	id := c.triggerLocked(final)
	c.waiters[id] = append(c.waiters[id], ch)
	return id, ch
}

// Status returns the checkpoint status.
func (c *coordinator) snapshotStatus() CheckpointStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Gaps = slices.Clone(s.Gaps)
	return s
}

// CheckpointStatus reports the job's checkpoints (Enabled false when off).
func (j *Job) CheckpointStatus() CheckpointStatus {
	if j.ck == nil {
		return CheckpointStatus{}
	}
	s := j.ck.snapshotStatus()
	s.Suspended = j.suspended.Load()
	return s
}

// Checkpoint takes a checkpoint now and waits until it is saved. It returns
// its id.
func (j *Job) Checkpoint(ctx context.Context) (int64, error) {
	if j.ck == nil {
		return 0, errors.New("checkpoints are not enabled for this job")
	}
	id, ch := j.ck.triggerNow(false)
	select {
	case err := <-ch:
		return id, err
	case <-ctx.Done():
		return id, ctx.Err()
	case <-j.done:
		return id, errors.New("the job ended before the checkpoint completed")
	}
}

// Unbounded reports whether any source says it never ends by itself.
func (j *Job) Unbounded() bool {
	for _, nr := range j.nodes {
		if nr.n.Kind != KindSource {
			continue
		}
		for _, in := range nr.instances {
			if u, ok := in.impl.(Unbounded); ok && u.Unbounded() {
				return true
			}
		}
	}
	return false
}

// Checkpointing reports whether the job takes checkpoints.
func (j *Job) Checkpointing() bool { return j.ck != nil }

// ErrSuspended is the cause of the cancellation that ends a suspended job;
// Wait returns nil for it.
var ErrSuspended = errors.New("job suspended after its final checkpoint")

// Suspend takes a final checkpoint, then ends the job without draining: open
// windows stay in the checkpoint and nothing partial is written. Wait then
// returns nil. If the checkpoint fails the job is not ended and the error
// is returned (the caller may drain with Stop instead).
func (j *Job) Suspend(ctx context.Context) (int64, error) {
	if j.ck == nil {
		return 0, errors.New("checkpoints are not enabled for this job")
	}
	id, ch := j.ck.triggerNow(true)
	var err error
	select {
	case err = <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	case <-j.done:
		err = errors.New("the job ended before the final checkpoint completed")
	}
	if err != nil {
		return id, fmt.Errorf("final checkpoint: %w", err)
	}
	j.suspended.Store(true)
	j.abort(ErrSuspended)
	return id, nil
}

// injectBarrier is called by a source output after it sent a batch, when
// a barrier was requested.
func (o *Output) injectBarrier(in *instance) error {
	ck := o.ck
	id := ck.want.Load()
	ck.done = id
	st := InstanceState{Watermark: o.wm, Emitted: ck.emitted, Resume: ck.mode}
	var err error
	if ck.seeker != nil {
		in.op = "Position"
		st.State, err = ck.seeker.Position(id)
		in.op = "Run"
	}
	if err == nil {
		err = o.broadcast(message{barrier: id, wm: o.wm})
		if err != nil {
			return err
		}
	}
	select {
	case in.job.ck.acks <- barrierAck{id: id, in: in, state: st, err: err}:
	case <-o.ctx.Done():
		return context.Cause(o.ctx)
	}
	if id == in.job.ck.finalID.Load() {
		// The job suspends at this barrier: emit nothing after it, so what
		// the stores hold ends exactly where the checkpoint does.
		select {
		case <-o.ctx.Done():
			return context.Cause(o.ctx)
		case <-in.job.ck.release:
		}
	}
	return nil
}

// guardQuiet runs f turning a panic into an error, without touching op.
func (in *instance) guardQuiet(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// aligner is a receiving instance's barrier alignment.
type aligner struct {
	id    int64
	got   []bool
	n     int
	start time.Time
	gauge *Gauge // mdp_checkpoint_alignment_seconds of the instance
}

// onBarrier handles barrier id arriving on input idx: it blocks the input
// until the others deliver it too.
func (in *instance) onBarrier(al *aligner, box *inbox, idx int, id int64) {
	if id < al.id {
		return // a stale barrier of a checkpoint already abandoned
	}
	if id > al.id {
		// A newer checkpoint supersedes one that never completed here.
		for i := range al.got {
			if al.got[i] {
				box.unblock(i)
			}
			al.got[i] = false
		}
		al.id, al.n, al.start = id, 0, time.Now()
	}
	if !al.got[idx] {
		al.got[idx] = true
		al.n++
		box.block(idx)
	}
}

// aligned reports whether the barrier in progress has passed every input.
func (al *aligner) aligned(eos int) bool { return al.id != 0 && al.n+eos >= len(al.got) }

// completeBarrier flushes and pre-commits a sink, snapshots the instance, forwards the
// barrier and acknowledges it.
func (in *instance) completeBarrier(ctx context.Context, al *aligner, box *inbox) error {
	id := al.id
	st := InstanceState{Watermark: in.out.wm, AlignNs: time.Since(al.start).Nanoseconds()}
	if al.gauge != nil {
		al.gauge.Set(float64(st.AlignNs) / 1e9)
	}
	var err error
	if h, ok := in.impl.(BarrierHandler); ok {
		err = in.guard("OnBarrier", func() error { return h.OnBarrier(ctx, in.out) })
		st.Watermark = in.out.wm
	}
	if f, ok := in.impl.(Flusher); ok && err == nil {
		err = in.guard("Flush", func() error { return f.Flush(ctx) })
	}
	if p, ok := in.impl.(PreCommitter); ok && err == nil {
		err = in.guard("PreCommit", func() error { return p.PreCommit(ctx, id) })
	}
	if s, ok := in.impl.(Snapshotter); ok && err == nil {
		err = in.guard("Snapshot", func() error {
			var e error
			st.State, e = s.Snapshot(ctx)
			return e
		})
	}
	for i := range al.got {
		if al.got[i] {
			box.unblock(i)
		}
		al.got[i] = false
	}
	al.id, al.n = 0, 0
	var pe *PanicError
	if errors.As(err, &pe) {
		return err
	}
	if err == nil {
		if err := in.out.broadcast(message{barrier: id, wm: in.out.wm}); err != nil {
			return err
		}
	}
	select {
	case in.job.ck.acks <- barrierAck{id: id, in: in, state: st, err: err}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return nil
}

// sizeDecimals lists the known size decimals of t's instruments.
func sizeDecimals(t *md.SymbolTable) []SymbolDecimals {
	var out []SymbolDecimals
	insts := t.Snapshot()
	for i := range insts {
		if d, ok := insts[i].SizeDecimals(); ok {
			out = append(out, SymbolDecimals{Provider: insts[i].Provider, Symbol: insts[i].Symbol, Decimals: d})
		}
	}
	return out
}

// restore applies the checkpoint to every instance before the job runs.
func (j *Job) restore(ctx context.Context, cp *Checkpoint) error {
	// The symbol table first: operators round restored state with it.
	for _, sd := range cp.SizeDecimals {
		j.symbols.NoteSizeDecimals(j.symbols.Intern(sd.Provider, sd.Symbol), sd.Decimals)
	}
	byID := map[string]*NodeState{}
	for i := range cp.Nodes {
		byID[cp.Nodes[i].ID] = &cp.Nodes[i]
	}
	for _, nr := range j.nodes {
		ns := byID[nr.n.ID]
		if ns == nil {
			j.opts.Logger.Warn("restore: the checkpoint has no state for this node; it starts empty", "node", nr.n.ID)
			continue
		}
		if ns.Type != nr.n.Type {
			j.opts.Logger.Warn("restore: the node's type changed; its state is not restored", "node", nr.n.ID, "was", ns.Type, "now", nr.n.Type)
			continue
		}
		if nr.n.Kind == KindSource && len(ns.Instances) != len(nr.instances) {
			// Each instance of a parallel source owns a share of the
			// symbols that depends on their number: positions taken with
			// another number cover other shares.
			return &NodeError{Node: nr.n.ID, Err: fmt.Errorf("restore: the checkpoint was taken with %d instances of this source, the job has %d; a source's parallelism cannot change across a restore",
				len(ns.Instances), len(nr.instances))}
		}
		states := make([][]byte, len(ns.Instances))
		for i, s := range ns.Instances {
			states[i] = s.State
		}
		own := j.opts.Checkpoint.OwnInstanceState && nr.n.Kind != KindSource
		if own && len(ns.Instances) != len(nr.instances) {
			return &NodeError{Node: nr.n.ID, Err: fmt.Errorf("restore: the checkpoint holds %d instances of this node, the job runs %d; restoring each instance from its own state needs the same number",
				len(ns.Instances), len(nr.instances))}
		}
		for i, in := range nr.instances {
			if nr.n.Kind == KindSource {
				if i >= len(ns.Instances) {
					continue
				}
				if err := j.restoreSource(ctx, in, &ns.Instances[i]); err != nil {
					return &NodeError{Node: nr.n.ID, Instance: i, Err: fmt.Errorf("restore: %w", err)}
				}
				continue
			}
			s, ok := in.impl.(Snapshotter)
			if !ok {
				continue
			}
			mine := states
			if own {
				mine = states[i : i+1]
			}
			err := in.guard("Restore", func() error { return s.Restore(ctx, mine) })
			if err != nil {
				return &NodeError{Node: nr.n.ID, Instance: i, Err: fmt.Errorf("restore: %w", err)}
			}
		}
	}
	j.ck.next = cp.ID
	j.ck.status.RestoredFrom = cp.ID
	j.ck.status.Last, j.ck.status.LastAt = cp.ID, cp.Time
	return nil
}

func (j *Job) restoreSource(ctx context.Context, in *instance, st *InstanceState) error {
	ck := in.out.ck
	in.out.wm = st.Watermark
	in.nc.Stats.Watermark.Store(st.Watermark)
	switch ck.mode {
	case ResumeSeek:
		if st.Resume != ResumeSeek {
			return fmt.Errorf("the checkpoint holds no position for this source (it was taken as %q)", st.Resume)
		}
		err := in.guard("Seek", func() error { return ck.seeker.Seek(ctx, st.State) })
		if err != nil {
			return err
		}
		ck.emitted = st.Emitted
	default:
		now := time.Now()
		gap := fmt.Sprintf("%s: resumed live at %s; records between checkpoint %d and now are missing", in.nc.Node, now.UTC().Format(time.RFC3339), j.opts.Checkpoint.Restore.ID)
		j.ck.status.Gaps = append(j.ck.status.Gaps, gap)
		// A live feed's event time is about the wall clock: the bars over
		// the checkpoint's watermark to now may miss records, whichever
		// symbol they are of (the engine cannot tell a source's symbols
		// apart), so they are marked partial.
		in.nc.Symbols.AddGapAll(st.Watermark, now.UnixNano())
		j.opts.Logger.Warn("restore: source cannot seek; it resumes live with a gap", "node", in.nc.Node, "checkpoint", j.opts.Checkpoint.Restore.ID)
	}
	return nil
}
