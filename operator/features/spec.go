package features

import (
	"errors"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/window"
)

// Type is the component's type id.
const Type = "operator.features"

const description = `Computes rolling features per symbol over a price series — trade prices, quote mids or bar closes — and emits one derived record per input record: its price, then each feature in the order of param features.

Features (windows count records): sma(n), the mean of the last n prices; ema(n), the exponential moving average with alpha = 2/(n+1), starting at the first price; stddev(n), their population standard deviation; return, price/previous - 1; log_return, ln(price/previous); zscore(n), (price - sma(n)) / stddev(n), 0 when stddev is 0; rsi(n), Wilder's relative strength index: the average gain and loss over the first n price changes, then smoothed as avg = (avg·(n-1) + change)/n, RSI = 100 - 100/(1 + gain/loss) (100 with no losses, 50 with neither); realized_vol(n), the square root of the sum of the last n squared log returns (not annualized). Until a window has n records a feature is computed over the records so far; the first record's returns are 0. Rolling sums are kept incrementally (an add and a subtract per record), so a long series carries float rounding of the order of 1e-12 relative; a window whose variance is below 1e-13 times its squared mean is taken as constant (stddev 0, zscore 0); realized_vol's sum falling below 1e-15 is summed again over its window, so a window of zero returns gives exactly 0.

Event time: records wait until the watermark passes their ts and are then taken in order of ts (ties in arrival order), so reordering within the source's max_out_of_orderness, batch sizes and parallelism never change the output; a record behind the watermark when it arrives is late and counted as dropped under "late". Output: ts and symbol of the input record; schema named by param name (default: the node id).`

func init() {
	component.Register(component.Spec{
		Type:        Type,
		Kind:        engine.KindOperator,
		Summary:     "Rolling features per symbol: SMA, EMA, stddev, returns, z-score, RSI, realized volatility",
		Description: description,
		Accepts:     md.KindTrade | md.KindQuote | md.KindBar,
		Produces:    md.KindDerived,
		Fields: []component.Field{
			{Name: "features", Type: component.Strings, Required: true,
				Description: "The features, each one output field named fn_n (return and log_return as written): sma(n), ema(n), stddev(n), return, log_return, zscore(n), rsi(n), realized_vol(n).",
				Example:     []string{"sma(20)", "ema(12)", "return", "rsi(14)"}},
			{Name: "name", Type: component.String,
				Description: "Name of the output schema (the table or dataset a sink writes): a lower-case identifier. Default: the node id, lower-cased with other characters as _.", Example: "features_1m"},
		},
		Validate: func(p *component.Params) error {
			var errs []error
			for _, s := range p.Strings("features") {
				if _, err := Parse(s); err != nil {
					errs = append(errs, p.Errorf("features", "%v", err))
				}
			}
			if len(p.Strings("features")) == 0 {
				errs = append(errs, p.Errorf("features", "at least one feature is needed"))
			}
			return errors.Join(errs...)
		},
		SchemaFn: func(p *component.Params) (*md.Schema, error) {
			fs, err := parseAll(p)
			if err != nil {
				return nil, err
			}
			name := window.SchemaName(p.NodeID(), "features")
			if p.Has("name") {
				name = p.String("name")
			}
			sc, err := NewSchema(name, fs)
			if err != nil {
				return nil, p.Errorf("features", "%v", err)
			}
			return sc, nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			fs, err := parseAll(p)
			if err != nil {
				return nil, err
			}
			return New(fs, p.Schema())
		},
	})
}

func parseAll(p *component.Params) ([]Feature, error) {
	var fs []Feature
	for _, s := range p.Strings("features") {
		f, err := Parse(s)
		if err != nil {
			return nil, p.Errorf("features", "%v", err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}
