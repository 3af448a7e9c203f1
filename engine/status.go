package engine

import "github.com/mdpio/mdp/md"

// Status is a snapshot of a running or finished job.
type Status struct {
	Nodes []NodeStatus `json:"nodes"`
	Edges []EdgeStatus `json:"edges"`
}

// Status returns per-node and per-edge figures, summed over instances.
func (j *Job) Status() Status {
	var s Status
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
	return s
}
