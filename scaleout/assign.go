package scaleout

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// assign is the target owner of every partition among the live members:
// rendezvous (highest random weight) hashing with a cap of ceil(P/N)
// partitions per member. Every (partition, member) pair gets a score that
// depends on nothing else; pairs are taken in decreasing score order, a
// pair being kept when its partition has no owner yet and its member is
// under the cap. The result depends only on the job, P and the set of
// members (not their order), so every worker computes the same one, and a
// join or a leave changes the owner of about P/N partitions. It returns
// nil when there is no member.
func assign(job string, partitions int, members []string) []string {
	if len(members) == 0 || partitions <= 0 {
		return nil
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	limit := (partitions + len(ms) - 1) / len(ms)
	// First every partition goes to its highest-scoring member (plain
	// rendezvous hashing: a join takes about P/N partitions, a leave gives
	// back what the leaver had); then each member over the cap sheds its
	// lowest-scoring partitions, which go, in decreasing score order, to
	// the best-scoring members with room. Shedding the weakest ties keeps
	// the moves beyond plain rendezvous hashing few.
	sc := make([][]uint64, partitions)
	best := make([]int, partitions)
	count := make([]int, len(ms))
	for p := range partitions {
		sc[p] = make([]uint64, len(ms))
		for m, id := range ms {
			sc[p][m] = score(job, p, id)
			if sc[p][m] > sc[p][best[p]] {
				best[p] = m
			}
		}
		count[best[p]]++
	}
	owner := make([]int, partitions)
	var shed []int
	for m := range ms {
		var mine []int
		for p := range partitions {
			if best[p] == m {
				mine = append(mine, p)
			}
		}
		slices.SortFunc(mine, func(a, b int) int { return cmpDesc(sc[a][m], sc[b][m], a, b) })
		for i, p := range mine {
			if i < limit {
				owner[p] = m
			} else {
				owner[p] = -1
				shed = append(shed, p)
			}
		}
		count[m] = min(count[m], limit)
	}
	type pair struct {
		score uint64
		p, m  int
	}
	var pairs []pair
	for _, p := range shed {
		for m := range ms {
			if count[m] < limit {
				pairs = append(pairs, pair{sc[p][m], p, m})
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmpDesc(a.score, b.score, a.p*len(ms)+a.m, b.p*len(ms)+b.m) })
	for _, x := range pairs {
		if owner[x.p] >= 0 || count[x.m] == limit {
			continue
		}
		owner[x.p] = x.m
		count[x.m]++
	}
	out := make([]string, partitions)
	for p, m := range owner {
		out[p] = ms[m]
	}
	return out
}

// cmpDesc orders by decreasing score, ties by increasing index.
func cmpDesc(a, b uint64, ia, ib int) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return ia - ib
}

// score is the rendezvous weight of member id for partition p: FNV-1a over
// job|p|id, finished with the splitmix64 mixer so that members whose ids
// differ in one character still get independent weights.
func score(job string, p int, id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(job))
	_, _ = h.Write([]byte{'|'})
	_, _ = h.Write(strconv.AppendInt(nil, int64(p), 10))
	_, _ = h.Write([]byte{'|'})
	_, _ = h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// owned is the partitions assign gives to member id, in increasing order.
func owned(target []string, id string) []int {
	var ps []int
	for p, o := range target {
		if o == id {
			ps = append(ps, p)
		}
	}
	return ps
}
