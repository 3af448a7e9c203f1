// Package mapop is the operator.map component: it sets numeric fields of
// each record to the value of an expression over the record, e.g.
// `set: {price: "price * 100"}`, or of a derived record's field,
// `set: {zscore: "zscore * 100"}`. Every expression sees the record as it
// arrived (assignments do not see each other), so their order does not
// matter. Expressions are compiled and type-checked once per record kind,
// and once per derived schema that reaches the node, when the job is
// built.
package mapop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/filter"
	"github.com/mdpio/mdp/operator/internal/recexpr"
)

// Type is the component's type id.
const Type = "operator.map"

// settable are the fields an assignment may set, per kind.
var settable = map[md.Kind][]string{
	md.KindTrade: {"price", "size"},
	md.KindQuote: {"bid", "bid_size", "ask", "ask_size"},
	md.KindBar:   {"open", "high", "low", "close", "volume", "vwap"},
}

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Set numeric fields of each record to expressions over the record",
		Description: "set maps a field name to a numeric expression. Settable fields: trades price, size; quotes bid, bid_size, ask, " +
			"ask_size; bars open, high, low, close, volume, vwap; derived records every field of their schema (an int64 field takes " +
			"an integer expression). Every expression sees the record as it arrived, so assignments do not see each other. An " +
			"assignment applies to the kinds that have its field and for which its expression is valid, and to every derived schema " +
			"reaching the node that has its field (there it must be valid, checked when the job is built); the job is invalid if its " +
			"input can carry a kind or schema with none of the assignments valid, or if a field is settable in nothing that reaches " +
			"the node. " + filter.Fields,
		Accepts: md.KindTrade | md.KindQuote | md.KindBar | md.KindDerived, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "set", Type: component.Map, Required: true, Description: "field: expression, for each field to set.",
				Example: map[string]any{"price": "price * 100"}},
		},
		Validate: func(p *component.Params) error {
			_, err := compile(p)
			return err
		},
		CheckInputs: func(p *component.Params, kinds md.Kind, schemas []*md.Schema) error {
			as, err := compile(p)
			if err != nil {
				return err
			}
			_, err = New(as).plan(kinds, schemas)
			var ae *assignError
			if errors.As(err, &ae) && ae.name != "" {
				if fe, ok := filter.PlaceError(p, "set", ae.src, ae.err).(*component.FieldError); ok {
					fe.Msg = "set." + ae.name + ": " + fe.Msg
					return fe
				}
			}
			if err != nil {
				return p.Errorf("set", "%v", err)
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			as, err := compile(p)
			if err != nil {
				return nil, err
			}
			return New(as), nil
		},
	})
}

// Assignment is one field set to an expression.
type Assignment struct {
	Field string
	Src   string
	Prog  *recexpr.Program // a float expression
	// IntProg is the expression compiled for int64 fields of derived
	// records (as an integer expression), made when a schema needs it.
	IntProg *recexpr.Program
}

// reservedFields are the columns of every derived record (md.NewSchema),
// which are not fields to set.
var reservedFields = []string{"ts", "symbol", "provider", "type", "reason"}

func compile(p *component.Params) ([]Assignment, error) {
	m := p.Map("set")
	if len(m) == 0 {
		return nil, p.Errorf("set", "set needs at least one field: expression")
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Assignment
	var errs []error
	for _, name := range names {
		src, ok := m[name].(string)
		if !ok {
			if v, isNum := toFloat(m[name]); isNum {
				src = fmt.Sprint(v)
			} else {
				errs = append(errs, p.Errorf("set", "set.%s: want an expression string, got %T", name, m[name]))
				continue
			}
		}
		if slices.Contains(reservedFields, name) {
			errs = append(errs, p.Errorf("set", "set.%s: not a settable field (trades: price, size; quotes: bid, bid_size, ask, ask_size; bars: open, high, low, close, volume, vwap; derived records: the fields of their schema)", name))
			continue
		}
		prog, err := filter.CompileAny(p, "set", src, recexpr.Float)
		if err != nil {
			var fe *component.FieldError
			if errors.As(err, &fe) {
				fe.Msg = "set." + name + ": " + fe.Msg
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, Assignment{Field: name, Src: src, Prog: prog})
	}
	return out, errors.Join(errs...)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// step is one assignment compiled for one kind: the field's index in the
// kind's settable list (for derived records, in the schema).
type step struct {
	field int
	isInt bool
	prog  *recexpr.Compiled
}

// schemaSteps are the assignments that apply to one derived schema.
type schemaSteps struct {
	sc    *md.Schema
	steps []step
}

// Map is the operator.
type Map struct {
	as      []Assignment
	steps   [3][]step
	derived []schemaSteps
	vals    []md.Value
	env     *recexpr.Env
	nc      *engine.NodeContext
}

// New returns a map over compiled assignments.
func New(as []Assignment) *Map {
	m := &Map{as: as, vals: make([]md.Value, len(as))}
	for i, k := range recexpr.Kinds {
		for _, a := range as {
			prog, err := a.Prog.For(k)
			fi := slices.Index(settable[k], a.Field)
			if err == nil && fi >= 0 {
				m.steps[i] = append(m.steps[i], step{field: fi, prog: prog})
			}
		}
	}
	return m
}

// assignError is a problem with one assignment (name) or, without a name,
// with what reaches the node.
type assignError struct {
	name, src string
	err       error
}

func (e *assignError) Error() string {
	if e.name == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("set.%s: expression %q: %v", e.name, e.src, e.err)
}

func (e *assignError) Unwrap() error { return e.err }

// forSchema compiles the assignments whose field sc has; each must be
// valid for sc.
func (m *Map) forSchema(sc *md.Schema) ([]step, error) {
	for _, d := range m.derived {
		if d.sc == sc {
			return d.steps, nil
		}
	}
	var steps []step
	for ai := range m.as {
		a := &m.as[ai]
		fi := sc.Index(a.Field)
		if fi < 0 {
			continue
		}
		prog, isInt := a.Prog, sc.Field(fi).Type == md.Int
		if isInt {
			if a.IntProg == nil {
				p, err := recexpr.Compile(a.Src, md.KindDerived, recexpr.Int)
				if err != nil {
					return nil, &assignError{name: a.Field, src: a.Src, err: err}
				}
				a.IntProg = p
			}
			prog = a.IntProg
		}
		c, err := prog.ForSchema(sc)
		if err != nil {
			return nil, &assignError{name: a.Field, src: a.Src, err: err}
		}
		steps = append(steps, step{field: fi, isInt: isInt, prog: c})
	}
	if len(steps) == 0 {
		return nil, &assignError{err: fmt.Errorf("operator.map: the input carries derived records of schema %s and no assignment of set names one of their fields", sc)}
	}
	m.derived = append(m.derived, schemaSteps{sc: sc, steps: steps})
	return steps, nil
}

// plan checks the assignments against the kinds and derived schemas that
// reach the node: every kind and schema has an assignment that applies,
// every assignment to a field of derived records only applies to a schema,
// and an assignment invalid for every kind with its field says why.
func (m *Map) plan(kinds md.Kind, schemas []*md.Schema) (bool, error) {
	for _, sc := range schemas {
		if _, err := m.forSchema(sc); err != nil {
			return false, err
		}
	}
	for _, a := range m.as {
		applies := false
		var why error
		for _, k := range recexpr.Kinds {
			if kinds&k == 0 || !slices.Contains(settable[k], a.Field) {
				continue
			}
			if _, err := a.Prog.For(k); err != nil {
				why = err
			} else {
				applies = true
			}
		}
		for _, sc := range schemas {
			applies = applies || sc.Index(a.Field) >= 0
		}
		switch {
		case applies:
		case why != nil:
			return false, &assignError{name: a.Field, src: a.Src, err: why}
		case !builtinField(a.Field) && kinds != md.KindNone:
			return false, &assignError{name: a.Field, src: a.Src, err: fmt.Errorf("no record reaching the node has a field %s (%s)", a.Field, fieldsOf(kinds, schemas))}
		}
	}
	for i, k := range recexpr.Kinds {
		if kinds&k != 0 && len(m.steps[i]) == 0 {
			return false, &assignError{err: fmt.Errorf("operator.map: the input carries %s records and no assignment of set applies to them", k)}
		}
	}
	return true, nil
}

func builtinField(name string) bool {
	for _, k := range recexpr.Kinds {
		if slices.Contains(settable[k], name) {
			return true
		}
	}
	return false
}

// fieldsOf lists the settable fields of what reaches the node.
func fieldsOf(kinds md.Kind, schemas []*md.Schema) string {
	var parts []string
	for _, k := range recexpr.Kinds {
		if kinds&k != 0 {
			parts = append(parts, k.String()+"s: "+strings.Join(settable[k], ", "))
		}
	}
	for _, sc := range schemas {
		names := make([]string, sc.Len())
		for i := range names {
			names[i] = sc.Field(i).Name
		}
		parts = append(parts, sc.Name()+": "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}

// Open checks the assignments against what the input carries.
func (m *Map) Open(ctx context.Context, nc *engine.NodeContext) error {
	if _, err := m.plan(nc.Inputs, nc.InputSchemas); err != nil {
		return err
	}
	m.env = recexpr.NewEnv(nc.Symbols)
	m.nc = nc
	return nil
}

func kindSlot(k md.Kind) int {
	for i, x := range recexpr.Kinds {
		if x == k {
			return i
		}
	}
	return -1
}

// Process emits a copy of b with the fields set.
func (m *Map) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if b.Kind == md.KindDerived {
		return m.processDerived(b, out)
	}
	si := kindSlot(b.Kind)
	if si < 0 || len(m.steps[si]) == 0 {
		return fmt.Errorf("operator.map: no assignment applies to %s records", b.Kind)
	}
	steps := m.steps[si]
	n := b.Len()
	o := m.nc.Pool.GetCap(b.Kind, n)
	for i := 0; i < n; i++ {
		switch b.Kind {
		case md.KindTrade:
			m.env.SetTrade(&b.Trades[i])
		case md.KindQuote:
			m.env.SetQuote(&b.Quotes[i])
		default:
			m.env.SetBar(&b.Bars[i])
		}
		for j, s := range steps {
			v, err := m.env.Float(s.prog, b.Kind)
			if err != nil {
				o.Release()
				return fmt.Errorf("operator.map: %w", err)
			}
			m.vals[j] = md.FloatValue(v)
		}
		switch b.Kind {
		case md.KindTrade:
			t := b.Trades[i]
			for j, s := range steps {
				setTrade(&t, s.field, m.vals[j].Float())
			}
			o.Trades = append(o.Trades, t)
		case md.KindQuote:
			q := b.Quotes[i]
			for j, s := range steps {
				setQuote(&q, s.field, m.vals[j].Float())
			}
			o.Quotes = append(o.Quotes, q)
		default:
			r := b.Bars[i]
			for j, s := range steps {
				setBar(&r, s.field, m.vals[j].Float())
			}
			o.Bars = append(o.Bars, r)
		}
	}
	return out.Emit(o)
}

// processDerived emits a copy of a derived batch with the fields its
// schema has set.
func (m *Map) processDerived(b *md.Batch, out *engine.Output) error {
	steps, err := m.forSchema(b.Schema)
	if err != nil {
		return err
	}
	n := b.Len()
	o := m.nc.Pool.GetCap(md.KindDerived, n)
	o.Schema = b.Schema
	for i := 0; i < n; i++ {
		m.env.SetDerived(b, i)
		for j, s := range steps {
			if s.isInt {
				v, err := m.env.Int(s.prog, md.KindDerived)
				if err != nil {
					o.Release()
					return fmt.Errorf("operator.map: %w", err)
				}
				m.vals[j] = md.IntValue(v)
				continue
			}
			v, err := m.env.Float(s.prog, md.KindDerived)
			if err != nil {
				o.Release()
				return fmt.Errorf("operator.map: %w", err)
			}
			m.vals[j] = md.FloatValue(v)
		}
		d := b.Derived[i]
		row := o.AddDerived(d.TS, d.Sym)
		copy(row, b.Row(i))
		for j, s := range steps {
			row[s.field] = m.vals[j]
		}
	}
	return out.Emit(o)
}

func setTrade(t *md.Trade, f int, v float64) {
	switch f {
	case 0:
		t.Price = v
	case 1:
		t.Size = v
	}
}

func setQuote(q *md.Quote, f int, v float64) {
	switch f {
	case 0:
		q.Bid = v
	case 1:
		q.BidSize = v
	case 2:
		q.Ask = v
	case 3:
		q.AskSize = v
	}
}

func setBar(b *md.Bar, f int, v float64) {
	switch f {
	case 0:
		b.Open = v
	case 1:
		b.High = v
	case 2:
		b.Low = v
	case 3:
		b.Close = v
	case 4:
		b.Volume = v
	case 5:
		b.VWAP = v
	}
}
