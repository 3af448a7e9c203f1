// Package options is the operator.options_chain component. Option records
// (trades and quotes whose symbols are OCC option symbols, such as
// "AAPL  240119C00190000") arrive on input port options, the underlying's
// trades or quotes on port underlying, open interest as derived records on
// port open_interest. The operator keeps a snapshot per contract (last,
// bid, ask, mid, volume, open interest) and the underlying's latest
// price (a trade's price or a quote's mid), and for every option record
// once the underlying has a price emits a derived record: the contract's
// terms and snapshot, its implied volatility (the volatility param, or
// solved from the mid, else the last, by a bracketed Newton solver) and
// the Black-Scholes (spot underlying, dividend yield) or Black-76 (futures
// underlying) price and greeks. Records are held until the watermark passes
// them and taken in event-time order, so the underlying price an option is
// valued with does not depend on how the inputs interleave. With
// parallelism the engine partitions records by the underlying
// (PartitionKey), so the output does not depend on it either.
package options

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"
	_ "time/tzdata" // expiry time zones must resolve on hosts without a zoneinfo database

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.options_chain"

// Input ports.
const (
	PortOptions      = "options"
	PortUnderlying   = "underlying"
	PortOpenInterest = "open_interest"
)

// Fields of the derived records, in order.
var Fields = []md.Field{
	{Name: "expiry", Type: md.Int}, {Name: "strike", Type: md.Float}, {Name: "call", Type: md.Int},
	{Name: "underlying_price", Type: md.Float}, {Name: "last", Type: md.Float}, {Name: "bid", Type: md.Float},
	{Name: "ask", Type: md.Float}, {Name: "mid", Type: md.Float}, {Name: "volume", Type: md.Float},
	{Name: "years", Type: md.Float}, {Name: "iv", Type: md.Float}, {Name: "model_price", Type: md.Float},
	{Name: "delta", Type: md.Float}, {Name: "gamma", Type: md.Float}, {Name: "vega", Type: md.Float},
	{Name: "theta", Type: md.Float}, {Name: "rho", Type: md.Float}, {Name: "open_interest", Type: md.Float},
}

const yearNs = 365 * 24 * float64(time.Hour)

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Option chain snapshots with implied volatility and Black-Scholes / Black-76 greeks",
		Description: "Option trades or quotes (OCC symbols: root, YYMMDD, C or P, strike × 1000 in 8 digits; padding spaces and an " +
			"\"O:\" prefix allowed) go to port options, the underlying's trades or quotes (symbol = the OCC root) to port " +
			"underlying; or both, mixed, to the main input, where a record is an option when its symbol parses as one. " +
			"Records are held until the watermark passes them and then taken in event-time order (an underlying record " +
			"before an option record of the same time, otherwise in arrival order), so an option record is valued with the " +
			"latest underlying price at or before its time however the two inputs interleave, and output follows the " +
			"watermark; a record already behind the watermark when it arrives is counted as dropped under late. Per contract it keeps last, bid, ask, mid and volume (summed trade sizes); the underlying price is its " +
			"last trade or quote mid. Each option record, once the underlying has a price and before expiry (expiry_time in " +
			"timezone on the expiry date), emits one derived record: expiry (ns), strike, call (1, or 0 for a put), " +
			"underlying_price, last, bid, ask, mid (0 until both sides are quoted; last is 0 until a trade), volume, years (to expiry, 365-day years), iv, model_price, delta, gamma, " +
			"vega (per 1.00 of volatility), theta (per year), rho (per 1.00 of rate), open_interest (-1 until given). Open interest is " +
			"given as derived records on port open_interest, one per contract (its symbol) carrying the field named by " +
			"open_interest_field (checked against the schema reaching the port when the job is built); it is held and taken in " +
			"event-time order like the rest (before an option record of the same time) and carried in the contract's snapshot " +
			"into its next output record. iv is the volatility param, or solved from " +
			"the mid (else the last) by Newton steps inside a bisection bracket on [0.0001, 5]; a price no volatility explains " +
			"is counted under no_iv and emits nothing. Symbols that are not OCC option symbols are counted under not_an_option. " +
			"With parallelism, records are partitioned by the underlying (an option by its OCC root, any other symbol by itself), " +
			"so each instance holds whole chains with their underlying and the output does not depend on parallelism.",
		Inputs: []engine.Input{{Name: engine.PortMain, Accepts: md.KindTrade | md.KindQuote},
			{Name: PortOptions, Accepts: md.KindTrade | md.KindQuote},
			{Name: PortUnderlying, Accepts: md.KindTrade | md.KindQuote},
			{Name: PortOpenInterest, Accepts: md.KindDerived}},
		Produces:     md.KindDerived,
		PartitionKey: PartitionKey,
		SchemaFn: func(p *component.Params) (*md.Schema, error) {
			sc, err := md.NewSchema(p.String("schema"), Fields...)
			if err != nil {
				return nil, p.Errorf("schema", "%v", err)
			}
			return sc, nil
		},
		Fields: []component.Field{
			{Name: "model", Type: component.String, Default: "black_scholes", Enum: []string{"black_scholes", "black76"},
				Description: "black_scholes: the underlying is a spot price (with dividend_yield); black76: a futures price."},
			{Name: "rate", Type: component.Float, Default: 0.0, Min: component.Bound(-1), Max: component.Bound(1),
				Description: "Continuously compounded risk-free rate (0.05 is 5%)."},
			{Name: "dividend_yield", Type: component.Float, Default: 0.0, Min: component.Bound(-1), Max: component.Bound(1),
				Description: "Continuous dividend yield of the underlying (black_scholes only)."},
			{Name: "volatility", Type: component.Float, Min: component.Bound(0.0001), Max: component.Bound(5),
				Description: "A fixed volatility to use instead of solving for the implied one.", Example: 0.25},
			{Name: "expiry_time", Type: component.String, Default: "16:00", Description: "Time of day options expire, HH:MM."},
			{Name: "timezone", Type: component.String, Default: "America/New_York", Description: "Time zone of expiry_time."},
			{Name: "schema", Type: component.String, Default: "option_greeks", Description: "Name of the derived records (their table)."},
			{Name: "open_interest_field", Type: component.String, Default: "open_interest",
				Description: "The field (int64 or float64) of the derived records on port open_interest that holds a contract's open interest."},
		},
		CheckInputs: func(p *component.Params, kinds md.Kind, schemas []*md.Schema) error {
			name := p.String("open_interest_field")
			for _, sc := range schemas {
				if sc.Index(name) < 0 {
					return p.Errorf("open_interest_field", "the derived records of schema %s reaching port %s have no field %s", sc, PortOpenInterest, name)
				}
			}
			return nil
		},
		Validate: func(p *component.Params) error {
			var errs []error
			if _, err := time.LoadLocation(p.String("timezone")); err != nil {
				errs = append(errs, p.Errorf("timezone", "unknown time zone %q", p.String("timezone")))
			}
			if _, err := parseClock(p.String("expiry_time")); err != nil {
				errs = append(errs, p.Errorf("expiry_time", "%v", err))
			}
			if p.String("model") == "black76" && p.Float("dividend_yield") != 0 {
				errs = append(errs, p.Errorf("dividend_yield", "dividend_yield applies to black_scholes only"))
			}
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			loc, err := time.LoadLocation(p.String("timezone"))
			if err != nil {
				return nil, err
			}
			clock, err := parseClock(p.String("expiry_time"))
			if err != nil {
				return nil, err
			}
			cfg := Config{Black76: p.String("model") == "black76", Rate: p.Float("rate"), Dividend: p.Float("dividend_yield"),
				Loc: loc, ExpiryClock: clock, Schema: p.Schema(), OIField: p.String("open_interest_field")}
			if p.Has("volatility") {
				cfg.Vol = p.Float("volatility")
			}
			return New(cfg), nil
		},
	})
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("expiry_time %q: want HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Contract is a parsed OCC option symbol.
type Contract struct {
	Root   string
	Expiry time.Time // the expiry date, 00:00 UTC
	Call   bool
	Strike float64
}

var occ = regexp.MustCompile(`^(?:O:)?([A-Z0-9.]{1,6}) *([0-9]{6})([CP])([0-9]{8})$`)

// ParseOCC parses an OCC option symbol: root (1-6 characters, padded with
// spaces to 6 in the 21-character form, or not), expiry YYMMDD, C or P,
// and the strike × 1000 in 8 digits. A leading "O:" is allowed.
func ParseOCC(s string) (Contract, error) {
	m := occ.FindStringSubmatch(s)
	if m == nil {
		return Contract{}, fmt.Errorf("%q is not an OCC option symbol (ROOT YYMMDD C|P 8-digit strike×1000)", s)
	}
	d, err := time.Parse("060102", m[2])
	if err != nil {
		return Contract{}, fmt.Errorf("%q: expiry %s: %v", s, m[2], err)
	}
	k, _ := strconv.ParseInt(m[4], 10, 64)
	return Contract{Root: m[1], Expiry: d, Call: m[3] == "C", Strike: float64(k) / 1000}, nil
}

// Config is the operator's settings.
type Config struct {
	Black76     bool
	Rate        float64
	Dividend    float64
	Vol         float64 // > 0: fixed volatility
	Loc         *time.Location
	ExpiryClock time.Duration
	Schema      *md.Schema
	OIField     string // the open interest field of records on port open_interest
}

type contract struct {
	parsed, bad bool
	root        string
	expiry      int64 // ns
	call        bool
	strike      float64
	last        float64
	bid, ask    float64
	volume      float64
	oi          float64 // open interest, -1 until given
	hasOI       bool
}

// pending is a record held until the watermark passes it: a trade (a =
// price, b = size) or a quote (a = bid, b = ask), of the underlying or of an
// option, or an option's open interest (a).
type pending struct {
	ts    int64
	sym   md.SymID
	under bool
	trade bool
	oi    bool
	a, b  float64
}

// Chain is the operator.
type Chain struct {
	cfg        Config
	nc         *engine.NodeContext
	contracts  *keyed.State[contract]
	underlying map[string]float64 // latest price by symbol text, in event time
	pend       []pending          // records at or after the watermark, in arrival order
	rel        []pending          // scratch: the records a watermark releases
	wm         int64
	notOption  int64
	noIV       int64
	expired    int64
	late       int64
	oiSchema   *md.Schema // the schema oiIndex was found in
	oiIndex    int
}

// New returns an options chain.
func New(cfg Config) *Chain {
	if cfg.Loc == nil {
		cfg.Loc = time.UTC
	}
	return &Chain{cfg: cfg, underlying: map[string]float64{}, wm: md.MinTime}
}

// PartitionKey is the engine.PartitionKey of the chain: an OCC option
// symbol goes by the hash of its root (the underlying's symbol), any other
// symbol by its own, so with parallelism an instance receives each of its
// underlyings together with all of its options.
func PartitionKey(in *md.Instrument) uint64 {
	if p, err := ParseOCC(in.Symbol); err == nil {
		return md.HashSymbol(p.Root)
	}
	return in.Hash
}

// owns reports whether this instance holds the state of the symbol (its
// partition key is this instance's), for a restore.
func (c *Chain) owns(symbol string) bool {
	if c.nc.Instances <= 1 {
		return true
	}
	return md.Split(PartitionKey(&md.Instrument{Symbol: symbol, Hash: md.HashSymbol(symbol)}), md.SplitInstances, c.nc.Instances) == c.nc.Instance
}

// Open prepares the chain's state.
func (c *Chain) Open(ctx context.Context, nc *engine.NodeContext) error {
	if c.cfg.Schema == nil {
		sc, err := md.NewSchema("option_greeks", Fields...)
		if err != nil {
			return err
		}
		c.cfg.Schema = sc
	}
	c.nc = nc
	c.contracts = keyed.NewState[contract](nc.Symbols)
	return nil
}

// Process takes a batch on the main input: options and underlyings mixed.
func (c *Chain) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	return c.ProcessPort(ctx, 0, b, out)
}

// ProcessPort takes a mixed batch (port 0, main), option records (1),
// underlying records (2) or open interest (3) and holds them until the
// watermark passes them; a record already behind it is counted as dropped
// under late.
func (c *Chain) ProcessPort(ctx context.Context, port int, b *md.Batch, out *engine.Output) error {
	if b.Kind == md.KindDerived {
		return c.openInterest(b)
	}
	for i := range b.Trades {
		t := &b.Trades[i]
		c.hold(pending{ts: t.TS, sym: t.Sym, trade: true, a: t.Price, b: t.Size}, port)
	}
	for i := range b.Quotes {
		q := &b.Quotes[i]
		c.hold(pending{ts: q.TS, sym: q.Sym, a: q.Bid, b: q.Ask}, port)
	}
	c.flushStats()
	return nil
}

// openInterest holds the open interest records of b.
func (c *Chain) openInterest(b *md.Batch) error {
	if b.Schema != c.oiSchema {
		i := b.Schema.Index(c.cfg.OIField)
		if i < 0 {
			return fmt.Errorf("operator.options_chain: the records of schema %s on port %s have no field %s", b.Schema, PortOpenInterest, c.cfg.OIField)
		}
		c.oiSchema, c.oiIndex = b.Schema, i
	}
	isInt := b.Schema.Field(c.oiIndex).Type == md.Int
	for i, d := range b.Derived {
		v := b.Row(i)[c.oiIndex]
		oi := v.Float()
		if isInt {
			oi = float64(v.Int())
		}
		if d.TS < c.wm {
			c.late++
			continue
		}
		c.pend = append(c.pend, pending{ts: d.TS, sym: d.Sym, oi: true, a: oi})
	}
	c.flushStats()
	return nil
}

func (c *Chain) hold(r pending, port int) {
	if r.ts < c.wm {
		c.late++
		return
	}
	r.under = port == 2 || (port == 0 && !c.isOption(r.sym))
	c.pend = append(c.pend, r)
}

// OnWatermark implements engine.WatermarkHandler: it takes the held records
// before wm in event-time order, an underlying record before an option
// record of the same time, otherwise in arrival order, so an option is
// valued with the latest underlying price at or before it however the two
// inputs interleave.
func (c *Chain) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	if wm <= c.wm {
		return nil
	}
	c.wm = wm
	rel, keep := c.rel[:0], c.pend[:0]
	for _, r := range c.pend {
		if r.ts < wm {
			rel = append(rel, r)
		} else {
			keep = append(keep, r)
		}
	}
	c.pend = keep
	if len(rel) == 0 {
		c.rel = rel
		return nil
	}
	order := func(x, y pending) int {
		if x.ts != y.ts {
			return cmp.Compare(x.ts, y.ts)
		}
		// An underlying price, then open interest, then an option
		// update of the same time.
		return cmp.Compare(rank(x), rank(y))
	}
	if !slices.IsSortedFunc(rel, order) {
		slices.SortStableFunc(rel, order)
	}
	o := c.nc.Pool.Get(md.KindDerived)
	o.Schema = c.cfg.Schema
	for i := range rel {
		c.apply(o, &rel[i])
	}
	c.rel = rel[:0]
	c.flushStats()
	return out.Emit(o)
}

// apply folds one released record in: an underlying price, or an option
// update that emits greeks.
func (c *Chain) apply(o *md.Batch, r *pending) {
	if r.under {
		if r.trade {
			c.underlying[c.nc.Symbols.Get(r.sym).Symbol] = r.a
		} else if r.a > 0 && r.b > 0 {
			c.underlying[c.nc.Symbols.Get(r.sym).Symbol] = (r.a + r.b) / 2
		}
		return
	}
	k := c.contract(r.sym)
	if k == nil {
		return
	}
	if r.oi {
		k.oi, k.hasOI = r.a, true
		return
	}
	if r.trade {
		k.last = r.a
		k.volume += r.b
	} else {
		k.bid, k.ask = r.a, r.b
	}
	c.emit(o, k, r.ts, r.sym)
}

func (c *Chain) flushStats() {
	if c.notOption != 0 {
		c.nc.Stats.Drop("not_an_option", c.notOption)
	}
	if c.late != 0 {
		c.nc.Stats.Drop("late", c.late)
	}
	c.nc.Stats.Count("no_iv", c.noIV)
	c.nc.Stats.Count("expired", c.expired)
	c.notOption, c.noIV, c.expired, c.late = 0, 0, 0, 0
}

// isOption reports whether sym is an OCC option symbol.
func (c *Chain) isOption(sym md.SymID) bool {
	k := c.parse(sym)
	return !k.bad
}

func (c *Chain) parse(sym md.SymID) *contract {
	k := c.contracts.Get(sym)
	if !k.parsed {
		k.parsed = true
		p, err := ParseOCC(c.nc.Symbols.Get(sym).Symbol)
		if err != nil {
			k.bad = true
		} else {
			k.root, k.call, k.strike = p.Root, p.Call, p.Strike
			y, m, d := p.Expiry.Date()
			hh, mm := int(c.cfg.ExpiryClock/time.Hour), int(c.cfg.ExpiryClock%time.Hour/time.Minute)
			k.expiry = time.Date(y, m, d, hh, mm, 0, 0, c.cfg.Loc).UnixNano()
		}
	}
	return k
}

func (c *Chain) contract(sym md.SymID) *contract {
	k := c.parse(sym)
	if k.bad {
		c.notOption++
		return nil
	}
	return k
}

func (c *Chain) emit(o *md.Batch, k *contract, ts int64, sym md.SymID) {
	s, ok := c.underlying[k.root]
	if !ok {
		return
	}
	years := float64(k.expiry-ts) / yearNs
	if years <= 0 {
		c.expired++
		return
	}
	mid := math.NaN()
	if k.bid > 0 && k.ask > 0 {
		mid = (k.bid + k.ask) / 2
	}
	model := func(sigma float64) Greeks {
		if c.cfg.Black76 {
			return Black76(k.call, s, k.strike, years, c.cfg.Rate, sigma)
		}
		return BlackScholes(k.call, s, k.strike, years, c.cfg.Rate, c.cfg.Dividend, sigma)
	}
	iv := c.cfg.Vol
	if iv == 0 {
		px := mid
		if math.IsNaN(px) {
			px = k.last
		}
		var ok bool
		if iv, ok = ImpliedVol(px, model); !ok || px == 0 {
			c.noIV++
			return
		}
	}
	g := model(iv)
	call := int64(0)
	if k.call {
		call = 1
	}
	v := o.AddDerived(ts, sym)
	v[0] = md.IntValue(k.expiry)
	v[1] = md.FloatValue(k.strike)
	v[2] = md.IntValue(call)
	v[3] = md.FloatValue(s)
	v[4] = md.FloatValue(k.last)
	v[5] = md.FloatValue(k.bid)
	v[6] = md.FloatValue(k.ask)
	if math.IsNaN(mid) {
		mid = 0
	}
	v[7] = md.FloatValue(mid)
	v[8] = md.FloatValue(k.volume)
	v[9] = md.FloatValue(years)
	v[10] = md.FloatValue(iv)
	v[11] = md.FloatValue(g.Price)
	v[12] = md.FloatValue(g.Delta)
	v[13] = md.FloatValue(g.Gamma)
	v[14] = md.FloatValue(g.Vega)
	v[15] = md.FloatValue(g.Theta)
	v[16] = md.FloatValue(g.Rho)
	oi := -1.0
	if k.hasOI {
		oi = k.oi
	}
	v[17] = md.FloatValue(oi)
}

// rank orders held records of one event time: the underlying first, then
// open interest, then option updates.
func rank(r pending) int {
	switch {
	case r.under:
		return 0
	case r.oi:
		return 1
	}
	return 2
}
