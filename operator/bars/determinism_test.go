package bars

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Open is the record with the earliest event time and close the one with the
// latest, ties kept in arrival order, so a time-sorted copy of the same
// records gives the same bar (TimescaleDB first(price, ts) / last(price, ts),
// a pandas resample). Prices and sizes are small integers so that the sums
// are exact in any order.
func TestOpenAndCloseFollowEventTimeNotArrival(t *testing.T) {
	arrival := []md.Trade{
		// newest open bar (bar 1): out of order, a tie at the earliest time
		// (the first to arrive opens) and at the latest (the last closes)
		tr(symA, t0+1300*ms, 13, 1),
		tr(symA, t0+1100*ms, 11, 1),
		tr(symA, t0+1800*ms, 18, 1),
		tr(symA, t0+1100*ms, 12, 1),
		tr(symA, t0+1200*ms, 19, 1),
		tr(symA, t0+1800*ms, 17, 1),
		tr(symA, t0+1500*ms, 10, 1),
		// an older open bar (bar 0), also out of order
		tr(symA, t0+600*ms, 6, 2),
		tr(symA, t0+200*ms, 2, 2),
		tr(symA, t0+900*ms, 9, 2),
		tr(symA, t0+400*ms, 4, 2),
	}
	sorted := slices.Clone(arrival)
	slices.SortStableFunc(sorted, func(a, b md.Trade) int { return cmp.Compare(a.TS, b.TS) })
	// vwap bar 0 = (6+2+9+4)*2/8 = 42/8; bar 1 = (13+11+18+12+19+17+10)/7 = 100/7
	want := []md.Bar{
		bar(symA, t0, sec, 2, 9, 2, 9, 8, 42.0/8, 4),
		bar(symA, t0+sec, sec, 11, 19, 10, 17, 7, 100.0/7, 7),
	}
	for name, in := range map[string][]md.Trade{"arrival order": arrival, "time-sorted copy": sorted} {
		for _, batch := range []int{1, 3, len(in)} {
			h := newHarness(t, map[string]any{"interval": "1s"})
			for i := 0; i < len(in); i += batch {
				h.trades(in[i:min(i+batch, len(in))]...)
			}
			h.wm(md.MaxTime)
			h.expect(name, want...)
		}
	}
}

// Quote bars follow event time too.
func TestQuoteBarOpenAndCloseFollowEventTime(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "price": "bid"})
	h.quotes(
		md.Quote{Sym: symA, TS: t0 + 300*ms, Bid: 13, Ask: 14},
		md.Quote{Sym: symA, TS: t0 + 100*ms, Bid: 11, Ask: 12},
		md.Quote{Sym: symA, TS: t0 + 900*ms, Bid: 19, Ask: 20},
		md.Quote{Sym: symA, TS: t0 + 500*ms, Bid: 15, Ask: 16},
	)
	h.wm(md.MaxTime)
	// vwap of quote bars is the mean price: (13+11+19+15)/4
	h.expect("quotes", from(md.FromBid, bar(symA, t0, sec, 11, 19, 11, 19, 0, 14.5, 4)))
}

// A late record under late_policy update moves the open or close of the
// corrected bar only if its event time is before the open or after the close.
func TestLateUpdateOpenAndCloseFollowEventTime(t *testing.T) {
	h := newHarness(t, map[string]any{"interval": "1s", "late_policy": "update", "allowed_lateness": "5s"})
	h.trades(tr(symA, t0+500*ms, 5, 1), tr(symA, t0+700*ms, 7, 1))
	h.wm(t0 + sec)
	h.expect("bar 0", bar(symA, t0, sec, 5, 7, 5, 7, 2, 6, 2))
	h.trades(tr(symA, t0+600*ms, 6, 1)) // between open and close: neither moves
	h.expect("middle", updated(bar(symA, t0, sec, 5, 7, 5, 7, 3, 6, 3)))
	h.trades(tr(symA, t0+100*ms, 1, 1), tr(symA, t0+900*ms, 9, 1), tr(symA, t0+900*ms, 8, 1))
	// vwap = (5+7+6+1+9+8)/6 = 36/6
	h.expect("new open and close", updated(bar(symA, t0, sec, 1, 9, 1, 8, 6, 6, 6)))
}

// twoInstances returns two symbol names that parallelism 2 routes to
// different instances.
func twoInstances(t *testing.T) (string, string) {
	t.Helper()
	first := "A"
	for _, s := range []string{"B", "C", "D", "E", "F", "G", "H"} {
		if md.Split(md.HashSymbol(s), md.SplitInstances, 2) != md.Split(md.HashSymbol(first), md.SplitInstances, 2) {
			return first, s
		}
	}
	t.Fatal("no two symbols on different instances")
	return "", ""
}

func mkBatch(ts ...md.Trade) *md.Batch {
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	return b
}

// runJob runs batches from a source with max_out_of_orderness ooo through a
// bars node with params and parallelism par, and returns the main and late
// outputs and the bars node's drop counts.
func runJob(t *testing.T, syms *md.SymbolTable, batches []*md.Batch, ooo time.Duration, params map[string]any, par int) (bars []md.Bar, late []md.Trade, drops map[string]int64) {
	t.Helper()
	main, lateSink := &barSink{}, &barSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode(batches, ooo), barsNode(t, params, par), sinkNode("sink", main), sinkNode("late_sink", lateSink)},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sink"}, {From: "bars", FromPort: engine.PortLate, To: "late_sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "determinism", Symbols: syms})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	drops = map[string]int64{}
	for _, nc := range j.NodeContexts("bars") {
		for k, v := range nc.Stats.Drops() {
			drops[k] += v
		}
	}
	return main.bars, lateSink.trades, drops
}

// With emit_empty, the flat bars at end of stream must not depend on which
// instance a symbol lands on: A's last trade is two intervals before B's, so
// A gets flat bars up to the interval of the last data watermark whether or
// not B shares its instance.
func TestEmitEmptyEndOfStreamIsTheSameForEveryParallelism(t *testing.T) {
	an, bn := twoInstances(t)
	syms := md.NewSymbolTable()
	a, b := syms.Intern("test", an), syms.Intern("test", bn)
	batches := []*md.Batch{
		mkBatch(tr(a, t0+200*ms, 10, 1), tr(b, t0+300*ms, 20, 1)),
		mkBatch(tr(a, t0+700*ms, 11, 1)),
		mkBatch(tr(b, t0+3200*ms, 21, 1)),
	}
	params := map[string]any{"interval": "1s", "emit_empty": true}
	want := []md.Bar{
		bar(a, t0, sec, 10, 11, 10, 11, 2, 10.5, 2),
		bar(b, t0, sec, 20, 20, 20, 20, 1, 20, 1),
		flat(a, t0+sec, sec, 11), flat(b, t0+sec, sec, 20),
		flat(a, t0+2*sec, sec, 11), flat(b, t0+2*sec, sec, 20),
		flat(a, t0+3*sec, sec, 11), bar(b, t0+3*sec, sec, 21, 21, 21, 21, 1, 21, 1),
	}
	for _, par := range []int{1, 2, 3} {
		got, _, _ := runJob(t, syms, batches, 0, params, par)
		sortBars(got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parallelism %d: bars differ\n got: %s\nwant: %s", par, fmtBars(got), fmtBars(want))
		}
	}
}

// With max_out_of_orderness 0s, a trade behind its predecessor across a bar
// boundary is late wherever the batches happen to end: the decision depends
// on the records before it in the stream only.
func TestLatenessDoesNotDependOnBatchBoundaries(t *testing.T) {
	syms := md.NewSymbolTable()
	a, b := syms.Intern("test", "A"), syms.Intern("test", "B")
	stream := []md.Trade{
		tr(a, t0+200*ms, 10, 1),
		tr(b, t0+900*ms, 20, 1),
		tr(a, t0+3500*ms, 13, 1), // the watermark reaches t0+3.5s: bars 0-2 close
		tr(a, t0+1800*ms, 99, 1), // behind it across a boundary: late
		tr(b, t0+3500*ms, 21, 1), // a tie with the newest: on time
		tr(b, t0+3100*ms, 22, 1), // behind the newest, same open bar: on time
		tr(a, t0+4100*ms, 14, 1),
	}
	wantBars := []md.Bar{
		bar(a, t0, sec, 10, 10, 10, 10, 1, 10, 1),
		bar(b, t0, sec, 20, 20, 20, 20, 1, 20, 1),
		bar(a, t0+3*sec, sec, 13, 13, 13, 13, 1, 13, 1),
		bar(b, t0+3*sec, sec, 22, 22, 21, 21, 2, 21.5, 2),
		bar(a, t0+4*sec, sec, 14, 14, 14, 14, 1, 14, 1),
	}
	wantLate := []md.Trade{stream[3]}
	for _, cuts := range [][]int{{}, {3}, {4}, {1, 2, 3, 4, 5, 6}, {2, 5}} {
		var batches []*md.Batch
		from := 0
		for _, c := range append(cuts, len(stream)) {
			batches = append(batches, mkBatch(slices.Clone(stream[from:c])...))
			from = c
		}
		for _, par := range []int{1, 2} {
			bars, late, _ := runJob(t, syms, batches, 0, map[string]any{"interval": "1s", "late_policy": "side_output"}, par)
			sortBars(bars)
			if !reflect.DeepEqual(bars, wantBars) || !reflect.DeepEqual(late, wantLate) {
				t.Fatalf("batches cut at %v, parallelism %d:\nbars %s\nwant %s\nlate %v\nwant %v", cuts, par, fmtBars(bars), fmtBars(wantBars), late, wantLate)
			}
		}
	}
}

// outcome is what a run produced, in a form that does not depend on the
// order instances interleave: bars sorted by (start, symbol); under
// late_policy update the bars first emitted and the last emission of each
// bar (what an upserting store keeps), since how many corrections are sent
// depends on which late records share a batch; late records per symbol in
// arrival order; drop counts.
type outcome struct {
	bars  []md.Bar
	final []md.Bar
	late  []md.Trade
	drops map[string]int64
}

func newOutcome(bars []md.Bar, late []md.Trade, drops map[string]int64) outcome {
	var o outcome
	type key struct {
		sym   md.SymID
		start int64
	}
	last := map[key]md.Bar{}
	for _, b := range bars {
		if !b.Update {
			o.bars = append(o.bars, b)
		}
		last[key{b.Sym, b.Start}] = b
	}
	for _, b := range last {
		b.Update = false
		o.final = append(o.final, b)
	}
	sortBars(o.bars)
	sortBars(o.final)
	o.late = slices.Clone(late)
	slices.SortStableFunc(o.late, func(a, b md.Trade) int { return cmp.Compare(a.Sym, b.Sym) })
	o.drops = drops
	return o
}

// TestSameBarsWhateverTheBatchingAndParallelism is the determinism property:
// random streams (several symbols, records out of order within and beyond
// the tolerance, ties) cut into random batches of 1 to 4096 records and run
// through the engine with parallelism 1, 2 and 3 give the same bars, under
// every late_policy, with emit_empty on and off.
func TestSameBarsWhateverTheBatchingAndParallelism(t *testing.T) {
	seeds := uint64(4)
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 11))
		iv := []int64{10 * ms, 100 * ms, sec}[rng.IntN(3)]
		ooo := []int64{0, iv / 2, 3 * iv}[rng.IntN(3)]
		delay := []int64{0, iv / 3}[rng.IntN(2)]
		syms := md.NewSymbolTable()
		nsym := 2 + rng.IntN(4)
		ids := make([]md.SymID, nsym)
		for i := range ids {
			ids[i] = syms.Intern("test", fmt.Sprintf("S%d", i))
		}
		stream := make([]md.Trade, 3000+rng.IntN(5000))
		nominal := t0 + rng.Int64N(iv)
		step := iv / int64(1+rng.IntN(30))
		for i := range stream {
			nominal += rng.Int64N(step + 1)
			ts := nominal - rng.Int64N(ooo+1)
			switch r := rng.IntN(40); {
			case r == 0: // beyond the tolerance
				ts = nominal - ooo - 1 - rng.Int64N(3*iv)
			case r < 6 && i > 0: // a tie with the previous record
				ts = stream[i-1].TS
			}
			stream[i] = tr(ids[rng.IntN(nsym)], ts, float64(100+rng.IntN(50))/4, float64(1+rng.IntN(9)))
		}
		batchings := [][]*md.Batch{cutRandomly(stream, rng, len(stream)), cutRandomly(stream, rng, 1)}
		for range 2 {
			batchings = append(batchings, cutRandomly(stream, rng, 1+rng.IntN(4096)))
		}
		for _, policy := range []string{"drop", "side_output", "update"} {
			for _, emitEmpty := range []bool{false, true} {
				params := map[string]any{
					"interval": time.Duration(iv).String(), "build_delay": time.Duration(delay).String(),
					"late_policy": policy, "emit_empty": emitEmpty, "skip_first_partial": rng.IntN(3) == 0,
				}
				if policy == "update" {
					params["allowed_lateness"] = time.Duration(iv * int64(1+rng.IntN(3))).String()
				}
				name := fmt.Sprintf("seed%d %v ooo %v", seed, params, time.Duration(ooo))
				var want outcome
				for bi, batches := range batchings {
					for par := 1; par <= 3; par++ {
						got := newOutcome(runJob(t, syms, batches, time.Duration(ooo), params, par))
						if bi == 0 && par == 1 {
							want = got
							if len(want.bars) == 0 {
								t.Fatalf("%s: no bars", name)
							}
							continue
						}
						if !reflect.DeepEqual(got.bars, want.bars) {
							t.Fatalf("%s: batching %d, parallelism %d: bars differ (%d vs %d)\n got: %s\nwant: %s", name, bi, par, len(got.bars), len(want.bars), fmtBars(got.bars), fmtBars(want.bars))
						}
						if !reflect.DeepEqual(got.final, want.final) {
							t.Fatalf("%s: batching %d, parallelism %d: final bars differ", name, bi, par)
						}
						if !reflect.DeepEqual(got.late, want.late) {
							t.Fatalf("%s: batching %d, parallelism %d: %d late records, want %d", name, bi, par, len(got.late), len(want.late))
						}
						if !reflect.DeepEqual(got.drops, want.drops) {
							t.Fatalf("%s: batching %d, parallelism %d: drops %v, want %v", name, bi, par, got.drops, want.drops)
						}
					}
				}
			}
		}
	}
}

// cutRandomly copies stream into batches of 1 to maxSize records.
func cutRandomly(stream []md.Trade, rng *rand.Rand, maxSize int) []*md.Batch {
	var out []*md.Batch
	for i := 0; i < len(stream); {
		n := min(1+rng.IntN(maxSize), len(stream)-i)
		out = append(out, mkBatch(slices.Clone(stream[i:i+n])...))
		i += n
	}
	return out
}

// The per-record fast path touches one cache line per symbol.
func TestHotStateIsOneCacheLine(t *testing.T) {
	if n := unsafe.Sizeof(hot{}); n != 64 {
		t.Fatalf("hot is %d bytes, want 64", n)
	}
}
