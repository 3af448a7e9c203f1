package websocket

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// The generic preset reads any JSON feed given where each record field sits:
// dotted paths ("data.px", "data.0.px" for an array element), an optional
// `records` path to an array holding several records per message (fields are
// then relative to each element), and `match` conditions a message must meet
// to carry records (type == "trade"); other messages are counted as ignored.
// Paths are compiled into a tree once, and each message is walked once.

// gfield is a record field the generic preset can fill.
type gfield int

const (
	gSymbol gfield = iota
	gTS
	gPrice
	gSize
	gSide
	gTradeID
	gSeq
	gBid
	gBidSize
	gAsk
	gAskSize
	nGFields
)

var gfieldNames = [nGFields]string{"symbol", "ts", "price", "size", "side", "trade_id", "seq", "bid", "bid_size", "ask", "ask_size"}

// genericFieldsFor lists the fields a kind may use, required ones first.
func genericFieldsFor(k md.Kind) (required, optional []gfield) {
	if k == md.KindQuote {
		return []gfield{gSymbol, gBid, gAsk}, []gfield{gTS, gBidSize, gAskSize, gSeq}
	}
	return []gfield{gSymbol, gPrice, gSize}, []gfield{gTS, gSide, gTradeID, gSeq}
}

// tsFormat is how the generic preset reads the ts field.
type tsFormat struct {
	unit    int64 // ns per unit for unix_* formats
	rfc3339 bool
}

var tsFormats = map[string]tsFormat{
	"unix_s": {unit: 1e9}, "unix_ms": {unit: 1e6}, "unix_us": {unit: 1e3}, "unix_ns": {unit: 1},
	"rfc3339": {rfc3339: true},
}

func tsFormatNames() []string {
	names := make([]string, 0, len(tsFormats))
	for n := range tsFormats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pathNode is one step of a compiled path tree.
type pathNode struct {
	key   string
	index int // array index the key names, or -1
	slot  int // value slot filled here, or -1
	kids  []*pathNode
}

func (n *pathNode) add(path string, slot int) error {
	if path == "" {
		return errors.New("empty path")
	}
	cur := n
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			return fmt.Errorf("path %q has an empty segment", path)
		}
		var next *pathNode
		for _, k := range cur.kids {
			if k.key == seg {
				next = k
				break
			}
		}
		if next == nil {
			idx := -1
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 {
				idx = i
			}
			next = &pathNode{key: seg, index: idx, slot: -1}
			cur.kids = append(cur.kids, next)
		}
		cur = next
	}
	if cur.slot >= 0 {
		return fmt.Errorf("path %q is used twice", path)
	}
	cur.slot = slot
	return nil
}

// walk records in slots the spans of the values n's paths name under v.
func walk(b []byte, v span, n *pathNode, slots []span) error {
	if len(n.kids) == 0 || !v.ok() {
		return nil
	}
	visit := func(kid *pathNode, val span) error {
		if kid.slot >= 0 {
			slots[kid.slot] = val
		}
		if len(kid.kids) > 0 {
			return walk(b, val, kid, slots)
		}
		return nil
	}
	switch b[v.s] {
	case '{':
		it := newObjIter(b, int(v.s))
		for {
			k, val, ok := it.next()
			if !ok {
				return it.err
			}
			for _, kid := range n.kids {
				if string(k) == kid.key {
					if err := visit(kid, val); err != nil {
						return err
					}
				}
			}
		}
	case '[':
		it := newArrIter(b, int(v.s))
		for i := 0; ; i++ {
			val, ok := it.next()
			if !ok {
				return it.err
			}
			for _, kid := range n.kids {
				if kid.index == i {
					if err := visit(kid, val); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil // a scalar where the path wants a container: the fields are absent
}

// genericConf is the compiled generic preset.
type genericConf struct {
	root       *pathNode // match conditions, the records path, and the fields when there is no records path
	rec        *pathNode // fields relative to each record; nil without a records path
	matchWant  []string  // slot i of the root holds match condition i
	recordSlot int       // root slot of the records array, or -1
	field      [nGFields]int
	nRoot      int
	ts         tsFormat
}

// maxGenericSlots bounds the slots so a message walk needs no allocation.
const maxGenericSlots = 48

func compileGeneric(kind md.Kind, fields map[string]string, records string, match map[string]string, ts string) (*genericConf, error) {
	g := &genericConf{root: &pathNode{slot: -1, index: -1}, recordSlot: -1, ts: tsFormats[ts]}
	for i := range g.field {
		g.field[i] = -1
	}
	keys := make([]string, 0, len(match))
	for k := range match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := g.root.add(k, len(g.matchWant)); err != nil {
			return nil, &keyedError{"match", fmt.Errorf("%q: %w", k, err)}
		}
		g.matchWant = append(g.matchWant, match[k])
	}
	g.nRoot = len(g.matchWant)
	fieldTree := g.root
	base := g.nRoot
	if records != "" {
		g.recordSlot = g.nRoot
		if err := g.root.add(records, g.recordSlot); err != nil {
			return nil, &keyedError{"records", err}
		}
		g.nRoot++
		g.rec = &pathNode{slot: -1, index: -1}
		fieldTree = g.rec
		base = 0
	}
	required, optional := genericFieldsFor(kind)
	allowed := map[string]gfield{}
	for _, f := range append(required, optional...) {
		allowed[gfieldNames[f]] = f
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	nRec := 0
	for _, name := range names {
		f, ok := allowed[name]
		if !ok {
			return nil, &keyedError{"fields", fmt.Errorf("%q is not a %s field; want %s", name, kind, allowedList(required, optional))}
		}
		slot := base + nRec
		if err := fieldTree.add(fields[name], slot); err != nil {
			return nil, &keyedError{"fields", fmt.Errorf("%s: %w", name, err)}
		}
		g.field[f] = slot
		nRec++
	}
	for _, f := range required {
		if g.field[f] < 0 {
			return nil, &keyedError{"fields", fmt.Errorf("%q is required for %s records", gfieldNames[f], kind)}
		}
	}
	if records == "" {
		g.nRoot += nRec
	}
	if g.nRoot > maxGenericSlots || nRec > maxGenericSlots {
		return nil, &keyedError{"fields", fmt.Errorf("at most %d paths in match and fields", maxGenericSlots)}
	}
	return g, nil
}

func allowedList(required, optional []gfield) string {
	var s []string
	for _, f := range append(required, optional...) {
		s = append(s, gfieldNames[f])
	}
	return strings.Join(s, ", ")
}

func (d *decoder) genericMsg(msg []byte, recv int64) error {
	g := d.generic
	i := skipWS(msg, 0)
	if i >= len(msg) || (msg[i] != '{' && msg[i] != '[') {
		return errNotObject
	}
	end := valueEnd(msg, i)
	if end < 0 {
		return errSyntax
	}
	if err := endOfMessage(msg, end); err != nil {
		return err
	}
	var rootSlots [maxGenericSlots]span
	top := span{int32(i), int32(end)}
	if err := walk(msg, top, g.root, rootSlots[:g.nRoot]); err != nil {
		return err
	}
	for j, want := range g.matchWant {
		v := rootSlots[j]
		if !v.ok() || string(text(msg, v)) != want {
			d.pend.ignored++
			return nil
		}
	}
	if g.recordSlot < 0 {
		return d.genericRecord(msg, rootSlots[:], recv)
	}
	recs := rootSlots[g.recordSlot]
	switch {
	case !recs.ok():
		d.pend.ignored++ // a message without records (an ack, a heartbeat)
		return nil
	case isObject(msg, recs):
		return d.genericElem(msg, recs, recv)
	case isArray(msg, recs):
		it := newArrIter(msg, int(recs.s))
		for {
			v, ok := it.next()
			if !ok {
				return it.err
			}
			if err := d.genericElem(msg, v, recv); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("generic: records path holds %s, want an array or an object", describeValue(msg, recs))
}

func (d *decoder) genericElem(msg []byte, v span, recv int64) error {
	var slots [maxGenericSlots]span
	if err := walk(msg, v, d.generic.rec, slots[:]); err != nil {
		return err
	}
	return d.genericRecord(msg, slots[:], recv)
}

func describeValue(b []byte, v span) string {
	if !v.ok() {
		return "nothing"
	}
	switch b[v.s] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	}
	return "a scalar"
}

// genericRecord builds one record from the field slots.
func (d *decoder) genericRecord(msg []byte, slots []span, recv int64) error {
	g := d.generic
	get := func(f gfield) span {
		if s := g.field[f]; s >= 0 {
			return slots[s]
		}
		return span{}
	}
	num := func(f gfield) (float64, bool, error) {
		v := get(f)
		if !v.ok() {
			return 0, false, nil
		}
		x, ok := tsparse.ParseFloat(text(msg, v))
		if !ok {
			return 0, false, badValue("generic", gfieldNames[f], msg, v)
		}
		return x, true, nil
	}
	symv := get(gSymbol)
	if !symv.ok() {
		return missing("generic", gfieldNames[gSymbol])
	}
	ts := recv
	if v := get(gTS); v.ok() {
		var ok bool
		if g.ts.rfc3339 {
			ts, ok = tsparse.ParseRFC3339(text(msg, v), nil)
		} else {
			ts, ok = tsparse.ParseUnix(text(msg, v), g.ts.unit)
		}
		if !ok {
			return badValue("generic", "ts", msg, v)
		}
	}
	var seq uint64
	if v := get(gSeq); v.ok() {
		var ok bool
		if seq, ok = tsparse.ParseUint(text(msg, v)); !ok || seq > 1<<63-1 {
			return badValue("generic", "seq", msg, v)
		}
	}
	if d.kind == md.KindQuote {
		q := md.Quote{TS: ts, Ingest: recv, Seq: seq}
		var ok bool
		var err error
		if q.Bid, ok, err = num(gBid); err != nil || !ok {
			return orMissing(err, gBid)
		}
		if q.Ask, ok, err = num(gAsk); err != nil || !ok {
			return orMissing(err, gAsk)
		}
		if q.BidSize, _, err = num(gBidSize); err != nil {
			return err
		}
		if q.AskSize, _, err = num(gAskSize); err != nil {
			return err
		}
		st := d.sym(text(msg, symv))
		if st == nil {
			d.pend.filtered++
			return nil
		}
		if d.check == checkSequence && !d.sequence(st, int64(seq)) {
			return nil
		}
		return d.addQuote(st, &q)
	}
	t := md.Trade{TS: ts, Ingest: recv, Seq: seq}
	var ok bool
	var err error
	if t.Price, ok, err = num(gPrice); err != nil || !ok {
		return orMissing(err, gPrice)
	}
	if t.Size, ok, err = num(gSize); err != nil || !ok {
		return orMissing(err, gSize)
	}
	if v := get(gTradeID); v.ok() {
		if t.TradeID, ok = tsparse.ParseInt(text(msg, v)); !ok {
			return badValue("generic", "trade_id", msg, v)
		}
	}
	if v := get(gSide); v.ok() {
		t.Side = md.ParseSide(string(text(msg, v)))
	}
	st := d.sym(text(msg, symv))
	if st == nil {
		d.pend.filtered++
		return nil
	}
	switch d.check {
	case checkTradeID:
		if !d.sequence(st, t.TradeID) {
			return nil
		}
	case checkSequence:
		if !d.sequence(st, int64(seq)) {
			return nil
		}
	}
	d.sizes.Note(st.id, tsparse.Decimals(text(msg, get(gSize))))
	return d.addTrade(st, &t)
}

func orMissing(err error, f gfield) error {
	if err != nil {
		return err
	}
	return missing("generic", gfieldNames[f])
}
