package rowmap

import (
	"time"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// BarLayout maps every column mdp writes for a bar (recfmt's JSON keys and
// CSV header) to its slot. Bars are read only in mdp's own encoding: a
// mapping names trade and quote fields only.
func BarLayout() *Layout {
	l := &Layout{Kind: md.KindBar, Columns: map[Slot]ColRef{}, Header: true, Delim: ','}
	for _, s := range []Slot{SlotProvider, SlotSymbol, SlotInterval, SlotTS, SlotStart, SlotEnd, SlotOpen, SlotHigh, SlotLow,
		SlotClose, SlotVolume, SlotVWAP, SlotTrades, SlotBarType, SlotSource, SlotPartial, SlotUpdate} {
		l.Columns[s] = ColRef{Name: SlotNames[s], Index: -1}
	}
	return l
}

// OwnLayout maps the columns mdp writes for a trade or a quote (recfmt)
// to their slots: what a bus source reads with format json or csv and no
// mapping. Times are RFC 3339 (read by the auto format).
func OwnLayout(k md.Kind) *Layout {
	if k == md.KindBar {
		return BarLayout()
	}
	l := &Layout{Kind: k, Columns: map[Slot]ColRef{}, Header: true, Delim: ',', Loc: time.UTC}
	slots := []Slot{SlotProvider, SlotSymbol, SlotTS, SlotIngest, SlotSeq}
	if k == md.KindTrade {
		slots = append(slots, SlotPrice, SlotSize, SlotSide, SlotTradeID)
	} else {
		slots = append(slots, SlotBid, SlotBidSize, SlotAsk, SlotAskSize)
	}
	for _, s := range slots {
		l.Columns[s] = ColRef{Name: SlotNames[s], Index: -1}
	}
	return l
}

var barTypes = [...]string{"time", "tick", "volume", "value", "tick_imbalance", "volume_imbalance"}
var barSources = [...]string{"trade", "mid", "bid", "ask", "bid_ask"}

// Bar decodes a bar row in mdp's own columns: start and end give its
// bounds (a time bar's interval is their difference; other bar types read
// their threshold from interval), ts equal to end and after start marks a
// bar labelled by its end.
func (d *Decoder) Bar(v *Vals, r *md.Bar, e *RowErr) bool {
	ts, _, sym, ok := d.common(v, e)
	if !ok {
		return false
	}
	start, ok := d.time(v, SlotStart, e)
	if !ok {
		return false
	}
	end, ok := d.time(v, SlotEnd, e)
	if !ok {
		return false
	}
	if end <= start {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotEnd, Value: v[SlotEnd]}
		return false
	}
	*r = md.Bar{Start: start, End: end, Sym: sym, LabelEnd: ts == end}
	for i, s := range []Slot{SlotOpen, SlotHigh, SlotLow, SlotClose, SlotVolume, SlotVWAP} {
		f, ok := d.num(v, s, true, e)
		if !ok {
			return false
		}
		*[...]*float64{&r.Open, &r.High, &r.Low, &r.Close, &r.Volume, &r.VWAP}[i] = f
	}
	n, ok := parseInt(v[SlotTrades])
	if !ok || n < 0 {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotTrades, Value: v[SlotTrades]}
		return false
	}
	r.Trades = n
	if r.Type, ok = word(v[SlotBarType], barTypes[:], md.BarTime); !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotBarType, Value: v[SlotBarType]}
		return false
	}
	if r.Source, ok = word(v[SlotSource], barSources[:], md.FromTrades); !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotSource, Value: v[SlotSource]}
		return false
	}
	for _, f := range [...]struct {
		s Slot
		b *bool
	}{{SlotPartial, &r.Partial}, {SlotUpdate, &r.Update}} {
		switch string(v[f.s]) {
		case "", "false":
		case "true":
			*f.b = true
		default:
			*e = RowErr{Prob: ProbInvalid, Slot: f.s, Value: v[f.s]}
			return false
		}
	}
	if r.Type == md.BarTime {
		r.Interval = end - start
	} else if r.Interval, ok = parseInt(v[SlotInterval]); !ok || r.Interval <= 0 {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotInterval, Value: v[SlotInterval]}
		return false
	}
	if ts != start && ts != end {
		*e = RowErr{Prob: ProbInvalid, Slot: SlotTS, Value: v[SlotTS]}
		return false
	}
	if d.sizes != nil {
		d.sizes.Note(sym, tsparse.Decimals(v[SlotVolume]))
	}
	return true
}

func (d *Decoder) time(v *Vals, s Slot, e *RowErr) (int64, bool) {
	b := v[s]
	if len(b) == 0 {
		*e = RowErr{Prob: ProbMissing, Slot: s}
		return 0, false
	}
	t, ok := d.TS.Parse(b)
	if !ok {
		*e = RowErr{Prob: ProbInvalid, Slot: s, Value: b}
	}
	return t, ok
}

// word finds b among names (empty: def).
func word[T ~uint8](b []byte, names []string, def T) (T, bool) {
	if len(b) == 0 {
		return def, true
	}
	for i, n := range names {
		if string(b) == n {
			return T(i), true
		}
	}
	return def, false
}
