package recexpr

import (
	"math"
	"reflect"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/mdpio/mdp/md"
)

// The expression VM works on values boxed in interfaces: every field it
// loads from the environment and every float it computes is a heap
// allocation. Most record expressions are arithmetic and comparisons over
// a record's fields, so those are also compiled, from the tree expr-lang's
// checker typed, into closures over unboxed values that allocate nothing.
// An expression using anything else (builtins, calls, arrays, maps, `in`,
// `%`, string functions) runs on the VM as before; a test holds the
// closures to the VM's results over random records.

type (
	boolFn  func(e *Env) bool
	floatFn func(e *Env) float64
	intFn   func(e *Env) int64
	strFn   func(e *Env) string
)

// Compiled is an expression compiled for one record kind: the VM program
// and, when the expression allows it, an allocation-free closure.
type Compiled struct {
	VM *vm.Program
	sc *md.Schema // the derived records' schema it was compiled for
	b  boolFn
	f  floatFn
	i  intFn
}

// Fast reports whether the expression runs as closures, not on the VM.
func (c *Compiled) Fast() bool { return c.b != nil || c.f != nil || c.i != nil }

// fastCompile builds the closure for prog's checked tree, or leaves c as
// VM-only when the tree has anything it does not handle.
func fastCompile(c *Compiled, k md.Kind, sc *md.Schema, res Result) {
	g := fastGen{kind: k, sc: sc}
	node := c.VM.Node()
	switch res {
	case Bool:
		if f, ok := g.boolean(node); ok {
			c.b = f
		}
	case Float:
		if f, ok := g.number(node); ok {
			c.f = f
		}
	case Int:
		if f, ok := g.integer(node); ok {
			c.i = f
		}
	}
}

type fastGen struct {
	kind md.Kind
	sc   *md.Schema // for md.KindDerived
}

func kindOf(n ast.Node) reflect.Kind {
	t := n.Type()
	if t == nil {
		return reflect.Invalid
	}
	return t.Kind()
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		return true
	}
	return false
}

// field returns the getters of a named field of the kind's environment.
func (g fastGen) field(name string) (floatFn, intFn, strFn, bool) {
	switch g.kind {
	case md.KindTrade:
		switch name {
		case "ts":
			return nil, func(e *Env) int64 { return e.Trade.TS }, nil, true
		case "ingest":
			return nil, func(e *Env) int64 { return e.Trade.Ingest }, nil, true
		case "price":
			return func(e *Env) float64 { return e.Trade.Price }, nil, nil, true
		case "size":
			return func(e *Env) float64 { return e.Trade.Size }, nil, nil, true
		case "trade_id":
			return nil, func(e *Env) int64 { return e.Trade.TradeID }, nil, true
		case "seq":
			return nil, func(e *Env) int64 { return e.Trade.Seq }, nil, true
		case "side":
			return nil, nil, func(e *Env) string { return e.Trade.Side }, true
		case "symbol":
			return nil, nil, func(e *Env) string { return e.Trade.Symbol }, true
		case "provider":
			return nil, nil, func(e *Env) string { return e.Trade.Provider }, true
		}
	case md.KindQuote:
		switch name {
		case "ts":
			return nil, func(e *Env) int64 { return e.Quote.TS }, nil, true
		case "ingest":
			return nil, func(e *Env) int64 { return e.Quote.Ingest }, nil, true
		case "bid":
			return func(e *Env) float64 { return e.Quote.Bid }, nil, nil, true
		case "bid_size":
			return func(e *Env) float64 { return e.Quote.BidSize }, nil, nil, true
		case "ask":
			return func(e *Env) float64 { return e.Quote.Ask }, nil, nil, true
		case "ask_size":
			return func(e *Env) float64 { return e.Quote.AskSize }, nil, nil, true
		case "mid":
			return func(e *Env) float64 { return e.Quote.Mid }, nil, nil, true
		case "spread":
			return func(e *Env) float64 { return e.Quote.Spread }, nil, nil, true
		case "seq":
			return nil, func(e *Env) int64 { return e.Quote.Seq }, nil, true
		case "symbol":
			return nil, nil, func(e *Env) string { return e.Quote.Symbol }, true
		case "provider":
			return nil, nil, func(e *Env) string { return e.Quote.Provider }, true
		}
	case md.KindBar:
		switch name {
		case "ts":
			return nil, func(e *Env) int64 { return e.Bar.TS }, nil, true
		case "start":
			return nil, func(e *Env) int64 { return e.Bar.Start }, nil, true
		case "end":
			return nil, func(e *Env) int64 { return e.Bar.End }, nil, true
		case "open":
			return func(e *Env) float64 { return e.Bar.Open }, nil, nil, true
		case "high":
			return func(e *Env) float64 { return e.Bar.High }, nil, nil, true
		case "low":
			return func(e *Env) float64 { return e.Bar.Low }, nil, nil, true
		case "close":
			return func(e *Env) float64 { return e.Bar.Close }, nil, nil, true
		case "volume":
			return func(e *Env) float64 { return e.Bar.Volume }, nil, nil, true
		case "vwap":
			return func(e *Env) float64 { return e.Bar.VWAP }, nil, nil, true
		case "trades":
			return nil, func(e *Env) int64 { return e.Bar.Trades }, nil, true
		case "symbol":
			return nil, nil, func(e *Env) string { return e.Bar.Symbol }, true
		case "provider":
			return nil, nil, func(e *Env) string { return e.Bar.Provider }, true
		}
	case md.KindDerived:
		switch name {
		case "ts":
			return nil, func(e *Env) int64 { return e.dts }, nil, true
		case "symbol":
			return nil, nil, func(e *Env) string { return e.dsym }, true
		case "provider":
			return nil, nil, func(e *Env) string { return e.dprov }, true
		}
		i := g.sc.Index(name)
		switch {
		case i < 0:
		case g.sc.Field(i).Type == md.Int:
			return nil, func(e *Env) int64 { return e.drow[i].Int() }, nil, true
		default:
			return func(e *Env) float64 { return e.drow[i].Float() }, nil, nil, true
		}
	}
	return nil, nil, nil, false
}

// integer compiles an int-typed node.
func (g fastGen) integer(n ast.Node) (intFn, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		v := int64(n.Value)
		return func(*Env) int64 { return v }, true
	case *ast.ConstantNode:
		if v, ok := n.Value.(int); ok {
			x := int64(v)
			return func(*Env) int64 { return x }, true
		}
	case *ast.IdentifierNode:
		if _, f, _, ok := g.field(n.Value); ok && f != nil {
			return f, true
		}
	case *ast.UnaryNode:
		x, ok := g.integer(n.Node)
		switch {
		case !ok:
		case n.Operator == "-":
			return func(e *Env) int64 { return -x(e) }, true
		case n.Operator == "+":
			return x, true
		}
	case *ast.BinaryNode:
		if !isInt(kindOf(n.Left)) || !isInt(kindOf(n.Right)) {
			return nil, false
		}
		l, ok1 := g.integer(n.Left)
		r, ok2 := g.integer(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch n.Operator {
		case "+":
			return func(e *Env) int64 { return l(e) + r(e) }, true
		case "-":
			return func(e *Env) int64 { return l(e) - r(e) }, true
		case "*":
			return func(e *Env) int64 { return l(e) * r(e) }, true
		}
	case *ast.ConditionalNode:
		c, ok1 := g.boolean(n.Cond)
		a, ok2 := g.integer(n.Exp1)
		b, ok3 := g.integer(n.Exp2)
		if ok1 && ok2 && ok3 {
			return func(e *Env) int64 {
				if c(e) {
					return a(e)
				}
				return b(e)
			}, true
		}
	}
	return nil, false
}

// number compiles a node of int or float type as a float64.
func (g fastGen) number(n ast.Node) (floatFn, bool) {
	k := kindOf(n)
	if isInt(k) {
		f, ok := g.integer(n)
		if !ok {
			return nil, false
		}
		return func(e *Env) float64 { return float64(f(e)) }, true
	}
	if k != reflect.Float64 {
		return nil, false
	}
	switch n := n.(type) {
	case *ast.FloatNode:
		v := n.Value
		return func(*Env) float64 { return v }, true
	case *ast.ConstantNode:
		if v, ok := n.Value.(float64); ok {
			return func(*Env) float64 { return v }, true
		}
	case *ast.IdentifierNode:
		if f, _, _, ok := g.field(n.Value); ok && f != nil {
			return f, true
		}
	case *ast.UnaryNode:
		x, ok := g.number(n.Node)
		switch {
		case !ok:
		case n.Operator == "-":
			return func(e *Env) float64 { return -x(e) }, true
		case n.Operator == "+":
			return x, true
		}
	case *ast.BinaryNode:
		if !isNumber(kindOf(n.Left)) || !isNumber(kindOf(n.Right)) {
			return nil, false
		}
		l, ok1 := g.number(n.Left)
		r, ok2 := g.number(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch n.Operator {
		case "+":
			return func(e *Env) float64 { return l(e) + r(e) }, true
		case "-":
			return func(e *Env) float64 { return l(e) - r(e) }, true
		case "*":
			return func(e *Env) float64 { return l(e) * r(e) }, true
		case "/":
			return func(e *Env) float64 { return l(e) / r(e) }, true
		case "**", "^":
			return func(e *Env) float64 { return math.Pow(l(e), r(e)) }, true
		}
	case *ast.ConditionalNode:
		c, ok1 := g.boolean(n.Cond)
		a, ok2 := g.number(n.Exp1)
		b, ok3 := g.number(n.Exp2)
		if ok1 && ok2 && ok3 {
			return func(e *Env) float64 {
				if c(e) {
					return a(e)
				}
				return b(e)
			}, true
		}
	}
	return nil, false
}

func isNumber(k reflect.Kind) bool { return isInt(k) || k == reflect.Float64 }

// str compiles a string-typed node.
func (g fastGen) str(n ast.Node) (strFn, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		v := n.Value
		return func(*Env) string { return v }, true
	case *ast.ConstantNode:
		if v, ok := n.Value.(string); ok {
			return func(*Env) string { return v }, true
		}
	case *ast.IdentifierNode:
		if _, _, f, ok := g.field(n.Value); ok && f != nil {
			return f, true
		}
	}
	return nil, false
}

// boolean compiles a bool-typed node.
func (g fastGen) boolean(n ast.Node) (boolFn, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(*Env) bool { return v }, true
	case *ast.ConstantNode:
		if v, ok := n.Value.(bool); ok {
			return func(*Env) bool { return v }, true
		}
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil, false
		}
		if x, ok := g.boolean(n.Node); ok {
			return func(e *Env) bool { return !x(e) }, true
		}
	case *ast.ConditionalNode:
		c, ok1 := g.boolean(n.Cond)
		a, ok2 := g.boolean(n.Exp1)
		b, ok3 := g.boolean(n.Exp2)
		if ok1 && ok2 && ok3 {
			return func(e *Env) bool {
				if c(e) {
					return a(e)
				}
				return b(e)
			}, true
		}
	case *ast.BinaryNode:
		return g.binaryBool(n)
	}
	return nil, false
}

func (g fastGen) binaryBool(n *ast.BinaryNode) (boolFn, bool) {
	lk, rk := kindOf(n.Left), kindOf(n.Right)
	switch op := strings.TrimSpace(n.Operator); {
	case (op == "&&" || op == "and" || op == "||" || op == "or") && lk == reflect.Bool && rk == reflect.Bool:
		l, ok1 := g.boolean(n.Left)
		r, ok2 := g.boolean(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		if op == "&&" || op == "and" {
			return func(e *Env) bool { return l(e) && r(e) }, true
		}
		return func(e *Env) bool { return l(e) || r(e) }, true
	case isInt(lk) && isInt(rk):
		l, ok1 := g.integer(n.Left)
		r, ok2 := g.integer(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch op {
		case "<":
			return func(e *Env) bool { return l(e) < r(e) }, true
		case "<=":
			return func(e *Env) bool { return l(e) <= r(e) }, true
		case ">":
			return func(e *Env) bool { return l(e) > r(e) }, true
		case ">=":
			return func(e *Env) bool { return l(e) >= r(e) }, true
		case "==":
			return func(e *Env) bool { return l(e) == r(e) }, true
		case "!=":
			return func(e *Env) bool { return l(e) != r(e) }, true
		}
	case isNumber(lk) && isNumber(rk):
		l, ok1 := g.number(n.Left)
		r, ok2 := g.number(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch op {
		case "<":
			return func(e *Env) bool { return l(e) < r(e) }, true
		case "<=":
			return func(e *Env) bool { return l(e) <= r(e) }, true
		case ">":
			return func(e *Env) bool { return l(e) > r(e) }, true
		case ">=":
			return func(e *Env) bool { return l(e) >= r(e) }, true
		case "==":
			return func(e *Env) bool { return l(e) == r(e) }, true
		case "!=":
			return func(e *Env) bool { return l(e) != r(e) }, true
		}
	case lk == reflect.String && rk == reflect.String:
		l, ok1 := g.str(n.Left)
		r, ok2 := g.str(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch op {
		case "==":
			return func(e *Env) bool { return l(e) == r(e) }, true
		case "!=":
			return func(e *Env) bool { return l(e) != r(e) }, true
		}
	case lk == reflect.Bool && rk == reflect.Bool:
		l, ok1 := g.boolean(n.Left)
		r, ok2 := g.boolean(n.Right)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch op {
		case "==":
			return func(e *Env) bool { return l(e) == r(e) }, true
		case "!=":
			return func(e *Env) bool { return l(e) != r(e) }, true
		}
	}
	return nil, false
}
