package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mdpio/mdp/md"
)

// Graph is a job's nodes and edges, ready to validate and run.
type Graph struct {
	Nodes []*Node
	Edges []*Edge
}

// Node describes one logical node. NewSource (a source) or NewProcessor (an
// operator or a sink) builds one instance; it is called Parallelism times.
// The constructor's return type is the check that the component is what its
// Kind says: a processor cannot be placed as a source, at compile time.
type Node struct {
	ID          string
	Type        string // component type id, for status and errors
	Kind        NodeKind
	Parallelism int // instances; 0 or 1 means one
	OnError     ErrorPolicy
	// NoChain keeps the node out of operator chains: it runs in a
	// goroutine of its own and neither its input nor its output edges
	// are chained (Flink's disableChaining; see Options.NoChaining).
	NoChain bool

	// Accepts is the set of record kinds the node takes (operators, sinks)
	// on its main input, when it declares no Inputs.
	Accepts md.Kind
	// Inputs are the node's named input ports, in the order
	// PortProcessor.ProcessPort numbers them, each with the kinds it takes.
	// Empty means one main input (PortMain) taking Accepts, as for most
	// operators and sinks. A node that declares Inputs takes edges only on
	// them; it has a main input only if one of them is named PortMain.
	Inputs []Input
	// Ports maps each output port to the kind it carries; PortMain is the main
	// output. SameAsInput means the kind the node receives.
	Ports map[string]md.Kind
	// Schemas names the schema of each port that carries md.KindDerived
	// records, declared at build time (component.Spec.SchemaFn).
	Schemas map[string]*md.Schema

	// Filled by Validate: the kinds, and the derived schemas, that reach
	// the node on its inputs.
	inKind    md.Kind
	inSchemas []*md.Schema

	// Source settings.
	MaxOutOfOrderness time.Duration
	IdleTimeout       time.Duration
	// ParallelSource says the source may run as Parallelism instances: each
	// instance emits a disjoint share of the source's records (its own
	// symbols, md.Split at level md.SplitInstances over NodeContext.
	// Instances), every share in the order the one-instance source would
	// emit it, so results do not depend on the number of instances.
	ParallelSource bool

	// PartitionKey, when set, is what records are partitioned by on their
	// way to this node's instances instead of their symbol's hash.
	PartitionKey PartitionKey

	// NewSource builds a source instance (Kind KindSource).
	NewSource func(instance int) (Source, error)
	// NewProcessor builds an operator or sink instance.
	NewProcessor func(instance int) (Processor, error)
}

// Input is one named input port of a node.
type Input struct {
	Name    string
	Accepts md.Kind
}

// Policy is what an edge does when its queue is full.
type Policy uint8

// Edge policies.
const (
	// Block makes the sender wait: backpressure reaches the source.
	Block Policy = iota
	// DropOldest evicts the oldest queued batch to make room (counted).
	DropOldest
	// DropNewest drops the batch being sent (counted).
	DropNewest
)

// ParsePolicy parses block, drop_oldest or drop_newest.
func ParsePolicy(s string) (Policy, bool) {
	switch s {
	case "", "block":
		return Block, true
	case "drop_oldest":
		return DropOldest, true
	case "drop_newest":
		return DropNewest, true
	}
	return Block, false
}

// String returns the policy's config spelling.
func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "drop_oldest"
	case DropNewest:
		return "drop_newest"
	}
	return "block"
}

// DefaultQueueCapacity is the number of batches an edge holds.
const DefaultQueueCapacity = 64

// Edge connects a node's output port to an input port of another node.
type Edge struct {
	From     string
	FromPort string // PortMain or a named output port
	To       string
	ToPort   string // PortMain or a named input port (Node.Inputs)
	Capacity int    // batches; 0 means DefaultQueueCapacity
	Policy   Policy
}

// Name renders the edge as in config: "from.port -> to.port".
func (e *Edge) Name() string {
	from, to := e.From, e.To
	if e.FromPort != "" {
		from += "." + e.FromPort
	}
	if e.ToPort != "" {
		to += "." + e.ToPort
	}
	return from + " -> " + to
}

// GraphError is one problem found by Validate. Node or Edge (an index into
// Graph.Edges, or -1) say where, so config can point at the file line.
type GraphError struct {
	Node string
	Edge int
	Msg  string
}

func (e *GraphError) Error() string { return e.Msg }

// Validate reports every problem with the graph at once: duplicate ids,
// unknown nodes and ports on edges, cycles, sources with inputs, sinks with
// outputs, nodes cut off from any source or sink, and record kinds that do
// not fit. An empty result means the graph can run.
func (g *Graph) Validate() []*GraphError {
	var errs []*GraphError
	add := func(node string, edge int, format string, a ...any) {
		errs = append(errs, &GraphError{Node: node, Edge: edge, Msg: fmt.Sprintf(format, a...)})
	}
	if len(g.Nodes) == 0 {
		add("", -1, "the graph has no nodes")
		return errs
	}
	byID := map[string]*Node{}
	for _, n := range g.Nodes {
		if n.ID == "" {
			add("", -1, "a %s node has an empty id", n.Kind)
			continue
		}
		if _, dup := byID[n.ID]; dup {
			add(n.ID, -1, "duplicate node id %q", n.ID)
			continue
		}
		byID[n.ID] = n
		if n.Parallelism < 0 {
			add(n.ID, -1, "node %q: parallelism must be at least 1", n.ID)
		}
		if n.Parallelism > MaxParallelism {
			add(n.ID, -1, "node %q: parallelism %d is more than the limit of %d", n.ID, n.Parallelism, MaxParallelism)
		}
		if n.Kind == KindSource && n.Parallelism > 1 && !n.ParallelSource {
			add(n.ID, -1, "node %q: %s runs as one instance; parallelism applies to operators, sinks and the sources that split their input (provider.synthetic)", n.ID, n.Type)
		}

	}
	ins := map[string][]int{}
	outs := map[string][]int{}
	seenEdge := map[string]bool{}
	var slots int64 // batches all physical queues hold together
	for i, e := range g.Edges {
		if e.Capacity > MaxQueueCapacity {
			add("", i, "edge %s: capacity %d is more than the limit of %d batches", e.Name(), e.Capacity, MaxQueueCapacity)
		} else if from, to := byID[e.From], byID[e.To]; from != nil && to != nil && slots <= maxQueueSlots {
			c := int64(e.Capacity)
			if c <= 0 {
				c = DefaultQueueCapacity
			}
			slots += c * int64(min(max(from.Parallelism, 1), MaxParallelism)) * int64(min(max(to.Parallelism, 1), MaxParallelism))
			if slots > maxQueueSlots {
				add("", i, "edge %s: the job's queues would hold more than %d batches (capacity × sending instances × receiving instances, summed over the edges)", e.Name(), maxQueueSlots)
			}
		}
		from, to := byID[e.From], byID[e.To]
		if from == nil {
			add("", i, "edge %s: unknown node %q", e.Name(), e.From)
		}
		if to == nil {
			add("", i, "edge %s: unknown node %q", e.Name(), e.To)
		}
		if from == nil || to == nil {
			continue
		}
		if seenEdge[e.Name()] {
			add("", i, "edge %s is listed twice", e.Name())
			continue
		}
		seenEdge[e.Name()] = true
		if from.Kind == KindSink && e.FromPort == PortMain {
			add(from.ID, i, "sink %q has an output (to %q); sinks have none", from.ID, e.To)
			continue
		}
		if _, ok := from.port(e.FromPort); !ok {
			add("", i, "edge %s: node %q (%s) has no output port %q%s", e.Name(), from.ID, from.Type, portLabel(e.FromPort), portList(from))
			continue
		}
		if _, _, ok := to.input(e.ToPort); !ok && to.Kind != KindSource {
			add("", i, "edge %s: node %q (%s) has no input port %q%s", e.Name(), to.ID, to.Type, portLabel(e.ToPort), inputList(to))
			continue
		}
		if e.From == e.To {
			add(e.From, i, "edge %s: node %q feeds itself", e.Name(), e.From)
			continue
		}
		outs[e.From] = append(outs[e.From], i)
		ins[e.To] = append(ins[e.To], i)
	}
	for _, n := range g.Nodes {
		if byID[n.ID] != n {
			continue
		}
		switch n.Kind {
		case KindSource:
			if len(ins[n.ID]) > 0 {
				add(n.ID, ins[n.ID][0], "source %q has an input (from %q); sources take none", n.ID, g.Edges[ins[n.ID][0]].From)
			}
		}
	}
	for _, n := range g.Nodes {
		if byID[n.ID] != n || n.OnError != OnErrorDeadLetter {
			continue
		}
		found := false
		for _, ei := range outs[n.ID] {
			found = found || g.Edges[ei].FromPort == PortDeadLetter
		}
		if !found {
			add(n.ID, -1, "node %q has on_error: dead_letter but no edge from %s.dead_letter", n.ID, n.ID)
		}
	}
	if cyc := findCycle(g, byID, outs); cyc != nil {
		add(cyc[0], -1, "cycle: %s", strings.Join(cyc, " -> "))
		return errs // reachability and kinds are meaningless on a cyclic graph
	}
	// Reachability from sources and to sinks.
	fromSource := reach(g, byID, outs, func(n *Node) bool { return n.Kind == KindSource }, func(e *Edge) string { return e.To })
	inv := map[string][]int{}
	for id, es := range ins {
		inv[id] = es
	}
	toSink := reach(g, byID, inv, func(n *Node) bool { return n.Kind == KindSink }, func(e *Edge) string { return e.From })
	for _, n := range g.Nodes {
		if byID[n.ID] != n {
			continue
		}
		if !fromSource[n.ID] {
			add(n.ID, -1, "node %q is not connected to any source", n.ID)
		} else if !toSink[n.ID] {
			add(n.ID, -1, "node %q is not connected to any sink", n.ID)
		}
	}
	// Record kinds and derived schemas, in topological order.
	inKind := map[string]md.Kind{}
	inSchemas := map[string][]*md.Schema{}
	for _, id := range topoOrder(g, byID, outs) {
		n := byID[id]
		n.inKind, n.inSchemas = inKind[id], inSchemas[id]
		for _, ei := range outs[id] {
			e := g.Edges[ei]
			k, _ := n.port(e.FromPort)
			schemas := []*md.Schema{n.Schemas[e.FromPort]}
			if k == SameAsInput {
				k, schemas = inKind[id], inSchemas[id]
			} else if k == md.KindDerived && schemas[0] == nil {
				add(n.ID, ei, "node %q (%s) sends derived records on port %s but declares no schema for them", n.ID, n.Type, portLabel(e.FromPort))
				continue
			}
			to := byID[e.To]
			_, accepts, _ := to.input(e.ToPort)
			if k != md.KindNone && accepts&k != k {
				what := fmt.Sprintf("%q (%s)", to.ID, to.Type)
				if e.ToPort != PortMain {
					what = fmt.Sprintf("input %q of %s", e.ToPort, what)
				}
				add(to.ID, ei, "edge %s: %q (%s) sends %s records but %s takes %s", e.Name(), n.ID, n.Type, k, what, accepts)
				continue
			}
			inKind[e.To] |= k
			if k&md.KindDerived == 0 {
				continue
			}
			for _, sc := range schemas {
				if sc == nil {
					continue // a port of several kinds that declares no schema
				}
				if msg := addSchema(inSchemas, e.To, sc); msg != "" {
					add(to.ID, ei, "edge %s: %s", e.Name(), msg)
				}
			}
		}
	}
	return errs
}

// addSchema adds sc to the schemas reaching node id, refusing a second,
// different schema of the same name (both would be stored in one table).
func addSchema(m map[string][]*md.Schema, id string, sc *md.Schema) string {
	for _, have := range m[id] {
		if have.Name() != sc.Name() {
			continue
		}
		if have.Equal(sc) {
			return ""
		}
		return fmt.Sprintf("%q receives two different schemas named %s: %s and %s", id, sc.Name(), have, sc)
	}
	m[id] = append(m[id], sc)
	return ""
}

// port returns the kind a port carries. Every operator and sink has a
// dead_letter port, used by on_error: dead_letter.
func (n *Node) port(name string) (md.Kind, bool) {
	if k, ok := n.Ports[name]; ok {
		return k, true
	}
	if name == PortDeadLetter && n.Kind != KindSource {
		return SameAsInput, true
	}
	return md.KindNone, false
}

// input returns the index and kinds of the named input port.
func (n *Node) input(name string) (int, md.Kind, bool) {
	if len(n.Inputs) == 0 {
		return 0, n.Accepts, name == PortMain
	}
	for i, in := range n.Inputs {
		if in.Name == name {
			return i, in.Accepts, true
		}
	}
	return 0, md.KindNone, false
}

func inputList(n *Node) string {
	var names []string
	for _, in := range n.Inputs {
		if in.Name != PortMain {
			names = append(names, in.Name)
		}
	}
	if len(names) == 0 {
		return "; it has only its main input"
	}
	return "; its input ports are: " + strings.Join(names, ", ")
}

func portLabel(p string) string {
	if p == PortMain {
		return "(main)"
	}
	return p
}

func portList(n *Node) string {
	var names []string
	for p := range n.Ports {
		if p != PortMain {
			names = append(names, p)
		}
	}
	if _, ok := n.Ports[PortDeadLetter]; !ok && n.Kind != KindSource {
		names = append(names, PortDeadLetter)
	}
	if len(names) == 0 {
		return "; it has only its main output"
	}
	sort.Strings(names)
	return "; its ports are: " + strings.Join(names, ", ")
}

// findCycle returns the ids along one cycle, first id repeated at the end.
func findCycle(g *Graph, byID map[string]*Node, outs map[string][]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		stack = append(stack, id)
		for _, ei := range outs[id] {
			to := g.Edges[ei].To
			switch color[to] {
			case grey:
				for i, s := range stack {
					if s == to {
						found = append(append([]string{}, stack[i:]...), to)
						return true
					}
				}
			case white:
				if visit(to) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, n := range g.Nodes {
		if byID[n.ID] == n && color[n.ID] == white && visit(n.ID) {
			return found
		}
	}
	return nil
}

func reach(g *Graph, byID map[string]*Node, adj map[string][]int, start func(*Node) bool, next func(*Edge) string) map[string]bool {
	seen := map[string]bool{}
	var queue []string
	for _, n := range g.Nodes {
		if byID[n.ID] == n && start(n) {
			seen[n.ID] = true
			queue = append(queue, n.ID)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, ei := range adj[id] {
			nx := next(g.Edges[ei])
			if !seen[nx] {
				seen[nx] = true
				queue = append(queue, nx)
			}
		}
	}
	return seen
}

func topoOrder(g *Graph, byID map[string]*Node, outs map[string][]int) []string {
	indeg := map[string]int{}
	for _, es := range outs {
		for _, ei := range es {
			indeg[g.Edges[ei].To]++
		}
	}
	var order, queue []string
	for _, n := range g.Nodes {
		if byID[n.ID] == n && indeg[n.ID] == 0 {
			queue = append(queue, n.ID)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		order = append(order, id)
		for _, ei := range outs[id] {
			to := g.Edges[ei].To
			indeg[to]--
			if indeg[to] == 0 {
				queue = append(queue, to)
			}
		}
	}
	return order
}

// topological returns the ids of a valid graph's nodes in topological order,
// sources first; nodes that do not depend on each other keep declaration
// order.
func (g *Graph) topological() []string {
	byID := map[string]*Node{}
	for _, n := range g.Nodes {
		if byID[n.ID] == nil {
			byID[n.ID] = n
		}
	}
	outs := map[string][]int{}
	for i, e := range g.Edges {
		outs[e.From] = append(outs[e.From], i)
	}
	return topoOrder(g, byID, outs)
}
