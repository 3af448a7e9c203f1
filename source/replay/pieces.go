package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

// Decoding one large plain file in pieces (decoders > 1, more decoders than
// files). The file after its header (or, resumed, after the checkpoint's
// offset) is cut into pieces of about pieceBytes, each starting at a line
// start: piece i starts at the first line that begins at or after
// base + i*pieceBytes, so every worker finds the bounds of its pieces
// itself. Worker k of K splits and decodes pieces k, k+K, k+2K... with its
// own reader, symbol table and malformed queue, its jump guard off and its
// time filter open, and hands on chunks of records with, for each record,
// where its line starts and ends, its line number in the piece, and how
// many instruments and size-decimal growths the worker had once it was
// decoded.
//
// The file's reader (the sequencer, on the file's decoder goroutine) takes
// the pieces in file order and does the rest of the serial fill, row by
// row in line order: malformed rows (line numbers offset by the lines of
// the pieces before), the jump guard, the time filter and the checkpoint
// meta. It interns a worker's instruments into the file's table as it
// reaches the record that first had them, so ids and size decimals reach
// the job in the serial order. The records, their ids, malformed reports
// and checkpoint positions are therefore those of a serial replay.
//
// A compressed file has no offsets to cut at without decompressing it,
// so it is decoded by one decoder; so is Parquet, whose row groups the
// reader already streams.

// pieceBytes is the nominal size of a piece. A var so tests can cut the
// small test files into many pieces.
var pieceBytes int64 = 512 << 10

// pieceAhead is how many decoded chunks a worker may have waiting for the
// sequencer.
const pieceAhead = 16

// pieceRec is what the sequencer needs of a record besides its recMeta.
type pieceRec struct {
	start  int64 // offset where its line starts
	nsyms  int32 // the worker's instruments once its line was decoded
	nnotes int32 // the chunk's size-decimal growths once its line was decoded
}

// pieceChunk is a chunk of records a worker decoded from one piece.
type pieceChunk struct {
	trades []md.Trade
	quotes []md.Quote
	meta   []recMeta // End: the offset after the line; Line: its number in the piece
	recs   []pieceRec
	rows   []queuedRow       // malformed rows, lines numbered in the piece
	notes  []rowmap.SizeNote // in the worker's ids
	nsyms  int               // the worker's instruments at the chunk's end
	last   bool              // the piece's last chunk
	lines  int64             // with last: the lines of the piece
	err    error
}

// pieceWorker decodes every K-th piece.
type pieceWorker struct {
	r     *fileReader
	table *md.SymbolTable
	recs  []pieceRec
	out   chan *pieceChunk
	free  chan *pieceChunk
	buf   [4096]byte // for finding piece bounds
}

// noteRec records the pieceRec of a record just added to the chunk.
func (w *pieceWorker) noteRec(start int64) {
	w.recs = append(w.recs, pieceRec{start: start, nsyms: int32(w.table.Len()), nnotes: int32(w.r.dec.NotesLen())})
}

// pieceSet is the sequencer's side of a file decoded in pieces.
type pieceSet struct {
	f       *os.File // shared by the workers (ReadAt)
	path    string
	base    int64 // where the first piece starts
	n       int   // pieces
	workers []*pieceWorker
	counter *atomic.Int64
	done    <-chan struct{}
	table   *md.SymbolTable   // the file's table, which the sequencer interns into
	remap   [][]md.SymID      // per worker: its ids -> the file's
	notes   []rowmap.SizeNote // growths in the file's ids, for the next chunk handed on

	piece    int         // next piece to take
	cur      *pieceChunk // chunk being sequenced
	w        int         // its worker
	ri, mi   int         // its next record and malformed row
	ni       int         // its size notes passed on
	lineBase int64       // lines before the current piece
	text     []byte      // lineText's buffer
}

// errPiecesStopped ends a sequencer waiting for a worker when the replay stops.
var errPiecesStopped = errors.New("replay stopped")

// startPieces makes r, opened and (when resuming) moved to its place,
// decode the rest of its file in pieces on k workers, when the file is
// plain text and holds at least two pieces. Workers run until their last
// piece or until done is closed; wg counts them.
func startPieces(r *fileReader, k int, rc *readerConfig, symbols []string, table *md.SymbolTable, done <-chan struct{}, wg *sync.WaitGroup) error {
	if k < 2 || r.lines == nil || r.lines.zr != nil {
		return nil
	}
	st, err := r.lines.f.Stat()
	if err != nil {
		return component.FileError("stat", r.path, err)
	}
	base := r.lines.off
	n := int((st.Size() - base + pieceBytes - 1) / pieceBytes)
	if n < 2 {
		return nil
	}
	f, err := os.Open(r.path)
	if err != nil {
		return component.FileError("open", r.path, err)
	}
	// The workers read the file from base again; take back what the
	// header's read buffered beyond it.
	rc.counter.Add(-int64(r.lines.buffered()))
	p := &pieceSet{f: f, path: r.path, base: base, n: n, counter: rc.counter, done: done, table: table,
		remap: make([][]md.SymID, k), lineBase: r.line}
	for range k {
		wt := md.NewSymbolTable()
		wr := &fileReader{idx: r.idx, path: r.path, format: r.format, kind: r.kind, dec: *rowmap.NewDecoder(rc.lay, wt, symbols),
			mal: &malformed{policy: r.mal.policy, queue: true}, filter: timeFilter{start: md.MinTime, end: md.MaxTime},
			csv: rowmap.CSVSplitter{Delim: rc.lay.Delim}, cols: r.cols, maxCol: r.maxCol, track: true,
			lines: &lineInput{max: r.lines.max, rd: bufio.NewReaderSize(nil, rc.bufSize)}}
		wr.dec.LogSizeDecimals()
		if r.format == formatCSV {
			wr.fast, wr.hasFast = rowmap.NewCSVFast(&wr.dec, wr.cols, rc.lay.Delim)
		}
		if r.format == formatJSONL {
			if wr.json, err = rowmap.NewJSONScanner(rc.lay); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", r.path, err)
			}
			wr.jfast, wr.hasJFast = rowmap.NewJSONFast(&wr.dec, rc.lay)
		}
		w := &pieceWorker{r: wr, table: wt, out: make(chan *pieceChunk, pieceAhead), free: make(chan *pieceChunk, pieceAhead+2)}
		wr.pw = w
		for range pieceAhead + 2 {
			c := &pieceChunk{meta: make([]recMeta, 0, chunkSize+chunkSlack), recs: make([]pieceRec, 0, chunkSize+chunkSlack)}
			if r.kind == md.KindTrade {
				c.trades = make([]md.Trade, 0, chunkSize+chunkSlack)
			} else {
				c.quotes = make([]md.Quote, 0, chunkSize+chunkSlack)
			}
			w.free <- c
		}
		p.workers = append(p.workers, w)
	}
	r.pieces = p
	for i, w := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(w, i)
		}()
	}
	return nil
}

// lineStart is where piece i starts: the first line start at or after
// its nominal offset (the end of the file when there is none).
func (p *pieceSet) lineStart(w *pieceWorker, i int) (int64, error) {
	if i == 0 {
		return p.base, nil
	}
	pos := p.base + int64(i)*pieceBytes - 1
	for {
		n, err := p.f.ReadAt(w.buf[:], pos)
		if j := bytes.IndexByte(w.buf[:n], '\n'); j >= 0 {
			return pos + int64(j) + 1, nil
		}
		pos += int64(n)
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// run is worker k: it decodes pieces k, k+K... into chunks.
func (p *pieceSet) run(w *pieceWorker, k int) {
	r := w.r
	for i := k; i < p.n; i += len(p.workers) {
		start, err := p.lineStart(w, i)
		length := int64(math.MaxInt64) - start // the last piece: to the end
		if err == nil && i+1 < p.n {
			var end int64
			end, err = p.lineStart(w, i+1)
			length = end - start
		}
		if err != nil {
			c := w.take(p.done)
			if c == nil {
				return
			}
			c.err, c.last = component.FileError("read", p.path, err), true
			w.send(c, p.done)
			return
		}
		r.lines.src = &countingReader{r: io.NewSectionReader(p.f, start, length), n: p.counter}
		r.lines.reset(r.lines.src)
		r.lines.off, r.line, r.eof = start, 0, false
		for !r.eof {
			c := w.take(p.done)
			if c == nil {
				return
			}
			r.trades, r.quotes, r.meta, w.recs = c.trades, c.quotes, c.meta[:0], c.recs[:0]
			err := r.fill()
			c.trades, c.quotes, c.meta, c.recs = r.trades, r.quotes, r.meta, w.recs
			c.rows, r.mal.queued = r.mal.queued, nil
			c.notes = r.dec.TakeSizeNotes(c.notes[:0])
			c.nsyms, c.last, c.lines, c.err = w.table.Len(), r.eof || err != nil, r.line, err
			if !w.send(c, p.done) || err != nil {
				return
			}
		}
	}
}

// take is a free chunk, or nil when the replay stops.
func (w *pieceWorker) take(done <-chan struct{}) *pieceChunk {
	select {
	case c := <-w.free:
		return c
	case <-done:
		return nil
	}
}

// send hands c to the sequencer; false when the replay stops.
func (w *pieceWorker) send(c *pieceChunk, done <-chan struct{}) bool {
	select {
	case w.out <- c:
		return true
	case <-done:
		return false
	}
}

// catchUp interns the current worker's instruments up to nsyms into the
// file's table and passes on its chunk's size notes up to nnotes.
func (p *pieceSet) catchUp(nsyms, nnotes int) {
	wt, remap := p.workers[p.w].table, p.remap[p.w]
	for id := len(remap); id < nsyms; id++ {
		in := wt.Get(md.SymID(id))
		remap = append(remap, p.table.Intern(in.Provider, in.Symbol))
	}
	p.remap[p.w] = remap
	for ; p.ni < nnotes; p.ni++ {
		n := p.cur.notes[p.ni]
		p.notes = append(p.notes, rowmap.SizeNote{Sym: remap[n.Sym], Decimals: n.Decimals})
	}
}

// takeNotes appends the size notes passed on since the last call to dst.
func (p *pieceSet) takeNotes(dst []rowmap.SizeNote) []rowmap.SizeNote {
	dst = append(dst, p.notes...)
	p.notes = p.notes[:0]
	return dst
}

// next makes the next piece's next chunk current, after settling the one
// before: its instruments and notes, its error, its lines.
func (p *pieceSet) next() (more bool, err error) {
	if c := p.cur; c != nil {
		p.catchUp(c.nsyms, len(c.notes))
		p.cur = nil
		if c.err != nil {
			return false, c.err
		}
		if c.last {
			p.lineBase += c.lines
			p.piece++
		}
		c.rows = nil
		p.workers[p.w].free <- c // never blocks: the worker's chunks all fit
	}
	if p.piece == p.n {
		return false, nil
	}
	p.w = p.piece % len(p.workers)
	select {
	case p.cur = <-p.workers[p.w].out:
	case <-p.done:
		return false, errPiecesStopped
	}
	p.ri, p.mi, p.ni = 0, 0, 0
	return true, nil
}

// fillPieces is fill for a file decoded in pieces: it takes the workers'
// records and malformed rows in line order and does what fill does after
// decoding a row.
func (r *fileReader) fillPieces() error {
	p := r.pieces
	for r.buffered() < chunkSize {
		c := p.cur
		if c == nil || (p.ri == len(c.meta) && p.mi == len(c.rows)) {
			more, err := p.next()
			if err != nil {
				return err
			}
			if !more {
				r.eof = true
				return r.finishHeld()
			}
			continue
		}
		if p.mi < len(c.rows) && (p.ri == len(c.meta) || c.rows[p.mi].line < c.meta[p.ri].Line) {
			row := c.rows[p.mi]
			p.mi++
			row.line += p.lineBase
			r.mal.queued = append(r.mal.queued, row)
			if r.mal.policy == errFail {
				return errQueuedFail
			}
			continue
		}
		i := p.ri
		p.ri++
		rec := c.recs[i]
		p.catchUp(int(rec.nsyms), int(rec.nnotes))
		r.line, r.lines.off, r.curStart = p.lineBase+c.meta[i].Line, c.meta[i].End, rec.start
		var ts int64
		var n int
		if r.kind == md.KindTrade {
			t := c.trades[i]
			t.Sym = p.remap[p.w][t.Sym]
			n, ts = len(r.trades), t.TS
			r.trades = append(r.trades, t)
		} else {
			q := c.quotes[i]
			q.Sym = p.remap[p.w][q.Sym]
			n, ts = len(r.quotes), q.TS
			r.quotes = append(r.quotes, q)
		}
		if err := r.place(n, ts, nil); err != nil {
			return err
		}
	}
	return nil
}

// lineText is the text of the line from start to end (its line ending
// dropped), at most its first maxRawBytes, for a row the jump guard holds.
func (p *pieceSet) lineText(start, end int64) ([]byte, error) {
	n := min(end-start, maxRawBytes+2)
	if int64(cap(p.text)) < n {
		p.text = make([]byte, n)
	}
	b := p.text[:n]
	if m, err := p.f.ReadAt(b, start); int64(m) < n {
		return nil, component.FileError("read", p.path, err)
	}
	if n == end-start {
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	}
	return b, nil
}

// close closes the workers' file; the workers must have stopped.
func (p *pieceSet) close() {
	p.f.Close()
}
