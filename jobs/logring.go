package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
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

// logRing keeps a job's most recent log records, bounded.
type logRing struct {
	mu   sync.Mutex
	buf  []LogRecord
	next int   // index the next record goes to once buf is full
	seq  int64 // last sequence number given
}

func newLogRing(n int) *logRing { return &logRing{buf: make([]LogRecord, 0, n)} }

func (r *logRing) add(rec LogRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	rec.Seq = r.seq
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, rec)
		return
	}
	r.buf[r.next] = rec
	r.next = (r.next + 1) % len(r.buf)
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
