package options

import "math"

// Greeks are a European option's model price and sensitivities: delta and
// gamma to the underlying (spot, or futures price under Black-76), vega to
// a volatility of 1.00 (100 points), theta per year of calendar time, rho
// to a rate of 1.00.
type Greeks struct {
	Price, Delta, Gamma, Vega, Theta, Rho float64
}

func ncdf(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func npdf(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }

// BlackScholes returns the Black-Scholes-Merton price and greeks of a
// European option on a spot price s with continuous dividend yield q:
// strike k, years to expiry t, risk-free rate r, volatility sigma.
func BlackScholes(call bool, s, k, t, r, q, sigma float64) Greeks {
	st := sigma * math.Sqrt(t)
	d1 := (math.Log(s/k) + (r-q+sigma*sigma/2)*t) / st
	d2 := d1 - st
	dq, dr := math.Exp(-q*t), math.Exp(-r*t)
	g := Greeks{
		Gamma: dq * npdf(d1) / (s * st),
		Vega:  s * dq * npdf(d1) * math.Sqrt(t),
	}
	decay := -s * dq * npdf(d1) * sigma / (2 * math.Sqrt(t))
	if call {
		g.Price = s*dq*ncdf(d1) - k*dr*ncdf(d2)
		g.Delta = dq * ncdf(d1)
		g.Theta = decay - r*k*dr*ncdf(d2) + q*s*dq*ncdf(d1)
		g.Rho = k * t * dr * ncdf(d2)
	} else {
		g.Price = k*dr*ncdf(-d2) - s*dq*ncdf(-d1)
		g.Delta = -dq * ncdf(-d1)
		g.Theta = decay + r*k*dr*ncdf(-d2) - q*s*dq*ncdf(-d1)
		g.Rho = -k * t * dr * ncdf(-d2)
	}
	return g
}

// Black76 returns the Black (1976) price and greeks of a European option on
// a futures price f: Black-Scholes with s = f and q = r, except rho, which
// holds f fixed (-t × price).
func Black76(call bool, f, k, t, r, sigma float64) Greeks {
	g := BlackScholes(call, f, k, t, r, r, sigma)
	g.Rho = -t * g.Price
	return g
}

// ImpliedVol solves price = model(sigma) for sigma in [1e-4, 5] with
// Newton steps kept inside a bisection bracket (a step that leaves the
// bracket, or a vega too small to trust, bisects instead), to 1e-10 in
// price. It reports false when price is outside what any volatility in
// the range gives (below intrinsic value, above the bound).
func ImpliedVol(price float64, model func(sigma float64) Greeks) (float64, bool) {
	lo, hi := 1e-4, 5.0
	plo, phi := model(lo).Price, model(hi).Price
	if !(price >= plo && price <= phi) || math.IsNaN(price) {
		return 0, false
	}
	sigma := 0.3
	for i := 0; i < 100; i++ {
		g := model(sigma)
		diff := g.Price - price
		if math.Abs(diff) < 1e-10 {
			return sigma, true
		}
		if diff > 0 {
			hi = sigma
		} else {
			lo = sigma
		}
		next := sigma - diff/g.Vega
		if g.Vega < 1e-12 || math.IsNaN(next) || next <= lo || next >= hi {
			next = (lo + hi) / 2
		}
		if hi-lo < 1e-12 {
			return next, true
		}
		sigma = next
	}
	return sigma, true
}
