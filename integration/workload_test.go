package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// The WORKLOAD.md checksum for N = 1,000,000, seed 42, 100 symbols.
var want1M = map[string]float64{
	"bars": 1000, "trades": 1000000, "volume": 50467372,
	"open_sum": 149161.39, "high_sum": 150658.90, "low_sum": 147677.42, "close_sum": 149113.28,
}

const wantVWAP1M = 149170.024994

func runChecksum(t *testing.T, doc string, sets ...string) map[string]float64 {
	t.Helper()
	dir := t.TempDir()
	if bytes.Contains([]byte(doc), []byte("mode: classic")) {
		sets = append(sets, "classic.spec.sink.params.path="+dir+"/sum.json")
	} else {
		sets = append(sets, "dag.nodes.checksum.params.path="+dir+"/sum.json")
	}
	u, err := runtime.NewFromBytes("job.yaml", []byte(doc), runtime.Options{LoadOptions: config.LoadOptions{Sets: sets}})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, dir+"/sum.json")
	var got map[string]float64
	if err := json.Unmarshal(bytes.TrimSpace(data), &got); err != nil {
		t.Fatalf("checksum line %q: %v", data, err)
	}
	return got
}

const benchDAG = `
mode: dag
name: workload
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {model: bench, n: 1000000, symbol_count: 100, seed: 42}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: checksum, type: sink.checksum}
  edges: [[src, bars], [bars, checksum]]
`

// TestWorkloadChecksumIsPartitionInvariant runs the reference workload with
// the bar builder at parallelism 1, 2 and 3: every run gives the reference
// checksum exactly.
func TestWorkloadChecksumIsPartitionInvariant(t *testing.T) {
	for _, par := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", par), func(t *testing.T) {
			got := runChecksum(t, benchDAG, fmt.Sprintf("dag.nodes.bars.parallelism=%d", par))
			checkWorkload(t, got)
		})
	}
}

// TestWorkloadChecksumSmallBatches makes batches cut bars at every position.
func TestWorkloadChecksumSmallBatches(t *testing.T) {
	checkWorkload(t, runChecksum(t, benchDAG, "dag.nodes.src.params.batch_size=7"))
}

func checkWorkload(t *testing.T, got map[string]float64) {
	t.Helper()
	for k, v := range want1M {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if v := got["vwap_sum"]; v < wantVWAP1M*(1-1e-9) || v > wantVWAP1M*(1+1e-9) {
		t.Errorf("vwap_sum = %v, want %v", v, wantVWAP1M)
	}
	if got["events"] != 1000000 {
		t.Errorf("events = %v, want 1000000", got["events"])
	}
}

const benchClassic = `
mode: classic
classic:
  spec:
    name: workload-classic
    source: {type: provider.synthetic, params: {model: bench, n: 1000000, symbol_count: 100, seed: 42}}
    operators: [{type: operator.bars, params: {interval: 1s}}]
    sink: {type: sink.checksum}
`

// TestClassicAndDAGGiveTheSameBars: one engine, two ways to write a job.
func TestClassicAndDAGGiveTheSameBars(t *testing.T) {
	checkWorkload(t, runChecksum(t, benchClassic))
}
