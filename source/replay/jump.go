package replay

import (
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"math"
	"time"

	"github.com/mdpio/mdp/md"
)

// jumpConfirm is how many rows after a far-future jump must follow it (land
// no more than max_jump before it) for the jump to count as real: a weekend
// gap in FX data, a trading halt. One absurd timestamp is followed by rows
// back on the old clock and is rejected instead.
const jumpConfirm = 2

// chunkSlack is room past chunkSize for held rows released at once.
const chunkSlack = jumpConfirm + 2

// heldRow is a record held back until the rows after it confirm it.
type heldRow struct {
	trade   md.Trade
	quote   md.Quote
	ts      int64
	line    int64
	end     int64  // fileReader.pos after its line
	support int    // rows after it that did not land more than maxJump before it
	raw     []byte // a copy, truncated as dead letters are
}

// jumpGuard keeps one file's event time from jumping far ahead on a single
// row. A record more than maxJump past the newest event time so far (or one
// of the first rows of the file, before there is a newest) is held back.
// Each later row that lands no more than maxJump before a held row supports
// it; a row that lands earlier refutes it, and the held row is malformed (an
// unconfirmed jump) that never reaches the watermark. A held row with
// jumpConfirm supporters is released in file order, and so are the rows
// behind it that are no jump from the new newest time.
type jumpGuard struct {
	maxJump int64 // ns; 0 disables the guard
	started bool  // newest is set
	newest  int64
	limit   int64 // newest + maxJump, saturated
	held    []heldRow
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

// advance moves the newest event time to ts if it is newer.
func (g *jumpGuard) advance(ts int64) {
	if !g.started || ts > g.newest {
		g.started, g.newest = true, ts
		g.limit = satAdd(ts, g.maxJump)
	}
}

// jumpCheck runs the guard on the record just decoded into the chunk at
// index n (event time ts, of the current line). It returns keep = true when
// the record stays where it is; otherwise it was moved to the held rows, and
// rows the guard released were appended to the chunk.
func (r *fileReader) jumpCheck(n int, ts int64, raw []byte) (keep bool, err error) {
	g := &r.jump
	if len(g.held) == 0 && g.started && ts <= g.limit {
		g.advance(ts)
		return true, nil
	}
	kept := g.held[:0]
	for _, h := range g.held {
		if ts < satAdd(h.ts, -g.maxJump) {
			if err := r.reject(h); err != nil {
				return false, err
			}
			continue
		}
		h.support++
		kept = append(kept, h)
	}
	g.held = kept
	if err := r.hold(n, ts, raw); err != nil {
		return false, err
	}
	return false, r.releaseConfirmed(false)
}

// hold moves the chunk's record n to the held rows.
func (r *fileReader) hold(n int, ts int64, raw []byte) error {
	h := heldRow{ts: ts, line: r.line, end: r.pos()}
	if r.kind == md.KindTrade {
		h.trade = r.trades[n]
		r.trades = r.trades[:n]
	} else {
		h.quote = r.quotes[n]
		r.quotes = r.quotes[:n]
	}
	if raw == nil && r.pq != nil {
		raw = r.pq.rowText()
	}
	if raw == nil && r.pieces != nil {
		var err error
		if raw, err = r.pieces.lineText(r.curStart, h.end); err != nil {
			return err
		}
	}
	h.raw = append([]byte(nil), truncateRaw(raw)...)
	r.jump.held = append(r.jump.held, h)
	return nil
}

// releaseConfirmed appends the held rows at the front that are settled to
// the chunk, in file order: confirmed ones, ones that are no jump from the
// newest time, and at the end of the file (eof) every one that is not a lone
// last-row jump, which is rejected.
func (r *fileReader) releaseConfirmed(eof bool) error {
	g := &r.jump
	i := 0
	for ; i < len(g.held); i++ {
		h := g.held[i]
		jump := !g.started || h.ts > g.limit
		if jump && h.support < jumpConfirm {
			if !eof {
				break
			}
			if g.started && h.support == 0 {
				if err := r.reject(h); err != nil {
					return err
				}
				continue
			}
		}
		g.advance(h.ts)
		if !r.filter.pass(h.ts) {
			continue
		}
		if r.kind == md.KindTrade {
			r.trades = append(r.trades, h.trade)
		} else {
			r.quotes = append(r.quotes, h.quote)
		}
		if r.track {
			r.note(h.end, h.line)
		}
	}
	g.held = g.held[:copy(g.held, g.held[i:])]
	return nil
}

// reject reports a held row as malformed: a jump the rows after it did not
// follow.
func (r *fileReader) reject(h heldRow) error {
	e := rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: r.jump.jumpReason(h.ts)}
	return r.mal.report(r.path, h.line, h.raw, &e)
}

func (g *jumpGuard) jumpReason(ts int64) string {
	maxJump := time.Duration(g.maxJump)
	if !g.started {
		return fmt.Sprintf("event time %s is more than max_jump (%s) past the rows after it; an unconfirmed jump",
			md.FormatTime(ts), maxJump)
	}
	return fmt.Sprintf("event time %s jumps %s past the newest event time %s and the rows after it do not follow (max_jump %s); an unconfirmed jump",
		md.FormatTime(ts), time.Duration(ts-g.newest), md.FormatTime(g.newest), maxJump)
}

// finishHeld settles the held rows at the end of the file.
func (r *fileReader) finishHeld() error { return r.releaseConfirmed(true) }
