package rowmap

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// Slot is a record field a column can be mapped to.
type Slot uint8

// Slots: the fields of trades and quotes a mapping may name, then seq and
// the bar fields, which only mdp's own JSON and CSV (recfmt) carry.
const (
	SlotTS Slot = iota
	SlotIngest
	SlotSymbol
	SlotProvider
	SlotPrice
	SlotSize
	SlotSide
	SlotTradeID
	SlotBid
	SlotBidSize
	SlotAsk
	SlotAskSize
	SlotSeq
	SlotInterval
	SlotStart
	SlotEnd
	SlotOpen
	SlotHigh
	SlotLow
	SlotClose
	SlotVolume
	SlotVWAP
	SlotTrades
	SlotBarType
	SlotSource
	SlotPartial
	SlotUpdate
	NSlots
)

// nMappable is how many slots (from the first) a mapping may name.
const nMappable = SlotSeq

// SlotNames are the field names of the slots, in Slot order: a mapping's
// keys, and recfmt's column names.
var SlotNames = [NSlots]string{"ts", "ingest_ts", "symbol", "provider", "price", "size", "side", "trade_id", "bid", "bid_size", "ask", "ask_size",
	"seq", "interval", "start", "end", "open", "high", "low", "close", "volume", "vwap", "trades", "bar_type", "source", "partial", "update"}

// SlotByName returns the slot a mapping may name by name.
func SlotByName(name string) (Slot, bool) {
	for i, n := range SlotNames[:nMappable] {
		if n == name {
			return Slot(i), true
		}
	}
	return 0, false
}

// ColRef names a column by header name or by zero-based index.
type ColRef struct {
	Name  string
	Index int // -1 when Name is used
}

func (c ColRef) String() string {
	if c.Index >= 0 {
		return strconv.Itoa(c.Index)
	}
	return strconv.Quote(c.Name)
}

// preset is a known file layout.
type preset struct {
	kind     md.Kind
	columns  map[Slot]ColRef
	header   bool
	tsFormat string
	timezone string
	provider string // default provider when the layout has no provider column
	needSym  bool   // the layout has no symbol column
	about    string
}

func named(m map[string]string) map[Slot]ColRef {
	out := map[Slot]ColRef{}
	for k, v := range m {
		s, _ := SlotByName(k)
		out[s] = ColRef{Name: v, Index: -1}
	}
	return out
}

func indexed(m map[string]int) map[Slot]ColRef {
	out := map[Slot]ColRef{}
	for k, v := range m {
		s, _ := SlotByName(k)
		out[s] = ColRef{Index: v}
	}
	return out
}

// presets are the layouts named by the preset param.
var presets = map[string]preset{
	"tardis_trades": {
		kind: md.KindTrade, header: true, tsFormat: "unix_us",
		columns: named(map[string]string{"provider": "exchange", "symbol": "symbol", "ts": "timestamp", "ingest_ts": "local_timestamp",
			"trade_id": "id", "side": "side", "price": "price", "size": "amount"}),
		about: "Tardis.dev trades CSV: exchange,symbol,timestamp,local_timestamp,id,side,price,amount (µs epoch times; provider = exchange)",
	},
	"tardis_quotes": {
		kind: md.KindQuote, header: true, tsFormat: "unix_us",
		columns: named(map[string]string{"provider": "exchange", "symbol": "symbol", "ts": "timestamp", "ingest_ts": "local_timestamp",
			"bid": "bid_price", "bid_size": "bid_amount", "ask": "ask_price", "ask_size": "ask_amount"}),
		about: "Tardis.dev quotes CSV: exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount",
	},
	"truefx": {
		kind: md.KindQuote, header: true, tsFormat: "rfc3339", provider: "truefx", needSym: true,
		columns: named(map[string]string{"ts": "timestamp", "bid": "bid", "ask": "ask"}),
		about:   "TrueFX ticks as timestamp,bid,ask with ISO times such as 2013-01-01 22:00:00.295000+00:00; set symbol",
	},
	"histdata": {
		kind: md.KindQuote, header: false, tsFormat: "histdata", timezone: "EST", provider: "histdata", needSym: true,
		columns: indexed(map[string]int{"ts": 0, "bid": 1, "ask": 2}),
		about:   "HistData.com ASCII ticks: 20200101 170000065,bid,ask,volume in EST (UTC-5, no daylight saving); set symbol",
	},
}

// PresetKind is the record kind of the named preset.
func PresetKind(name string) (md.Kind, bool) {
	pr, ok := presets[name]
	return pr.kind, ok
}

// PresetNames are the known presets, sorted.
func PresetNames() []string { return presetNames() }

func presetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Layout is the resolved column mapping and value formats of a replay or a bus source.
type Layout struct {
	Kind     md.Kind
	Columns  map[Slot]ColRef
	Header   bool
	Delim    byte
	TSFormat string
	Loc      *time.Location
	Symbol   string // constant symbol when there is no symbol column
	Provider string // constant provider when there is no provider column
}

// ParamNames names the params a component declares for its layout; an
// empty name is a param the component does not have (its default applies:
// no preset, a header, a comma).
type ParamNames struct {
	Preset, Kind, Columns, Symbol, Provider, Header, Delimiter, TSFormat, Timezone string
	// What names the reader in messages (replay, mapping).
	What string
	// DefaultProvider is the provider when neither a provider param nor
	// column gives one (and the preset has none).
	DefaultProvider string
}

// ReplayParams are provider.replay's names (columns maps the fields).
var ReplayParams = ParamNames{Preset: "preset", Kind: "kind", Columns: "columns", Symbol: "symbol", Provider: "provider",
	Header: "header", Delimiter: "delimiter", TSFormat: "ts_format", Timezone: "timezone", What: "replay", DefaultProvider: "replay"}

// ResolveLayout combines preset and generic params as provider.replay
// names them. Errors name the param.
func ResolveLayout(p *component.Params) (*Layout, error) { return Resolve(p, ReplayParams) }

// Resolve combines preset and generic params named by n. Errors name the
// param.
func Resolve(p *component.Params, n ParamNames) (*Layout, error) {
	l := &Layout{Columns: map[Slot]ColRef{}, Header: true, Delim: ','}
	var pr preset
	var name string
	if n.Preset != "" {
		name = p.String(n.Preset)
	}
	if name != "" {
		var ok bool
		if pr, ok = presets[name]; !ok {
			return nil, p.Errorf(n.Preset, "unknown preset %q; want one of %s", name, strings.Join(presetNames(), ", "))
		}
		l.Kind, l.Header, l.TSFormat = pr.kind, pr.header, pr.tsFormat
		for k, v := range pr.columns {
			l.Columns[k] = v
		}
	}
	if k := p.String(n.Kind); k != "" {
		kind, err := md.ParseKind(k)
		if err != nil || kind == md.KindBar {
			return nil, p.Errorf(n.Kind, "want trade or quote, got %q", k)
		}
		if name != "" && kind != pr.kind {
			return nil, p.Errorf(n.Kind, "preset %s replays %ss; kind %s contradicts it", name, pr.kind, k)
		}
		l.Kind = kind
	}
	if l.Kind == md.KindNone {
		return nil, p.Errorf(n.Kind, "set preset (%s) or kind (trade or quote) with columns", strings.Join(presetNames(), ", "))
	}
	for key, v := range p.Map(n.Columns) {
		s, ok := SlotByName(key)
		if !ok {
			msg := fmt.Sprintf("unknown record field %q", key)
			if sug := component.Suggest(key, SlotNames[:nMappable]); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			} else {
				msg += "; valid fields: " + strings.Join(SlotNames[:nMappable], ", ")
			}
			return nil, p.Errorf(n.Columns, "%s", msg)
		}
		switch x := v.(type) {
		case string:
			if x == "" {
				delete(l.Columns, s)
				continue
			}
			l.Columns[s] = ColRef{Name: x, Index: -1}
		case int64:
			if x < 0 {
				return nil, p.Errorf(n.Columns, "%s: column index %d is negative (indexes start at 0)", key, x)
			}
			l.Columns[s] = ColRef{Index: int(x)}
		case nil:
			delete(l.Columns, s)
		default:
			return nil, p.Errorf(n.Columns, "%s: want a column name or a zero-based index, got %v", key, v)
		}
	}
	var required, other []Slot
	if l.Kind == md.KindTrade {
		required = []Slot{SlotTS, SlotPrice, SlotSize}
		other = []Slot{SlotBid, SlotBidSize, SlotAsk, SlotAskSize}
	} else {
		required = []Slot{SlotTS, SlotBid, SlotAsk}
		other = []Slot{SlotPrice, SlotSize, SlotSide, SlotTradeID}
	}
	for _, s := range required {
		if _, ok := l.Columns[s]; !ok {
			return nil, p.Errorf(n.Columns, "a %s %s needs a column for %s", l.Kind, n.What, SlotNames[s])
		}
	}
	for _, s := range other {
		if _, ok := l.Columns[s]; ok {
			return nil, p.Errorf(n.Columns, "%s does not apply to %s records", SlotNames[s], l.Kind)
		}
	}
	if n.Symbol != "" {
		l.Symbol = p.String(n.Symbol)
	}
	if _, ok := l.Columns[SlotSymbol]; ok && l.Symbol != "" {
		return nil, p.Errorf(n.Symbol, "the file has a symbol column (%s); a constant symbol applies only to files without one", l.Columns[SlotSymbol])
	}
	if _, ok := l.Columns[SlotSymbol]; !ok && l.Symbol == "" {
		if pr.needSym {
			return nil, p.Errorf(n.Symbol, "preset %s has no symbol column; set symbol (for example USD/JPY)", name)
		}
		return nil, p.Errorf(n.Symbol, "map %s.symbol or set a constant symbol", n.Columns)
	}
	if n.Provider != "" {
		l.Provider = p.String(n.Provider)
	}
	if l.Provider != "" {
		delete(l.Columns, SlotProvider)
	} else if _, ok := l.Columns[SlotProvider]; !ok {
		l.Provider = pr.provider
		if l.Provider == "" {
			l.Provider = n.DefaultProvider
		}
	}
	if n.Header != "" && p.Has(n.Header) {
		l.Header = p.Bool(n.Header)
	}
	if !l.Header {
		for s, c := range l.Columns {
			if c.Index < 0 {
				return nil, p.Errorf(n.Columns, "%s names column %q but header is false; use a zero-based index", SlotNames[s], c.Name)
			}
		}
	}
	d := ","
	if n.Delimiter != "" {
		d = p.String(n.Delimiter)
	}
	switch {
	case d == `\t` || d == "tab":
		l.Delim = '\t'
	case len(d) == 1 && d != "\"" && d != "\n" && d != "\r":
		l.Delim = d[0]
	default:
		return nil, p.Errorf(n.Delimiter, "want one character such as , ; | or \\t, got %q", d)
	}
	hasTZ := n.Timezone != "" && p.Has(n.Timezone)
	if n.TSFormat != "" && p.Has(n.TSFormat) {
		l.TSFormat = p.String(n.TSFormat)
	}
	tz := pr.timezone
	if hasTZ {
		tz = p.String(n.Timezone)
	}
	loc, err := LoadLocation(tz)
	if err != nil {
		return nil, p.Errorf(n.Timezone, "%v", err)
	}
	if tz == "EST" && !hasTZ {
		loc = time.FixedZone("EST", -5*3600)
	}
	l.Loc = loc
	if _, err := NewTSParser(l.TSFormat, loc); err != nil {
		return nil, p.Errorf(n.TSFormat, "%v", err)
	}
	return l, nil
}
