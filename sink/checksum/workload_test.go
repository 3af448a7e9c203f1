package checksum_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	_ "github.com/mdpio/mdp/operator/bars"
	"github.com/mdpio/mdp/sink/checksum"
	_ "github.com/mdpio/mdp/source/synthetic"
)

// workloadJob is provider.synthetic (model bench) -> operator.bars (1s) ->
// sink.checksum writing to out: the bars workload of bench/WORKLOAD.md.
func workloadJob(t testing.TB, n int, out *bytes.Buffer) *engine.Job {
	return workloadJobP(t, n, 1, out)
}

// workloadJobP is workloadJob with operator.bars at parallelism p.
func workloadJobP(t testing.TB, n, p int, out *bytes.Buffer) *engine.Job {
	return workloadJobPS(t, n, p, 1, out)
}

// workloadJobPS is workloadJobP with the source at parallelism ps.
func workloadJobPS(t testing.TB, n, p, ps int, out *bytes.Buffer) *engine.Job {
	t.Helper()
	node := func(typ, id string, params map[string]any) *engine.Node {
		spec, ok := component.Lookup(typ)
		if !ok {
			t.Fatalf("%s is not registered", typ)
		}
		p, err := component.NewParams(spec, params)
		if err != nil {
			t.Fatal(err)
		}
		return component.Node(spec, p, component.NodeOptions{ID: id})
	}
	sum := node("sink.checksum", "sum", nil)
	bars := node("operator.bars", "bars", map[string]any{"interval": "1s"})
	bars.Parallelism = p
	src := node("provider.synthetic", "src", map[string]any{"model": "bench", "n": n})
	src.Parallelism = ps
	sum.NewProcessor = func(int) (engine.Processor, error) { return checksum.New(out, ""), nil }
	g := &engine.Graph{
		Nodes: []*engine.Node{
			src,
			bars,
			sum,
		},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "sum"}},
	}
	j, err := engine.New(g, engine.Options{Job: "workload"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestWorkloadChecksumMatchesTable(t *testing.T) {
	var out bytes.Buffer
	if err := workloadJob(t, 1_000_000, &out).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	// Everything after the timing fields is exact (vwap_sum to the printed
	// six decimals, as WORKLOAD.md's table gives it).
	i := strings.Index(line, `"bars":`)
	if i < 0 {
		t.Fatalf("line %s", line)
	}
	want := `"bars":1000,"trades":1000000,"volume":50467372,"open_sum":149161.39,"high_sum":150658.90,"low_sum":147677.42,"close_sum":149113.28,"vwap_sum":149170.024994}` + "\n"
	if line[i:] != want {
		t.Fatalf("got  %swant %s", line[i:], want)
	}
	var v struct {
		Events int64   `json:"events"`
		Rate   float64 `json:"events_per_s"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Events != 1_000_000 || v.Rate <= 0 {
		t.Fatalf("%v %+v", err, v)
	}
}

// BenchmarkWorkload10M runs the whole 10M-trade workload per iteration and
// reports the engine's trades per second.
func BenchmarkWorkload10M(b *testing.B) { benchWorkload(b, 1, 1) }

// BenchmarkWorkload10MP2 is BenchmarkWorkload10M with operator.bars at
// parallelism 2.
func BenchmarkWorkload10MP2(b *testing.B) { benchWorkload(b, 2, 1) }

// BenchmarkWorkload10MP2Source has the source (which then splits its
// symbols) and operator.bars at parallelism 2.
func BenchmarkWorkload10MP2Source(b *testing.B) { benchWorkload(b, 2, 2) }

func benchWorkload(b *testing.B, p, ps int) {
	const n = 10_000_000
	cpu0 := cpuTime()
	for b.Loop() {
		var out bytes.Buffer
		if err := workloadJobPS(b, n, p, ps, &out).Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if !strings.Contains(out.String(), `"bars":10000,"trades":10000000,"volume":505019586,"open_sum":1483137.81,"high_sum":1498043.93,"low_sum":1468048.99,"close_sum":1482980.37,"vwap_sum":1483032.6`) {
			b.Fatalf("checksum %s", out.String())
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtrades/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n)/float64(b.N), "cpu-ns/trade")
}
