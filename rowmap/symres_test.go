package rowmap

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mdpio/mdp/md"
)

// TestSymResolverTable: the resolver's table gives every pair the id the
// symbol table holds for it and the symbols filter's verdict, for short
// keys (one to three bytes, four to seven, eight to sixteen) and long ones
// that share their first and last sixteen bytes and differ in the middle,
// across the table's growth and in random order with repeats.
func TestSymResolverTable(t *testing.T) {
	table := md.NewSymbolTable()
	r := NewSymResolver(table, []string{"A", "BTCUSDT", "X-MIDDLE-0-SAME-END-OF-IT"})
	var pairs [][2]string
	for _, p := range []string{"b", "bench", "binance-futures", "a-provider-name-longer-than-16"} {
		for _, s := range []string{"A", "AB", "ABC", "ABCD", "BTCUSDT", "ETHUSDT", "SYM0001", "BTC-PERPETUAL", "0123456789abcdef"} {
			pairs = append(pairs, [2]string{p, s})
		}
		for k := range 300 {
			pairs = append(pairs, [2]string{p, fmt.Sprintf("SYM%03d", k)}, [2]string{p, fmt.Sprintf("X-MIDDLE-%d-SAME-END-OF-IT", k)})
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		pr := pairs[rng.IntN(len(pairs))]
		// Resolve reads bytes, not strings: give it slices of a longer buffer.
		buf := []byte(pr[0] + "," + pr[1] + ",tail")
		id, ok := r.Resolve(buf[:len(pr[0])], buf[len(pr[0])+1:len(pr[0])+1+len(pr[1])])
		want := pr[1] == "A" || pr[1] == "BTCUSDT" || pr[1] == "X-MIDDLE-0-SAME-END-OF-IT"
		if ok != want {
			t.Fatalf("%v: passes %v, want %v", pr, ok, want)
		}
		if !ok {
			continue
		}
		if in := table.Get(id); in.Provider != pr[0] || in.Symbol != pr[1] {
			t.Fatalf("%v: id %d is %s/%s", pr, id, in.Provider, in.Symbol)
		}
	}
	if table.Len() != 4*3 {
		t.Fatalf("%d instruments interned, want 12 (the filtered ones)", table.Len())
	}
	if len(r.slots) < 2*len(pairs) {
		t.Fatalf("the table has %d slots for %d pairs", len(r.slots), len(pairs))
	}
}

// TestSymResolverNoFilter: without a filter every pair is interned once,
// with ids in order of first sight.
func TestSymResolverNoFilter(t *testing.T) {
	table := md.NewSymbolTable()
	r := NewSymResolver(table, nil)
	for round := range 3 {
		for k := range 1000 {
			sym := fmt.Sprintf("S%d", k)
			if k%7 == 0 {
				sym = fmt.Sprintf("A-LONG-SYMBOL-%d-C", k)
			}
			id, ok := r.Resolve([]byte("deribit"), []byte(sym))
			if !ok || id != md.SymID(k) {
				t.Fatalf("round %d: %s: id %d %v, want %d", round, sym, id, ok, k)
			}
		}
	}
	if table.Len() != 1000 {
		t.Fatalf("%d instruments", table.Len())
	}
}
