package config_test

import (
	"fmt"

	"github.com/mdpio/mdp/config"
)

// A job with mistakes reports all of them at once, each at its line.
func ExampleLoadBytes() {
	job := `mode: dag
name: demo
metrics: {enabled: true}
dag:
  nodes:
    - {id: src, type: provider.test_trades, params: {rate: "${RATE:-500}"}}
    - {id: store, type: sink.test_store, params: {path: "${OUT}"}}
  edges: [[src, stroe]]
`
	env := func(string) (string, bool) { return "", false }
	_, err := config.LoadBytes("demo.yaml", []byte(job), config.LoadOptions{Env: env, Sets: []string{"shutdown_timeout=10s"}})
	fmt.Println(err)
	// Output:
	// demo.yaml:3:11: metrics.enabled: unknown key "enabled"; did you mean "enable"?
	// demo.yaml:7:57: dag.nodes[1].params.path: environment variable OUT is not set; set it or write ${OUT:-default}
	// demo.yaml:8:17: dag.edges[0]: unknown node "stroe"; did you mean "store"?
}
