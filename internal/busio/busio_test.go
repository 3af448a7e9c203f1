package busio

import (
	"testing"

	"github.com/mdpio/mdp/md"
)

func TestTemplate(t *testing.T) {
	tm, err := ParseTemplate("md.{kind}.{symbol}.{partition}")
	if err != nil {
		t.Fatal(err)
	}
	if got := tm.Expand(md.KindTrade, "BTCUSDT", 3); got != "md.trade.BTCUSDT.3" {
		t.Fatalf("got %q", got)
	}
	if !tm.Symbol || !tm.Partition {
		t.Fatal("placeholders not reported")
	}
	plain, _ := ParseTemplate("md.trades")
	if plain.Symbol || plain.Partition || plain.Expand(md.KindBar, "X", 1) != "md.trades" {
		t.Fatal("plain template changed")
	}
	for _, bad := range []string{"md.{sym}", "md.{kind", "md.kind}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitter(t *testing.T) {
	syms := []md.Instrument{{Symbol: "A", Hash: 1 << 62}, {Symbol: "B", Hash: 3 << 62}, {Symbol: "C", Hash: 1<<62 + 5}}
	b := &md.Batch{Kind: md.KindTrade}
	for i := range 9 {
		b.Trades = append(b.Trades, md.Trade{Seq: uint64(i), Sym: md.SymID(i % 3)})
	}
	bySym, _ := ParseTemplate("x.{symbol}")
	s := NewSplitter(bySym, 0)
	for range 2 { // the second split reuses the first's batches
		gs := s.Split(b, syms)
		if len(gs) != 3 {
			t.Fatalf("%d groups by symbol", len(gs))
		}
		for gi, g := range gs {
			if g.Sym != md.SymID(gi) || len(g.Batch.Trades) != 3 {
				t.Fatalf("group %d: sym %d, %d trades", gi, g.Sym, len(g.Batch.Trades))
			}
			for k, tr := range g.Batch.Trades {
				if tr.Seq != uint64(gi+3*k) {
					t.Fatalf("group %d out of order: %+v", gi, g.Batch.Trades)
				}
			}
		}
	}
	byPart, _ := ParseTemplate("x.{partition}")
	s = NewSplitter(byPart, 4)
	gs := s.Split(b, syms)
	// A and C share partition 1 (hash top bits 01), B is in partition 3.
	if len(gs) != 2 || gs[0].Partition != 1 || len(gs[0].Batch.Trades) != 6 || gs[1].Partition != 3 || len(gs[1].Batch.Trades) != 3 {
		t.Fatalf("partition groups: %+v", gs)
	}
	none, _ := ParseTemplate("x")
	if gs := NewSplitter(none, 0).Split(b, syms); len(gs) != 1 || gs[0].Batch != b {
		t.Fatal("a plain template must pass the batch through")
	}
}
