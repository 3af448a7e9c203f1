package websocket

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mdpio/mdp/md"
)

// preset selects the message decoder.
type preset uint8

const (
	presetBinance preset = iota
	presetCoinbase
	presetGeneric
)

func (p preset) String() string {
	switch p {
	case presetCoinbase:
		return "coinbase"
	case presetGeneric:
		return "generic"
	}
	return "binance"
}

// checkMode says which per-symbol counter must advance by exactly one from
// record to record: it finds gaps (counted) and duplicates (dropped).
type checkMode uint8

const (
	checkNone checkMode = iota
	checkTradeID
	checkSequence
)

func (c checkMode) String() string {
	switch c {
	case checkTradeID:
		return "trade_id"
	case checkSequence:
		return "sequence"
	}
	return "none"
}

// symState is what the decoder keeps per instrument.
type symState struct {
	name    string
	id      md.SymID
	allowed bool // passes the symbols filter
	seen    bool // last holds a value
	last    int64
	// lastTS is the newest event time accepted; gap is set while a
	// reconnect gap recorded from it is open (see decoder.openGaps).
	lastTS int64
	gap    bool
}

// counts are events since the last report to the node's stats. They are
// plain integers on the decoding goroutine and reported once per flush, so
// the hot path takes no lock.
type counts struct {
	malformed  int64 // messages
	duplicate  int64 // records
	filtered   int64 // records
	otherKind  int64 // records
	ignored    int64 // messages that carry no record (acks, heartbeats, other events)
	gaps       int64 // sequence gaps
	gapMissing int64 // ids missing in those gaps
}

func (c *counts) zero() bool { return *c == counts{} }

// decoder turns messages into records and batches. It runs on one goroutine.
type decoder struct {
	preset  preset
	kind    md.Kind // the one record kind the source emits
	check   checkMode
	generic *genericConf
	// maxFuture is how far (ns) an event time may lie ahead of the ingest
	// clock; 0 turns the check off.
	maxFuture int64

	interner *md.Interner
	symtab   *md.SymbolTable  // where reconnect gaps are recorded
	sizes    *md.SizeDecimals // decimal places of trade sizes, per symbol
	filter   map[string]bool  // upper-cased symbols; nil lets every symbol through
	syms     map[string]*symState
	log      *slog.Logger

	newBatch func(md.Kind) *md.Batch
	emit     func(*md.Batch) error // hands the batch over
	report   func(c counts)
	exchErr  func(msg string)

	cur *md.Batch // batch being filled; nil when empty
	err error     // first emit error; decoding stops adding once set

	pend          counts
	accepted      int64 // records added, ever
	malformedSeen int64
	warnedKind    bool
}

// sym returns the state of the instrument spelled by name, or nil when the
// symbols filter rejects it. The map lookup with a []byte key does not
// allocate; a new symbol is interned once.
func (d *decoder) sym(name []byte) *symState {
	st, ok := d.syms[string(name)]
	if !ok {
		key := string(name)
		s := key
		if strings.IndexByte(s, '\\') >= 0 {
			// An escaped spelling ("XBT\/USD"): intern the text it means,
			// once; the cache stays keyed by the bytes as sent.
			var u string
			if err := json.Unmarshal([]byte(`"`+s+`"`), &u); err == nil {
				s = u
			}
		}
		st = &symState{name: s, allowed: d.filter == nil || d.filter[strings.ToUpper(s)]}
		if st.allowed {
			st.id = d.interner.ID(s)
		}
		d.syms[key] = st
	}
	if !st.allowed {
		return nil
	}
	return st
}

// sequence applies the gap/duplicate check to id for st; false means the
// record is a duplicate and must be dropped.
func (d *decoder) sequence(st *symState, id int64) bool {
	if st.seen {
		if id <= st.last {
			d.pend.duplicate++
			return false
		}
		if id > st.last+1 {
			missing := id - st.last - 1
			d.pend.gaps++
			d.pend.gapMissing += missing
			d.log.Warn("sequence gap", "symbol", st.name, "field", d.check.String(), "last", st.last, "next", id, "missing", missing)
			// Records were missed (after a reconnect or not): a gap in
			// the feed from the newest time so far, closed by this
			// record (note).
			if d.symtab != nil && st.lastTS != 0 && !st.gap {
				d.symtab.OpenGap(st.id, st.lastTS)
				st.gap = true
			}
		}
	}
	st.seen = true
	st.last = id
	return true
}

// wants reports whether the source emits kind k, counting the record as
// dropped when it does not.
func (d *decoder) wants(k md.Kind) bool {
	if d.kind == k {
		return true
	}
	d.pend.otherKind++
	if !d.warnedKind {
		d.warnedKind = true
		d.log.Warn("dropping records of a kind this source does not emit (set kind to choose; run a second source for the other kind)",
			"emits", d.kind.String(), "got", k.String())
	}
	return false
}

// addTrade adds a decoded trade to the batch being filled, or returns why
// it is malformed: numbers that break md.CheckTrade, or an event time more
// than max_future ahead of the time the message arrived.
func (d *decoder) addTrade(st *symState, t *md.Trade) error {
	if d.err != nil {
		return nil
	}
	if p := md.CheckTrade(t); !p.OK() {
		return errors.New(p.String())
	}
	if err := d.checkFuture(t.TS, t.Ingest); err != nil {
		return err
	}
	t.Sym = st.id
	d.accepted++
	d.note(st, t.TS)
	if d.cur == nil {
		d.cur = d.newBatch(md.KindTrade)
	}
	d.cur.Trades = append(d.cur.Trades, *t)
	if len(d.cur.Trades) >= cap(d.cur.Trades) {
		d.flush()
	}
	return nil
}

// addQuote is addTrade for quotes (md.CheckQuote: a side may be absent).
func (d *decoder) addQuote(st *symState, q *md.Quote) error {
	if d.err != nil {
		return nil
	}
	if p := md.CheckQuote(q); !p.OK() {
		return errors.New(p.String())
	}
	if err := d.checkFuture(q.TS, q.Ingest); err != nil {
		return err
	}
	q.Sym = st.id
	d.accepted++
	d.note(st, q.TS)
	if d.cur == nil {
		d.cur = d.newBatch(md.KindQuote)
	}
	d.cur.Quotes = append(d.cur.Quotes, *q)
	if len(d.cur.Quotes) >= cap(d.cur.Quotes) {
		d.flush()
	}
	return nil
}

// note keeps an instrument's newest event time and closes its open
// reconnect gap at the first record after it: one compare per record.
func (d *decoder) note(st *symState, ts int64) {
	if st.gap {
		st.gap = false
		if d.symtab != nil {
			d.symtab.CloseGap(st.id, ts)
		}
	}
	if ts > st.lastTS {
		st.lastTS = ts
	}
}

// openGaps records, after the connection was lost, a gap in the feed of
// every instrument that had delivered a record, from its newest event time
// on (md.SymbolTable.OpenGap): bars whose interval touches it are partial.
// The first record after the reconnect closes it. With a sequence check
// the ids tell instead: an exchange that replays what the client missed
// leaves no gap, and one that does not shows as a sequence gap (sequence).
func (d *decoder) openGaps() {
	if d.check != checkNone {
		return
	}
	for _, st := range d.syms {
		if !st.allowed || st.lastTS == 0 || st.gap {
			continue
		}
		st.gap = true
		if d.symtab != nil {
			d.symtab.OpenGap(st.id, st.lastTS)
		}
	}
}

// checkFuture rejects an event time more than max_future ahead of the
// ingest clock: a live feed cannot report the future, and one such record
// would carry the watermark past every record that follows.
func (d *decoder) checkFuture(ts, ingest int64) error {
	if d.maxFuture > 0 && ts > ingest && ts-ingest > d.maxFuture {
		return fmt.Errorf("event time %s is %s ahead of the ingest clock (max_future %s)",
			md.FormatTime(ts), time.Duration(ts-ingest), time.Duration(d.maxFuture))
	}
	return nil
}

// flush emits the batch being filled and reports pending counts.
func (d *decoder) flush() {
	if b := d.cur; b != nil && b.Len() > 0 {
		d.cur = nil
		if d.err == nil {
			if err := d.emit(b); err != nil {
				d.err = err
			}
		} else {
			b.Release()
		}
	}
	if !d.pend.zero() {
		d.report(d.pend)
		d.pend = counts{}
	}
}

// discard releases the batch being filled without emitting it.
func (d *decoder) discard() {
	if d.cur != nil {
		d.cur.Release()
		d.cur = nil
	}
}

// handle decodes one message received at recv (ns).
func (d *decoder) handle(msg []byte, recv int64) {
	var err error
	switch d.preset {
	case presetBinance:
		err = d.binance(msg, recv)
	case presetCoinbase:
		err = d.coinbase(msg, recv)
	default:
		err = d.genericMsg(msg, recv)
	}
	if err != nil {
		d.malformed(err, msg)
	}
}

// malformed counts a message that could not be decoded. Logging is sampled
// (the 1st, 2nd, 4th, 8th, … occurrence) so a broken feed cannot flood the
// log; every one is counted.
func (d *decoder) malformed(err error, msg []byte) {
	d.pend.malformed++
	d.malformedSeen++
	const maxShown = 200
	shown := msg
	if len(shown) > maxShown {
		shown = shown[:maxShown]
	}
	if n := d.malformedSeen; n&(n-1) == 0 {
		d.log.Warn("malformed message dropped", "err", err, "message", string(shown), "malformed_total", n)
	}
}
