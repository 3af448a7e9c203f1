package main

import (
	"context"
	"math"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// PriceScaleType is the operator's type id.
const PriceScaleType = "operator.price_scale"

func init() {
	component.Register(component.Spec{
		Type:    PriceScaleType,
		Kind:    engine.KindOperator,
		Summary: "Multiply every price by a factor (a currency or unit conversion)",
		Description: "Trades get price*factor, quotes bid and ask*factor, bars open, high, low, close " +
			"and vwap*factor; sizes and volumes are unchanged. With decimals >= 0 scaled prices are " +
			"rounded half away from zero to that many decimal places.",
		Accepts:  md.KindAny,
		Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "factor", Type: component.Float, Required: true, Min: component.Bound(0),
				Description: "Multiplier applied to every price", Example: 0.01},
			{Name: "decimals", Type: component.Int, Default: -1, Min: component.Bound(-1), Max: component.Bound(12),
				Description: "Round scaled prices to this many decimal places; -1 keeps full precision"},
		},
		Validate: func(p *component.Params) error {
			if p.Float("factor") == 0 {
				return p.Errorf("factor", "must be above 0: a zero price is not a price")
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return NewPriceScale(p.Float("factor"), int(p.Int("decimals"))), nil
		},
	})
}

// PriceScale multiplies prices by a factor. It runs once per batch: the
// loop over records neither allocates nor calls through an interface.
type PriceScale struct {
	factor float64
	unit   float64 // 10^decimals; 0 means no rounding
}

// NewPriceScale returns the operator; decimals < 0 disables rounding.
func NewPriceScale(factor float64, decimals int) *PriceScale {
	s := &PriceScale{factor: factor}
	if decimals >= 0 {
		s.unit = math.Pow10(decimals)
	}
	return s
}

func (s *PriceScale) scale(x float64) float64 {
	x *= s.factor
	if s.unit > 0 {
		x = math.Round(x*s.unit) / s.unit
	}
	return x
}

// Process emits a scaled copy of b. A received batch is shared with other
// consumers, so it is never modified in place.
func (s *PriceScale) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	o := out.NewBatch(b.Kind)
	switch b.Kind {
	case md.KindTrade:
		o.Trades = append(o.Trades, b.Trades...)
		for i := range o.Trades {
			o.Trades[i].Price = s.scale(o.Trades[i].Price)
		}
	case md.KindQuote:
		o.Quotes = append(o.Quotes, b.Quotes...)
		for i := range o.Quotes {
			q := &o.Quotes[i]
			q.Bid, q.Ask = s.scale(q.Bid), s.scale(q.Ask)
		}
	case md.KindBar:
		o.Bars = append(o.Bars, b.Bars...)
		for i := range o.Bars {
			r := &o.Bars[i]
			r.Open, r.High, r.Low, r.Close, r.VWAP = s.scale(r.Open), s.scale(r.High), s.scale(r.Low), s.scale(r.Close), s.scale(r.VWAP)
		}
	}
	return out.Emit(o)
}
