package engine

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mdpio/mdp/md"
)

// Taps let a program outside the job watch what a node emits on one of its
// output ports (the dashboard's live candles) without slowing the job.
//
// Every declared output port of every node has one tap point, shared by the
// node's instances. Emitting a batch costs one atomic load of the point's
// listener list; with no listener that is all. With listeners, each gets
// the batch itself (one Retain) through a non-blocking send into its
// bounded channel: a listener that is behind misses batches, counted in
// Skipped, and never makes the node wait. Nothing is copied or allocated
// per record.

// TapPort is one output port a program may tap.
type TapPort struct {
	Node string
	// Port is the output port's name; "" (PortMain) is the main output.
	Port string
	// Kind is what the port carries, SameAsInput resolved.
	Kind md.Kind
}

// Name renders the port as an edge names it: "node" or "node.port".
func (p TapPort) Name() string {
	if p.Port == PortMain {
		return p.Node
	}
	return p.Node + "." + p.Port
}

// tapPoint is one tappable (node, port).
type tapPoint struct {
	TapPort
	mu   sync.Mutex             // serialises attach and detach
	subs atomic.Pointer[[]*Tap] // nil while nobody listens
}

// offer hands b to every listener that has room, one reference each.
func (tp *tapPoint) offer(b *md.Batch, subs []*Tap) {
	for _, t := range subs {
		b.Retain(1)
		select {
		case t.ch <- b:
		default:
			b.Release()
			t.skipped.Add(int64(b.Len()))
		}
	}
}

// Tap is one listener on a tap point.
type Tap struct {
	point   *tapPoint
	ch      chan *md.Batch
	skipped atomic.Int64
	once    sync.Once
}

// Batches delivers what the node emits on the port, batch by batch, in
// emission order per node instance. The receiver owns one reference to each
// batch and must Release it; it must not modify it. The channel is never
// closed: stop reading when the job is done (Job.Done) or after Close.
func (t *Tap) Batches() <-chan *md.Batch { return t.ch }

// Skipped counts the records of the batches this listener missed because
// its channel was full.
func (t *Tap) Skipped() int64 { return t.skipped.Load() }

// Port is the port the tap listens on.
func (t *Tap) Port() TapPort { return t.point.TapPort }

// Close detaches the listener and releases the batches still queued for
// it. A batch an instance was handing over as Close ran may stay in the
// channel; it is garbage collected instead of returning to the pool.
func (t *Tap) Close() {
	t.once.Do(func() {
		tp := t.point
		tp.mu.Lock()
		var next []*Tap
		if cur := tp.subs.Load(); cur != nil {
			for _, s := range *cur {
				if s != t {
					next = append(next, s)
				}
			}
		}
		if len(next) == 0 {
			tp.subs.Store(nil)
		} else {
			tp.subs.Store(&next)
		}
		tp.mu.Unlock()
		for {
			select {
			case b := <-t.ch:
				b.Release()
			default:
				return
			}
		}
	})
}

// MaxTapBuffer bounds a tap's channel (batches held for a listener).
const MaxTapBuffer = 4096

// tapKey is how taps are looked up: "node" or "node.port".
func tapKey(node, port string) string { return TapPort{Node: node, Port: port}.Name() }

// buildTaps makes the tap point of every declared output port (and every
// operator's and sink's dead_letter port) and links each instance's port to
// it. Validate has resolved the kinds that reach each node.
func (j *Job) buildTaps(ports map[*instance]map[string]*port) {
	j.taps = map[string]*tapPoint{}
	for _, nr := range j.nodes {
		n := nr.n
		names := make([]string, 0, len(n.Ports)+1)
		for name := range n.Ports {
			names = append(names, name)
		}
		if _, ok := n.Ports[PortDeadLetter]; !ok && n.Kind != KindSource {
			names = append(names, PortDeadLetter)
		}
		for _, name := range names {
			k, _ := n.port(name)
			if k == SameAsInput {
				k = n.inKind
			}
			tp := &tapPoint{TapPort: TapPort{Node: n.ID, Port: name, Kind: k}}
			j.taps[tapKey(n.ID, name)] = tp
			for _, in := range nr.instances {
				p := ports[in][name]
				if p == nil {
					p = &port{name: name, dropKey: "unconnected_port_" + name}
					ports[in][name] = p
				}
				p.tap = tp
			}
		}
	}
}

// TapPorts lists every port Tap accepts, sorted by name.
func (j *Job) TapPorts() []TapPort {
	out := make([]TapPort, 0, len(j.taps))
	for _, tp := range j.taps {
		out = append(out, tp.TapPort)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name() < out[b].Name() })
	return out
}

// Tap attaches a listener to a node's output port ("" is the main output)
// with a channel of buffer batches (1..MaxTapBuffer). It may be called
// before Start or while the job runs; Close detaches it.
func (j *Job) Tap(node, portName string, buffer int) (*Tap, error) {
	tp := j.taps[tapKey(node, portName)]
	if tp == nil {
		var names []string
		for _, p := range j.TapPorts() {
			names = append(names, p.Name())
		}
		return nil, fmt.Errorf("no output port %q of job %q to tap; ports: %v", tapKey(node, portName), j.opts.Job, names)
	}
	if buffer < 1 || buffer > MaxTapBuffer {
		return nil, fmt.Errorf("tap buffer %d: want 1..%d batches", buffer, MaxTapBuffer)
	}
	t := &Tap{point: tp, ch: make(chan *md.Batch, buffer)}
	tp.mu.Lock()
	var next []*Tap
	if cur := tp.subs.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, t)
	tp.subs.Store(&next)
	tp.mu.Unlock()
	return t, nil
}
