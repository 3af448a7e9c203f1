package window

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mdpio/mdp/md"
)

// Fn is an aggregation function.
type Fn uint8

// Aggregation functions.
const (
	FnCount Fn = iota
	FnSum
	FnMin
	FnMax
	FnFirst
	FnLast
	FnMean
	FnStddev
	FnVWAP
	FnQuantile
)

var fnNames = [...]string{"count", "sum", "min", "max", "first", "last", "mean", "stddev", "vwap", "quantile"}

// fieldsByKind are the fields an aggregation can read from each input kind,
// in slot order: a record's values are extracted into a small array in this
// order once, and every aggregation reads its slot.
var fieldsByKind = map[md.Kind][]string{
	md.KindTrade: {"price", "size", "value"},
	md.KindQuote: {"bid", "ask", "bid_size", "ask_size", "mid", "spread"},
	md.KindBar:   {"open", "high", "low", "close", "volume", "vwap", "trades"},
}

// maxSlots bounds the fields of one kind (7 for bars), a power of two so
// that masking a slot removes the bounds check.
const maxSlots = 8

// Agg is one aggregation: a function over a named field, written in params
// as "fn(field)", "quantile(field, q)", "count" or "vwap", optionally
// followed by "as name".
type Agg struct {
	Fn    Fn
	Field string  // "" for count and vwap
	Q     float64 // quantile in [0, 1]
	Name  string  // output field name
}

// ParseAgg parses one aggregation.
func ParseAgg(s string) (Agg, error) {
	text := strings.TrimSpace(s)
	var a Agg
	if i := strings.LastIndex(text, " as "); i >= 0 {
		a.Name = strings.TrimSpace(text[i+4:])
		text = strings.TrimSpace(text[:i])
	}
	name, args := text, ""
	if i := strings.IndexByte(text, '('); i >= 0 {
		if !strings.HasSuffix(text, ")") {
			return a, fmt.Errorf("aggregation %q: missing closing parenthesis", s)
		}
		name, args = strings.TrimSpace(text[:i]), strings.TrimSpace(text[i+1:len(text)-1])
	}
	fn := slices.Index(fnNames[:], name)
	if fn < 0 {
		return a, fmt.Errorf("aggregation %q: unknown function %q (want one of %s)", s, name, strings.Join(fnNames[:], ", "))
	}
	a.Fn = Fn(fn)
	parts := []string{}
	if args != "" {
		parts = strings.Split(args, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
	}
	switch a.Fn {
	case FnCount, FnVWAP:
		if len(parts) != 0 {
			return a, fmt.Errorf("aggregation %q: %s takes no field", s, name)
		}
		if a.Name == "" {
			a.Name = name
		}
		return a, nil
	case FnQuantile:
		if len(parts) != 2 {
			return a, fmt.Errorf("aggregation %q: quantile takes a field and a fraction, as quantile(price, 0.95)", s)
		}
		q, err := strconv.ParseFloat(parts[1], 64)
		if err != nil || !(q >= 0 && q <= 1) {
			return a, fmt.Errorf("aggregation %q: the quantile must be a number from 0 to 1, got %q", s, parts[1])
		}
		a.Q = q
	default:
		if len(parts) != 1 {
			return a, fmt.Errorf("aggregation %q: %s takes one field, as %s(price)", s, name, name)
		}
	}
	a.Field = parts[0]
	if !knownField(a.Field) {
		return a, fmt.Errorf("aggregation %q: unknown field %q (trades have price, size, value; quotes bid, ask, bid_size, ask_size, mid, spread; bars open, high, low, close, volume, vwap, trades)", s, a.Field)
	}
	if a.Name == "" {
		a.Name = name + "_" + a.Field
		if a.Fn == FnQuantile {
			pct := strconv.FormatFloat(a.Q*100, 'f', -1, 64)
			a.Name = "p" + strings.ReplaceAll(pct, ".", "_") + "_" + a.Field
		}
	}
	return a, nil
}

func knownField(f string) bool {
	for _, fs := range fieldsByKind {
		if slices.Contains(fs, f) {
			return true
		}
	}
	return false
}

// slot is where agg's field sits among kind's extracted values, or -1.
func slot(kind md.Kind, field string) int { return slices.Index(fieldsByKind[kind], field) }

// cell is one aggregation's running state. Which fields mean what depends
// on the function:
//
//	count:    n
//	sum:      a = sum
//	min, max: a = extreme
//	first:    a = value, t = its ts (earliest; ties: the first to arrive)
//	last:     a = value, t = its ts (latest; ties: the last to arrive)
//	mean:     a = sum
//	stddev:   a = mean, b = sum of squared deviations (Welford)
//	vwap:     a = sum of price×size, b = sum of size, c = last price
//	quantile: n (the values are kept beside the cells)
type cell struct {
	n       int64
	a, b, c float64
	t       int64
}

// merge folds src, the state of later (or equal-time) records, into c.
func (c *cell) merge(fn Fn, src *cell) {
	if src.n == 0 {
		return
	}
	if c.n == 0 {
		*c = *src
		return
	}
	switch fn {
	case FnSum, FnMean:
		c.a += src.a
	case FnMin:
		c.a = min(c.a, src.a)
	case FnMax:
		c.a = max(c.a, src.a)
	case FnFirst:
		if src.t < c.t {
			c.a, c.t = src.a, src.t
		}
	case FnLast:
		if src.t >= c.t {
			c.a, c.t = src.a, src.t
		}
	case FnStddev: // Chan et al.'s pairwise update
		n1, n2 := float64(c.n), float64(src.n)
		n := n1 + n2
		d := src.a - c.a
		c.a += d * n2 / n
		c.b += src.b + d*d*n1*n2/n
	case FnVWAP:
		c.a += src.a
		c.b += src.b
		if src.t >= c.t {
			c.c, c.t = src.c, src.t
		}
	}
	c.n += src.n
}

// value is the aggregate's result; vals are the sorted values of a
// quantile.
func (c *cell) value(a *Agg, vals []float64) md.Value {
	switch a.Fn {
	case FnCount:
		return md.IntValue(c.n)
	case FnMean:
		return md.FloatValue(c.a / float64(c.n))
	case FnStddev:
		return md.FloatValue(math.Sqrt(c.b / float64(c.n)))
	case FnVWAP:
		if c.b == 0 {
			return md.FloatValue(c.c)
		}
		return md.FloatValue(c.a / c.b)
	case FnQuantile:
		return md.FloatValue(Quantile(vals, a.Q))
	}
	return md.FloatValue(c.a)
}

// Quantile is the q-quantile of sorted values by linear interpolation
// between the closest ranks (NumPy's and pandas' default): with h =
// (n-1)·q, the value at floor(h) plus the fraction of h times the step to
// the next. NaN for no values.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := float64(n-1) * q
	lo := int(math.Floor(h))
	if lo >= n-1 {
		return sorted[n-1]
	}
	f := h - float64(lo)
	if f == 0 {
		return sorted[lo]
	}
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}
