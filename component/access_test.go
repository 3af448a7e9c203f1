package component_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

type nopSource struct{}

func (nopSource) Run(ctx context.Context, out *engine.Output) error { return nil }

type nopSink struct{}

func (nopSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error { return nil }

// scaleSpec is an operator whose constructor reads the param read (which may
// be misspelt) with the getter get.
func scaleSpec(get func(p *component.Params)) component.Spec {
	return component.Spec{
		Type: "operator.test_scale", Kind: engine.KindOperator, Accepts: md.KindAny, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "factor", Type: component.Float, Default: 2.0},
			{Name: "decimals", Type: component.Int, Default: 2},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			get(p)
			return nopSink{}, nil
		},
	}
}

// TestMisspeltParamFailsTheBuild: a constructor reading a param its spec
// does not declare (or with the getter of another type) makes engine.New
// fail with an error naming the node, the component and the name; it does
// not get a zero.
func TestMisspeltParamFailsTheBuild(t *testing.T) {
	for _, c := range []struct {
		name string
		get  func(p *component.Params)
		want string
	}{
		{"misspelt", func(p *component.Params) { p.Float("factr") },
			`node "scale": component operator.test_scale reads param "factr", which its spec does not declare (did you mean "factor"?)`},
		{"unknown", func(p *component.Params) { p.Has("window") },
			`node "scale": component operator.test_scale reads param "window", which its spec does not declare (it declares factor, decimals)`},
		{"wrong type", func(p *component.Params) { p.Float("decimals") },
			`node "scale": component operator.test_scale reads param "decimals", declared as int, with the getter for float`},
		{"right", func(p *component.Params) { p.Float("factor"); p.Int("decimals") }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := component.NewRegistry()
			r.MustRegister(scaleSpec(c.get))
			spec, _ := r.Lookup("operator.test_scale")
			p, err := component.NewParams(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			g := &engine.Graph{
				Nodes: []*engine.Node{
					{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
						NewSource: func(int) (engine.Source, error) { return nopSource{}, nil }},
					component.Node(spec, p, component.NodeOptions{ID: "scale"}),
					{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
						NewProcessor: func(int) (engine.Processor, error) { return nopSink{}, nil }},
				},
				Edges: []*engine.Edge{{From: "src", To: "scale"}, {From: "scale", To: "sink"}},
			}
			_, err = engine.New(g, engine.Options{Job: "t"})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
			var pe *component.ParamAccessError
			if !errorsAs(err, &pe) || pe.Node != "scale" || pe.Type != "operator.test_scale" {
				t.Fatalf("error %T %+v is not a *ParamAccessError of node scale", err, pe)
			}
		})
	}
}

// TestMisspeltParamInValidate: a spec's Validate and ProducesFn reading an
// undeclared param make decoding fail, at the params' position.
func TestMisspeltParamInValidate(t *testing.T) {
	s := scaleSpec(func(*component.Params) {})
	s.Validate = func(p *component.Params) error {
		if p.Float("factor") > 0 && p.String("mode") == "x" {
			return p.Errorf("factor", "never")
		}
		return nil
	}
	r := component.NewRegistry()
	r.MustRegister(s)
	spec, _ := r.Lookup(s.Type)
	_, err := component.NewParams(spec, map[string]any{"factor": 3})
	want := `component operator.test_scale reads param "mode", which its spec does not declare (it declares factor, decimals)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}

	s = scaleSpec(func(*component.Params) {})
	s.Type = "operator.test_kind"
	s.ProducesFn = func(p *component.Params) md.Kind {
		if p.String("kinf") == "quote" {
			return md.KindQuote
		}
		return md.KindTrade
	}
	r.MustRegister(s)
	spec, _ = r.Lookup(s.Type)
	_, err = component.NewParams(spec, nil)
	want = `component operator.test_kind reads param "kinf", which its spec does not declare (it declares factor, decimals)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestCloneIsIndependent: a clone starts with the registry's specs, and
// what is registered into either afterwards stays there.
func TestCloneIsIndependent(t *testing.T) {
	base := component.NewRegistry()
	base.MustRegister(scaleSpec(func(*component.Params) {}))
	clone := base.Clone()
	s := scaleSpec(func(*component.Params) {})
	s.Type = "operator.test_clone_only"
	clone.MustRegister(s)
	if _, ok := base.Lookup("operator.test_clone_only"); ok {
		t.Error("a spec registered into the clone leaked into the original")
	}
	if got := clone.Types(); len(got) != 2 || got[0] != "operator.test_clone_only" || got[1] != "operator.test_scale" {
		t.Errorf("clone types %v", got)
	}
	if err := clone.Register(scaleSpec(func(*component.Params) {})); err == nil {
		t.Error("the clone accepted a duplicate of a spec it inherited")
	}
	if component.Or(nil) != component.Default() || component.Or(base) != base {
		t.Error("Or: nil means the default registry")
	}
}

// TestEngineRejectsAMismatchedConstructor: an engine.Node whose
// constructor field does not match its kind fails engine.New.
func TestEngineRejectsAMismatchedConstructor(t *testing.T) {
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade},
				NewProcessor: func(int) (engine.Processor, error) { return nopSink{}, nil }},
			{ID: "sink", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return nopSink{}, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "sink"}},
	}
	_, err := engine.New(g, engine.Options{Job: "t"})
	if err == nil || err.Error() != `node "src": a source sets NewSource and not NewProcessor` {
		t.Fatalf("got %v", err)
	}
}
