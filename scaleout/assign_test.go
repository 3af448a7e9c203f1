package scaleout

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func moved(a, b []string) int {
	n := 0
	for p := range a {
		if a[p] != b[p] {
			n++
		}
	}
	return n
}

// Every partition gets exactly one live member, none over ceil(P/N), and
// the result does not depend on the members' order.
func TestAssignCapAndDeterminism(t *testing.T) {
	for _, tc := range []struct{ p, n int }{{16, 1}, {16, 3}, {16, 16}, {16, 20}, {64, 5}, {64, 7}, {1024, 9}} {
		ms := make([]string, tc.n)
		for i := range ms {
			ms[i] = fmt.Sprintf("w-%d", i)
		}
		target := assign("job", tc.p, ms)
		limit := (tc.p + tc.n - 1) / tc.n
		count := map[string]int{}
		for p, o := range target {
			if !slices.Contains(ms, o) {
				t.Fatalf("P=%d N=%d: partition %d owned by %q, not a member", tc.p, tc.n, p, o)
			}
			count[o]++
		}
		for o, c := range count {
			if c > limit {
				t.Fatalf("P=%d N=%d: %s owns %d partitions, cap %d", tc.p, tc.n, o, c, limit)
			}
		}
		rev := slices.Clone(ms)
		slices.Reverse(rev)
		if !slices.Equal(assign("job", tc.p, rev), target) {
			t.Fatalf("P=%d N=%d: the members' order changed the assignment", tc.p, tc.n)
		}
	}
	if assign("job", 16, nil) != nil {
		t.Fatal("no member: want nil")
	}
}

// A join or a leave moves about P/N partitions. Plain rendezvous hashing
// would move P/N on average; keeping every member at or under the cap
// ceil(P/N) costs some more. Over 200 random member sets per N (P = 64), a
// join moves on average between P/N and 1.7·P/N (measured: 22.7 for 2→3,
// 15.3 for 4→5, 12.8 for 7→8) and never more than 2.5·P/N; a leave moves
// every partition the leaver had plus at most ceil(P/(N-1)) others.
func TestAssignMovesAboutPOverN(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 1))
	const P = 64
	for n := 2; n <= 8; n++ {
		var sum, worst, extraLeave int
		const rounds = 200
		for range rounds {
			ms := make([]string, n)
			for i := range ms {
				ms[i] = fmt.Sprintf("host%d-%d", r.IntN(1000), r.Int64())
			}
			before := assign("job", P, ms[:n-1])
			after := assign("job", P, ms)
			m := moved(before, after)
			sum += m
			worst = max(worst, m)
			if limit := 5 * P / (2 * n); m > limit {
				t.Fatalf("N %d→%d: join moved %d partitions, want ≤ %d", n-1, n, m, limit)
			}
			// the leave of a random member
			gone := r.IntN(n)
			rest := slices.Delete(slices.Clone(ms), gone, gone+1)
			left := assign("job", P, rest)
			had := len(owned(after, ms[gone]))
			lm := moved(after, left)
			if lm < had || lm > had+(P+n-2)/(n-1) {
				t.Fatalf("N %d→%d: leave of a member with %d partitions moved %d", n, n-1, had, lm)
			}
			extraLeave = max(extraLeave, lm-had)
		}
		avg := float64(sum) / rounds
		ideal := float64(P) / float64(n)
		t.Logf("P=%d N %d→%d: join moves %.2f on average (P/N = %.2f), at most %d; leave extra at most %d", P, n-1, n, avg, ideal, worst, extraLeave)
		if avg > ideal*1.7 || avg < ideal {
			t.Fatalf("N %d→%d: join moves %.2f partitions on average, want P/N = %.2f to +70%%", n-1, n, avg, ideal)
		}
	}
}
