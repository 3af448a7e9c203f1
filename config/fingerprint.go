package config

import (
	"encoding/json"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/mdpio/mdp/engine"
)

// Fingerprint identifies what the job computes: a short hash of its name
// and of every node that is not a sink (id, type and every param, defaults
// included) and the edges between them. Re-runs of one job share it; the
// same job reading other symbols or another time range, or any other job,
// gets another. Sinks that share a destination with other jobs (Parquet
// files in one directory) put it in what they name, so writers never
// replace each other's output while a re-run still replaces its own.
// Sink params are left out, so tuning a sink keeps the fingerprint.
func (d *Document) Fingerprint() string {
	type node struct {
		ID, Type string
		Params   map[string]any
	}
	sinks := map[string]bool{}
	var nodes []node
	for i := range d.Nodes {
		n := &d.Nodes[i]
		if n.Spec != nil && n.Spec.Kind == engine.KindSink {
			sinks[n.ID] = true
			continue
		}
		nd := node{ID: n.ID, Type: n.Type, Params: map[string]any{}}
		if n.Spec != nil && n.Params != nil {
			for _, f := range n.Spec.Fields {
				if v := n.Params.Value(f.Name); v != nil {
					nd.Params[f.Name] = v
				}
			}
		}
		nodes = append(nodes, nd)
	}
	var edges [][3]string
	for _, e := range d.Edges {
		if !sinks[e.To] {
			edges = append(edges, [3]string{e.From, e.FromPort, e.To})
		}
	}
	// encoding/json sorts map keys, so equal jobs encode equally.
	b, err := json.Marshal(struct {
		Name  string
		Nodes []node
		Edges [][3]string
	}{d.Name, nodes, edges})
	if err != nil {
		b = fmt.Appendf(nil, "%s %v %v", d.Name, nodes, edges)
	}
	return fmt.Sprintf("%08x", uint32(xxhash.Sum64(b)))
}
