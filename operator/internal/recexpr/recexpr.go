// Package recexpr compiles expressions over market-data records with
// github.com/expr-lang/expr, for operator.filter, operator.map,
// operator.router and operator.deduplicate.
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
)

// Program is one expression compiled for each record kind it is valid for.
type Program struct {
	Source string
	progs  [3]*Compiled
	errs   [3]error
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
func Compile(src string, kinds md.Kind, res Result) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "the expression is empty"}
	}
	p := &Program{Source: src}
	var first error
	ok := false
	for i, k := range Kinds {
		if kinds&k == 0 {
			p.errs[i] = fmt.Errorf("the node does not take %s records", k)
			continue
		}
		opts := []expr.Option{expr.Env(envFor(k))}
		switch res {
		case Bool:
			opts = append(opts, expr.AsBool())
		case Float:
			opts = append(opts, expr.AsFloat64())
		}
		prog, err := expr.Compile(src, opts...)
		if err == nil && res == Any {
			err = checkKey(prog)
		}
		if err != nil {
			err = convert(k, err)
			p.errs[i] = err
			if first == nil {
				first = err
			}
			continue
		}
		c := &Compiled{VM: prog}
		fastCompile(c, k, res)
		p.progs[i] = c
		ok = true
	}
	if !ok {
		if first == nil {
			first = errors.New("no record kind to compile for")
		}
		return nil, first
	}
	return p, nil
}

func checkKey(prog *vm.Program) error {
	switch prog.Node().Type().Kind().String() {
	case "int", "int64", "string", "interface":
		return nil
	}
	return fmt.Errorf("a key must be an integer or a string, not %s", prog.Node().Type())
}

func convert(k md.Kind, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Line: fe.Line, Column: fe.Column + 1, Msg: fmt.Sprintf("%s (for %s records)", fe.Message, k)}
	}
	return &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("%v (for %s records)", err, k)}
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

// For returns the program for kind k, or why the expression is not valid
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
// its inputs carry.
func (p *Program) CheckKinds(kinds md.Kind) error {
	for _, k := range Kinds {
		if kinds&k == 0 {
			continue
		}
		if _, err := p.For(k); err != nil {
			return fmt.Errorf("expression %q: %w", p.Source, err)
		}
	}
	if kinds&md.KindDerived != 0 {
		return fmt.Errorf("expression %q: expressions work on trade, quote and bar records, and this node's input may carry derived records", p.Source)
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

// Run evaluates c on the VM against the environment of kind k, which the
// caller loaded with SetTrade, SetQuote or SetBar.
func (e *Env) Run(c *Compiled, k md.Kind) (any, error) {
	switch k {
	case md.KindQuote:
		return e.vm.Run(c.VM, &e.Quote)
	case md.KindBar:
		return e.vm.Run(c.VM, &e.Bar)
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
