package replay

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// slot is a record field a column can be mapped to.
type slot uint8

const (
	slotTS slot = iota
	slotIngest
	slotSymbol
	slotProvider
	slotPrice
	slotSize
	slotSide
	slotTradeID
	slotBid
	slotBidSize
	slotAsk
	slotAskSize
	nSlots
)

// slotNames are the keys of the columns param, in slot order.
var slotNames = [nSlots]string{"ts", "ingest_ts", "symbol", "provider", "price", "size", "side", "trade_id", "bid", "bid_size", "ask", "ask_size"}

func slotByName(name string) (slot, bool) {
	for i, n := range slotNames {
		if n == name {
			return slot(i), true
		}
	}
	return 0, false
}

// colRef names a column by header name or by zero-based index.
type colRef struct {
	name  string
	index int // -1 when name is used
}

func (c colRef) String() string {
	if c.index >= 0 {
		return strconv.Itoa(c.index)
	}
	return strconv.Quote(c.name)
}

// preset is a known file layout.
type preset struct {
	kind     md.Kind
	columns  map[slot]colRef
	header   bool
	tsFormat string
	timezone string
	provider string // default provider when the layout has no provider column
	needSym  bool   // the layout has no symbol column
	about    string
}

func named(m map[string]string) map[slot]colRef {
	out := map[slot]colRef{}
	for k, v := range m {
		s, _ := slotByName(k)
		out[s] = colRef{name: v, index: -1}
	}
	return out
}

func indexed(m map[string]int) map[slot]colRef {
	out := map[slot]colRef{}
	for k, v := range m {
		s, _ := slotByName(k)
		out[s] = colRef{index: v}
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

func presetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// layout is the resolved column mapping and value formats of a replay.
type layout struct {
	kind     md.Kind
	columns  map[slot]colRef
	header   bool
	delim    byte
	tsFormat string
	loc      *time.Location
	symbol   string // constant symbol when there is no symbol column
	provider string // constant provider when there is no provider column
}

// resolveLayout combines preset and generic params. Errors name the param.
func resolveLayout(p *component.Params) (*layout, error) {
	l := &layout{columns: map[slot]colRef{}, header: true, delim: ','}
	var pr preset
	name := p.String("preset")
	if name != "" {
		var ok bool
		if pr, ok = presets[name]; !ok {
			return nil, p.Errorf("preset", "unknown preset %q; want one of %s", name, strings.Join(presetNames(), ", "))
		}
		l.kind, l.header, l.tsFormat = pr.kind, pr.header, pr.tsFormat
		for k, v := range pr.columns {
			l.columns[k] = v
		}
	}
	if k := p.String("kind"); k != "" {
		kind, err := md.ParseKind(k)
		if err != nil || kind == md.KindBar {
			return nil, p.Errorf("kind", "want trade or quote, got %q", k)
		}
		if name != "" && kind != pr.kind {
			return nil, p.Errorf("kind", "preset %s replays %ss; kind %s contradicts it", name, pr.kind, k)
		}
		l.kind = kind
	}
	if l.kind == md.KindNone {
		return nil, p.Errorf("kind", "set preset (%s) or kind (trade or quote) with columns", strings.Join(presetNames(), ", "))
	}
	for key, v := range p.Map("columns") {
		s, ok := slotByName(key)
		if !ok {
			msg := fmt.Sprintf("unknown record field %q", key)
			if sug := component.Suggest(key, slotNames[:]); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			} else {
				msg += "; valid fields: " + strings.Join(slotNames[:], ", ")
			}
			return nil, p.Errorf("columns", "%s", msg)
		}
		switch x := v.(type) {
		case string:
			if x == "" {
				delete(l.columns, s)
				continue
			}
			l.columns[s] = colRef{name: x, index: -1}
		case int64:
			if x < 0 {
				return nil, p.Errorf("columns", "%s: column index %d is negative (indexes start at 0)", key, x)
			}
			l.columns[s] = colRef{index: int(x)}
		case nil:
			delete(l.columns, s)
		default:
			return nil, p.Errorf("columns", "%s: want a column name or a zero-based index, got %v", key, v)
		}
	}
	var required, other []slot
	if l.kind == md.KindTrade {
		required = []slot{slotTS, slotPrice, slotSize}
		other = []slot{slotBid, slotBidSize, slotAsk, slotAskSize}
	} else {
		required = []slot{slotTS, slotBid, slotAsk}
		other = []slot{slotPrice, slotSize, slotSide, slotTradeID}
	}
	for _, s := range required {
		if _, ok := l.columns[s]; !ok {
			return nil, p.Errorf("columns", "a %s replay needs a column for %s", l.kind, slotNames[s])
		}
	}
	for _, s := range other {
		if _, ok := l.columns[s]; ok {
			return nil, p.Errorf("columns", "%s does not apply to %s records", slotNames[s], l.kind)
		}
	}
	l.symbol = p.String("symbol")
	if _, ok := l.columns[slotSymbol]; ok && l.symbol != "" {
		return nil, p.Errorf("symbol", "the file has a symbol column (%s); a constant symbol applies only to files without one", l.columns[slotSymbol])
	}
	if _, ok := l.columns[slotSymbol]; !ok && l.symbol == "" {
		if pr.needSym {
			return nil, p.Errorf("symbol", "preset %s has no symbol column; set symbol (for example USD/JPY)", name)
		}
		return nil, p.Errorf("symbol", "map columns.symbol or set a constant symbol")
	}
	l.provider = p.String("provider")
	if l.provider != "" {
		delete(l.columns, slotProvider)
	} else if _, ok := l.columns[slotProvider]; !ok {
		l.provider = pr.provider
		if l.provider == "" {
			l.provider = "replay"
		}
	}
	if p.Has("header") {
		l.header = p.Bool("header")
	}
	if !l.header {
		for s, c := range l.columns {
			if c.index < 0 {
				return nil, p.Errorf("columns", "%s names column %q but header is false; use a zero-based index", slotNames[s], c.name)
			}
		}
	}
	d := p.String("delimiter")
	switch {
	case d == `\t` || d == "tab":
		l.delim = '\t'
	case len(d) == 1 && d != "\"" && d != "\n" && d != "\r":
		l.delim = d[0]
	default:
		return nil, p.Errorf("delimiter", "want one character such as , ; | or \\t, got %q", d)
	}
	if p.Has("ts_format") {
		l.tsFormat = p.String("ts_format")
	}
	tz := pr.timezone
	if p.Has("timezone") {
		tz = p.String("timezone")
	}
	loc, err := loadLocation(tz)
	if err != nil {
		return nil, p.Errorf("timezone", "%v", err)
	}
	if tz == "EST" && !p.Has("timezone") {
		loc = time.FixedZone("EST", -5*3600)
	}
	l.loc = loc
	if _, err := newTSParser(l.tsFormat, loc); err != nil {
		return nil, p.Errorf("ts_format", "%v", err)
	}
	return l, nil
}
