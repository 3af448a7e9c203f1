// Package mapop is the operator.map component: it sets numeric fields of
// each record to the value of an expression over the record, e.g.
// `set: {price: "price * 100"}`. Every expression sees the record as it
// arrived (assignments do not see each other), so their order does not
// matter. Expressions are compiled and type-checked once per record kind
// when the job is built.
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
		Description: "set maps a field name to a float expression. Settable fields: trades price, size; quotes bid, bid_size, ask, " +
			"ask_size; bars open, high, low, close, volume, vwap. Every expression sees the record as it arrived, so assignments do " +
			"not see each other. An assignment applies to the kinds that have its field and for which its expression is valid; the job " +
			"fails to start if its input can carry a kind with none of the assignments valid. " + filter.Fields,
		Accepts: md.KindTrade | md.KindQuote | md.KindBar, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "set", Type: component.Map, Required: true, Description: "field: expression, for each field to set.",
				Example: map[string]any{"price": "price * 100"}},
		},
		Validate: func(p *component.Params) error {
			_, err := compile(p)
			return err
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
	Prog  *recexpr.Program
}

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
		var kinds []string
		for _, k := range recexpr.Kinds {
			if slices.Contains(settable[k], name) {
				kinds = append(kinds, k.String())
			}
		}
		if len(kinds) == 0 {
			errs = append(errs, p.Errorf("set", "set.%s: not a settable field (trades: price, size; quotes: bid, bid_size, ask, ask_size; bars: open, high, low, close, volume, vwap)", name))
			continue
		}
		prog, err := filter.CompileText(p, "set", src, recexpr.Float)
		if err != nil {
			var fe *component.FieldError
			if errors.As(err, &fe) {
				fe.Msg = "set." + name + ": " + fe.Msg
			}
			errs = append(errs, err)
			continue
		}
		usable := false
		for _, k := range recexpr.Kinds {
			if _, err := prog.For(k); err == nil && slices.Contains(settable[k], name) {
				usable = true
			}
		}
		if !usable {
			errs = append(errs, p.Errorf("set", "set.%s: the expression %q is not valid for %s records, the kinds with a %s field", name, src, strings.Join(kinds, " or "), name))
			continue
		}
		out = append(out, Assignment{Field: name, Prog: prog})
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
// kind's settable list.
type step struct {
	field int
	prog  *recexpr.Compiled
}

// Map is the operator.
type Map struct {
	as    []Assignment
	steps [3][]step
	vals  []float64
	env   *recexpr.Env
	nc    *engine.NodeContext
}

// New returns a map over compiled assignments.
func New(as []Assignment) *Map {
	m := &Map{as: as, vals: make([]float64, len(as))}
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

// Open checks that every kind the input carries has an assignment.
func (m *Map) Open(ctx context.Context, nc *engine.NodeContext) error {
	for i, k := range recexpr.Kinds {
		if nc.Inputs&k != 0 && len(m.steps[i]) == 0 {
			return fmt.Errorf("operator.map: the input carries %s records and no assignment of set applies to them", k)
		}
	}
	if nc.Inputs&md.KindDerived != 0 {
		return errors.New("operator.map: expressions work on trade, quote and bar records, and this node's input may carry derived records")
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
			m.vals[j] = v
		}
		switch b.Kind {
		case md.KindTrade:
			t := b.Trades[i]
			for j, s := range steps {
				setTrade(&t, s.field, m.vals[j])
			}
			o.Trades = append(o.Trades, t)
		case md.KindQuote:
			q := b.Quotes[i]
			for j, s := range steps {
				setQuote(&q, s.field, m.vals[j])
			}
			o.Quotes = append(o.Quotes, q)
		default:
			r := b.Bars[i]
			for j, s := range steps {
				setBar(&r, s.field, m.vals[j])
			}
			o.Bars = append(o.Bars, r)
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
