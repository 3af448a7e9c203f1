// Package recexpr compiles expressions over market-data records with
// github.com/expr-lang/expr, for operator.filter, operator.map,
// operator.router and operator.deduplicate.
//
// Derived records (md.KindDerived) have no fixed environment: an
// expression over them is compiled against the schema that reaches the
// node (Program.ForSchema), whose field names and types the graph declares
// at build time, besides ts, symbol and provider.
//
// An expression is compiled and type-checked once per record kind, at
// build time, against a typed environment struct (TradeEnv, QuoteEnv,
// BarEnv): a misspelt field or a type error is a config error with its
// position, and a field one kind lacks (bid on a trade) makes the
// expression invalid for that kind only. Evaluating reuses one vm.VM and
// one environment struct per evaluator, so no VM or environment is built
// per record.
package recexpr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/mdpio/mdp/md"
)

// TradeEnv is what an expression sees of a trade.
type TradeEnv struct {
	TS       int64   `expr:"ts"`
	Ingest   int64   `expr:"ingest"`
	Price    float64 `expr:"price"`
	Size     float64 `expr:"size"`
	TradeID  int64   `expr:"trade_id"`
	Seq      int64   `expr:"seq"`
	Side     string  `expr:"side"`
	Symbol   string  `expr:"symbol"`
	Provider string  `expr:"provider"`
}

// QuoteEnv is what an expression sees of a quote.
type QuoteEnv struct {
	TS       int64   `expr:"ts"`
	Ingest   int64   `expr:"ingest"`
	Bid      float64 `expr:"bid"`
	BidSize  float64 `expr:"bid_size"`
	Ask      float64 `expr:"ask"`
	AskSize  float64 `expr:"ask_size"`
	Mid      float64 `expr:"mid"`
	Spread   float64 `expr:"spread"`
	Seq      int64   `expr:"seq"`
	Symbol   string  `expr:"symbol"`
	Provider string  `expr:"provider"`
}

// BarEnv is what an expression sees of a bar; ts is its start.
type BarEnv struct {
	TS       int64   `expr:"ts"`
	Start    int64   `expr:"start"`
	End      int64   `expr:"end"`
	Open     float64 `expr:"open"`
	High     float64 `expr:"high"`
	Low      float64 `expr:"low"`
	Close    float64 `expr:"close"`
	Volume   float64 `expr:"volume"`
	VWAP     float64 `expr:"vwap"`
	Trades   int64   `expr:"trades"`
	Symbol   string  `expr:"symbol"`
	Provider string  `expr:"provider"`
}

// Kinds are the record kinds expressions work on, in the order of a
// Program's per-kind slots.
var Kinds = [3]md.Kind{md.KindTrade, md.KindQuote, md.KindBar}

func slot(k md.Kind) int {
	switch k {
	case md.KindTrade:
		return 0
	case md.KindQuote:
		return 1
	case md.KindBar:
		return 2
	}
	return -1
}

// Result is the type an expression must have.
type Result uint8

// Result types.
const (
	Bool  Result = iota // a filter or a route
	Float               // a value assigned to a numeric field
	Any                 // a dedupe key: an integer or a string
	Int                 // a value assigned to an int64 field of a derived record
)

// Program is one expression compiled for each record kind it is valid for.
type Program struct {
	Source  string
	res     Result
	progs   [3]*Compiled
	errs    [3]error
	derived bool // compile for derived schemas too (ForSchema)
	schemas []schemaProg
}

// schemaProg is the expression compiled for one derived schema.
type schemaProg struct {
	sc  *md.Schema
	c   *Compiled
	err error
}

// Error is a compile error with its position in the expression (1-based).
type Error struct {
	Line, Column int
	Msg          string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

// Compile compiles src for every kind in kinds (md.KindTrade, KindQuote,
// KindBar). It fails when the expression is valid for none of them, with
// the error for the first kind; a kind it is not valid for is an error
// only when a batch of that kind may arrive (CheckKinds).
//
// With md.KindDerived in kinds the expression may also be meant for
// derived records, whose fields are known only once the graph is built:
// then an expression valid for none of the built-in kinds is accepted if
// it parses, and ForSchema (CheckSchemas)
// type-checks it against each schema that reaches the node.
func Compile(src string, kinds md.Kind, res Result) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "the expression is empty"}
	}
	p := &Program{Source: src, res: res, derived: kinds&md.KindDerived != 0}
	var first error
	ok := false
	for i, k := range Kinds {
		if kinds&k == 0 {
			p.errs[i] = fmt.Errorf("the node does not take %s records", k)
			continue
		}
		c, err := compileFor(src, envFor(k), k, nil, res)
		if err != nil {
			err = convert(k.String()+" records", err)
			p.errs[i] = err
			if first == nil {
				first = err
			}
			continue
		}
		p.progs[i] = c
		ok = true
	}
	if !ok && p.derived {
		// The fields of derived records are not known here: check the
		// syntax; ForSchema type-checks against each schema.
		if _, err := parser.Parse(src); err != nil {
			return nil, convert("any record", err)
		}
		return p, nil
	}
	if !ok {
		if first == nil {
			first = errors.New("no record kind to compile for")
		}
		return nil, first
	}
	return p, nil
}

func resultOpts(res Result) []expr.Option {
	switch res {
	case Bool:
		return []expr.Option{expr.AsBool()}
	case Float:
		return []expr.Option{expr.AsFloat64()}
	case Int:
		return []expr.Option{expr.AsInt64()}
	}
	return nil
}

// compileFor compiles src against env, the environment of kind k (and
// schema sc for derived records).
func compileFor(src string, env any, k md.Kind, sc *md.Schema, res Result) (*Compiled, error) {
	prog, err := expr.Compile(src, append([]expr.Option{expr.Env(env)}, resultOpts(res)...)...)
	if err == nil && res == Any {
		err = checkKey(prog)
	}
	if err == nil && res == Int && !isInt(kindOf(prog.Node())) {
		err = fmt.Errorf("an int64 field needs an integer expression, not %s", prog.Node().Type())
	}
	if err != nil {
		return nil, err
	}
	c := &Compiled{VM: prog, sc: sc}
	fastCompile(c, k, sc, res)
	return c, nil
}

// derivedEnv is the environment an expression over derived records of
// schema sc is type-checked against: its fields, with ts, symbol and
// provider.
func derivedEnv(sc *md.Schema) map[string]any {
	env := map[string]any{"ts": int64(0), "symbol": "", "provider": ""}
	for _, f := range sc.Fields() {
		if f.Type == md.Int {
			env[f.Name] = int64(0)
		} else {
			env[f.Name] = float64(0)
		}
	}
	return env
}

// ForSchema returns the program for derived records of schema sc, compiled
// and type-checked against its fields the first time sc is asked for, or
// why the expression is not valid for them.
func (p *Program) ForSchema(sc *md.Schema) (*Compiled, error) {
	for i := range p.schemas {
		if p.schemas[i].sc == sc {
			return p.schemas[i].c, p.schemas[i].err
		}
	}
	sp := schemaProg{sc: sc}
	for _, have := range p.schemas {
		if have.sc.Equal(sc) {
			sp.c, sp.err = have.c, have.err
		}
	}
	if sp.c == nil && sp.err == nil {
		if !p.derived {
			sp.err = errors.New("the node does not take derived records")
		} else if c, err := compileFor(p.Source, derivedEnv(sc), md.KindDerived, sc, p.res); err != nil {
			sp.err = convert("derived records of schema "+sc.String(), err)
		} else {
			sp.c = c
		}
	}
	p.schemas = append(p.schemas, sp)
	return sp.c, sp.err
}

// CheckSchemas returns an error naming the first schema among schemas the
// expression is not valid for (wrapping its *Error, with the position).
func (p *Program) CheckSchemas(schemas []*md.Schema) error {
	for _, sc := range schemas {
		if _, err := p.ForSchema(sc); err != nil {
			return fmt.Errorf("expression %q: %w", p.Source, err)
		}
	}
	return nil
}

func checkKey(prog *vm.Program) error {
	switch prog.Node().Type().Kind().String() {
	case "int", "int64", "string", "interface":
		return nil
	}
	return fmt.Errorf("a key must be an integer or a string, not %s", prog.Node().Type())
}

func convert(what string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Line: fe.Line, Column: fe.Column + 1, Msg: fmt.Sprintf("%s (for %s)", fe.Message, what)}
	}
	return &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("%v (for %s)", err, what)}
}

func envFor(k md.Kind) any {
	switch k {
	case md.KindQuote:
		return QuoteEnv{}
	case md.KindBar:
		return BarEnv{}
	}
	return TradeEnv{}
}

// For returns the program for kind k (trade, quote or bar; derived
// records go by schema, ForSchema), or why the expression is not valid
// for it.
func (p *Program) For(k md.Kind) (*Compiled, error) {
	i := slot(k)
	if i < 0 {
		return nil, fmt.Errorf("expressions work on trade, quote and bar records, not %s", k)
	}
	return p.progs[i], p.errs[i]
}

// CheckKinds returns an error naming the first kind in kinds the
// expression is not valid for: an operator calls it at Open with the kinds
// its inputs carry. Derived records are checked by schema (CheckSchemas).
func (p *Program) CheckKinds(kinds md.Kind) error {
	for _, k := range Kinds {
		if kinds&k == 0 {
			continue
		}
		if _, err := p.For(k); err != nil {
			return fmt.Errorf("expression %q: %w", p.Source, err)
		}
	}
	if kinds&md.KindDerived != 0 && !p.derived {
		return fmt.Errorf("expression %q: this node's input may carry derived records, and the expression is not compiled for them", p.Source)
	}
	return nil
}

// Env is one evaluator's reusable environment and VM. It belongs to one
// node instance (one goroutine).
type Env struct {
	syms   *md.SymbolTable
	inst   []md.Instrument
	Trade  TradeEnv
	Quote  QuoteEnv
	Bar    BarEnv
	vm     vm.VM
	sideNm [3]string
	// The derived record loaded by SetDerived, and the map the VM reads
	// it from (filled only when an expression runs on the VM).
	drow  []md.Value
	dts   int64
	dsym  string
	dprov string
	dmap  map[string]any
}

// NewEnv returns an environment resolving symbols in t.
func NewEnv(t *md.SymbolTable) *Env {
	return &Env{syms: t, sideNm: [3]string{"unknown", "buy", "sell"}}
}

func (e *Env) instrument(id md.SymID) *md.Instrument {
	if int(id) >= len(e.inst) {
		e.inst = e.syms.Snapshot()
		if int(id) >= len(e.inst) {
			return &md.Instrument{}
		}
	}
	return &e.inst[id]
}

// SetTrade loads t into the trade environment.
func (e *Env) SetTrade(t *md.Trade) {
	in := e.instrument(t.Sym)
	e.Trade = TradeEnv{TS: t.TS, Ingest: t.Ingest, Price: t.Price, Size: t.Size, TradeID: t.TradeID,
		Seq: int64(t.Seq), Side: e.sideNm[min(int(t.Side), 2)], Symbol: in.Symbol, Provider: in.Provider}
}

// SetQuote loads q into the quote environment.
func (e *Env) SetQuote(q *md.Quote) {
	in := e.instrument(q.Sym)
	e.Quote = QuoteEnv{TS: q.TS, Ingest: q.Ingest, Bid: q.Bid, BidSize: q.BidSize, Ask: q.Ask, AskSize: q.AskSize,
		Mid: q.Mid(), Spread: q.Ask - q.Bid, Seq: int64(q.Seq), Symbol: in.Symbol, Provider: in.Provider}
}

// SetBar loads b into the bar environment.
func (e *Env) SetBar(b *md.Bar) {
	in := e.instrument(b.Sym)
	e.Bar = BarEnv{TS: b.Start, Start: b.Start, End: b.End, Open: b.Open, High: b.High, Low: b.Low, Close: b.Close,
		Volume: b.Volume, VWAP: b.VWAP, Trades: b.Trades, Symbol: in.Symbol, Provider: in.Provider}
}

// SetDerived loads derived record i of b into the derived environment.
func (e *Env) SetDerived(b *md.Batch, i int) {
	d := &b.Derived[i]
	in := e.instrument(d.Sym)
	e.drow, e.dts, e.dsym, e.dprov = b.Row(i), d.TS, in.Symbol, in.Provider
}

// Run evaluates c on the VM against the environment of kind k, which the
// caller loaded with SetTrade, SetQuote, SetBar or SetDerived.
func (e *Env) Run(c *Compiled, k md.Kind) (any, error) {
	switch k {
	case md.KindQuote:
		return e.vm.Run(c.VM, &e.Quote)
	case md.KindBar:
		return e.vm.Run(c.VM, &e.Bar)
	case md.KindDerived:
		if e.dmap == nil {
			e.dmap = map[string]any{}
		}
		for i := 0; i < c.sc.Len(); i++ {
			f := c.sc.Field(i)
			if f.Type == md.Int {
				e.dmap[f.Name] = e.drow[i].Int()
			} else {
				e.dmap[f.Name] = e.drow[i].Float()
			}
		}
		e.dmap["ts"], e.dmap["symbol"], e.dmap["provider"] = e.dts, e.dsym, e.dprov
		return e.vm.Run(c.VM, e.dmap)
	}
	return e.vm.Run(c.VM, &e.Trade)
}

// Bool evaluates a Bool program: as closures when it compiled to them (no
// allocation), else on the VM.
func (e *Env) Bool(c *Compiled, k md.Kind) (bool, error) {
	if c.b != nil {
		return c.b(e), nil
	}
	v, err := e.Run(c, k)
	if err != nil {
		return false, err
	}
	b, _ := v.(bool)
	return b, nil
}

// Float evaluates a Float program: as closures when it compiled to them,
// else on the VM.
func (e *Env) Float(c *Compiled, k md.Kind) (float64, error) {
	if c.f != nil {
		return c.f(e), nil
	}
	v, err := e.Run(c, k)
	if err != nil {
		return 0, err
	}
	f, _ := v.(float64)
	return f, nil
}

// Int evaluates an Int program: as closures when it compiled to them, else
// on the VM.
func (e *Env) Int(c *Compiled, k md.Kind) (int64, error) {
	if c.i != nil {
		return c.i(e), nil
	}
	v, err := e.Run(c, k)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	}
	return 0, fmt.Errorf("the expression gave %T, not an integer", v)
}
