package config

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// The tests register their own components so they do not depend on the
// built-in ones other packages provide: into the default registry, which
// LoadOptions without a Registry use, and into separate registries where a
// test needs a different set.
func TestMain(m *testing.M) {
	registerTestComponents(component.Default(), true)
	os.Exit(m.Run())
}

// testSource emits n trades of one symbol.
type testSource struct{ n int }

func (s *testSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "AAPL")
	b := out.NewBatch(md.KindTrade)
	for i := 0; i < s.n; i++ {
		b.Trades = append(b.Trades, md.Trade{TS: int64(i + 1), Price: 100 + float64(i), Size: 1, Sym: sym})
	}
	return out.Emit(b)
}

// passThrough forwards every batch unchanged.
type passThrough struct{}

func (passThrough) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	b.Retain(1)
	return out.Emit(b)
}

// collector is a sink that keeps the trades it receives, per path.
type collector struct{ path string }

var (
	collectedMu sync.Mutex
	collected   = map[string][]md.Trade{}
)

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	collectedMu.Lock()
	collected[c.path] = append(collected[c.path], b.Trades...)
	collectedMu.Unlock()
	return nil
}

func registerTestComponents(r *component.Registry, withBuffer bool) {
	r.MustRegister(component.Spec{
		Type: "provider.test_trades", Aliases: []string{"provider.test_ticks"}, Kind: engine.KindSource,
		Summary: "test trades", Produces: md.KindTrade,
		Fields: []component.Field{
			{Name: "symbols", Type: component.Strings, Default: []string{"AAPL"}, Description: "symbols to emit", Example: []string{"AAPL", "MSFT"}},
			{Name: "rate", Type: component.Float, Default: 100, Min: component.Bound(0), Description: "events per second"},
			{Name: "count", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1000000), Description: "events to emit"},
			{Name: "token", Type: component.String, Secret: true, Description: "api token"},
		},
		NewSource: func(p *component.Params, _ int) (engine.Source, error) {
			return &testSource{n: int(p.Int("count"))}, nil
		},
	})
	r.MustRegister(component.Spec{
		Type: "provider.test_bars", Kind: engine.KindSource, Summary: "test bars", Produces: md.KindBar,
		NewSource: func(p *component.Params, _ int) (engine.Source, error) { return &testSource{}, nil },
	})
	r.MustRegister(component.Spec{
		Type: "operator.test_bars", Kind: engine.KindOperator, Summary: "test bar builder",
		Accepts: md.KindTrade, Produces: md.KindBar,
		Ports: map[string]md.Kind{engine.PortLate: engine.SameAsInput},
		Fields: []component.Field{
			{Name: "interval", Type: component.Duration, Required: true, Min: component.Bound(0.001), Description: "bar length", Example: "1s"},
			{Name: "label", Type: component.String, Default: "close", Enum: []string{"open", "close"}, Description: "which bound stamps the bar"},
			{Name: "emit_empty", Type: component.Bool, Default: false, Description: "emit bars with no trades"},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return passThrough{}, nil },
	})
	r.MustRegister(component.Spec{
		Type: "operator.test_filter", Kind: engine.KindOperator, Summary: "test filter",
		Accepts: md.KindAny, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "min_price", Type: component.Float, Default: 0, Min: component.Bound(0), Description: "drop trades below this price"},
			{Name: "max_price", Type: component.Float, Description: "drop trades above this price"},
		},
		Validate: func(p *component.Params) error {
			if p.Has("max_price") && p.Float("max_price") < p.Float("min_price") {
				return p.Errorf("max_price", "must not be below min_price (%g)", p.Float("min_price"))
			}
			return nil
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return passThrough{}, nil },
	})
	r.MustRegister(component.Spec{
		Type: "sink.test_store", Kind: engine.KindSink, Summary: "test store", Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "path", Type: component.String, Required: true, Description: "where to store", Example: "bars.db"},
			{Name: "batch", Type: component.Int, Default: 100, Min: component.Bound(1), Max: component.Bound(10000), Description: "rows per write"},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &collector{path: p.String("path")}, nil
		},
	})
	if withBuffer {
		r.MustRegister(component.Spec{
			Type: bufferType, Kind: engine.KindOperator, Summary: "test batcher",
			Accepts: md.KindAny, Produces: engine.SameAsInput,
			Fields: []component.Field{
				{Name: "max_rows", Type: component.Int, Default: 500, Min: component.Bound(1), Description: "rows per batch"},
				{Name: "max_bytes", Type: component.Int, Default: 1 << 20, Min: component.Bound(1), Description: "bytes per batch"},
				{Name: "flush_interval", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Description: "flush at least this often"},
				{Name: "drop_policy", Type: component.String, Default: "block", Enum: []string{"block", "drop_oldest", "drop_newest"}, Description: "what a full buffer does"},
			},
			NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) { return passThrough{}, nil },
		})
	}
}
