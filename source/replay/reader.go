package replay

import (
	"bytes"
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"io"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// chunkSize is how many records a file reader decodes ahead.
const chunkSize = 1024

// fileReader decodes one file into a chunk of records. Each format has its
// own loop in fill, so the per-row path makes no interface calls; the merge
// in Run takes records from the chunks of all files.
type fileReader struct {
	idx    int // position in the path list; breaks event-time ties
	path   string
	format fileFormat
	kind   md.Kind
	dec    rowmap.Decoder // a copy per file: Parquet timestamp columns bring their own unit
	mal    *malformed
	filter timeFilter

	trades []md.Trade
	quotes []md.Quote
	head   int
	eof    bool

	lines *lineInput
	line  int64 // number of the last line (or Parquet row) read
	vals  rowmap.Vals
	rerr  rowmap.RowErr

	// CSV
	csv    rowmap.CSVSplitter
	cols   []rowmap.SlotCol // the mapped slots with their columns
	maxCol int
	// fast is the fused decoder of the tardis trades layout, used when
	// hasFast (the file's columns are in that order); rows it does not
	// take go through csv and dec.
	fast    rowmap.CSVFast
	hasFast bool

	// JSON lines; jfast as fast for CSV, used when hasJFast.
	json     *rowmap.JSONScanner
	jfast    rowmap.JSONFast
	hasJFast bool

	pq     *parquetInput
	pqFile *os.File

	jump jumpGuard

	// async is set when the file is decoded on its own goroutine
	// (decoders.go); this reader is then the merge's view of its chunks.
	async *asyncFile

	// pieces is set when a large plain file is decoded in pieces by
	// several workers (pieces.go); this reader then runs the rest of the
	// serial fill on their records in file order. pw is set on a worker's
	// reader.
	pieces   *pieceSet
	pw       *pieceWorker
	curStart int64 // with pieces: the offset where the current record's line starts

	// With checkpoints on (track), meta holds, for each record of the
	// chunk, where its file was after it (see recMeta); prev is the last
	// record's of the chunk before.
	track bool
	meta  []recMeta
	prev  recMeta
}

// recMeta is where a file was after one of its records: the (decompressed)
// byte offset after its line (a Parquet file: the rows read), its line
// number and the jump guard's newest event time once it was taken. A
// replay resumes the file there: every row before it was emitted or
// dropped, the rows after it are read again.
type recMeta struct {
	End    int64 `json:"end"`
	Line   int64 `json:"line"`
	Newest int64 `json:"newest"`
	Set    bool  `json:"set"`
}

// pos is where the file is now: the byte offset after the current line or,
// for Parquet, the rows read.
func (r *fileReader) pos() int64 {
	if r.lines != nil {
		return r.lines.off
	}
	return r.line
}

// note records the meta of a record just added to the chunk.
func (r *fileReader) note(end, line int64) {
	r.meta = append(r.meta, recMeta{End: end, Line: line, Newest: r.jump.newest, Set: true})
	if r.pw != nil {
		r.pw.noteRec(r.lines.start)
	}
}

// consumed is the meta of the last record taken from the file.
func (r *fileReader) consumed() recMeta {
	if r.head > 0 && r.head <= len(r.meta) {
		return r.meta[r.head-1]
	}
	return r.prev
}

// resume moves a freshly opened file to m: seek (Parquet: skip rows),
// line count and jump guard, as they were after the record m describes.
func (r *fileReader) resume(m recMeta) error {
	if !m.Set {
		return nil
	}
	if r.lines != nil {
		if err := r.lines.seekTo(m.End); err != nil {
			return fmt.Errorf("%s: resume at byte %d: %w", r.path, m.End, err)
		}
	} else if err := r.pq.seekRow(m.End); err != nil {
		return fmt.Errorf("%s: resume at row %d: %w", r.path, m.End, err)
	}
	r.line = m.Line
	if r.jump.maxJump > 0 {
		r.jump.started = false
		r.jump.advance(m.Newest)
	}
	r.prev = m
	return nil
}

// timeFilter keeps records with start <= ts < end.
type timeFilter struct {
	start, end int64
}

func (f timeFilter) pass(ts int64) bool { return ts >= f.start && ts < f.end }

// all reports whether every event time passes: no start and no end.
func (f timeFilter) all() bool { return f.start == md.MinTime && f.end == md.MaxTime }

// readerConfig is what every file reader shares.
type readerConfig struct {
	lay     *rowmap.Layout
	format  string
	comp    string
	dec     *rowmap.Decoder
	mal     *malformed
	filter  timeFilter
	bufSize int
	maxJump int64         // ns; 0 disables the jump guard
	maxLine int64         // max_line_bytes
	counter *atomic.Int64 // raw bytes read, all files
	track   bool          // checkpoints on: keep each record's recMeta
}

func openReader(idx int, path string, rc *readerConfig) (*fileReader, error) {
	f, c, err := detect(path, rc.format, rc.comp)
	if err != nil {
		return nil, err
	}
	r := &fileReader{idx: idx, path: path, format: f, kind: rc.lay.Kind, dec: *rc.dec, mal: rc.mal,
		filter: rc.filter, csv: rowmap.CSVSplitter{Delim: rc.lay.Delim}, jump: jumpGuard{maxJump: rc.maxJump}, track: rc.track}
	if r.kind == md.KindTrade {
		r.trades = make([]md.Trade, 0, chunkSize+chunkSlack)
	} else {
		r.quotes = make([]md.Quote, 0, chunkSize+chunkSlack)
	}
	switch f {
	case formatParquet:
		st, err := os.Stat(path)
		if err != nil {
			return nil, component.FileError("stat", path, err)
		}
		// Parquet needs random access: a plain file is read in place, a
		// compressed one is decompressed into memory first.
		var ra io.ReaderAt
		size := st.Size()
		if c == compNone {
			f, err := os.Open(path)
			if err != nil {
				return nil, component.FileError("open", path, err)
			}
			r.pqFile, ra = f, f
		} else {
			data, err := readAll(path, c, rc.counter)
			if err != nil {
				return nil, err
			}
			// readAll counted the raw bytes; progress counts them again as
			// rows are decoded, so take them back.
			rc.counter.Add(-size)
			ra, size = bytes.NewReader(data), int64(len(data))
		}
		if r.pq, err = openParquet(path, ra, size, st.Size(), rc.lay, rc.counter); err != nil {
			r.close()
			return nil, err
		}
		if u := r.pq.tsUnit[rowmap.SlotTS]; u > 0 {
			r.dec.TS = rowmap.UnitParser(u)
		}
		if u := r.pq.tsUnit[rowmap.SlotIngest]; u > 0 {
			r.dec.Ingest = rowmap.UnitParser(u)
		}
		return r, nil
	case formatJSONL:
		if r.json, err = rowmap.NewJSONScanner(rc.lay); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r.jfast, r.hasJFast = rowmap.NewJSONFast(&r.dec, rc.lay)
	}
	if r.lines, err = openLines(path, c, rc.bufSize, rc.maxLine, rc.counter); err != nil {
		return nil, err
	}
	if f == formatCSV {
		if err := r.csvHeader(rc.lay); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

func (r *fileReader) close() error {
	if r.pieces != nil {
		r.pieces.close()
	}
	if r.lines != nil {
		return r.lines.close()
	}
	var err error
	if r.pq != nil {
		err = r.pq.rd.Close()
	}
	if r.pqFile != nil {
		if cerr := r.pqFile.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// csvHeader resolves column names to indexes, reading the header line when
// the file has one.
func (r *fileReader) csvHeader(lay *rowmap.Layout) error {
	var header [][]byte
	if lay.Header {
		line, err := r.lines.readLine()
		if err == io.EOF {
			return fmt.Errorf("%s: empty file; expected a header line", r.path)
		}
		if err == errLineTooLong {
			return fmt.Errorf("%s:1: the header line (%d bytes) is longer than max_line_bytes (%d)", r.path, r.lines.size, r.lines.max)
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line = 1
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		if p := r.csv.Split(line, 1<<30); p != "" {
			return fmt.Errorf("%s:1: header: %s", r.path, p)
		}
		for _, f := range r.csv.Fields {
			header = append(header, bytes.Clone(f))
		}
	}
	var err error
	if r.cols, r.maxCol, err = lay.CSVColumns(header); err != nil {
		return fmt.Errorf("%s: %w", r.path, err)
	}
	r.fast, r.hasFast = rowmap.NewCSVFast(&r.dec, r.cols, lay.Delim)
	return nil
}

// headTS is the event time of the next record in the chunk.
func (r *fileReader) headTS() int64 {
	if r.kind == md.KindTrade {
		return r.trades[r.head].TS
	}
	return r.quotes[r.head].TS
}

// buffered is the number of records left in the chunk.
func (r *fileReader) buffered() int {
	if r.kind == md.KindTrade {
		return len(r.trades) - r.head
	}
	return len(r.quotes) - r.head
}

// fill refills an exhausted chunk. At the end of the file it leaves the
// chunk empty and sets eof. Errors are I/O failures, or a malformed row
// under on_error: fail.
func (r *fileReader) fill() error {
	if n := len(r.meta); n > 0 {
		r.prev = r.meta[n-1]
	}
	if r.async != nil {
		return r.fillAsync()
	}
	r.meta = r.meta[:0]
	r.head = 0
	r.trades = r.trades[:0]
	r.quotes = r.quotes[:0]
	if r.eof {
		return nil
	}
	if r.pieces != nil {
		return r.fillPieces()
	}
	switch r.format {
	case formatCSV:
		return r.fillCSV()
	case formatJSONL:
		return r.fillJSON()
	}
	return r.fillParquet()
}

// longLine reports a line longer than max_line_bytes (head is its start).
func (r *fileReader) longLine(head []byte) error {
	e := rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: fmt.Sprintf("line of %d bytes is longer than max_line_bytes (%d)", r.lines.size, r.lines.max)}
	return r.mal.reportSized(r.path, r.line, head, r.lines.size, &e)
}

// accept decodes r.vals into the chunk. A malformed row is reported (raw
// is the row's text, or nil for Parquet, whose text is built only when
// needed); rows outside the filters are skipped without one. The error is
// the one that stops the job (on_error: fail).
func (r *fileReader) accept(raw []byte) error {
	r.rerr.Prob = rowmap.ProbNone
	var ts int64
	var n int
	if r.kind == md.KindTrade {
		n = len(r.trades)
		r.trades = r.trades[:n+1]
		if !r.dec.Trade(&r.vals, &r.trades[n], &r.rerr) {
			r.trades = r.trades[:n]
			return r.reportRow(raw)
		}
		ts = r.trades[n].TS
	} else {
		n = len(r.quotes)
		r.quotes = r.quotes[:n+1]
		if !r.dec.Quote(&r.vals, &r.quotes[n], &r.rerr) {
			r.quotes = r.quotes[:n]
			return r.reportRow(raw)
		}
		ts = r.quotes[n].TS
	}
	return r.place(n, ts, raw)
}

// place runs the checks that follow decoding on the record just decoded
// into the chunk at index n (event time ts; raw as for accept): the jump
// guard, the time filter and, with checkpoints, its meta.
func (r *fileReader) place(n int, ts int64, raw []byte) error {
	if r.jump.maxJump > 0 {
		if keep, err := r.jumpCheck(n, ts, raw); !keep || err != nil {
			return err
		}
	}
	if !r.filter.pass(ts) {
		if r.kind == md.KindTrade {
			r.trades = r.trades[:n]
		} else {
			r.quotes = r.quotes[:n]
		}
		return nil
	}
	if r.track {
		r.note(r.pos(), r.line)
	}
	return nil
}

// reportRow reports the current row as malformed when decoding set a
// problem (a row of a filtered-out symbol has none).
func (r *fileReader) reportRow(raw []byte) error {
	if r.rerr.Prob == rowmap.ProbNone {
		return nil
	}
	if raw == nil && r.pq != nil {
		raw = r.pq.rowText()
	}
	return r.mal.report(r.path, r.line, raw, &r.rerr)
}

// fastRows decodes rows straight from the line window with the fused
// decoder (CSV or JSON lines) while it takes them: no search for each
// line's end first, the decoder finds it. It stops at the first row the
// decoder leaves to the line reader (one cut by the window's end, one off
// its grammar, a blank line), with the window and offsets after the last
// row it took, and when the chunk is full.
func (r *fileReader) fastRows() error {
	in := r.lines
	win := in.win
	n := len(r.trades)
	room := chunkSize + r.head - n
	if room <= 0 {
		return nil
	}
	if r.jump.maxJump <= 0 && !r.track {
		// Without a jump guard or checkpoints, place only applies the
		// time filter: the decoder takes the rows in one loop, the filter
		// with them, and no call is made per row.
		var stored, used, rows, last int
		if r.format == formatCSV {
			stored, used, rows, last = r.fast.RowsAt(&r.dec, win, r.trades[n:n+room], !r.filter.all(), r.filter.start, r.filter.end)
		} else {
			stored, used, rows, last = r.jfast.RowsAt(&r.dec, win, r.trades[n:n+room], !r.filter.all(), r.filter.start, r.filter.end)
		}
		r.trades = r.trades[:n+stored]
		if rows > 0 {
			in.start = in.off + int64(last)
			in.off += int64(used)
			r.line += int64(rows)
		}
		in.win = win[used:]
		in.used += used
		return nil
	}
	// Row by row, each through place.
	p := 0
	var err error
	for len(r.trades)-r.head < chunkSize {
		n := len(r.trades)
		r.trades = r.trades[:n+1]
		var res rowmap.FastResult
		var e int
		if r.format == formatCSV {
			res, e = r.fast.TradeAt(&r.dec, win[p:], &r.trades[n])
		} else {
			res, e = r.jfast.TradeAt(&r.dec, win[p:], &r.trades[n])
		}
		if res == rowmap.FastFallback {
			r.trades = r.trades[:n]
			break
		}
		row := win[p : p+e]
		p += e
		in.start = in.off
		in.off += int64(e)
		r.line++
		if res == rowmap.FastSkip {
			r.trades = r.trades[:n]
			continue
		}
		row = row[:len(row)-1] // the line as readLine returns it
		if k := len(row) - 1; k >= 0 && row[k] == '\r' {
			row = row[:k]
		}
		if err = r.place(n, r.trades[n].TS, row); err != nil {
			break
		}
	}
	in.win = win[p:]
	in.used += p
	return err
}

func (r *fileReader) fillCSV() error {
	limit := r.maxCol + 1
	for r.buffered() < chunkSize {
		if r.hasFast && len(r.lines.win) > 0 {
			if err := r.fastRows(); err != nil {
				return err
			}
			if r.buffered() >= chunkSize {
				break
			}
		}
		line, err := r.lines.readLine()
		if err == io.EOF {
			r.eof = true
			return r.finishHeld()
		}
		if err == errLineTooLong {
			r.line++
			if err := r.longLine(line); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line++
		if len(line) == 0 {
			continue
		}
		if r.hasFast {
			n := len(r.trades)
			r.trades = r.trades[:n+1]
			switch r.fast.Trade(&r.dec, line, &r.trades[n]) {
			case rowmap.FastOK:
				if err := r.place(n, r.trades[n].TS, line); err != nil {
					return err
				}
				continue
			case rowmap.FastSkip:
				r.trades = r.trades[:n]
				continue
			}
			r.trades = r.trades[:n]
		}
		if p := r.csv.Split(line, limit); p != "" {
			r.rerr = rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: p}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		if len(r.csv.Fields) < limit {
			r.rerr = rowmap.RowErr{Prob: rowmap.ProbFields, Have: len(r.csv.Fields), Want: limit}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		for _, sc := range r.cols {
			r.vals[sc.Slot] = r.csv.Fields[sc.Col]
		}
		if err := r.accept(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileReader) fillJSON() error {
	for r.buffered() < chunkSize {
		if r.hasJFast && len(r.lines.win) > 0 {
			if err := r.fastRows(); err != nil {
				return err
			}
			if r.buffered() >= chunkSize {
				break
			}
		}
		line, err := r.lines.readLine()
		if err == io.EOF {
			r.eof = true
			return r.finishHeld()
		}
		if err == errLineTooLong {
			r.line++
			if err := r.longLine(line); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		r.line++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if r.hasJFast {
			n := len(r.trades)
			r.trades = r.trades[:n+1]
			switch r.jfast.Trade(&r.dec, line, &r.trades[n]) {
			case rowmap.FastOK:
				if err := r.place(n, r.trades[n].TS, line); err != nil {
					return err
				}
				continue
			case rowmap.FastSkip:
				r.trades = r.trades[:n]
				continue
			}
			r.trades = r.trades[:n]
		}
		if p := r.json.Scan(line, &r.vals); p != "" {
			r.rerr = rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: p}
			if err := r.mal.report(r.path, r.line, line, &r.rerr); err != nil {
				return err
			}
			continue
		}
		if err := r.accept(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileReader) fillParquet() error {
	for r.buffered() < chunkSize {
		ok, err := r.pq.next(&r.vals)
		if err != nil {
			return component.FileError("read", r.path, err)
		}
		if !ok {
			r.eof = true
			return r.finishHeld()
		}
		r.line++
		if err := r.accept(nil); err != nil {
			return err
		}
	}
	return nil
}

// formatNum renders a Parquet number as text for the shared decoder.
func formatNum(dst []byte, f float64, bits int) []byte {
	return strconv.AppendFloat(dst, f, 'f', -1, bits)
}
