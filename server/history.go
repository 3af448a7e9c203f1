package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/mdpio/mdp/engine"
)

// History: the job page's sparklines open with the last 10 minutes. One
// goroutine samples every running job's nodes once a second (events/s and
// watermark lag per node) into a bounded ring per job, served at
// GET /api/v1/jobs/{name}/history. Nothing here runs on a job's
// goroutines.

// HistoryLen is how many samples a job's history keeps: 10 minutes at one
// a second.
const HistoryLen = 600

// HistoryInterval is how often the history samples.
const HistoryInterval = time.Second

// History is the body of GET /api/v1/jobs/{name}/history: sample times
// (Unix seconds) and, per node, its events/s (sources: out, others: in)
// and watermark lag in seconds at each.
type History struct {
	Time  []float64              `json:"time"`
	Nodes map[string]NodeHistory `json:"nodes"`
}

// NodeHistory is one node's samples, aligned with History.Time.
type NodeHistory struct {
	Rate []float64 `json:"rate"`
	Lag  []float64 `json:"lag"`
}

type jobHistory struct {
	run   string // the run's start time: a new run starts a new history
	time  []float64
	nodes map[string]*nodeHistory
}

type nodeHistory struct {
	rate, lag []float64
	last      int64
	lastT     float64
}

type historyHub struct {
	jobs  Jobs
	mu    sync.Mutex
	byJob map[string]*jobHistory
	done  chan struct{}
	once  sync.Once
}

func newHistory(j Jobs) *historyHub {
	h := &historyHub{jobs: j, byJob: map[string]*jobHistory{}, done: make(chan struct{})}
	go h.loop()
	return h
}

func (h *historyHub) close() { h.once.Do(func() { close(h.done) }) }

func (h *historyHub) loop() {
	t := time.NewTicker(HistoryInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.sample(time.Now())
		case <-h.done:
			return
		}
	}
}

func push(s []float64, v float64) []float64 {
	if len(s) == HistoryLen {
		copy(s, s[1:])
		s = s[:HistoryLen-1]
	}
	return append(s, v)
}

func (h *historyHub) sample(now time.Time) {
	t := float64(now.UnixNano()) / 1e9
	live := map[string]bool{}
	for _, js := range h.jobs.List() {
		live[js.Name] = true
		if js.State != "running" {
			continue
		}
		st, err := h.jobs.Status(js.Name, true)
		if err != nil || st.Runtime == nil {
			continue
		}
		h.mu.Lock()
		jh := h.byJob[js.Name]
		if jh == nil || jh.run != st.StartedAt {
			jh = &jobHistory{run: st.StartedAt, nodes: map[string]*nodeHistory{}}
			h.byJob[js.Name] = jh
		}
		jh.time = push(jh.time, t)
		for _, n := range st.Runtime.Nodes {
			nh := jh.nodes[n.ID]
			if nh == nil {
				// A node first seen now has no samples before: pad it so
				// every series lines up with the times.
				nh = &nodeHistory{rate: make([]float64, len(jh.time)-1), lag: make([]float64, len(jh.time)-1)}
				jh.nodes[n.ID] = nh
			}
			count := n.EventsIn
			if n.Kind == engine.KindSource.String() {
				count = n.EventsOut
			}
			rate := 0.0
			if nh.lastT > 0 && t > nh.lastT && count >= nh.last {
				rate = float64(count-nh.last) / (t - nh.lastT)
			}
			nh.last, nh.lastT = count, t
			nh.rate = push(nh.rate, rate)
			nh.lag = push(nh.lag, n.WatermarkLagSeconds)
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	for name := range h.byJob {
		if !live[name] {
			delete(h.byJob, name)
		}
	}
	h.mu.Unlock()
}

func (h *historyHub) get(name string) History {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := History{Time: []float64{}, Nodes: map[string]NodeHistory{}}
	jh := h.byJob[name]
	if jh == nil {
		return out
	}
	out.Time = append(out.Time, jh.time...)
	for id, nh := range jh.nodes {
		out.Nodes[id] = NodeHistory{Rate: append([]float64(nil), nh.rate...), Lag: append([]float64(nil), nh.lag...)}
	}
	return out
}

func init() {
	operations["GET /api/v1/jobs/{name}/history"] = op{summary: "The last 10 minutes of the job's current run, one sample a second: per node events/s and watermark lag (the job page's sparklines).", ok: 200, result: "History", errors: []int{404}}
	num := obj{"type": "array", "items": obj{"type": "number"}}
	extraSchemas["History"] = obj{"type": "object", "properties": obj{
		"time":  obj{"type": "array", "description": "sample times, Unix seconds", "items": obj{"type": "number"}},
		"nodes": obj{"type": "object", "additionalProperties": obj{"type": "object", "properties": obj{"rate": num, "lag": num}}}}}
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.jobs.Status(name, false); err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.hist.get(name))
}
