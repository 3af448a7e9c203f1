package config

import (
	"os"
	"testing"
)

// FuzzLoadBytes checks that no input makes the loader panic and that a
// failed load always says where and why.
func FuzzLoadBytes(f *testing.F) {
	for _, name := range []string{"dag.yaml", "classic.yaml", "job.json"} {
		b, err := os.ReadFile(td(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "dag.nodes.src.params.rate=5")
	}
	f.Add([]byte("mode: dag\ndag: {nodes: [{id: a, type: sink.test_store}], edges: [[a.x, a]]}"), "dag.edges[0]=[a, a]")
	f.Add([]byte("classic: {spec: {source: ~, operators: [~, 1], batcher: [], sink: {type: x}}}"), "classic.spec.operators[1].id=${X:-y}")
	f.Add([]byte("a: &x [*x]"), "a.b[0]=1")
	f.Fuzz(func(t *testing.T, data []byte, set string) {
		d, err := LoadBytes("f.yaml", data, LoadOptions{Env: envMap(map[string]string{"X": "1"}), Sets: []string{set}})
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for _, e := range es {
				if e.Msg == "" {
					t.Fatalf("empty message in %v", err)
				}
			}
			return
		}
		if _, err := d.Graph(); err != nil {
			t.Fatalf("loaded but the graph fails: %v", err)
		}
	})
}
