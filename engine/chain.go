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
//   - both nodes run one instance, or the edge is a forward edge (see
//     isForward): instance i of the sender is then chained to instance i
//     of the receiver, N chains on N goroutines (between other parallel
//     nodes every edge partitions by symbol: there is no one-to-one edge
//     to chain);
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
	case len(from.instances) != len(to.instances) || (len(to.instances) != 1 && !es.forward) || to.n.Kind == KindSource:
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
		// One queue per instance pair: es.queues[i] runs from instance i
		// to instance i (one instance, or a forward edge).
		for i, q := range es.queues {
			q.from, q.down = from.instances[i], to.instances[i]
			q.down.upstream = q.from
		}
	}
	// In topological order, so a chain lists its instances upstream first.
	for _, id := range j.graph.topological() {
		for _, in := range byID[id].instances {
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
}

// isForward reports whether the edge from one node to another is a forward
// edge: instance i of the sender feeds instance i of the receiver and no
// other. That is so when the sender is a source that splits its input by
// symbol (Node.ParallelSource: instance i emits only the symbols md.Split
// at level md.SplitInstances gives to i of its N instances) and the
// receiver runs the same N instances: the partitioner would send every
// record of sender i to receiver i, so the edge needs neither the split
// nor the other N-1 queues of each sender. Receiver i then sees only
// sender i's watermark; a splitting source keeps it the serial source's
// watermark (Output.EmitUpTo), and where the N instances merge again (a
// node with other parallelism downstream) the receiver takes the least
// watermark of its inputs, as on every edge.
func isForward(from, to *nodeRun) bool {
	n := len(from.instances)
	// A receiver split by its own partition key does not get source
	// instance i's symbols at instance i.
	return from.n.Kind == KindSource && from.n.ParallelSource && n > 1 && len(to.instances) == n && to.n.PartitionKey == nil
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
// adds the time it took to the sender's chained time: for a batch or a
// watermark the span the instance's handle measured with the readings it
// takes anyway (procLoop.handle), for a barrier or the end of the stream
// (rare, and a snapshot or a flush can take long) a reading of its own.
func (q *queue) deliver(m message, st *NodeStats) error {
	var d int64
	var err error
	if m.barrier != 0 || m.eos {
		t0 := time.Now()
		err = q.down.deliver(m)
		d = time.Since(t0).Nanoseconds()
	} else {
		err = q.down.deliver(m)
		d = q.down.span
	}
	q.from.chainNs += d
	st.ChainedNs.Add(d)
	return err
}

// deliver runs a chained instance on message m. When the instance fails
// (or has ended) the sender gets the job's abort, as a sender to a queue
// whose receiver failed does, so it stops as aborted instead of failing in
// the receiver's name.
func (in *instance) deliver(m message) error {
	in.span = 0
	// An aborted job stops here too, as a receiver's inbox does (recv): the
	// chained instance handles nothing more once the job's abort began.
	if in.ended || in.job.abortCtx.Err() != nil {
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

// Instances is the number of instances node n of g runs: its Parallelism, at
// least one. A source that splits its input (Node.ParallelSource) and has
// no parallelism set (0) runs as many instances as the nodes it feeds, when
// they all run the same number N > 1: its edges are then forward edges,
// N pipelines on N goroutines, instead of one source instance splitting
// every batch across N queues, a cross-core handoff per batch that costs
// more than the second core gives when the source is cheap (the bars
// workload on a 2-vCPU VM: 0.47x parallelism 1; CPU per run on a loaded
// machine 0.33 s split against 0.28 s forward). An explicit parallelism,
// 1 included, is kept.
func (g *Graph) Instances(n *Node) int {
	if n.Kind != KindSource || !n.ParallelSource || n.Parallelism != 0 {
		return max(n.Parallelism, 1)
	}
	par := map[string]int{}
	for _, m := range g.Nodes {
		par[m.ID] = max(m.Parallelism, 1)
		if m.PartitionKey != nil {
			par[m.ID] = -1 // split by its own key, never the source's: no forward edge
		}
	}
	want := 0
	for _, e := range g.Edges {
		if e.From != n.ID {
			continue
		}
		if p := par[e.To]; want == 0 {
			want = p
		} else if p != want {
			return 1
		}
	}
	return max(want, 1) // -1 (a keyed receiver) gives 1
}
