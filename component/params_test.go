package component

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

type nopProc struct{}

func (nopProc) Process(ctx context.Context, b *md.Batch, out *engine.Output) error { return nil }

func testSpec() *Spec {
	return &Spec{
		Type: "operator.test_params", Kind: engine.KindOperator, Accepts: md.KindTrade, Produces: md.KindBar,
		Fields: []Field{
			{Name: "interval", Type: Duration, Required: true, Min: Bound(0.001), Description: "bar length"},
			{Name: "label", Type: String, Default: "open", Enum: []string{"open", "close"}},
			{Name: "count", Type: Int, Default: 10, Min: Bound(1), Max: Bound(100)},
			{Name: "scale", Type: Float, Default: 1.5},
			{Name: "enabled", Type: Bool, Default: true},
			{Name: "symbols", Type: Strings},
			{Name: "start", Type: Time},
			{Name: "columns", Type: Map},
		},
		NewProcessor: func(p *Params, instance int) (engine.Processor, error) { return nopProc{}, nil },
	}
}

func decodeYAML(t *testing.T, s *Spec, src string) (*Params, []string) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	p, errs := Decode(s, "n1", &n)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, fmt.Sprintf("%s:%02d:%02d:%s", e.Node, e.Line, e.Column, e.Error()))
	}
	return p, msgs
}

func TestDecodeDefaultsAndTypes(t *testing.T) {
	p, errs := decodeYAML(t, testSpec(), "interval: 1m\nsymbols: AAPL\nstart: 2024-01-02T14:30:00Z\ncolumns: {ts: 0}\n")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if p.Duration("interval") != time.Minute || p.String("label") != "open" || p.Int("count") != 10 ||
		p.Float("scale") != 1.5 || !p.Bool("enabled") || strings.Join(p.Strings("symbols"), ",") != "AAPL" {
		t.Fatalf("decoded %+v", p.values)
	}
	if ts, ok := p.Time("start"); !ok || ts != 1704205800*int64(time.Second) {
		t.Fatalf("start %d %v", ts, ok)
	}
	if p.Map("columns")["ts"] != int64(0) {
		t.Fatalf("columns %#v", p.Map("columns"))
	}
	if p.Has("label") || !p.Has("interval") {
		t.Fatal("Has reports defaults as set")
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	_, errs := decodeYAML(t, testSpec(), strings.Join([]string{
		"intervall: 1s",
		"label: clsoe",
		"count: 1000",
		"scale: fast",
		"enabled: 3",
		"symbols: {a: 1}",
		"start: yesterday",
	}, "\n"))
	want := []string{
		`n1:01:01:params.intervall: unknown param "intervall" for operator.test_params; did you mean "interval"?`,
		`n1:02:08:params.label: "clsoe" is not allowed; want one of open, close (did you mean "close"?)`,
		`n1:03:08:params.count: 1000 is above the maximum 100`,
		`n1:04:08:params.scale: want a number, got the string "fast"`,
		`n1:05:10:params.enabled: want true or false, got the integer 3`,
		`n1:06:10:params.symbols: want a list of strings, got a mapping`,
		`n1:07:08:params.start: parse time "yesterday": want RFC 3339 such as 2024-01-02T14:30:00Z`,
		`n1:01:01:params.interval: missing required param "interval" (bar length)`,
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeRangeOnDurations(t *testing.T) {
	_, errs := decodeYAML(t, testSpec(), "interval: 500us\n")
	if len(errs) != 1 || errs[0] != `n1:01:11:params.interval: 500us is below the minimum 1ms` {
		t.Fatalf("got %q", errs)
	}
}

func TestValidateHookAndNewParams(t *testing.T) {
	s := testSpec()
	s.Validate = func(p *Params) error {
		if p.String("label") == "close" && p.Int("count") > 5 {
			return p.Errorf("count", "with label close, count must be 5 or less")
		}
		return nil
	}
	_, err := NewParams(s, map[string]any{"interval": "1s", "label": "close", "count": 6})
	if err == nil || err.Error() != "params.count: with label close, count must be 5 or less" {
		t.Fatalf("got %v", err)
	}
	p, err := NewParams(s, map[string]any{"interval": "1s", "count": 6})
	if err != nil || p.Int("count") != 6 {
		t.Fatalf("got %v %v", p, err)
	}
}

func TestRegisterRejectsMalformedSpecs(t *testing.T) {
	cases := map[string]Spec{
		`component.Register: type "sink.x" must start with "operator."`:                                      {Type: "sink.x", Kind: engine.KindOperator, NewProcessor: testSpec().NewProcessor},
		`component.Register: operator.test_nonew: an operator or a sink sets NewProcessor and not NewSource`: {Type: "operator.test_nonew", Kind: engine.KindOperator},
		`component.Register: provider.test_procsrc: a source sets NewSource and not NewProcessor`:            {Type: "provider.test_procsrc", Kind: engine.KindSource, NewProcessor: testSpec().NewProcessor},
		`component.Register: operator.test_baddefault: default of n: want an integer, got "x"`:               {Type: "operator.test_baddefault", Kind: engine.KindOperator, NewProcessor: testSpec().NewProcessor, Fields: []Field{{Name: "n", Type: Int, Default: "x"}}},
		`component.Register: operator.test_noschema: produces derived records but has no SchemaFn`:           {Type: "operator.test_noschema", Kind: engine.KindOperator, Produces: md.KindDerived, NewProcessor: testSpec().NewProcessor},
	}
	r := NewRegistry()
	for want, s := range cases {
		func() {
			defer func() {
				if r := recover(); r == nil || r.(string) != want {
					t.Errorf("got panic %v, want %q", r, want)
				}
			}()
			r.MustRegister(s)
		}()
	}
	if err := r.Register(Spec{Type: "operator.test_dup", Kind: engine.KindOperator, NewProcessor: testSpec().NewProcessor}); err != nil {
		t.Fatal(err)
	}
	err := r.Register(Spec{Type: "operator.test_dup", Kind: engine.KindOperator, NewProcessor: testSpec().NewProcessor})
	if err == nil || err.Error() != "duplicate type operator.test_dup" {
		t.Errorf("got %v", err)
	}
	if got := r.Types(); len(got) != 1 || got[0] != "operator.test_dup" {
		t.Errorf("types %v: a rejected spec must not be registered", got)
	}
}

func TestSourcesGetWatermarkParams(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(Spec{Type: "provider.test_src", Kind: engine.KindSource, Produces: md.KindTrade,
		NewSource: func(*Params, int) (engine.Source, error) { return nil, nil }})
	s, ok := r.Lookup("provider.test_src")
	if !ok {
		t.Fatal("not registered")
	}
	p, err := NewParams(s, map[string]any{"max_out_of_orderness": "2s", "idle_timeout": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	n := Node(s, p, NodeOptions{ID: "src"})
	if n.MaxOutOfOrderness != 2*time.Second || n.IdleTimeout != time.Second || n.Ports[engine.PortMain] != md.KindTrade {
		t.Fatalf("node %+v", n)
	}
}

func TestSuggest(t *testing.T) {
	for word, want := range map[string]string{"intreval": "interval", "lable": "label", "xyz": "", "interva": "interval"} {
		if got := Suggest(word, []string{"interval", "label", "count"}); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

// SchemaFn declares the derived schema from the params when they are
// decoded: its error is a param error, and the node carries the schema.
func TestSchemaFnDeclaresTheSchemaAtBuildTime(t *testing.T) {
	s := testSpec()
	s.Produces = md.KindDerived
	s.SchemaFn = func(p *Params) (*md.Schema, error) {
		sc, err := md.NewSchema(p.Strings("symbols")[0], md.Field{Name: "v"})
		if err != nil {
			return nil, p.Errorf("symbols", "%v", err)
		}
		return sc, nil
	}
	_, err := NewParams(s, map[string]any{"interval": "1s", "symbols": []string{"Bad"}})
	if err == nil || err.Error() != `params.symbols: schema name: "Bad" is not a lower-case identifier (a-z, 0-9, _; not starting with a digit)` {
		t.Fatalf("got %v", err)
	}
	p, err := NewParams(s, map[string]any{"interval": "1s", "symbols": []string{"sma"}})
	if err != nil {
		t.Fatal(err)
	}
	n := Node(s, p, NodeOptions{ID: "x"})
	if sc := n.Schemas[engine.PortMain]; sc == nil || sc.String() != "sma(v float64)" || n.Ports[engine.PortMain] != md.KindDerived {
		t.Fatalf("node schemas %v ports %v", n.Schemas, n.Ports)
	}
}

// TestValidatePanicIsAConfigError checks that a bug in a component's own
// Validate (a panic other than a param access error) becomes an error at
// the node's position, not a crash of mdp validate.
func TestValidatePanicIsAConfigError(t *testing.T) {
	s := testSpec()
	s.Validate = func(p *Params) error {
		panic("a bug in Validate")
	}
	_, errs := decodeYAML(t, s, "interval: 1m\n")
	if len(errs) != 1 || !strings.Contains(errs[0], "n1:01:01:") || !strings.Contains(errs[0], "component spec code panicked: a bug in Validate") {
		t.Fatalf("errors %q, want one error at the node saying its spec code panicked", errs)
	}
}
