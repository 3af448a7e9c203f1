package busfmt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// OnError is what a bus source does with a malformed message or row
// (the on_error param, as provider.replay's).
type OnError uint8

// On-error policies.
const (
	Drop       OnError = iota // count and log
	DeadLetter                // also append it to dead_letter_path
	Fail                      // stop the job
)

// OnErrorNames are the spellings of the on_error param.
var OnErrorNames = []string{"drop", "dead_letter", "fail"}

// String returns drop, dead_letter or fail.
func (o OnError) String() string { return OnErrorNames[o] }

// Logging of malformed messages is rate limited, as provider.replay's:
// the first logBurst one by one, then one line at most every logEvery.
const (
	logBurst = 10
	logEvery = 5 * time.Second
)

// MaxDeadLetterBytes is how much of a malformed message or row the
// dead-letter file keeps (raw_bytes then gives its full length).
const MaxDeadLetterBytes = 4096

// Origin is where a bus message was read; the dead-letter file and the
// error of on_error: fail name it. A source sets the fields that apply.
type Origin struct {
	Bus     string // kafka, nats, rabbitmq, mqtt or redis
	Topic   string // Kafka or MQTT topic
	Subject string // NATS subject
	Queue   string // RabbitMQ queue
	Stream  string // JetStream or Redis stream
	// Position, where the bus has one.
	Partition int32  // Kafka partition (with HasOffset)
	Offset    int64  // Kafka offset (with HasOffset)
	HasOffset bool   // Partition and Offset are set
	Seq       uint64 // JetStream stream sequence (0: none)
	ID        string // Redis stream entry id
}

// String is the origin as an error names it: "kafka topic t partition 0
// offset 17".
func (o *Origin) String() string {
	s := o.Bus
	add := func(k, v string) {
		if v != "" {
			s += " " + k + " " + v
		}
	}
	add("stream", o.Stream)
	add("topic", o.Topic)
	add("subject", o.Subject)
	add("queue", o.Queue)
	if o.HasOffset {
		s += " partition " + strconv.Itoa(int(o.Partition)) + " offset " + strconv.FormatInt(o.Offset, 10)
	}
	if o.Seq > 0 {
		s += " seq " + strconv.FormatUint(o.Seq, 10)
	}
	add("id", o.ID)
	return s
}

// attrs are the origin's log attributes.
func (o *Origin) attrs() []any {
	a := []any{"bus", o.Bus}
	add := func(k, v string) {
		if v != "" {
			a = append(a, k, v)
		}
	}
	add("stream", o.Stream)
	add("topic", o.Topic)
	add("subject", o.Subject)
	add("queue", o.Queue)
	if o.HasOffset {
		a = append(a, "partition", o.Partition, "offset", o.Offset)
	}
	if o.Seq > 0 {
		a = append(a, "seq", o.Seq)
	}
	add("id", o.ID)
	return a
}

// deadLetter is one line of the dead-letter file. Fields in this order;
// the empty ones are left out.
type deadLetter struct {
	Bus       string `json:"bus"`
	Stream    string `json:"stream,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Queue     string `json:"queue,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	ID        string `json:"id,omitempty"`
	Reason    string `json:"reason"`
	// Line is the refused row's line in a json or csv message (from 1).
	Line int `json:"line,omitempty"`
	// Row is a refused json or csv row's text.
	Row string `json:"row,omitempty"`
	// Raw is a whole refused text message (a csv message whose header
	// does not resolve); RawBase64 a whole refused mdp frame.
	Raw       string `json:"raw,omitempty"`
	RawBase64 string `json:"raw_base64,omitempty"`
	// RawBytes is the full length when Row, Raw or RawBase64 hold only
	// the first MaxDeadLetterBytes.
	RawBytes int `json:"raw_bytes,omitempty"`
}

// MessageError is a message a source refuses before decoding it (a Redis
// entry without its field); the source counts it and hands it to
// Malformed like a Decode error.
type MessageError struct {
	Reason string // counter reason
	Detail string
}

func (e *MessageError) Error() string { return e.Reason + ": " + e.Detail }

// refusedRow is a json or csv row a reader refused, kept for the
// dead-letter file.
type refusedRow struct {
	line   int
	reason string
	text   []byte // at most MaxDeadLetterBytes
	size   int
	whole  bool // text is the whole message (bad_header)
}

// malformed applies a source's on_error policy to what its reader
// refused: it logs (rate limited), appends dead-letter lines, or makes
// the error that stops the job. Only the error path comes here; the mutex
// lets Close run while a client callback reports.
type malformed struct {
	policy OnError
	log    *slog.Logger
	path   string

	mu      sync.Mutex
	file    *os.File
	buf     []byte
	total   int64
	logged  int
	quiet   int64
	lastLog time.Time
	closed  bool
}

// open opens the dead-letter file for appending (under dead_letter).
func (m *malformed) open() error {
	if m.policy != DeadLetter {
		return nil
	}
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	m.file = f
	return nil
}

// Malformed applies the source's on_error policy to a message whose
// Decode returned err (already counted by Decode): under drop it logs
// (rate limited) and returns nil; under dead_letter it also appends one
// JSON line per refused row, or one for the whole message, to
// dead_letter_path (one write per message, so nothing waits in a buffer),
// returning an error only when the file cannot be written; under fail it
// returns the error that stops the job, naming the reason and o. The
// source then acknowledges the message as it does a good one (except
// under fail). Safe for concurrent use.
func (r *Reader) Malformed(err error, msg []byte, o *Origin) error {
	m := &r.mal
	var re *RowsError
	rows := errors.As(err, &re)
	reason := "malformed"
	if rows {
		reason = re.Reason
	} else if fe := (*FrameError)(nil); errors.As(err, &fe) {
		reason = fe.Reason
	} else if me := (*MessageError)(nil); errors.As(err, &me) {
		reason = me.Reason
	}
	if m.policy == Fail {
		if rows {
			return fmt.Errorf("%s: malformed row at line %d of the message (%s: %s); on_error is fail", o, re.Line, reason, re.First)
		}
		return fmt.Errorf("%s: malformed message (%s: %v); on_error is fail", o, reason, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total++
	now := time.Now()
	switch {
	case m.logged < logBurst:
		m.logged++
		m.lastLog = now
		m.log.Warn("malformed bus message", append(o.attrs(), "reason", reason, "bytes", len(msg), "policy", m.policy.String(), "err", err)...)
	case now.Sub(m.lastLog) >= logEvery:
		m.log.Warn("malformed bus messages", append(o.attrs(), "reason", reason, "bytes", len(msg), "policy", m.policy.String(),
			"not_logged", m.quiet, "total", m.total, "err", err)...)
		m.quiet = 0
		m.lastLog = now
	default:
		m.quiet++
	}
	if m.file == nil {
		return nil
	}
	dl := deadLetter{Bus: o.Bus, Stream: o.Stream, Topic: o.Topic, Subject: o.Subject, Queue: o.Queue, Seq: o.Seq, ID: o.ID}
	if o.HasOffset {
		p, off := o.Partition, o.Offset
		dl.Partition, dl.Offset = &p, &off
	}
	m.buf = m.buf[:0]
	line := func(dl *deadLetter) error {
		b, err := json.Marshal(dl)
		if err != nil {
			return fmt.Errorf("dead-letter line of %s: %w", o, err)
		}
		m.buf = append(append(m.buf, b...), '\n')
		return nil
	}
	if rows {
		for _, row := range r.refused {
			d := dl
			d.Reason, d.Line = row.reason, row.line
			if row.whole {
				d.Raw, d.Line = string(row.text), 0
			} else {
				d.Row = string(row.text)
			}
			if row.size > len(row.text) {
				d.RawBytes = row.size
			}
			if err := line(&d); err != nil {
				return err
			}
		}
	} else {
		dl.Reason = reason
		keep := msg
		if len(keep) > MaxDeadLetterBytes {
			keep, dl.RawBytes = keep[:MaxDeadLetterBytes], len(msg)
		}
		if len(keep) > 0 {
			dl.RawBase64 = base64.StdEncoding.EncodeToString(keep)
		}
		if err := line(&dl); err != nil {
			return err
		}
	}
	if _, err := m.file.Write(m.buf); err != nil {
		return fmt.Errorf("write dead-letter file %s: %w", m.path, err)
	}
	return nil
}

// Close closes the dead-letter file (every line is written already) and
// logs what the rate limit kept out of the log. A source calls it in
// Cleanup; calling it again does nothing.
func (r *Reader) Close() error {
	m := &r.mal
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.quiet > 0 {
		m.log.Warn("malformed bus messages not logged individually", "count", m.quiet, "policy", m.policy.String())
		m.quiet = 0
	}
	if m.file == nil {
		return nil
	}
	err := m.file.Close()
	m.file = nil
	if err != nil {
		return fmt.Errorf("close dead-letter file %s: %w", m.path, err)
	}
	return nil
}
