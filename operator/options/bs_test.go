package options

import (
	"math"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.6f, want %.6f ± %g", what, got, want, tol)
	}
}

// John C. Hull, Options, Futures, and Other Derivatives (8th ed.),
// Example 13.6 (ch. "The Black-Scholes-Merton model"): S0 = 42, K = 40,
// r = 10%, sigma = 20%, T = 0.5: c = 4.76, p = 0.81.
func TestHullBlackScholesPrices(t *testing.T) {
	near(t, "call", BlackScholes(true, 42, 40, 0.5, 0.1, 0, 0.2).Price, 4.76, 0.005)
	near(t, "put", BlackScholes(false, 42, 40, 0.5, 0.1, 0, 0.2).Price, 0.81, 0.005)
}

// Hull, ch. "The Greek letters" (8th ed. ch. 18, Examples 18.1-18.6 and
// Table 18.x): a 20-week call, S0 = 49, K = 50, r = 5%, sigma = 20%,
// T = 0.3846: price 2.40, delta 0.522, gamma 0.066, vega 12.1 (per 1.00 of
// volatility), theta -4.31 per year, rho 8.91 (per 1.00 of rate).
func TestHullGreeks(t *testing.T) {
	g := BlackScholes(true, 49, 50, 0.3846, 0.05, 0, 0.2)
	near(t, "price", g.Price, 2.40, 0.005)
	near(t, "delta", g.Delta, 0.522, 0.0005)
	near(t, "gamma", g.Gamma, 0.066, 0.0005)
	near(t, "vega", g.Vega, 12.1, 0.05)
	near(t, "theta", g.Theta, -4.31, 0.005)
	near(t, "rho", g.Rho, 8.91, 0.005)
	// Put-call parity for the put's greeks: delta_p = delta_c - 1,
	// gamma and vega equal.
	p := BlackScholes(false, 49, 50, 0.3846, 0.05, 0, 0.2)
	near(t, "put delta", p.Delta, g.Delta-1, 1e-12)
	near(t, "put gamma", p.Gamma, g.Gamma, 1e-12)
	near(t, "put price (parity)", p.Price, g.Price-49+50*math.Exp(-0.05*0.3846), 1e-12)
}

// Hull (8th ed.) Example 18.7 (ch. "Futures options"): a 4-month European
// put on a futures price F0 = 20, K = 20, r = 9%, sigma = 25%: 1.12.
func TestHullBlack76(t *testing.T) {
	near(t, "put", Black76(false, 20, 20, 4.0/12, 0.09, 0.25).Price, 1.12, 0.005)
	// Greeks by finite differences of the price.
	const h = 1e-5
	g := Black76(true, 20, 21, 0.5, 0.09, 0.25)
	up, dn := Black76(true, 20+h, 21, 0.5, 0.09, 0.25), Black76(true, 20-h, 21, 0.5, 0.09, 0.25)
	near(t, "delta", g.Delta, (up.Price-dn.Price)/(2*h), 1e-6)
	near(t, "gamma", g.Gamma, (up.Price-2*g.Price+dn.Price)/(h*h), 1e-3)
	rup, rdn := Black76(true, 20, 21, 0.5, 0.09+h, 0.25), Black76(true, 20, 21, 0.5, 0.09-h, 0.25)
	near(t, "rho", g.Rho, (rup.Price-rdn.Price)/(2*h), 1e-6)
}

// Hull (8th ed.) section 13.11, implied volatilities: a call worth 1.875
// with S0 = 21, K = 20, r = 0.1, T = 0.25 has an implied volatility of
// 0.235.
func TestHullImpliedVol(t *testing.T) {
	model := func(s float64) Greeks { return BlackScholes(true, 21, 20, 0.25, 0.1, 0, s) }
	iv, ok := ImpliedVol(1.875, model)
	if !ok {
		t.Fatal("no implied volatility")
	}
	near(t, "iv", iv, 0.235, 0.0005)
	near(t, "round trip", model(iv).Price, 1.875, 1e-9)
	// Deep in and out of the money, and wide vols, round-trip.
	for _, k := range []float64{5, 15, 21, 30, 60} {
		for _, s := range []float64{0.05, 0.3, 1.5, 3} {
			m := func(x float64) Greeks { return BlackScholes(false, 21, k, 0.7, 0.03, 0.01, x) }
			p := m(s).Price
			if got, ok := ImpliedVol(p, m); ok && m(s).Vega > 1e-6 {
				near(t, "iv round trip", got, s, 1e-6)
			}
		}
	}
	if _, ok := ImpliedVol(0.5, model); ok {
		t.Fatal("a price below intrinsic value has no implied volatility")
	}
}
