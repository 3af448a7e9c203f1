package bars

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func TestSpecRejectsBadParams(t *testing.T) {
	spec, ok := component.Lookup(Type)
	if !ok {
		t.Fatalf("%s is not registered", Type)
	}
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"interval": "0s"}, "params.interval: 0s is below the minimum 1ms"},
		{map[string]any{"interval": 0}, "params.interval: 0 is below the minimum 1ms"},
		{map[string]any{"interval": "500us"}, "params.interval: 500us is below the minimum 1ms"},
		{map[string]any{"interval": "-1s"}, "params.interval: -1s is below the minimum 1ms"},
		{map[string]any{"interval": "1s", "label": "middle"}, `params.label: "middle" is not allowed; want one of open, close`},
		{map[string]any{"interval": "1s", "label": "clos"}, `params.label: "clos" is not allowed; want one of open, close (did you mean "close"?)`},
		{map[string]any{"intreval": "1s"}, `params.intreval: unknown param "intreval" for operator.bars; did you mean "interval"?`},
		{map[string]any{"interval": "1s", "late_policy": "updat"}, `params.late_policy: "updat" is not allowed; want one of drop, side_output, update (did you mean "update"?)`},
		{map[string]any{"interval": "1s", "price": "last"}, `params.price: "last" is not allowed; want one of mid, bid, ask`},
		{map[string]any{"interval": "1s", "build_delay": "-1s"}, "params.build_delay: -1s is below the minimum 0s"},
		{map[string]any{"interval": "1s", "allowed_lateness": "1s"}, "params.allowed_lateness: allowed_lateness applies only with late_policy: update (drop and side_output keep no closed bars)"},
	} {
		_, err := component.NewParams(spec, c.params)
		if err == nil || err.Error() != c.want {
			t.Errorf("params %v: error %v\nwant %s", c.params, err, c.want)
		}
	}
}

func TestSpecDefaultsAndShape(t *testing.T) {
	spec, _ := component.Lookup(Type)
	if spec.Kind != engine.KindOperator || spec.Accepts != md.KindTrade|md.KindQuote || spec.Produces != md.KindBar ||
		spec.Ports[engine.PortLate] != engine.SameAsInput {
		t.Fatalf("spec shape: kind %v accepts %v produces %v ports %v", spec.Kind, spec.Accepts, spec.Produces, spec.Ports)
	}
	p, err := component.NewParams(spec, map[string]any{"interval": "1ms", "late_policy": "update"})
	if err != nil {
		t.Fatal(err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := impl.(*Bars)
	ms := time.Millisecond.Nanoseconds()
	if b.iv != ms || b.origin != 0 || b.delay != 0 || b.lateness != ms || b.labelClose || b.skipFirst || b.emitEmpty ||
		b.price != PriceMid || b.policy != LateUpdate {
		t.Fatalf("defaults: %+v", b)
	}
	p, err = component.NewParams(spec, map[string]any{"interval": "1m", "origin_offset": "-15s", "late_policy": "update", "allowed_lateness": "10s",
		"label": "close", "price": "ask", "build_delay": "2s", "skip_first_partial": true, "emit_empty": true})
	if err != nil {
		t.Fatal(err)
	}
	impl, _ = spec.NewProcessor(p, 0)
	b = impl.(*Bars)
	sec := time.Second.Nanoseconds()
	if b.iv != 60*sec || b.origin != 45*sec || b.delay != 2*sec || b.lateness != 10*sec || !b.labelClose || !b.skipFirst || !b.emitEmpty ||
		b.price != PriceAsk || b.policy != LateUpdate {
		t.Fatalf("params: %+v", b)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Interval: 0}, "bars: interval must be positive, got 0ns"},
		{Config{Interval: 1, BuildDelay: -1}, "bars: build_delay must not be negative, got -1ns"},
		{Config{Interval: 1, AllowedLateness: -2}, "bars: allowed_lateness must not be negative, got -2ns"},
	} {
		if _, err := New(c.cfg); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %s", c.cfg, err, c.want)
		}
	}
}
