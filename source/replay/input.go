package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mdpio/mdp/component"
)

// fileFormat is a file's record encoding.
type fileFormat uint8

const (
	formatCSV fileFormat = iota + 1
	formatJSONL
	formatParquet
)

func (f fileFormat) String() string {
	switch f {
	case formatCSV:
		return "csv"
	case formatJSONL:
		return "jsonl"
	case formatParquet:
		return "parquet"
	}
	return "unknown"
}

// compression of a file.
type compression uint8

const (
	compNone compression = iota
	compGzip
	compZstd
)

// detect works out the compression and format of path from its extension
// (data.csv.gz, day.jsonl.zst, trades.parquet), unless the params force them.
func detect(path, format, comp string) (fileFormat, compression, error) {
	name := strings.ToLower(filepath.Base(path))
	c := compNone
	switch {
	case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".gzip"):
		c = compGzip
		name = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".gzip")
	case strings.HasSuffix(name, ".zst"), strings.HasSuffix(name, ".zstd"):
		c = compZstd
		name = strings.TrimSuffix(strings.TrimSuffix(name, ".zst"), ".zstd")
	}
	switch comp {
	case "none":
		c = compNone
	case "gzip":
		c = compGzip
	case "zstd":
		c = compZstd
	}
	var f fileFormat
	switch format {
	case "csv":
		f = formatCSV
	case "jsonl":
		f = formatJSONL
	case "parquet":
		f = formatParquet
	default:
		switch filepath.Ext(name) {
		case ".csv", ".txt", ".tsv":
			f = formatCSV
		case ".jsonl", ".ndjson", ".json":
			f = formatJSONL
		case ".parquet", ".pq":
			f = formatParquet
		default:
			return 0, 0, fmt.Errorf("%s: cannot tell the format from the extension (want .csv, .jsonl or .parquet, optionally with .gz or .zst); set format", path)
		}
	}
	return f, c, nil
}

// expandPaths resolves each entry of the path param: a file, or a glob whose
// matches are taken in name order. Each file appears once.
func expandPaths(entries []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, e := range entries {
		var matches []string
		if strings.ContainsAny(e, "*?[") {
			m, err := filepath.Glob(e)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", e, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("path %q matches no files", e)
			}
			sort.Strings(m)
			matches = m
		} else {
			matches = []string{e}
		}
		for _, m := range matches {
			st, err := os.Stat(m)
			if err != nil {
				return nil, component.FileError("path", m, err)
			}
			if st.IsDir() {
				return nil, fmt.Errorf("path %q is a directory; use a glob such as %s", m, filepath.Join(m, "*.csv"))
			}
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("path: no files given")
	}
	return out, nil
}

// countingReader counts the raw (compressed) bytes read, for progress.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// lineInput reads a text file (CSV or JSON lines) line by line.
type lineInput struct {
	f    *os.File
	zr   func() // closes the decompressor
	rd   *bufio.Reader
	long []byte // a line longer than the buffer
	max  int64  // longest line kept, in bytes; 0: no limit
	size int64  // length of the line errLineTooLong reported
	// off is the (decompressed) byte offset after the last line read; src
	// is what rd reads, for a plain file's seek.
	off int64
	src io.Reader
	// start is the offset at which the last line read began.
	start int64
	// win is the part of rd's buffer after the last line read, whole
	// lines of which readLine returns without calling rd; used is how many
	// bytes of the buffer it has returned since rd last read them.
	win  []byte
	used int
}

// sync hands the bytes readLine took from the window back to rd as read
// and empties the window, before anything else reads rd.
func (in *lineInput) sync() {
	if in.used > 0 {
		in.rd.Discard(in.used) // buffered: cannot fail
	}
	in.win, in.used = nil, 0
}

// reset makes src the input, with nothing buffered.
func (in *lineInput) reset(src io.Reader) {
	in.win, in.used = nil, 0
	in.rd.Reset(src)
}

// buffered is how many bytes were read from the input and not yet taken
// as lines.
func (in *lineInput) buffered() int {
	return in.rd.Buffered() - in.used
}

// errLineTooLong is readLine's report of a line longer than max_line_bytes:
// the line was read past (memory stays bounded by the limit) and its first
// bytes are returned with the error, its length is in size.
var errLineTooLong = errors.New("line too long")

func openLines(path string, c compression, bufSize int, maxLine int64, counter *atomic.Int64) (*lineInput, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, component.FileError("open", path, err)
	}
	in := &lineInput{f: f, max: maxLine}
	var r io.Reader = &countingReader{r: f, n: counter}
	switch c {
	case compGzip:
		zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
		if err != nil {
			f.Close()
			return nil, component.FileError("open", path, err) // the error says "gzip: …"
		}
		in.zr = func() { zr.Close() }
		r = zr
	case compZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, component.FileError("open", path, err) // the error says "zstd: …"
		}
		in.zr = zr.Close
		r = zr
	}
	in.src = r
	in.rd = bufio.NewReaderSize(r, bufSize)
	return in, nil
}

// seekTo moves to the (decompressed) byte offset off, at or after the
// current one: a plain file seeks, so the bytes before off are never read;
// a compressed one is decompressed up to off and the bytes dropped, which
// still spares parsing them.
func (in *lineInput) seekTo(off int64) error {
	if off < in.off {
		return fmt.Errorf("offset %d is before the current one %d", off, in.off)
	}
	in.sync()
	if in.zr == nil {
		if _, err := in.f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		in.rd.Reset(in.src)
	} else if _, err := io.CopyN(io.Discard, in.rd, off-in.off); err != nil {
		return err
	}
	in.off = off
	return nil
}

// readLine returns the next line without its line ending, or io.EOF. The
// slice is valid until the next call. A line longer than max is read past
// and reported with errLineTooLong.
func (in *lineInput) readLine() ([]byte, error) {
	in.start = in.off
	// A whole line in the window: no call into rd, which would search for
	// the same '\n' behind the bookkeeping of a general reader.
	if j := bytes.IndexByte(in.win, '\n'); j >= 0 {
		line := in.win[:j]
		in.win = in.win[j+1:]
		in.used += j + 1
		in.off += int64(j + 1)
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
	}
	in.sync()
	line, err := in.readSlow()
	if err == nil {
		// What rd holds after the line (valid until rd next reads, which
		// only sync's caller does) is the next window.
		in.win, _ = in.rd.Peek(in.rd.Buffered())
	}
	return line, err
}

// readSlow is readLine through rd.ReadSlice: a line cut by the buffer's end,
// a long one, the end of the input.
func (in *lineInput) readSlow() ([]byte, error) {
	line, err := in.rd.ReadSlice('\n')
	in.off += int64(len(line))
	if err == bufio.ErrBufferFull {
		in.long = append(in.long[:0], line...)
		size := int64(len(line))
		for err == bufio.ErrBufferFull {
			line, err = in.rd.ReadSlice('\n')
			in.off += int64(len(line))
			size += int64(len(line))
			if in.max == 0 || int64(len(in.long)) <= in.max {
				in.long = append(in.long, line...)
			}
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			size--
		}
		if in.max > 0 && size > in.max {
			in.size = size
			return in.long[:min(len(in.long), maxRawBytes)], errLineTooLong
		}
		line = in.long
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(line) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func (in *lineInput) close() error {
	if in.zr != nil {
		in.zr()
	}
	return in.f.Close()
}

// readAll returns a whole (decompressed) file, for Parquet, whose reader
// needs random access.
func readAll(path string, c compression, counter *atomic.Int64) ([]byte, error) {
	in, err := openLines(path, c, 64<<10, 0, counter)
	if err != nil {
		return nil, err
	}
	defer in.close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(in.rd); err != nil {
		return nil, component.FileError("read", path, err)
	}
	return buf.Bytes(), nil
}
