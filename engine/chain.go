package engine

import (
	"context"
	"errors"
	"runtime/debug"
	"time"
)

// Operator chaining (Flink's "operator chaining"): an instance whose only
// input is a one-to-one, blocking edge from an instance whose only output
// edge it is runs in that instance's goroutine. Its upstream's send calls
// it directly with the message the queue would have carried, so the batch
// is processed on the core that just wrote it instead of crossing to
// another core's cache, and no queue, wake-up or poll is paid per batch.
// Everything else is as for an instance with a goroutine of its own:
// the same procLoop handles its batches, watermarks, checkpoint barriers and
// end of stream, it keeps its own statistics, state and error policy, its
// panics and failures are its own, and it gets its Cleanup when its input
// ends (or, when the job fails, after its upstream's).
//
// An edge is chained when all of these hold:
//   - chaining is on for the job (Options.NoChaining) and for both nodes
//     (Node.NoChain);
//   - both nodes run one instance (between parallel nodes every edge
//     partitions by symbol: there is no one-to-one edge to chain);
//   - the edge's policy is block (a drop policy exists to decouple a slow
//     receiver from its sender, which a direct call cannot do);
//   - the edge is the receiver's only input and the sender's only output
//     edge;
//   - the sender does not need its output decoupled (Decoupler);
//   - the receiver handles no processing-time timers (TimerHandler): its
//     timers must fire while its upstream waits on a source's input, which
//     a call from the upstream's goroutine cannot promise.
//
// A chained receiver also runs in the goroutine of a source's idle
// watermark advance, under the lock that orders it with the source's sends.

// chainable reports whether edge es may be chained (see above); the nodes'
// instances must already be built.
func (j *Job) chainable(es *edgeState, from, to *nodeRun, outEdges map[string]int) bool {
	switch {
	case j.opts.NoChaining || from.n.NoChain || to.n.NoChain:
		return false
	case len(from.instances) != 1 || len(to.instances) != 1 || to.n.Kind == KindSource:
		return false
	case es.e.Policy != Block || len(to.inQueues[0]) != 1 || outEdges[from.n.ID] != 1:
		return false
	}
	if d, ok := from.instances[0].impl.(Decoupler); ok && d.DecoupledOutput() {
		return false
	}
	_, timers := to.instances[0].impl.(TimerHandler)
	return !timers
}

// wireChains marks the edges that are chained and gives every chain's head
// the list of instances it runs.
func (j *Job) wireChains(byID map[string]*nodeRun) {
	outEdges := map[string]int{}
	for _, e := range j.graph.Edges {
		outEdges[e.From]++
	}
	for _, es := range j.edges {
		from, to := byID[es.e.From], byID[es.e.To]
		if !j.chainable(es, from, to, outEdges) {
			continue
		}
		q := es.queues[0]
		q.from, q.down = from.instances[0], to.instances[0]
		q.down.upstream = q.from
	}
	// In topological order, so a chain lists its instances upstream first.
	for _, id := range j.graph.topological() {
		in := byID[id].instances[0]
		if in.upstream == nil {
			continue
		}
		head := in.upstream
		for head.upstream != nil {
			head = head.upstream
		}
		head.chain = append(head.chain, in)
	}
}

// startChain starts the instances chained behind in, on in's goroutine.
func (in *instance) startChain() {
	now := time.Now().UnixNano()
	for _, c := range in.chain {
		c.nc.Stats.StartedAt.Store(now)
		c.state.Store("running")
		c.loop = c.newProcLoop()
	}
}

// endChain ends, after in has ended, the chained instances whose input did
// not end: the job failed or was aborted.
func (in *instance) endChain() {
	for _, c := range in.chain {
		if c.ended {
			continue
		}
		err := context.Cause(in.job.abortCtx)
		if err == nil {
			err = errors.New("the upstream stopped without ending the stream")
		}
		c.finish(err)
	}
}

// deliver hands m to the chained instance, on the sender's goroutine, and
// adds the time it took to the sender's chained time.
func (q *queue) deliver(m message, st *NodeStats) error {
	t0 := time.Now()
	err := q.down.deliver(m)
	d := time.Since(t0).Nanoseconds()
	q.from.chainNs += d
	st.ChainedNs.Add(d)
	return err
}

// deliver runs a chained instance on message m. When the instance fails
// (or has ended) the sender gets the job's abort, as a sender to a queue
// whose receiver failed does, so it stops as aborted instead of failing in
// the receiver's name.
func (in *instance) deliver(m message) error {
	if in.ended {
		if m.b != nil {
			m.b.Release()
		}
		return in.abortErr()
	}
	done, err := in.handleGuarded(m)
	if err == nil && !done {
		return nil
	}
	in.finish(err)
	if err != nil {
		return in.abortErr()
	}
	return nil
}

// handleGuarded is procLoop.handle turning a panic into a *PanicError.
func (in *instance) handleGuarded(m message) (done bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			done, err = false, &PanicError{Op: in.op, Value: r, Stack: debug.Stack()}
		}
	}()
	return in.loop.handle(0, m)
}

// abortErr is what a send to a chained instance that failed returns.
func (in *instance) abortErr() error {
	if err := in.job.abortCtx.Err(); err != nil {
		return err
	}
	return context.Canceled
}
