package md

import (
	"fmt"
	"testing"
)

func TestSplitSpreadsEveryLevelIndependently(t *testing.T) {
	for _, pw := range [][2]int{{2, 2}, {4, 2}, {3, 4}, {1, 3}} {
		p, w := pw[0], pw[1]
		used := make([][]int, p)
		for i := range used {
			used[i] = make([]int, w)
		}
		for s := 0; s < 100; s++ {
			h := HashSymbol(fmt.Sprintf("SYM%03d", s))
			i, k := Split(h, SplitInstances, p), Split(h, SplitWorkers, w)
			if i < 0 || i >= p || k < 0 || k >= w {
				t.Fatalf("%d×%d: split out of range: %d, %d", p, w, i, k)
			}
			used[i][k]++
		}
		for i := range used {
			for k := range used[i] {
				if used[i][k] == 0 {
					t.Errorf("%d×%d: instance %d never uses worker %d: %v", p, w, i, k, used)
				}
			}
		}
	}
}

func TestSplitIsStable(t *testing.T) {
	// The split decides which instance (and which store worker) owns a
	// symbol; it must be the same in every run, process and machine.
	h := HashSymbol("BTCUSDT")
	got := [4]int{Split(h, SplitInstances, 3), Split(h, SplitWorkers, 3), Split(h, SplitInstances, 7), Split(h, SplitWorkers, 7)}
	if want := [4]int{0, 1, 0, 4}; got != want {
		t.Fatalf("BTCUSDT splits to %v, want %v", got, want)
	}
}

func BenchmarkSplit(b *testing.B) {
	hs := make([]uint64, 1024)
	for i := range hs {
		hs[i] = HashSymbol(fmt.Sprintf("SYM%04d", i))
	}
	var sink int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := hs[i&1023]
		sink += Split(h, SplitInstances, 3) + Split(h, SplitWorkers, 4)
	}
	if sink < 0 {
		b.Fatal(sink)
	}
}
