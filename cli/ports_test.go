package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdpio/mdp/cli"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// cliRouter has two input ports and one output per name in routes; it sends
// what comes in on left to the first route and on right to the last.
type cliRouter struct{ routes []string }

func (r *cliRouter) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return r.ProcessPort(ctx, 0, b, out)
}

func (r *cliRouter) ProcessPort(ctx context.Context, port int, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.EmitTo(r.routes[port*(len(r.routes)-1)], b)
}

func init() {
	component.Register(component.Spec{
		Type: "operator.test_cli_router", Kind: engine.KindOperator, Summary: "CLI test router with input ports",
		Inputs:   []engine.Input{{Name: "left", Accepts: md.KindTrade}, {Name: "right", Accepts: md.KindTrade | md.KindQuote}},
		Produces: md.KindTrade,
		Fields: []component.Field{
			{Name: "routes", Type: component.Strings, Required: true, Description: "one output port per name"},
		},
		PortsFn: func(p *component.Params) map[string]md.Kind {
			ports := map[string]md.Kind{}
			for _, r := range p.Strings("routes") {
				ports[r] = md.KindTrade
			}
			return ports
		},
		PortsDoc: "one per name in routes, carrying trades",
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &cliRouter{routes: p.Strings("routes")}, nil
		},
	})
}

const routerJob = `mode: dag
name: r
dag:
  nodes:
    - {id: a, type: provider.test_cli_src, params: {count: 10}}
    - {id: b, type: provider.test_cli_src, params: {count: 15}}
    - {id: router, type: operator.test_cli_router, params: {routes: [first, last]}}
    - {id: s1, type: sink.test_cli_sink, params: {path: %s}}
    - {id: s2, type: sink.test_cli_sink, params: {path: %s}}
  edges:
    - [a, router.left]
    - {from: b, to: router.right}
    - [router.first, s1]
    - [router.%s, s2]
`

// TestPortsInComponentsGraphValidateAndRun: mdp components lists input
// ports and the ports params create, mdp graph labels edges with them,
// validate rejects a port the params do not create, and run routes by port.
func TestPortsInComponentsGraphValidateAndRun(t *testing.T) {
	code, stdout, _ := runInProcess("components", "operator.test_cli_router")
	for _, want := range []string{"input ports: left (trade), right (trade|quote)", "ports from params: one per name in routes, carrying trades"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("components: exit %d, want %q in\n%s", code, want, stdout)
		}
	}
	code, stdout, _ = runInProcess("components", "operator.test_cli_router", "--json")
	var docs []cli.ComponentDoc
	if err := json.Unmarshal([]byte(stdout), &docs); code != 0 || err != nil || len(docs) != 1 {
		t.Fatalf("components --json: exit %d, %v\n%s", code, err, stdout)
	}
	if d := docs[0]; fmt.Sprint(d.Inputs) != "[{left trade} {right trade|quote}]" || d.PortsFromParams != "one per name in routes, carrying trades" {
		t.Fatalf("components --json: inputs %v, ports from params %q", d.Inputs, d.PortsFromParams)
	}

	dir := t.TempDir()
	out1, out2 := filepath.Join(dir, "first.out"), filepath.Join(dir, "last.out")
	job := func(route string) string {
		return writeFile(t, dir, route+".yaml", fmt.Sprintf(routerJob, out1, out2, route))
	}
	good := job("last")
	code, stdout, stderr := runInProcess("graph", "--config", good)
	for _, want := range []string{`"a" -> "router" [label="→ left"];`, `"b" -> "router" [label="→ right"];`, `"router" -> "s1" [label="first", style=dashed];`} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("graph: exit %d %s, want %q in\n%s", code, stderr, want, stdout)
		}
	}
	bad := job("middle")
	code, _, stderr = runInProcess("validate", "--config", bad)
	if want := bad + `:14:7: dag.edges[3]: edge router.middle -> s2: node "router" (operator.test_cli_router) has no output port "middle"; its ports are: dead_letter, first, last`; code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("validate: exit %d\n%s\nwant %q", code, stderr, want)
	}
	if code, _, stderr = runInProcess("run", "--config", good); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	for path, want := range map[string]string{out1: "records 10\n", out2: "records 15\n"} {
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Fatalf("%s: %q (%v), want %q", path, got, err, want)
		}
	}
}
