package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/mdpio/mdp/md"
)

// Status is a snapshot of a running or finished job.
type Status struct {
	Nodes []NodeStatus `json:"nodes"`
	Edges []EdgeStatus `json:"edges"`
	// Bottleneck says which source limits the job's rate, when one does:
	// empty otherwise (see bottleneck).
	Bottleneck string `json:"bottleneck,omitempty"`
}

// Status returns per-node and per-edge figures, summed over instances.
func (j *Job) Status() Status {
	var s Status
	now := time.Now().UnixNano()
	for _, nr := range j.nodes {
		ns := NodeStatus{ID: nr.n.ID, Type: nr.n.Type, Kind: nr.n.Kind.String(), Instances: len(nr.instances), Watermark: md.MaxTime}
		states := map[string]int{}
		drops, errs, counters := map[string]int64{}, map[string]int64{}, map[string]int64{}
		for i, in := range nr.instances {
			st := in.nc.Stats
			ns.EventsIn += st.EventsIn.Load()
			ns.EventsOut += st.EventsOut.Load()
			ns.BatchesIn += st.BatchesIn.Load()
			ns.BatchesOut += st.BatchesOut.Load()
			ns.BusyNs += st.BusyNs.Load()
			ns.BlockedNs += st.BlockedNs.Load()
			ns.ChainedNs += st.ChainedNs.Load()
			if in.upstream != nil {
				ns.ChainedTo = in.upstream.nc.Node
			}
			ns.BusyFraction = max(ns.BusyFraction, busyFraction(st, nr.n.Kind == KindSource, now))
			ns.Watermark = min(ns.Watermark, st.Watermark.Load())
			ns.WatermarkAt = max(ns.WatermarkAt, st.WatermarkAt.Load())
			for k, v := range st.Drops() {
				drops[k] += v
			}
			for k, v := range st.Errors() {
				errs[k] += v
			}
			for k, v := range st.Counters() {
				counters[k] += v
			}
			if e := st.LastError(); e != "" {
				ns.LastError = e
			}
			states[in.state.Load().(string)]++
			for _, q := range nr.inQueues[i] {
				ns.QueueDepth += len(q.ch)
				ns.QueueCap += cap(q.ch)
			}
		}
		ns.State = "running"
		for _, k := range []string{"failed", "aborted", "created"} {
			if states[k] > 0 {
				ns.State = k
			}
		}
		if states["done"] == len(nr.instances) {
			ns.State = "done"
		}
		if len(drops) > 0 {
			ns.Drops = drops
		}
		if len(errs) > 0 {
			ns.Errors = errs
		}
		if len(counters) > 0 {
			ns.Counters = counters
		}
		s.Nodes = append(s.Nodes, ns)
	}
	for _, es := range j.edges {
		e := EdgeStatus{Name: es.e.Name(), Policy: es.e.Policy.String(), Dropped: es.dropped.Load(), BlockedNs: es.blockedNs.Load()}
		for _, q := range es.queues {
			e.Depth += len(q.ch)
			e.Capacity += cap(q.ch)
		}
		s.Edges = append(s.Edges, e)
	}
	s.Bottleneck = j.bottleneck(s.Nodes)
	return s
}

// busyFraction is the share of an instance's running time it spent
// working (NodeStatus.BusyFraction); 0 before it ran for a millisecond.
func busyFraction(st *NodeStats, source bool, now int64) float64 {
	start, end := st.StartedAt.Load(), st.EndedAt.Load()
	if start == 0 {
		return 0
	}
	if end == 0 {
		end = now
	}
	ran := end - start
	if ran < int64(time.Millisecond) {
		return 0
	}
	busy := st.BusyNs.Load()
	if source {
		busy = ran - st.BlockedNs.Load() - st.ChainedNs.Load()
	}
	return min(max(float64(busy)/float64(ran), 0), 1)
}

// ranFor is how long the node's instances have run (the longest).
func (j *Job) ranFor(nr *nodeRun) time.Duration {
	var d int64
	now := time.Now().UnixNano()
	for _, in := range nr.instances {
		start, end := in.nc.Stats.StartedAt.Load(), in.nc.Stats.EndedAt.Load()
		if start == 0 {
			continue
		}
		if end == 0 {
			end = now
		}
		d = max(d, end-start)
	}
	return time.Duration(d)
}

// Thresholds of the bottleneck hint.
const (
	// sourceBoundBlocked: a source that waited on full output queues for
	// less than this share of its time was hardly held back by the job (on
	// a loaded machine a queue fills now and then while its consumer waits
	// for a core, so the bound is not 0).
	sourceBoundBlocked = 0.2
	// sourceBoundIdle: every consumer of that source busy for less than
	// this share of its time had capacity to spare.
	sourceBoundIdle = 0.6
)

// sourceBoundAfter is how long a source must have run before the hint
// judges it: a job of a few milliseconds says nothing about its rate.
var sourceBoundAfter = time.Second

// bottleneck names the source that limits the job's rate: one that seldom
// waited on its output queues while every node it feeds was idle much of
// the time. Adding instances downstream then cannot speed the job up (on
// a machine with few cores it slows it down: the split costs the source
// time). Empty when no source is the limit, or before it has run for
// sourceBoundAfter.
func (j *Job) bottleneck(nodes []NodeStatus) string {
	byID := make(map[string]NodeStatus, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	for _, nr := range j.nodes {
		if nr.n.Kind != KindSource {
			continue
		}
		src := byID[nr.n.ID]
		if src.BusyFraction < 1-sourceBoundBlocked || j.ranFor(nr) < sourceBoundAfter {
			continue
		}
		var consumers []string
		parallel, idle := false, true
		for _, e := range j.graph.Edges {
			if e.From != nr.n.ID {
				continue
			}
			c := byID[e.To]
			if c.BusyFraction >= sourceBoundIdle {
				idle = false
			}
			parallel = parallel || c.Instances > 1
			consumers = append(consumers, fmt.Sprintf("%s %.0f%%", c.ID, 100*c.BusyFraction))
		}
		if !idle || len(consumers) == 0 {
			continue
		}
		msg := fmt.Sprintf("source %s limits the job's rate: it was busy %.0f%% of its time, the nodes it feeds less (%s)",
			nr.n.ID, 100*src.BusyFraction, strings.Join(consumers, ", "))
		if parallel {
			msg += "; more parallelism downstream cannot speed this job up"
		}
		return msg
	}
	return ""
}
