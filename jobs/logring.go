package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mdpio/mdp/runtime"
)

// LogRecord is one log record of a job, as the API returns it. Its text
// has passed the job's Redactor.
type LogRecord struct {
	// Seq numbers a job's records from 1, across runs; ask for the records
	// after the last one seen to follow the log.
	Seq     int64          `json:"seq"`
	Time    string         `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"msg"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// logRing keeps a job's most recent log records, bounded. Followers wait
// on wake, which the next record (or close) closes; it exists only while
// someone waits, so a ring nobody follows costs nothing more.
type logRing struct {
	mu     sync.Mutex
	buf    []LogRecord
	next   int   // index the next record goes to once buf is full
	seq    int64 // last sequence number given
	wake   chan struct{}
	closed bool // the job was deleted
}

func newLogRing(n int) *logRing { return &logRing{buf: make([]LogRecord, 0, n)} }

func (r *logRing) add(rec LogRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	rec.Seq = r.seq
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, rec)
		return
	}
	r.buf[r.next] = rec
	r.next = (r.next + 1) % len(r.buf)
}

// close wakes every follower for good: the job is gone.
func (r *logRing) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// follow returns the records after since and a channel closed when the
// next one arrives; false when the ring was closed.
func (r *logRing) follow(since int64) ([]LogRecord, <-chan struct{}, bool) {
	recs := r.tail(0, since)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return recs, nil, false
	}
	if r.seq > since && (len(recs) == 0 || recs[len(recs)-1].Seq < r.seq) {
		// A record came between the two locks: come back at once.
		c := make(chan struct{})
		close(c)
		return recs, c, true
	}
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	return recs, r.wake, true
}

// tail returns at most n of the newest records with Seq above since, oldest
// first; n <= 0 means all the ring holds.
func (r *logRing) tail(n int, since int64) []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LogRecord, 0, len(r.buf))
	for i := range r.buf {
		rec := r.buf[(r.next+i)%len(r.buf)]
		if rec.Seq > since {
			out = append(out, rec)
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// ringHandler is a slog.Handler that sends every record to next and keeps
// it in a ring. The runtime wraps it in the job's redacting handler, so the
// ring only ever sees redacted text.
type ringHandler struct {
	next  slog.Handler
	ring  *logRing
	attrs []slog.Attr // keys already prefixed with their group
	group string
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		rec := LogRecord{Time: r.Time.UTC().Format(time.RFC3339Nano), Level: r.Level.String(), Message: r.Message}
		if len(h.attrs) > 0 || r.NumAttrs() > 0 {
			rec.Attrs = map[string]any{}
			for _, a := range h.attrs {
				putAttr(rec.Attrs, "", a)
			}
			r.Attrs(func(a slog.Attr) bool {
				putAttr(rec.Attrs, h.group, a)
				return true
			})
		}
		h.ring.add(rec)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func putAttr(m map[string]any, group string, a slog.Attr) {
	v := a.Value.Resolve()
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			putAttr(m, key, g)
		}
		return
	}
	switch v.Kind() {
	case slog.KindString:
		m[key] = v.String()
	case slog.KindInt64:
		m[key] = v.Int64()
	case slog.KindUint64:
		m[key] = v.Uint64()
	case slog.KindFloat64:
		m[key] = v.Float64()
	case slog.KindBool:
		m[key] = v.Bool()
	default:
		m[key] = v.String()
	}
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		if h.group != "" {
			a.Key = h.group + "." + a.Key
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// MaxStdoutLine is the longest line of a job's standard output kept as one
// log record; a longer line is cut into records of this size.
const MaxStdoutLine = 64 << 10

// stdoutWriter is a served job's standard output (sink.stdout,
// sink.checksum): each line becomes a record of the job's log ring with the
// attribute stream=stdout, its text through the job's Redactor, instead of
// mixing every job's data into the server's own output.
type stdoutWriter struct {
	mu   sync.Mutex
	ring *logRing
	red  *runtime.Redactor
	buf  []byte // the line being written
	// line, when set, takes each line instead of the ring (a child
	// process's stderr: its JSON log records).
	line func([]byte)
}

func (w *stdoutWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= MaxStdoutLine {
				w.emit(w.buf[:MaxStdoutLine])
				w.buf = append(w.buf[:0], w.buf[MaxStdoutLine:]...)
			}
			break
		}
		line := p[:i]
		if len(w.buf) > 0 {
			w.buf = append(w.buf, line...)
			line = w.buf
		}
		for len(line) > MaxStdoutLine {
			w.emit(line[:MaxStdoutLine])
			line = line[MaxStdoutLine:]
		}
		w.emit(line)
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush keeps what is left of an unfinished last line; the run has ended.
func (w *stdoutWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *stdoutWriter) emit(line []byte) {
	if w.line != nil {
		w.line(line)
		return
	}
	w.ring.add(LogRecord{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Level: slog.LevelInfo.String(),
		Message: w.red.String(string(bytes.TrimSuffix(line, []byte("\r")))), Attrs: map[string]any{"stream": "stdout"},
	})
}
