package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"log/slog"
	"os"
	"time"

	"github.com/mdpio/mdp/engine"
)

// onError is what happens to a malformed row.
type onError uint8

const (
	errDrop onError = iota
	errDeadLetter
	errFail
)

// Logging of malformed rows is rate limited so a file of garbage cannot
// flood the log: the first logBurst rows are logged one by one, then one
// summary line at most every logEvery.
const (
	logBurst = 10
	logEvery = 5 * time.Second
)

// malformed counts, logs and dead-letters rejected rows. It is used from the
// source's goroutine only.
type malformed struct {
	policy  onError
	log     *slog.Logger
	total   int64
	pending int64 // not yet added to the node's drop counter
	logged  int
	quiet   int64 // rows not logged since the last summary
	lastLog time.Time

	dlPath string
	dlFile *os.File
	dl     *bufio.Writer
	closed bool

	// queue makes report keep each row (its reason and a copy of its text)
	// in queued instead of handling it: a decoder on its own goroutine
	// queues, and the merge hands the rows to the job's malformed (replay)
	// when it takes the chunk they were found in, where a serial replay
	// would have reported them.
	queue  bool
	queued []queuedRow
}

// queuedRow is a malformed row a decoder queued.
type queuedRow struct {
	file   string
	line   int64
	raw    []byte
	size   int64
	reason string
}

// errQueuedFail stops a queuing decoder at a malformed row under
// on_error: fail; the merge reports the row, which fails the job.
var errQueuedFail = errors.New("malformed row under on_error: fail")

// replay handles rows a decoder queued, in order, adding lineBase to their
// line numbers; it returns the error that stops the job, as report does.
func (m *malformed) replay(rows []queuedRow, lineBase int64) error {
	for _, row := range rows {
		if err := m.handle(row.file, row.line+lineBase, row.raw, row.size, row.reason); err != nil {
			return err
		}
	}
	return nil
}

// deadLetter is one line of the dead-letter file.
type deadLetter struct {
	File   string `json:"file"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Raw    string `json:"raw"`
	// RawBytes is the row's full length when Raw holds only its first
	// maxRawBytes bytes.
	RawBytes int64 `json:"raw_bytes,omitempty"`
}

// maxRawBytes is how much of a malformed row is dead-lettered: enough to
// see what went wrong, never a copy of a runaway line.
const maxRawBytes = 4096

// truncateRaw is the part of a malformed row that is kept.
func truncateRaw(raw []byte) []byte {
	if len(raw) > maxRawBytes {
		return raw[:maxRawBytes]
	}
	return raw
}

func (m *malformed) openDeadLetter() error {
	if m.policy != errDeadLetter {
		return nil
	}
	f, err := os.OpenFile(m.dlPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open dead-letter file: %w", err)
	}
	m.dlFile, m.dl = f, bufio.NewWriter(f)
	return nil
}

// report handles one malformed row (line is 1-based; for Parquet the row
// number). Under on_error: fail it returns the error that stops the job.
func (m *malformed) report(file string, line int64, raw []byte, e *rowmap.RowErr) error {
	return m.reportSized(file, line, raw, int64(len(raw)), e)
}

// reportSized is report for a row of size bytes of which raw is the start
// (a line too long to keep).
func (m *malformed) reportSized(file string, line int64, raw []byte, size int64, e *rowmap.RowErr) error {
	if m.queue {
		m.queued = append(m.queued, queuedRow{file: file, line: line, raw: bytes.Clone(truncateRaw(raw)), size: size, reason: e.Reason()})
		if m.policy == errFail {
			return errQueuedFail
		}
		return nil
	}
	return m.handle(file, line, raw, size, e.Reason())
}

// handle counts, logs and dead-letters one malformed row.
func (m *malformed) handle(file string, line int64, raw []byte, size int64, reason string) error {
	if m.policy == errFail {
		return fmt.Errorf("%s:%d: malformed row (%s); on_error is fail", file, line, reason)
	}
	m.total++
	m.pending++
	now := time.Now()
	switch {
	case m.logged < logBurst:
		m.logged++
		m.log.Warn("malformed row", "file", file, "line", line, "reason", reason, "policy", m.policyName())
		m.lastLog = now
	case now.Sub(m.lastLog) >= logEvery:
		m.log.Warn("malformed rows", "file", file, "line", line, "reason", reason, "policy", m.policyName(),
			"not_logged", m.quiet, "total", m.total)
		m.quiet = 0
		m.lastLog = now
	default:
		m.quiet++
	}
	if m.dl != nil {
		dl := deadLetter{File: file, Line: line, Reason: reason, Raw: string(truncateRaw(raw))}
		if size > int64(len(dl.Raw)) {
			dl.RawBytes = size
		}
		rec, err := json.Marshal(dl)
		if err != nil {
			return fmt.Errorf("dead-letter row %s:%d: %w", file, line, err)
		}
		rec = append(rec, '\n')
		if _, err := m.dl.Write(rec); err != nil {
			return fmt.Errorf("write dead-letter file %s: %w", m.dlPath, err)
		}
	}
	return nil
}

func (m *malformed) policyName() string {
	if m.policy == errDeadLetter {
		return "dead_letter"
	}
	return "drop"
}

// flush adds the pending count to the node's drop counter and makes the
// dead-letter lines written so far durable in the OS.
func (m *malformed) flush(st *engine.NodeStats) error {
	if m.pending > 0 && st != nil {
		st.Drop("malformed", m.pending)
	}
	m.pending = 0
	if m.dl != nil && m.dl.Buffered() > 0 {
		if err := m.dl.Flush(); err != nil {
			return fmt.Errorf("write dead-letter file %s: %w", m.dlPath, err)
		}
	}
	return nil
}

// close flushes and closes the dead-letter file and logs the total.
func (m *malformed) close(st *engine.NodeStats) error {
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.flush(st)
	if m.quiet > 0 {
		m.log.Warn("malformed rows not logged individually", "count", m.quiet)
		m.quiet = 0
	}
	if m.total > 0 {
		m.log.Info("replay dropped malformed rows", "count", m.total, "policy", m.policyName())
	}
	if m.dlFile != nil {
		if cerr := m.dlFile.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close dead-letter file %s: %w", m.dlPath, cerr)
		}
		m.dlFile, m.dl = nil, nil
	}
	return err
}
