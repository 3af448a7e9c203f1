// Package router is the operator.router component: it sends each record to
// named output ports chosen by symbol lists or boolean expressions, in the
// order the routes are listed. A record that matches no route goes to the
// default port; when nothing is wired to default, it is counted as dropped
// (under unconnected_port_default), never lost silently.
package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/filter"
	"github.com/mdpio/mdp/operator/internal/recexpr"
)

// Type is the component's type id.
const Type = "operator.router"

// PortDefault is the port of records that match no route.
const PortDefault = "default"

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Route records to named outputs by symbol lists or expressions; unmatched to default",
		Description: "routes is a list of {name, symbols} or {name, expr}: symbols lists symbol texts, expr is a boolean expression " +
			"(as in operator.filter, over derived records' fields too, type-checked against the schemas reaching the node when the job is built). Each route is an output port named by its name; wire it as [router.crypto, next]. With " +
			"match: first a record goes to the first route it matches; with match: all to every route it matches. A record that " +
			"matches none goes to the default port; if nothing is wired to default it is counted as dropped under " +
			"unconnected_port_default. " + filter.Fields,
		Accepts: md.KindTrade | md.KindQuote | md.KindBar | md.KindDerived, Produces: engine.SameAsInput,
		PortsFn: func(p *component.Params) map[string]md.Kind {
			rs, _ := parse(p)
			out := map[string]md.Kind{PortDefault: engine.SameAsInput}
			for _, r := range rs {
				out[r.Name] = engine.SameAsInput
			}
			return out
		},
		PortsDoc: "one port per route, named by its name, and default",
		Fields: []component.Field{
			{Name: "routes", Type: component.List, Required: true,
				Description: "Routes in order: each {name: port, symbols: [..]} or {name: port, expr: \"..\"}.",
				Example:     []any{map[string]any{"name": "crypto", "symbols": []any{"BTCUSDT", "ETHUSDT"}}, map[string]any{"name": "big", "expr": "price * size >= 100000"}}},
			{Name: "match", Type: component.String, Default: "first", Enum: []string{"first", "all"},
				Description: "first: a record goes to the first route it matches; all: to every route it matches."},
		},
		Validate: func(p *component.Params) error {
			_, err := parse(p)
			return err
		},
		CheckInputs: func(p *component.Params, kinds md.Kind, schemas []*md.Schema) error {
			rs, err := parse(p)
			if err != nil {
				return err
			}
			for i, rt := range rs {
				if rt.Expr == nil {
					continue
				}
				if err := filter.CheckInputs(p, "routes", rt.Expr, kinds, schemas); err != nil {
					var fe *component.FieldError
					if errors.As(err, &fe) {
						fe.Msg = fmt.Sprintf("routes[%d] (%s): %s", i, rt.Name, fe.Msg)
					}
					return err
				}
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			rs, err := parse(p)
			if err != nil {
				return nil, err
			}
			return New(rs, p.String("match") == "all"), nil
		},
	})
}

// Route is one named output.
type Route struct {
	Name    string
	Symbols map[string]bool  // when set, the route matches these symbols
	Expr    *recexpr.Program // otherwise this expression
}

var reserved = map[string]bool{"": true, PortDefault: true, engine.PortLate: true, engine.PortDeadLetter: true}

func parse(p *component.Params) ([]Route, error) {
	list := p.List("routes")
	if len(list) == 0 {
		return nil, p.Errorf("routes", "routes needs at least one route")
	}
	var out []Route
	var errs []error
	seen := map[string]bool{}
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, p.Errorf("routes", "routes[%d]: want {name, symbols} or {name, expr}, got %T", i, item))
			continue
		}
		for k := range m {
			if k != "name" && k != "symbols" && k != "expr" {
				errs = append(errs, p.Errorf("routes", "routes[%d]: unknown key %q (want name and one of symbols, expr)", i, k))
			}
		}
		name, _ := m["name"].(string)
		switch {
		case name == "":
			errs = append(errs, p.Errorf("routes", "routes[%d]: needs a name", i))
			continue
		case reserved[name]:
			errs = append(errs, p.Errorf("routes", "routes[%d]: %q is reserved (default, late, dead_letter)", i, name))
			continue
		case seen[name]:
			errs = append(errs, p.Errorf("routes", "routes[%d]: route %q given twice", i, name))
			continue
		case strings.ContainsAny(name, ". "):
			errs = append(errs, p.Errorf("routes", "routes[%d]: %q: a port name has no dots or spaces", i, name))
			continue
		}
		seen[name] = true
		r := Route{Name: name}
		syms, hasSyms := m["symbols"]
		src, hasExpr := m["expr"]
		switch {
		case hasSyms == hasExpr:
			errs = append(errs, p.Errorf("routes", "routes[%d] (%s): give exactly one of symbols and expr", i, name))
			continue
		case hasSyms:
			l, ok := syms.([]any)
			if s, isStr := syms.(string); isStr {
				l, ok = []any{s}, true
			}
			if !ok || len(l) == 0 {
				errs = append(errs, p.Errorf("routes", "routes[%d] (%s): symbols must be a non-empty list of symbol texts", i, name))
				continue
			}
			r.Symbols = map[string]bool{}
			for _, s := range l {
				str, ok := s.(string)
				if !ok || str == "" {
					errs = append(errs, p.Errorf("routes", "routes[%d] (%s): symbol %v is not a symbol text", i, name, s))
					continue
				}
				r.Symbols[str] = true
			}
		default:
			s, ok := src.(string)
			if !ok {
				errs = append(errs, p.Errorf("routes", "routes[%d] (%s): expr must be a string", i, name))
				continue
			}
			prog, err := filter.CompileAny(p, "routes", s, recexpr.Bool)
			if err != nil {
				var fe *component.FieldError
				if errors.As(err, &fe) {
					fe.Msg = fmt.Sprintf("routes[%d] (%s): %s", i, name, fe.Msg)
				}
				errs = append(errs, err)
				continue
			}
			r.Expr = prog
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// Router is the operator.
type Router struct {
	routes []Route
	all    bool
	env    *recexpr.Env
	nc     *engine.NodeContext
	// symRoute caches, per SymID, a bit per symbol-list route that
	// matches (bit 63: computed).
	symRoute []uint64
	outs     []*md.Batch // per route, then default
}

// New returns a router.
func New(routes []Route, all bool) *Router {
	return &Router{routes: routes, all: all, outs: make([]*md.Batch, len(routes)+1)}
}

// Open checks every expression is valid for the input's kinds.
func (r *Router) Open(ctx context.Context, nc *engine.NodeContext) error {
	if len(r.routes) > 63 {
		return fmt.Errorf("operator.router: %d routes, at most 63", len(r.routes))
	}
	for _, rt := range r.routes {
		if rt.Expr == nil {
			continue
		}
		if nc.Inputs != md.KindNone {
			if err := rt.Expr.CheckKinds(nc.Inputs &^ md.KindDerived); err != nil {
				return fmt.Errorf("route %s: %w", rt.Name, err)
			}
		}
		if err := rt.Expr.CheckSchemas(nc.InputSchemas); err != nil {
			return fmt.Errorf("route %s: %w", rt.Name, err)
		}
	}
	r.env = recexpr.NewEnv(nc.Symbols)
	r.nc = nc
	return nil
}

func (r *Router) symBits(id md.SymID) uint64 {
	if int(id) >= len(r.symRoute) {
		r.symRoute = append(r.symRoute, make([]uint64, int(id)+1-len(r.symRoute)+16)...)
	}
	if b := r.symRoute[id]; b != 0 {
		return b
	}
	in := r.nc.Symbols.Get(id)
	b := uint64(1) << 63
	for i, rt := range r.routes {
		if rt.Symbols != nil && rt.Symbols[in.Symbol] {
			b |= 1 << i
		}
	}
	r.symRoute[id] = b
	return b
}

// Process routes b's records.
func (r *Router) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	for i := 0; i < n; i++ {
		var sym md.SymID
		switch b.Kind {
		case md.KindTrade:
			sym = b.Trades[i].Sym
		case md.KindQuote:
			sym = b.Quotes[i].Sym
		case md.KindBar:
			sym = b.Bars[i].Sym
		case md.KindDerived:
			sym = b.Derived[i].Sym
		default:
			return fmt.Errorf("operator.router: cannot route %s records", b.Kind)
		}
		bits := r.symBits(sym)
		loaded := false
		matched := false
		for ri := range r.routes {
			rt := &r.routes[ri]
			var ok bool
			if rt.Symbols != nil {
				ok = bits&(1<<ri) != 0
			} else {
				prog, err := r.program(rt, b)
				if err != nil {
					return fmt.Errorf("operator.router: route %s: %w", rt.Name, err)
				}
				if !loaded {
					r.load(b, i)
					loaded = true
				}
				if ok, err = r.env.Bool(prog, b.Kind); err != nil {
					return fmt.Errorf("operator.router: route %s: %q: %w", rt.Name, rt.Expr.Source, err)
				}
			}
			if ok {
				r.add(ri, b, i)
				matched = true
				if !r.all {
					break
				}
			}
		}
		if !matched {
			r.add(len(r.routes), b, i)
		}
	}
	for i, o := range r.outs {
		if o == nil {
			continue
		}
		r.outs[i] = nil
		name := PortDefault
		if i < len(r.routes) {
			name = r.routes[i].Name
		}
		if err := out.EmitTo(name, o); err != nil {
			for _, rest := range r.outs[i+1:] {
				rest.Release()
			}
			clear(r.outs)
			return err
		}
	}
	return nil
}

func (r *Router) program(rt *Route, b *md.Batch) (*recexpr.Compiled, error) {
	if b.Kind == md.KindDerived {
		return rt.Expr.ForSchema(b.Schema)
	}
	return rt.Expr.For(b.Kind)
}

func (r *Router) load(b *md.Batch, i int) {
	switch b.Kind {
	case md.KindTrade:
		r.env.SetTrade(&b.Trades[i])
	case md.KindQuote:
		r.env.SetQuote(&b.Quotes[i])
	case md.KindBar:
		r.env.SetBar(&b.Bars[i])
	default:
		r.env.SetDerived(b, i)
	}
}

func (r *Router) add(port int, b *md.Batch, i int) {
	o := r.outs[port]
	if o == nil {
		o = r.nc.Pool.GetCap(b.Kind, b.Len())
		o.Schema = b.Schema
		r.outs[port] = o
	}
	switch b.Kind {
	case md.KindTrade:
		o.Trades = append(o.Trades, b.Trades[i])
	case md.KindQuote:
		o.Quotes = append(o.Quotes, b.Quotes[i])
	case md.KindBar:
		o.Bars = append(o.Bars, b.Bars[i])
	default:
		o.CopyDerived(b, i)
	}
}
