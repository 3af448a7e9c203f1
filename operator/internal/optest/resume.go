package optest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// Resume checks an operator's checkpoint state (engine.Snapshotter): it
// runs j with a checkpoint every couple of milliseconds, the sources
// pausing between batches so that checkpoints fall all along the stream;
// then, for up to four checkpoints taken mid-stream, it restores the
// checkpoint into a fresh job — the operator at each of parallelisms (none:
// j's own) — and runs it to the end. What the collectors held at the
// checkpoint plus what the resumed job produced must equal what the
// uninterrupted run produced, record for record (compared as multisets,
// with symbols by name: instances of a parallel operator interleave, and a
// restore interns symbols in its own order). Sources seek by batch, so the
// operator sees the same records whichever checkpoint it resumes from.
func Resume(t *testing.T, j Job, parallelisms ...int) {
	t.Helper()
	if len(parallelisms) == 0 {
		parallelisms = []int{j.Parallelism}
	}
	store := &memStore{}
	full, job := runResumable(t, j, j.Parallelism, &engine.CheckpointOptions{Interval: 2 * time.Millisecond, Timeout: time.Minute, Store: store})
	want := full.records(nil)
	total := 0
	for _, s := range j.sources() {
		total += len(s.batches())
	}
	var mid []*engine.Checkpoint
	for _, cp := range store.all() {
		at := 0
		for _, n := range cp.Nodes {
			if strings.HasPrefix(n.ID, "src") {
				var p int
				if err := json.Unmarshal(n.Instances[0].State, &p); err != nil {
					t.Fatalf("checkpoint %d: source position %q: %v", cp.ID, n.Instances[0].State, err)
				}
				at += p
			}
		}
		if at > 0 && at < total {
			mid = append(mid, cp)
		}
	}
	if len(mid) < 2 {
		t.Fatalf("%d checkpoints fell mid-stream (of %d, over %d batches): too few to test a resume", len(mid), job.CheckpointStatus().Completed, total)
	}
	for _, i := range []int{0, len(mid) / 3, 2 * len(mid) / 3, len(mid) - 1} {
		cp := mid[i]
		upTo := map[string]counts{}
		for _, n := range cp.Nodes {
			if strings.HasPrefix(n.ID, "sink_") {
				var c counts
				if err := json.Unmarshal(n.Instances[0].State, &c); err != nil {
					t.Fatalf("checkpoint %d: %s: %v", cp.ID, n.ID, err)
				}
				upTo[n.ID] = c
			}
		}
		for _, par := range parallelisms {
			rest, _ := runResumable(t, j, par, &engine.CheckpointOptions{Interval: time.Hour, Store: &memStore{}, Restore: cp})
			got := append(full.records(upTo), rest.records(nil)...)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("resumed from checkpoint %d at parallelism %d: %d records, want %d\n%s", cp.ID, par, len(got), len(want), diff(got, want))
			}
		}
	}
}

// Inputs feed the operator's named input ports, one source each, when the
// operator has them (a join); Src is unused then.
type Inputs map[string]*enginetest.Source

func (j *Job) sources() []*seekSource {
	if len(j.Inputs) == 0 {
		return []*seekSource{{id: "src", src: j.Src}}
	}
	var out []*seekSource
	for _, port := range slices.Sorted(maps.Keys(j.Inputs)) {
		out = append(out, &seekSource{id: "src_" + port, port: port, src: j.Inputs[port]})
	}
	return out
}

// resumeResult is one resumable run's output per collected port.
type resumeResult struct {
	ports map[string]*Collector
	syms  *md.SymbolTable
}

// runResumable runs j with the operator at parallelism par and seekable
// sources, with checkpoints per ck.
func runResumable(t *testing.T, j Job, par int, ck *engine.CheckpointOptions) (resumeResult, *engine.Job) {
	t.Helper()
	spec, ok := component.Lookup(j.Type)
	if !ok {
		t.Fatalf("no component %s", j.Type)
	}
	p, err := component.NewParams(spec, j.Params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	g := &engine.Graph{Nodes: []*engine.Node{component.Node(spec, p, component.NodeOptions{ID: "op", Parallelism: par})}}
	for _, s := range j.sources() {
		n := &engine.Node{ID: s.id, Type: "provider.optest", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: s.src.Kind()},
			MaxOutOfOrderness: j.OOO, NewSource: func(int) (engine.Source, error) { return &seekSource{id: s.id, src: s.src}, nil }}
		g.Nodes = append(g.Nodes, n)
		g.Edges = append(g.Edges, &engine.Edge{From: s.id, To: "op", ToPort: s.port})
	}
	res := resumeResult{ports: map[string]*Collector{}, syms: md.NewSymbolTable()}
	for _, port := range append([]string{engine.PortMain}, j.Ports...) {
		c := &Collector{}
		res.ports["sink_"+port] = c
		g.Nodes = append(g.Nodes, enginetest.SinkNode("sink_"+port, c))
		g.Edges = append(g.Edges, &engine.Edge{From: "op", FromPort: port, To: "sink_" + port})
	}
	job, err := engine.New(g, engine.Options{Job: "optest", Symbols: res.syms, Checkpoint: ck})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	return res, job
}

// counts is a collector's state in a checkpoint: how many records of
// each kind it had received.
type counts struct{ T, Q, B, D int }

// records renders what every collector received, sorted: everything, or
// with upTo only the first upTo[collector] records of each kind (what a
// checkpoint covered).
func (r resumeResult) records(upTo map[string]counts) []string {
	var out []string
	for id, c := range r.ports {
		lim := counts{len(c.Trades), len(c.Quotes), len(c.Bars), len(c.Derived)}
		if upTo != nil {
			lim = upTo[id]
		}
		name := func(s md.SymID) string { in := r.syms.Get(s); return in.Provider + "/" + in.Symbol }
		for _, x := range c.Trades[:lim.T] {
			s := name(x.Sym)
			x.Sym = 0
			out = append(out, fmt.Sprintf("%s trade %s %+v", id, s, x))
		}
		for _, x := range c.Quotes[:lim.Q] {
			s := name(x.Sym)
			x.Sym = 0
			out = append(out, fmt.Sprintf("%s quote %s %+v", id, s, x))
		}
		for _, x := range c.Bars[:lim.B] {
			s := name(x.Sym)
			x.Sym = 0
			out = append(out, fmt.Sprintf("%s bar %s %+v", id, s, x))
		}
		for i, x := range c.Derived[:lim.D] {
			var vs []string
			for k, v := range c.Values[i] {
				if c.Schema.Field(k).Type == md.Int {
					vs = append(vs, fmt.Sprintf("%s=%d", c.Schema.Field(k).Name, v.Int()))
				} else {
					vs = append(vs, fmt.Sprintf("%s=%v", c.Schema.Field(k).Name, v.Float()))
				}
			}
			out = append(out, fmt.Sprintf("%s derived %s ts=%d %s", id, name(x.Sym), x.TS, strings.Join(vs, " ")))
		}
	}
	slices.Sort(out)
	return out
}

// diff shows the first records on which two sorted lists differ.
func diff(got, want []string) string {
	var b strings.Builder
	n := 0
	i, k := 0, 0
	for (i < len(got) || k < len(want)) && n < 10 {
		switch {
		case k >= len(want) || (i < len(got) && got[i] < want[k]):
			fmt.Fprintf(&b, "  extra:   %s\n", got[i])
			i++
			n++
		case i >= len(got) || want[k] < got[i]:
			fmt.Fprintf(&b, "  missing: %s\n", want[k])
			k++
			n++
		default:
			i++
			k++
		}
	}
	return b.String()
}

// Snapshot implements engine.Snapshotter: a collector's state is how
// many records of each kind it received, which tells Resume the part of
// the output a checkpoint covers.
func (c *Collector) Snapshot(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return json.Marshal(counts{len(c.Trades), len(c.Quotes), len(c.Bars), len(c.Derived)})
}

// Restore implements engine.Snapshotter: a resumed collector starts empty
// and collects what the resumed job produces.
func (c *Collector) Restore(ctx context.Context, states [][]byte) error { return nil }

// seekSource emits an enginetest.Source's records in the same batches,
// pausing after each so checkpoints fall between them; its position is the
// number of batches emitted.
type seekSource struct {
	id, port string
	src      *enginetest.Source
	pos      int
}

type batchRef struct {
	kind     md.Kind
	from, to int
}

func (s *seekSource) batches() []batchRef {
	bs := s.src.BatchSize
	if bs <= 0 {
		bs = 64
	}
	var out []batchRef
	for _, k := range []struct {
		kind md.Kind
		n    int
	}{{md.KindTrade, len(s.src.Trades)}, {md.KindQuote, len(s.src.Quotes)}, {md.KindBar, len(s.src.Bars)}} {
		for i := 0; i < k.n; i += bs {
			out = append(out, batchRef{k.kind, i, min(i+bs, k.n)})
		}
	}
	return out
}

// Run implements engine.Source.
func (s *seekSource) Run(ctx context.Context, out *engine.Output) error {
	prov := s.src.Provider
	if prov == "" {
		prov = "test"
	}
	ids := make([]md.SymID, len(s.src.Symbols))
	for i, sym := range s.src.Symbols {
		ids[i] = out.Symbols().Intern(prov, sym)
	}
	bs := s.batches()
	for s.pos < len(bs) {
		r := bs[s.pos]
		b := out.NewBatch(r.kind)
		switch r.kind {
		case md.KindTrade:
			for _, x := range s.src.Trades[r.from:r.to] {
				x.Sym = ids[x.Sym]
				b.Trades = append(b.Trades, x)
			}
		case md.KindQuote:
			for _, x := range s.src.Quotes[r.from:r.to] {
				x.Sym = ids[x.Sym]
				b.Quotes = append(b.Quotes, x)
			}
		default:
			for _, x := range s.src.Bars[r.from:r.to] {
				x.Sym = ids[x.Sym]
				b.Bars = append(b.Bars, x)
			}
		}
		s.pos++
		if err := out.Emit(b); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Microsecond):
		}
	}
	return nil
}

// Position implements engine.Seeker.
func (s *seekSource) Position(int64) ([]byte, error) { return json.Marshal(s.pos) }

// Seek implements engine.Seeker.
func (s *seekSource) Seek(ctx context.Context, pos []byte) error { return json.Unmarshal(pos, &s.pos) }

type memStore struct {
	mu  sync.Mutex
	cps []*engine.Checkpoint
}

func (m *memStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return 1, nil
}

func (m *memStore) all() []*engine.Checkpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.cps)
}
