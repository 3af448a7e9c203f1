// Package component is the registry of mdp's building blocks. A component
// registers a stable type id (provider.synthetic, operator.bars, sink.sqlite),
// the record kinds it takes and produces, and a Spec of typed params with
// defaults, allowed values and docs. The same Spec decodes and validates
// params strictly, prints `mdp components`, and generates the JSON Schema for
// job files, so the docs cannot drift from the code.
//
// Built-in components register themselves from init into the default
// Registry; a program picks them up by blank-importing package components, as
// database/sql drivers do. Users register their own the same way (see
// examples/custom_operator). A Registry value made with NewRegistry (or
// Default().Clone()) holds a separate set: config loading, schema generation,
// `mdp components` and the runtime take one as an option, so tests and
// embedding programs can register components without touching the default.
//
// Constructors are typed: a source's Spec sets NewSource, which returns an
// engine.Source; an operator's or a sink's sets NewProcessor, which returns
// an engine.Processor. A constructor that returns the wrong thing does not
// compile.
package component

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Spec describes a component.
type Spec struct {
	// Type is the stable id: provider.*, operator.*, sink.*.
	Type string
	// Aliases are other ids that name the same component.
	Aliases []string
	Kind    engine.NodeKind
	// Summary is one line for listings; Description may say more.
	Summary     string
	Description string
	// Accepts is the set of record kinds an operator or sink takes on its
	// main input. With Inputs it is filled in as the union of their kinds.
	Accepts md.Kind
	// Inputs are named input ports (a join's left and right), in the order
	// engine.PortProcessor numbers them, each with the kinds it takes. An
	// edge ends at one with `to: node.port`. Empty means the one main input
	// taking Accepts, as for most operators and sinks.
	Inputs []engine.Input
	// Produces is the kind on the main output (engine.SameAsInput for
	// pass-through operators). Sinks produce nothing.
	Produces md.Kind
	// ProducesFn, when set, decides the output kind from params (a source
	// that emits trades or quotes).
	ProducesFn func(p *Params) md.Kind
	// SchemaFn declares, from the decoded params, the schema of the derived
	// records (md.KindDerived) on the main output: their name and fields.
	// It runs when the params are decoded, so validation sees the schema
	// at build time (a sink learns it as engine.NodeContext.InputSchemas),
	// and its error is a param error. Required when the main output may
	// carry derived records.
	SchemaFn func(p *Params) (*md.Schema, error)
	// CheckInputs, when set, checks the params against what reaches the
	// node once the job's graph is built: the record kinds and the
	// derived schemas (their field names and types) of its inputs, as
	// engine.Node.InputKinds and InputSchemas give them. An expression
	// over a derived record's fields is type-checked here. Its errors are
	// param errors, placed like Validate's (config runs it after the graph
	// validated).
	CheckInputs func(p *Params, kinds md.Kind, schemas []*md.Schema) error
	// PartitionKey, when set, is what an operator's records are split by
	// across its instances instead of their symbol (engine.PartitionKey):
	// a node that joins records of different symbols declares it so that
	// parallelism keeps them together.
	PartitionKey engine.PartitionKey
	// Ports are named outputs besides the main one, with their kinds.
	Ports map[string]md.Kind
	// PortsFn, when set, computes more named outputs from the decoded
	// params (a router's named routes, a partitioner's p0..pN-1); they are
	// added to Ports. PortsDoc says in words what it computes, for `mdp
	// components` (required with PortsFn).
	PortsFn  func(p *Params) map[string]md.Kind
	PortsDoc string
	// Fields are the params, in documentation order.
	Fields []Field
	// Validate checks relations between params after each one decoded. Return
	// p.Errorf(key, …) errors (errors.Join for several).
	Validate func(p *Params) error
	// ParallelSource says a source may run as several instances, each
	// emitting its own share of the symbols (engine.Node.ParallelSource).
	ParallelSource bool
	// NewSource builds one instance of a source (Kind engine.KindSource).
	NewSource func(p *Params, instance int) (engine.Source, error)
	// NewProcessor builds one instance of an operator or a sink.
	NewProcessor func(p *Params, instance int) (engine.Processor, error)
}

// Common source params, added to every source's Spec by Register unless the
// Spec declares them itself (to change the default or the description).
var sourceFields = []Field{
	{Name: "max_out_of_orderness", Type: Duration, Default: "0s",
		Description: "How far behind the newest event time a record may arrive and still count as on time. The source watermark is max event time minus this."},
	{Name: "idle_timeout", Type: Duration, Default: "0s",
		Description: "When the source emits nothing for this long, advance its watermark on the (event-time) clock so windows close on time. 0 disables."},
}

// Registry is a set of component specs by type id and alias. Its methods are
// safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]*Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]*Spec{}} }

var defaultRegistry = NewRegistry()

// Default is the process-wide registry the built-in components register
// into, and what every API that takes a registry uses when given nil.
func Default() *Registry { return defaultRegistry }

// Or returns r, or the default registry when r is nil.
func Or(r *Registry) *Registry {
	if r == nil {
		return defaultRegistry
	}
	return r
}

// Clone returns a new registry holding the same specs; registering into the
// clone leaves r unchanged. Default().Clone() is the built-ins plus whatever
// a test adds.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := NewRegistry()
	for id, s := range r.specs {
		c.specs[id] = s
	}
	return c
}

// Register adds a component to the default registry. It panics on a
// malformed spec or a duplicate id: both are programming errors found at
// start-up.
func Register(s Spec) { defaultRegistry.MustRegister(s) }

// MustRegister is Register into r: it panics where Register would return an
// error.
func (r *Registry) MustRegister(s Spec) {
	if err := r.Register(s); err != nil {
		panic("component.Register: " + err.Error())
	}
}

// Register adds a component to r, or says why the spec is malformed or its
// id taken.
func (r *Registry) Register(s Spec) error {
	if err := check(&s); err != nil {
		return err
	}
	if s.Kind == engine.KindSource {
		for _, f := range sourceFields {
			if s.field(f.Name) == nil {
				s.Fields = append(s.Fields, f)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := append([]string{s.Type}, s.Aliases...)
	for _, id := range ids {
		if _, dup := r.specs[id]; dup {
			return fmt.Errorf("duplicate type %s", id)
		}
	}
	sp := &s
	for _, id := range ids {
		r.specs[id] = sp
	}
	return nil
}

func check(s *Spec) error {
	prefix := map[engine.NodeKind]string{engine.KindSource: "provider.", engine.KindOperator: "operator.", engine.KindSink: "sink."}[s.Kind]
	if prefix == "" {
		return fmt.Errorf("%s: unknown kind", s.Type)
	}
	for _, id := range append([]string{s.Type}, s.Aliases...) {
		if !strings.HasPrefix(id, prefix) || len(id) == len(prefix) {
			return fmt.Errorf("type %q must start with %q", id, prefix)
		}
	}
	switch {
	case s.Kind == engine.KindSource && (s.NewSource == nil || s.NewProcessor != nil):
		return fmt.Errorf("%s: a source sets NewSource and not NewProcessor", s.Type)
	case s.Kind != engine.KindSource && (s.NewProcessor == nil || s.NewSource != nil):
		return fmt.Errorf("%s: an operator or a sink sets NewProcessor and not NewSource", s.Type)
	}
	if s.PortsFn != nil && s.PortsDoc == "" {
		return fmt.Errorf("%s: PortsFn needs a PortsDoc", s.Type)
	}
	if len(s.Inputs) > 0 && s.Kind == engine.KindSource {
		return fmt.Errorf("%s: a source has no inputs", s.Type)
	}
	inputs := map[string]bool{}
	for _, in := range s.Inputs {
		if inputs[in.Name] {
			return fmt.Errorf("%s: input port %q declared twice", s.Type, in.Name)
		}
		inputs[in.Name] = true
		if in.Accepts == md.KindNone {
			return fmt.Errorf("%s: input port %q takes no record kind", s.Type, in.Name)
		}
		s.Accepts |= in.Accepts
	}
	if s.Produces&md.KindDerived != 0 && s.Produces != engine.SameAsInput && s.SchemaFn == nil {
		return fmt.Errorf("%s: produces derived records but has no SchemaFn", s.Type)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if seen[f.Name] {
			return fmt.Errorf("%s: field %s declared twice", s.Type, f.Name)
		}
		seen[f.Name] = true
		if f.Default != nil {
			if _, err := f.convert(f.Default); err != nil {
				return fmt.Errorf("%s: default of %s: %v", s.Type, f.Name, err)
			}
		}
	}
	return nil
}

func (s *Spec) field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// FieldNames lists the spec's param names.
func (s *Spec) FieldNames() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// OutPorts are the named output ports (besides the main one) for these
// params: Ports plus what PortsFn computes. p may be nil (then only Ports).
func (s *Spec) OutPorts(p *Params) map[string]md.Kind {
	out := make(map[string]md.Kind, len(s.Ports))
	for name, k := range s.Ports {
		out[name] = k
	}
	if s.PortsFn != nil && p != nil {
		for name, k := range s.PortsFn(p) {
			out[name] = k
		}
	}
	return out
}

// OutKind is the kind on the main output for these params.
func (s *Spec) OutKind(p *Params) md.Kind {
	if s.ProducesFn != nil && p != nil {
		return s.ProducesFn(p)
	}
	return s.Produces
}

// Lookup returns the spec registered under id (a type or an alias) in the
// default registry.
func Lookup(id string) (*Spec, bool) { return defaultRegistry.Lookup(id) }

// Lookup returns the spec registered under id (a type or an alias).
func (r *Registry) Lookup(id string) (*Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[id]
	return s, ok
}

// All returns every spec of the default registry once, sorted by type id.
func All() []*Spec { return defaultRegistry.All() }

// All returns every registered spec once, sorted by type id.
func (r *Registry) All() []*Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seen := map[*Spec]bool{}
	var out []*Spec
	for _, s := range r.specs {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// Types returns every id of the default registry including aliases, sorted.
func Types() []string { return defaultRegistry.Types() }

// Types returns every registered id including aliases, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.specs))
	for id := range r.specs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// withNode fills in the node id of a *ParamAccessError from params decoded
// without one (NewParams).
func withNode(err error, node string) error {
	if pe, ok := err.(*ParamAccessError); ok && pe.Node == "" {
		pe.Node = node
	}
	return err
}

// NodeOptions are the node-level settings around a component's params.
type NodeOptions struct {
	ID          string
	Parallelism int
	OnError     engine.ErrorPolicy
	NoChain     bool // engine.Node.NoChain
}

// Node builds the engine node for a decoded component.
func Node(s *Spec, p *Params, o NodeOptions) *engine.Node {
	n := &engine.Node{
		ID: o.ID, Type: s.Type, Kind: s.Kind, Parallelism: o.Parallelism, OnError: o.OnError, NoChain: o.NoChain,
		Accepts: s.Accepts, Inputs: s.Inputs, Ports: s.OutPorts(p), PartitionKey: s.PartitionKey,
	}
	if s.Kind != engine.KindSink {
		n.Ports[engine.PortMain] = s.OutKind(p)
	}
	if sc := p.Schema(); sc != nil {
		n.Schemas = map[string]*md.Schema{engine.PortMain: sc}
	}
	if s.Kind == engine.KindSource {
		n.MaxOutOfOrderness = p.Duration("max_out_of_orderness")
		n.IdleTimeout = p.Duration("idle_timeout")
		n.ParallelSource = s.ParallelSource
	}
	// A constructor that reads a param its spec does not declare fails the
	// build of the job with a *ParamAccessError (see Params).
	if s.NewSource != nil {
		n.NewSource = func(instance int) (src engine.Source, err error) {
			err = guardParams(func() (err error) { src, err = s.NewSource(p, instance); return err })
			return src, withNode(err, o.ID)
		}
	} else {
		n.NewProcessor = func(instance int) (proc engine.Processor, err error) {
			err = guardParams(func() (err error) { proc, err = s.NewProcessor(p, instance); return err })
			return proc, withNode(err, o.ID)
		}
	}
	return n
}

// CheckInputs runs the spec's CheckInputs, if any, against what reaches
// node n (validated by engine.Graph.Validate) and returns its problems as
// FieldErrors; a panic in it is an error at the node.
func CheckInputs(s *Spec, p *Params, n *engine.Node) []*FieldError {
	if s.CheckInputs == nil || p == nil {
		return nil
	}
	if err := guardSpec(func() error { return s.CheckInputs(p, n.InputKinds(), n.InputSchemas()) }); err != nil {
		return p.fieldErrors(err)
	}
	return nil
}
