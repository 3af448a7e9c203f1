package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/mdpio/mdp/md"
)

// splitRig is one sender's Output wired to a target of n queues, outside a
// job, so the split can be measured and checked alone.
func splitRig(tb testing.TB, n, symbols int) (*Output, *target, *md.SymbolTable) {
	tb.Helper()
	syms := md.NewSymbolTable()
	for i := range symbols {
		syms.Intern("bench", fmt.Sprintf("SYM%03d", i))
	}
	es := &edgeState{e: &Edge{From: "src", To: "op"}}
	t := &target{edge: es}
	for range n {
		t.qs = append(t.qs, &queue{ch: make(chan message, 4), edge: es})
	}
	nc := &NodeContext{Symbols: syms, Pool: md.NewPool(md.DefaultBatchSize), Stats: newNodeStats()}
	o := newOutput(context.Background(), nc, map[string]*port{PortMain: {targets: []*target{t}}})
	return o, t, syms
}

// tradesBatch fills a pooled batch with m trades over the symbols, drawn
// from a fixed pseudo-random sequence so the target of each record is
// unpredictable, as in a real stream.
func tradesBatch(o *Output, m, symbols int, seed uint64) *md.Batch {
	b := o.nc.Pool.Get(md.KindTrade)
	x := seed
	for i := range m {
		x = x*6364136223846793005 + 1442695040888963407
		b.Trades = append(b.Trades, md.Trade{TS: int64(i), Price: float64(i), Size: 1, TradeID: int64(i), Sym: md.SymID((x >> 33) % uint64(symbols))})
	}
	return b
}

// TestPartitionKeepsEveryRecordInOrder: each record goes to the queue
// md.Split names for its symbol, records keep their order within a queue,
// and a queue that got no record still gets the source's watermark.
func TestPartitionKeepsEveryRecordInOrder(t *testing.T) {
	for _, n := range []int{2, 3, 7} {
		o, tg, syms := splitRig(t, n, 5)
		o.source, o.wm = true, 42
		b := tradesBatch(o, 1000, 5, uint64(n))
		want := make([][]md.Trade, n)
		for _, tr := range b.Trades {
			k := md.Split(syms.Snapshot()[tr.Sym].Hash, md.SplitInstances, n)
			want[k] = append(want[k], tr)
		}
		if err := o.partition(tg, b); err != nil {
			t.Fatal(err)
		}
		for k, q := range tg.qs {
			m := <-q.ch
			if m.wm != 42 {
				t.Fatalf("n=%d queue %d: watermark %d, want 42", n, k, m.wm)
			}
			var got []md.Trade
			if m.b != nil {
				got = m.b.Trades
			}
			if fmt.Sprint(got) != fmt.Sprint(want[k]) {
				t.Fatalf("n=%d queue %d: got %d records, want %d (or a different order)", n, k, len(got), len(want[k]))
			}
			m.b.Release()
		}
	}
}

// TestPartitionSeesSymbolsInternedLater: the split table grows with the
// symbol table.
func TestPartitionSeesSymbolsInternedLater(t *testing.T) {
	o, tg, syms := splitRig(t, 2, 1)
	for round := range 3 {
		id := syms.Intern("bench", fmt.Sprintf("LATE%d", round))
		b := o.nc.Pool.Get(md.KindTrade)
		b.Trades = append(b.Trades, md.Trade{Sym: id, TS: 1})
		if err := o.partition(tg, b); err != nil {
			t.Fatal(err)
		}
		k := md.Split(syms.Snapshot()[id].Hash, md.SplitInstances, 2)
		m := <-tg.qs[k].ch
		if m.b == nil || len(m.b.Trades) != 1 || m.b.Trades[0].Sym != id {
			t.Fatalf("round %d: queue %d got %+v", round, k, m.b)
		}
		m.b.Release()
		if len(tg.qs[1-k].ch) != 0 {
			t.Fatalf("round %d: the other queue got a message from an operator's split", round)
		}
	}
}

// BenchmarkPartition is the split alone: a 1024-trade batch over 100
// symbols split by symbol into n parts and handed to n queues (drained and
// released in the loop). ns/record is the cost of partitioning per record
// (cpu-ns/record the process's CPU time per record, steadier on a loaded
// machine); it allocates nothing in steady state.
func BenchmarkPartition(b *testing.B) {
	for _, n := range []int{2, 4} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			const m, symbols = md.DefaultBatchSize, 100
			o, tg, _ := splitRig(b, n, symbols)
			src := tradesBatch(o, m, symbols, 1)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				src.Retain(1) // partition releases it: keep it for the next round
				if err := o.partition(tg, src); err != nil {
					b.Fatal(err)
				}
				for _, q := range tg.qs {
					(<-q.ch).b.Release()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/m, "ns/record")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/m, "cpu-ns/record")
		})
	}
}
