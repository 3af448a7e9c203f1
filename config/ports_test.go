package config

import (
	"context"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// routeJoin is the test component for ports: two named inputs (left takes
// trades, right trades or quotes) and one named output per entry of its
// routes param.
func init() {
	component.Register(component.Spec{
		Type: "operator.test_route_join", Kind: engine.KindOperator, Summary: "test join with routes",
		Inputs:   []engine.Input{{Name: "left", Accepts: md.KindTrade}, {Name: "right", Accepts: md.KindTrade | md.KindQuote}},
		Produces: md.KindTrade,
		Fields: []component.Field{
			{Name: "routes", Type: component.Strings, Default: []string{}, Description: "named outputs"},
		},
		PortsFn: func(p *component.Params) map[string]md.Kind {
			ports := map[string]md.Kind{}
			for _, r := range p.Strings("routes") {
				ports[r] = md.KindTrade
			}
			return ports
		},
		PortsDoc: "one output per name in routes, carrying trades",
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &routeJoin{routes: p.Strings("routes")}, nil
		},
	})
}

// routeJoin sends a batch from the left input to the first route and one
// from the right input to the last.
type routeJoin struct{ routes []string }

// Process handles a batch without a port as one from the left input.
func (r *routeJoin) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return r.ProcessPort(ctx, 0, b, out)
}

func (r *routeJoin) ProcessPort(ctx context.Context, port int, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.EmitTo(r.routes[port*(len(r.routes)-1)], b)
}

const portsJob = `mode: dag
dag:
  nodes:
    - {id: a, type: provider.test_trades, params: {count: 5}}
    - {id: b, type: provider.test_trades, params: {count: 7}}
    - {id: j, type: operator.test_route_join, params: {routes: [first, last]}}
    - {id: s1, type: sink.test_store, params: {path: ports-first}}
    - {id: s2, type: sink.test_store, params: {path: ports-last}}
  edges:
    - [a, j.left]
    - {from: b, to: j.right}
    - [j.first, s1]
    - [j.last, s2]
`

func TestInputPortsAndParamPortsFromConfig(t *testing.T) {
	doc, err := LoadBytes("job.yaml", []byte(portsJob), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := doc.Graph()
	if err != nil {
		t.Fatal(err)
	}
	if e := g.Edges[1]; e.To != "j" || e.ToPort != "right" || g.Edges[2].FromPort != "first" {
		t.Fatalf("edges %+v %+v", *g.Edges[1], *g.Edges[2])
	}
	j, err := engine.New(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	collectedMu.Lock()
	first, last := len(collected["ports-first"]), len(collected["ports-last"])
	collectedMu.Unlock()
	if first != 5 || last != 7 {
		t.Fatalf("route first got %d trades (want 5 from a on left), last %d (want 7 from b on right)", first, last)
	}
}

func TestPortErrorsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           string
	}{
		{"unknown input port", "[a, j.middle]", "",
			`job.yaml:9:7: dag.edges[0]: edge a -> j.middle: node "j" (operator.test_route_join) has no input port "middle"; its input ports are: left, right`},
		{"kind of an input port", "[bars, j.left]", "",
			`job.yaml:9:7: dag.edges[0]: edge bars -> j.left: "bars" (provider.test_bars) sends bar records but input "left" of "j" (operator.test_route_join) takes trade`},
		{"main input of a node with named inputs", "[a, j]", "",
			`job.yaml:9:7: dag.edges[0]: edge a -> j: node "j" (operator.test_route_join) has no input port "(main)"; its input ports are: left, right`},
		{"output port not in the params", "[a, j.left]", "[j.middle, s1]",
			`job.yaml:10:7: dag.edges[1]: edge j.middle -> s1: node "j" (operator.test_route_join) has no output port "middle"; its ports are: dead_letter, first, last`},
		{"input port on a one-input node", "[a, j.left]", "[j.first, s1.left]",
			`job.yaml:10:7: dag.edges[1]: edge j.first -> s1.left: node "s1" (sink.test_store) has no input port "left"; it has only its main input`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := "[j.first, s1]"
			if tc.to != "" {
				out = tc.to
			}
			src := `mode: dag
dag:
  nodes:
    - {id: a, type: provider.test_trades}
    - {id: bars, type: provider.test_bars}
    - {id: j, type: operator.test_route_join, params: {routes: [first, last]}}
    - {id: s1, type: sink.test_store, params: {path: x}}
  edges:
    - ` + tc.from + `
    - ` + out + `
`
			_, err := LoadBytes("job.yaml", []byte(src), LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got:\n%v\nwant a line:\n%s", err, tc.want)
			}
		})
	}
}

// TestPortsOnAnUnknownTypeAreNotReportedAgain: a node of unknown type says
// so once; the ports its edges name are not errors of their own.
func TestPortsOnAnUnknownTypeAreNotReportedAgain(t *testing.T) {
	src := `mode: dag
dag:
  nodes:
    - {id: a, type: provider.test_trades}
    - {id: j, type: operator.test_joinx}
    - {id: s1, type: sink.test_store, params: {path: x}}
  edges:
    - [a, j.left]
    - [j.first, s1]
`
	_, err := LoadBytes("job.yaml", []byte(src), LoadOptions{})
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), `job.yaml:5:21: dag.nodes[1].type: unknown component type "operator.test_joinx"`) {
		t.Fatalf("got:\n%v", err)
	}
}
