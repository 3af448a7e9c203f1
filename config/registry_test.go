package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// TestTwoRegistriesSameTypeDifferentSpecs registers operator.test_scale in
// two separate registries with different params: each job file is checked
// against the spec of the registry it is loaded with, the schema of each
// lists its own params, and the default registry knows neither.
func TestTwoRegistriesSameTypeDifferentSpecs(t *testing.T) {
	newReg := func(param string) *component.Registry {
		r := component.NewRegistry()
		registerTestComponents(r, false)
		r.MustRegister(component.Spec{
			Type: "operator.test_scale", Kind: engine.KindOperator, Summary: "scale " + param,
			Accepts: md.KindTrade, Produces: md.KindTrade,
			Fields:       []component.Field{{Name: param, Type: component.Float, Required: true, Description: "the " + param}},
			NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return passThrough{}, nil },
		})
		return r
	}
	ra, rb := newReg("factor"), newReg("divisor")
	job := func(param string) []byte {
		return []byte(`dag:
  nodes:
    - {id: src, type: provider.test_trades}
    - {id: scale, type: operator.test_scale, params: {` + param + `: 2}}
    - {id: out, type: sink.test_store, params: {path: a.db}}
  edges: [[src, scale], [scale, out]]
`)
	}
	for _, c := range []struct {
		reg   *component.Registry
		param string
		want  string // "" when the job loads
	}{
		{ra, "factor", ""},
		{rb, "divisor", ""},
		{ra, "divisor", `job.yaml:4:54: dag.nodes[1].params.factor: missing required param "factor" (the factor)
job.yaml:4:55: dag.nodes[1].params.divisor: unknown param "divisor" for operator.test_scale; valid params: factor`},
		{rb, "factor", `job.yaml:4:54: dag.nodes[1].params.divisor: missing required param "divisor" (the divisor)
job.yaml:4:55: dag.nodes[1].params.factor: unknown param "factor" for operator.test_scale; valid params: divisor`},
		{nil, "factor", "job.yaml:4:25: dag.nodes[1].type: unknown component type \"operator.test_scale\"; `mdp components` lists the types"},
	} {
		doc, err := LoadBytes("job.yaml", job(c.param), LoadOptions{Env: envMap(nil), Registry: c.reg})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.param, err)
		case c.want == "" && doc.Nodes[1].Params.Float(c.param) != 2:
			t.Errorf("%s: param %v", c.param, doc.Nodes[1].Params.Value(c.param))
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s: got %v\nwant %s", c.param, err, c.want)
		}
	}
	for reg, want := range map[*component.Registry]string{ra: "factor", rb: "divisor"} {
		b, err := Schema(reg)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Defs map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"$defs"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		props := s.Defs["params.operator.test_scale"].Properties
		if len(props) != 1 || props[want] == nil {
			t.Errorf("schema params of operator.test_scale: %v, want only %s", props, want)
		}
	}
	if _, ok := component.Lookup("operator.test_scale"); ok {
		t.Error("a spec registered in a separate registry leaked into the default one")
	}
	if b, _ := Schema(nil); strings.Contains(string(b), "operator.test_scale") {
		t.Error("the default schema lists a component of a separate registry")
	}
}
