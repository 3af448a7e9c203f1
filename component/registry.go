// Package component is the registry of mdp's building blocks. A component
// registers a stable type id (provider.synthetic, operator.bars, sink.sqlite),
// the record kinds it takes and produces, and a Spec of typed params with
// defaults, allowed values and docs. The same Spec decodes and validates
// params strictly, prints `mdp components`, and generates the JSON Schema for
// job files, so the docs cannot drift from the code.
//
// Built-in components register themselves from init; a program picks them up
// by blank-importing package components, as database/sql drivers do. Users
// register their own the same way (see examples/custom_operator).
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
	// Accepts is the set of record kinds an operator or sink takes.
	Accepts md.Kind
	// Produces is the kind on the main output (engine.SameAsInput for
	// pass-through operators). Sinks produce nothing.
	Produces md.Kind
	// ProducesFn, when set, decides the output kind from params (a source
	// that emits trades or quotes).
	ProducesFn func(p *Params) md.Kind
	// Ports are named outputs besides the main one, with their kinds.
	Ports map[string]md.Kind
	// Fields are the params, in documentation order.
	Fields []Field
	// Validate checks relations between params after each one decoded. Return
	// p.Errorf(key, …) errors (errors.Join for several).
	Validate func(p *Params) error
	// New builds one instance: an engine.Source or engine.Processor.
	New func(p *Params, instance int) (any, error)
}

// Common source params, added to every source's Spec by Register unless the
// Spec declares them itself (to change the default or the description).
var sourceFields = []Field{
	{Name: "max_out_of_orderness", Type: Duration, Default: "0s",
		Description: "How far behind the newest event time a record may arrive and still count as on time. The source watermark is max event time minus this."},
	{Name: "idle_timeout", Type: Duration, Default: "0s",
		Description: "When the source emits nothing for this long, advance its watermark on the (event-time) clock so windows close on time. 0 disables."},
}

var (
	mu    sync.RWMutex
	specs = map[string]*Spec{}
)

// Register adds a component. It panics on a malformed spec or a duplicate
// id: both are programming errors found at start-up.
func Register(s Spec) {
	if err := check(&s); err != nil {
		panic("component.Register: " + err.Error())
	}
	if s.Kind == engine.KindSource {
		for _, f := range sourceFields {
			if s.field(f.Name) == nil {
				s.Fields = append(s.Fields, f)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	sp := &s
	for _, id := range append([]string{s.Type}, s.Aliases...) {
		if _, dup := specs[id]; dup {
			panic("component.Register: duplicate type " + id)
		}
		specs[id] = sp
	}
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
	if s.New == nil {
		return fmt.Errorf("%s: New is nil", s.Type)
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

// OutKind is the kind on the main output for these params.
func (s *Spec) OutKind(p *Params) md.Kind {
	if s.ProducesFn != nil && p != nil {
		return s.ProducesFn(p)
	}
	return s.Produces
}

// Lookup returns the spec registered under id (a type or an alias).
func Lookup(id string) (*Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := specs[id]
	return s, ok
}

// All returns every registered spec once, sorted by type id.
func All() []*Spec {
	mu.RLock()
	defer mu.RUnlock()
	seen := map[*Spec]bool{}
	var out []*Spec
	for _, s := range specs {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// Types returns every registered id including aliases, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(specs))
	for id := range specs {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// NodeOptions are the node-level settings around a component's params.
type NodeOptions struct {
	ID          string
	Parallelism int
	OnError     engine.ErrorPolicy
}

// Node builds the engine node for a decoded component.
func Node(s *Spec, p *Params, o NodeOptions) *engine.Node {
	n := &engine.Node{
		ID: o.ID, Type: s.Type, Kind: s.Kind, Parallelism: o.Parallelism, OnError: o.OnError,
		Accepts: s.Accepts, Ports: map[string]md.Kind{},
	}
	if s.Kind != engine.KindSink {
		n.Ports[engine.PortMain] = s.OutKind(p)
	}
	for name, k := range s.Ports {
		n.Ports[name] = k
	}
	if s.Kind == engine.KindSource {
		n.MaxOutOfOrderness = p.Duration("max_out_of_orderness")
		n.IdleTimeout = p.Duration("idle_timeout")
	}
	n.New = func(instance int) (any, error) { return s.New(p, instance) }
	return n
}
