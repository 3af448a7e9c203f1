package md

import (
	"sync"
	"testing"
)

func TestGaps(t *testing.T) {
	st := NewSymbolTable()
	a, b := st.Intern("p", "A"), st.Intern("p", "B")
	if st.Gapped(a, 0, 100) || st.Gaps(a) != nil {
		t.Fatal("a gap before any was opened")
	}
	st.CloseGap(a, 50) // no open gap: nothing
	st.OpenGap(a, 100)
	st.OpenGap(a, 120) // already open: unchanged
	for _, c := range []struct {
		start, end int64
		want       bool
	}{{0, 100, false}, {0, 101, true}, {100, 160, true}, {1 << 40, 1<<40 + 1, true}} {
		if got := st.Gapped(a, c.start, c.end); got != c.want {
			t.Errorf("open gap from 100, [%d, %d): %v", c.start, c.end, got)
		}
	}
	if st.Gapped(b, 0, 1000) {
		t.Error("B has no gap")
	}
	st.CloseGap(a, 200)
	for _, c := range []struct {
		start, end int64
		want       bool
	}{{0, 100, false}, {40, 160, true}, {160, 220, true}, {200, 260, true}, {201, 260, false}} {
		if got := st.Gapped(a, c.start, c.end); got != c.want {
			t.Errorf("gap [100, 200], [%d, %d): %v", c.start, c.end, got)
		}
	}
	if g := st.Gaps(a); len(g) != 1 || g[0] != (Gap{100, 200}) {
		t.Fatalf("gaps %v", g)
	}
	// A flapping feed keeps the newest maxGaps.
	for i := range int64(maxGaps + 10) {
		st.OpenGap(b, 1000+10*i)
		st.CloseGap(b, 1005+10*i)
	}
	if g := st.Gaps(b); len(g) != maxGaps || g[0].From != 1000+10*10 || g[len(g)-1].To != 1005+10*(maxGaps+9) {
		t.Fatalf("%d gaps, first %v last %v", len(g), g[0], g[len(g)-1])
	}
}

// TestGapsConcurrent: a source records gaps while bar builders ask (run
// under -race).
func TestGapsConcurrent(t *testing.T) {
	st := NewSymbolTable()
	id := st.Intern("p", "A")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range int64(1000) {
			st.OpenGap(id, i*10)
			st.CloseGap(id, i*10+5)
		}
	}()
	go func() {
		defer wg.Done()
		for i := range int64(1000) {
			st.Gapped(id, i*10, i*10+10)
		}
	}()
	wg.Wait()
	if !st.Gapped(id, 9990, 10000) {
		t.Fatal("last gap not seen")
	}
}

// TestGapAll: a gap every instrument has, those interned later included,
// beside each instrument's own.
func TestGapAll(t *testing.T) {
	st := NewSymbolTable()
	a := st.Intern("p", "A")
	st.AddGapAll(1000, 2000)
	b := st.Intern("p", "B")
	for _, id := range []SymID{a, b} {
		if !st.Gapped(id, 1500, 1600) || !st.Gapped(id, 2000, 2001) || st.Gapped(id, 2001, 3000) || st.Gapped(id, 0, 1000) {
			t.Errorf("instrument %d: wrong gap test around [1000, 2000]", id)
		}
	}
	if st.Gaps(a) != nil {
		t.Errorf("AddGapAll shows in an instrument's own gaps: %v", st.Gaps(a))
	}
}
