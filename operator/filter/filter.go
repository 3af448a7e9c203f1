// Package filter is the operator.filter component: it keeps the records for
// which a boolean expression over their fields is true, e.g.
// `price > 0 && size >= 100`, or over a derived record's fields,
// `zscore > 2`. The expression (expr-lang/expr) is compiled and
// type-checked once per record kind, and once per derived schema that
// reaches the node, when the job is built; see operator/internal/recexpr
// for the fields each kind offers.
package filter

import (
	"context"
	"errors"
	"fmt"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/recexpr"
)

// Type is the component's type id.
const Type = "operator.filter"

// Fields lists what an expression can name, for the specs' docs.
const Fields = "Fields: trades ts, ingest, price, size, trade_id, seq, side (\"buy\", \"sell\", \"unknown\"), symbol, provider; " +
	"quotes ts, ingest, bid, bid_size, ask, ask_size, mid, spread, seq, symbol, provider; " +
	"bars ts (= start), start, end, open, high, low, close, volume, vwap, trades, symbol, provider; " +
	"derived records ts, symbol, provider and the fields of their schema, as the upstream operator's params name them " +
	"(float64 or int64). " +
	"Times are int64 ns since the epoch. The language is expr-lang/expr (https://expr-lang.org): " +
	"arithmetic, comparisons, &&, ||, !, in, matches, string functions."

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Keep the records for which an expression over their fields is true",
		Description: "expr is compiled and type-checked once per record kind, and once per derived schema reaching the node, when " +
			"the job is built: a misspelt field or a type error is a config error at its line and column. An expression that names a " +
			"field one kind lacks (bid on a trade) is valid for the kinds that have it; the job is invalid if its input can carry a " +
			"kind or schema the expression is not valid for. Records that do not match are counted as dropped under \"filtered\". " + Fields,
		Accepts: md.KindTrade | md.KindQuote | md.KindBar | md.KindDerived, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "expr", Type: component.String, Required: true, Description: "A boolean expression over the record's fields.",
				Example: "price > 0 && size >= 100"},
		},
		Validate: func(p *component.Params) error {
			_, err := CompileAny(p, "expr", p.String("expr"), recexpr.Bool)
			return err
		},
		CheckInputs: func(p *component.Params, kinds md.Kind, schemas []*md.Schema) error {
			src := p.String("expr")
			prog, err := CompileAny(p, "expr", src, recexpr.Bool)
			if err != nil {
				return err
			}
			return CheckInputs(p, "expr", prog, kinds, schemas)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			prog, err := CompileAny(p, "expr", p.String("expr"), recexpr.Bool)
			if err != nil {
				return nil, err
			}
			return New(prog), nil
		},
	})
}

// Compile compiles the expression in param key for trades, quotes and
// bars, and places a compile error at its line and column in the job file.
func Compile(p *component.Params, key string, res recexpr.Result) (*recexpr.Program, error) {
	return CompileText(p, key, p.String(key), res)
}

// CompileText compiles src, the text of (part of) param key, for trades,
// quotes and bars, placing an error at its position.
func CompileText(p *component.Params, key, src string, res recexpr.Result) (*recexpr.Program, error) {
	prog, err := recexpr.Compile(src, md.KindTrade|md.KindQuote|md.KindBar, res)
	if err != nil {
		return nil, PlaceError(p, key, src, err)
	}
	return prog, nil
}

// CompileAny is CompileText for derived records too: an expression valid
// for none of trades, quotes and bars is accepted here if it parses, and
// CheckInputs type-checks it against the derived schemas that reach the
// node once the graph is built.
func CompileAny(p *component.Params, key, src string, res recexpr.Result) (*recexpr.Program, error) {
	prog, err := recexpr.Compile(src, md.KindTrade|md.KindQuote|md.KindBar|md.KindDerived, res)
	if err != nil {
		return nil, PlaceError(p, key, src, err)
	}
	return prog, nil
}

// CheckInputs checks prog, compiled from param key, against the kinds and
// derived schemas that reach the node, placing an error at its line and
// column.
func CheckInputs(p *component.Params, key string, prog *recexpr.Program, kinds md.Kind, schemas []*md.Schema) error {
	if err := prog.CheckKinds(kinds &^ md.KindDerived); err != nil {
		return PlaceError(p, key, prog.Source, err)
	}
	if err := prog.CheckSchemas(schemas); err != nil {
		return PlaceError(p, key, prog.Source, err)
	}
	return nil
}

// PlaceError turns an expression's compile error into a param error at its
// line and column in the job file.
func PlaceError(p *component.Params, key, src string, err error) error {
	var e *recexpr.Error
	if errors.As(err, &e) {
		return p.ErrorfAt(key, e.Line, e.Column, "expression %q: %s", src, e.Msg)
	}
	return p.Errorf(key, "expression %q: %v", src, err)
}

// Filter is the operator.
type Filter struct {
	prog *recexpr.Program
	env  *recexpr.Env
	nc   *engine.NodeContext
}

// New returns a filter over a compiled boolean program.
func New(prog *recexpr.Program) *Filter { return &Filter{prog: prog} }

// Open checks the expression is valid for every kind and derived schema
// the input carries.
func (f *Filter) Open(ctx context.Context, nc *engine.NodeContext) error {
	if nc.Inputs != md.KindNone {
		if err := f.prog.CheckKinds(nc.Inputs &^ md.KindDerived); err != nil {
			return err
		}
	}
	if err := f.prog.CheckSchemas(nc.InputSchemas); err != nil {
		return err
	}
	f.env = recexpr.NewEnv(nc.Symbols)
	f.nc = nc
	return nil
}

func (f *Filter) program(b *md.Batch) (*recexpr.Compiled, error) {
	var p *recexpr.Compiled
	var err error
	if b.Kind == md.KindDerived {
		p, err = f.prog.ForSchema(b.Schema)
	} else {
		p, err = f.prog.For(b.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("operator.filter: %w", err)
	}
	return p, nil
}

// Process emits the records of b for which the expression is true. A batch
// whose every record matches is forwarded as is, uncopied.
func (f *Filter) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	prog, err := f.program(b)
	if err != nil {
		return err
	}
	n := b.Len()
	keep := func(i int) (bool, error) {
		switch b.Kind {
		case md.KindTrade:
			f.env.SetTrade(&b.Trades[i])
		case md.KindQuote:
			f.env.SetQuote(&b.Quotes[i])
		case md.KindBar:
			f.env.SetBar(&b.Bars[i])
		default:
			f.env.SetDerived(b, i)
		}
		return f.env.Bool(prog, b.Kind)
	}
	i := 0
	for ; i < n; i++ {
		ok, err := keep(i)
		if err != nil {
			return fmt.Errorf("operator.filter: %q: %w", f.prog.Source, err)
		}
		if !ok {
			break
		}
	}
	if i == n {
		b.Retain(1)
		return out.Emit(b)
	}
	o := f.nc.Pool.GetCap(b.Kind, n)
	o.Schema = b.Schema
	appendRec(o, b, 0, i)
	dropped := int64(1)
	for i++; i < n; i++ {
		ok, err := keep(i)
		if err != nil {
			o.Release()
			return fmt.Errorf("operator.filter: %q: %w", f.prog.Source, err)
		}
		if ok {
			appendRec(o, b, i, i+1)
		} else {
			dropped++
		}
	}
	f.nc.Stats.Drop("filtered", dropped)
	return out.Emit(o)
}

// appendRec appends records [from, to) of src to dst.
func appendRec(dst, src *md.Batch, from, to int) {
	switch src.Kind {
	case md.KindTrade:
		dst.Trades = append(dst.Trades, src.Trades[from:to]...)
	case md.KindQuote:
		dst.Quotes = append(dst.Quotes, src.Quotes[from:to]...)
	case md.KindBar:
		dst.Bars = append(dst.Bars, src.Bars[from:to]...)
	case md.KindDerived:
		for i := from; i < to; i++ {
			dst.CopyDerived(src, i)
		}
	}
}
