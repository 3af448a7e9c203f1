package busio

import (
	"reflect"
	"testing"
)

// TestHeld: sums survive a position round trip in order, Take removes one
// occurrence (the oldest) at a time, and Cap drops the oldest first.
func TestHeld(t *testing.T) {
	h := Held{Cap: 4}
	h.Add(1, 2, 2, 3)
	var back Held
	if err := back.Restore(h.Append([]byte(nil))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.sums, []uint64{1, 2, 2, 3}) {
		t.Fatalf("restored %v", back.sums)
	}
	for i, want := range []bool{true, true, false} {
		if got := back.Take(2); got != want {
			t.Fatalf("take %d of sum 2: %v, want %v", i+1, got, want)
		}
	}
	if back.Len() != 2 {
		t.Fatalf("after taking 2 twice: %v", back.sums)
	}
	h.Add(4, 5)
	if !reflect.DeepEqual(h.sums, []uint64{2, 3, 4, 5}) {
		t.Fatalf("capped to %v, want the newest 4", h.sums)
	}
	if err := back.Restore(make([]byte, 12)); err == nil {
		t.Fatal("12 bytes restored without an error")
	}
	if Sum([]byte("a")) == Sum([]byte("b")) {
		t.Fatal("two bodies, one sum")
	}
}
