package recexpr

import (
	"errors"
	"testing"

	"github.com/mdpio/mdp/md"
)

func TestCompileTypeChecksPerKind(t *testing.T) {
	p, err := Compile("price > 0 && size >= 100", md.KindTrade|md.KindQuote|md.KindBar, Bool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.For(md.KindTrade); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckKinds(md.KindQuote); err == nil {
		t.Fatal("price is not a quote field: want an error for quotes")
	}
	_, err = Compile("price > 0 &&\n  siez >= 100", md.KindTrade, Bool)
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Column != 3 {
		t.Fatalf("err = %v, want an Error at 2:3", err)
	}
	if _, err := Compile("price * 2", md.KindTrade, Bool); err == nil {
		t.Fatal("a float expression compiled as a bool")
	}
	if _, err := Compile("  ", md.KindTrade, Bool); err == nil {
		t.Fatal("an empty expression compiled")
	}
	if _, err := Compile("price > 1.5", md.KindTrade, Any); err == nil {
		t.Fatal("a bool key compiled")
	}
}

func TestEvaluate(t *testing.T) {
	syms := md.NewSymbolTable()
	id := syms.Intern("x", "AAPL")
	e := NewEnv(syms)
	p, _ := Compile(`symbol == "AAPL" && side == "buy" && price * size > 1000`, md.KindTrade, Bool)
	prog, _ := p.For(md.KindTrade)
	tr := md.Trade{Sym: id, Price: 101, Size: 10, Side: md.SideBuy}
	e.SetTrade(&tr)
	if ok, err := e.Bool(prog, md.KindTrade); err != nil || !ok {
		t.Fatalf("got %v, %v; want true", ok, err)
	}
	tr.Size = 9
	e.SetTrade(&tr)
	if ok, _ := e.Bool(prog, md.KindTrade); ok {
		t.Fatal("909 > 1000")
	}
	f, _ := Compile("(bid + ask) / 2 * 100", md.KindQuote, Float)
	fp, _ := f.For(md.KindQuote)
	e.SetQuote(&md.Quote{Sym: id, Bid: 1.5, Ask: 2.5})
	if v, err := e.Float(fp, md.KindQuote); err != nil || v != 200 {
		t.Fatalf("got %v, %v; want 200", v, err)
	}
}

func BenchmarkFilter(b *testing.B) {
	syms := md.NewSymbolTable()
	id := syms.Intern("x", "AAPL")
	e := NewEnv(syms)
	p, _ := Compile("price > 0 && size >= 100", md.KindTrade, Bool)
	prog, _ := p.For(md.KindTrade)
	tr := md.Trade{Sym: id, Price: 101, Size: 150}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Size = float64(i & 255)
		e.SetTrade(&tr)
		if _, err := e.Bool(prog, md.KindTrade); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapFloat(b *testing.B) {
	syms := md.NewSymbolTable()
	id := syms.Intern("x", "AAPL")
	e := NewEnv(syms)
	p, _ := Compile("price * 100", md.KindTrade, Float)
	prog, _ := p.For(md.KindTrade)
	tr := md.Trade{Sym: id, Price: 101, Size: 150}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Price = float64(i)
		e.SetTrade(&tr)
		if _, err := e.Float(prog, md.KindTrade); err != nil {
			b.Fatal(err)
		}
	}
}
