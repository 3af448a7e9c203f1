package md

import "math"

// maxExactDecimals is the most decimal places RoundSum rounds to; an
// instrument whose sizes have more keeps its sums as they are.
const maxExactDecimals = 15

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// RoundSum returns sum, a float64 sum of n values that were each exact
// decimals with at most d decimal places, as the float64 nearest the exact
// decimal sum: 35.713 rather than 35.712999999999994.
//
// Why it is exact, and when: each input is parsed to within half an ulp
// (relative error u = 2^-53) and each of the n-1 additions adds at most u
// times the running sum, so for positive inputs the computed sum is within
// about n·u·sum of the exact decimal sum D (a multiple of 10^-d). Scaling by
// 10^d adds one more rounding. When (n+1)·u·sum·10^d < 1/4 — half a unit in
// the last decimal place with a factor 2 to spare — round(sum·10^d) is the
// integer D·10^d exactly (as long as it is below 2^53), and dividing it by
// the exact power of ten 10^d is one correctly rounded IEEE division: the
// double nearest D. For a 1-minute BTC bar (d = 8, sum 50, n = 10^5) the
// bound is 10^5 · 1.1e-16 · 50 · 10^8 = 0.06; realistic sizes and counts
// stay far inside it. Outside it (or with d unknown, d < 0) RoundSum returns
// sum unchanged: it never makes a sum less accurate. It is called per bar,
// not per record.
func RoundSum(sum float64, n int64, d int) float64 {
	if d < 0 || d > maxExactDecimals || n <= 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return sum
	}
	p := pow10[d]
	scaled := math.Abs(sum) * p
	// (n+1)·2^-53·|sum|·10^d < 1/4, and the scaled value an exact integer.
	if scaled >= 1<<53 || float64(n+1)*scaled >= 1<<51 {
		return sum
	}
	return math.Round(sum*p) / p
}
