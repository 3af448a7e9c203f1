package partition_test

import (
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/partition"
)

func TestPartitionsMatchTheEnginesInstanceChoice(t *testing.T) {
	const n = 4
	names := enginetest.Symbols(40)
	in := enginetest.Trades(2000, len(names), 0)
	ports := []string{"p0", "p1", "p2", "p3"}
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: names, Trades: in, BatchSize: 33}, Type: partition.Type,
			Params: map[string]any{"partitions": n}, Parallelism: par, Ports: ports})
		total := 0
		for i, port := range ports {
			for _, tr := range res.Ports[port].Trades {
				in := res.Syms.Get(tr.Sym)
				if want := md.Split(md.HashSymbol(in.Symbol), md.SplitInstances, n); want != i {
					t.Fatalf("parallelism %d: %s in p%d, want p%d", par, in.Symbol, i, want)
				}
				total++
			}
			if len(res.Ports[port].Trades) == 0 {
				t.Fatalf("partition %s is empty with 40 symbols", port)
			}
		}
		if total != len(in) {
			t.Fatalf("parallelism %d: %d records out, want %d", par, total, len(in))
		}
	}
}

func TestUnwiredPartitionIsCounted(t *testing.T) {
	names := enginetest.Symbols(40)
	in := enginetest.Trades(400, len(names), 0)
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: names, Trades: in}, Type: partition.Type,
		Params: map[string]any{"partitions": 2}, Ports: []string{"p0"}})
	if got := int64(len(res.Ports["p0"].Trades)) + res.Drops["unconnected_port_p1"]; got != 400 {
		t.Fatalf("p0 %d + dropped %v != 400", len(res.Ports["p0"].Trades), res.Drops)
	}
}

func TestBadPartitions(t *testing.T) {
	for _, v := range []any{0, 5000, "x"} {
		if err := optest.Params(partition.Type, map[string]any{"partitions": v}); err == nil || !strings.Contains(err.Error(), "partitions") {
			t.Errorf("partitions %v: err = %v", v, err)
		}
	}
}

func BenchmarkPartition(b *testing.B) {
	in := optest.NewInstance(b, partition.Type, map[string]any{"partitions": 4}, enginetest.Symbols(64), "p0", "p1", "p2", "p3")
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = enginetest.Trades(1024, 64, 0)
	optest.Bench(b, in, 1024, 16, func(int) { in.Process(batch) })
}
