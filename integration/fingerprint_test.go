package integration

import (
	"fmt"
	"testing"

	"github.com/mdpio/mdp/config"
)

func TestFingerprint(t *testing.T) {
	fp := func(name, srcParams, sinkParams string) string {
		t.Helper()
		doc, err := config.LoadBytes("j.yaml", fmt.Appendf(nil, `mode: dag
name: %s
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {%s}}
    - {id: out, type: sink.stdout, params: {%s}}
  edges: [[src, out]]
`, name, srcParams, sinkParams), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return doc.Fingerprint()
	}
	base := fp("a", "symbols: [AAPL], count: 10", "")
	if len(base) != 8 || fp("a", "symbols: [AAPL], count: 10", "") != base {
		t.Fatalf("not stable: %s", base)
	}
	if fp("a", "symbols: [AAPL], count: 10", "format: csv") != base {
		t.Fatal("a sink param changed the fingerprint")
	}
	if fp("a", "count: 10, symbols: [AAPL], seed: 42", "") != base {
		t.Fatal("spelling out a default changed the fingerprint")
	}
	for _, other := range []string{
		fp("a", "symbols: [MSFT], count: 10", ""),
		fp("a", `symbols: [AAPL], count: 10, start: "2024-01-03T00:00:00Z"`, ""),
		fp("b", "symbols: [AAPL], count: 10", ""),
	} {
		if other == base {
			t.Fatal("a different job has the same fingerprint")
		}
	}
}
