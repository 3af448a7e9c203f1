package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// BenchmarkLoadDAG loads testdata/config/dag.yaml (4 nodes, 4 edges) with
// one --set and env interpolation: the cost of `mdp validate` on a typical
// job.
func BenchmarkLoadDAG(b *testing.B) {
	data, err := os.ReadFile(td("dag.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	opts := LoadOptions{Env: envMap(map[string]string{"MDP_METRICS_ENABLE": "1"}), Sets: []string{"dag.nodes.src.params.rate=10"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("dag.yaml", data, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadLargeDAG loads a 1000-node fan-out graph, to keep loading
// linear in the size of the job.
func BenchmarkLoadLargeDAG(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("mode: dag\ndag:\n  nodes:\n    - {id: src, type: provider.test_trades}\n    - {id: store, type: sink.test_store, params: {path: a.db}}\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "    - {id: f%d, type: operator.test_filter, params: {min_price: %d}}\n", i, i)
	}
	sb.WriteString("  edges:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "    - [src, f%d]\n    - [f%d, store]\n", i, i)
	}
	data := []byte(sb.String())
	opts := LoadOptions{Env: envMap(nil)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("big.yaml", data, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyntaxErrorLarge reports a syntax error at the end of a
// 20000-line file.
func BenchmarkSyntaxErrorLarge(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("mode: dag\ndag:\n  nodes:\n")
	for i := range 20000 {
		fmt.Fprintf(&sb, "    - {id: n%d, type: operator.test_filter}\n", i)
	}
	sb.WriteString("   bad: [\n")
	data := []byte(sb.String())
	for b.Loop() {
		if _, err := LoadBytes("big.yaml", data, LoadOptions{Env: envMap(nil)}); err == nil {
			b.Fatal("no error")
		}
	}
}
