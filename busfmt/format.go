package busfmt

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

// Format is how a bus message encodes a batch.
type Format uint8

// Formats.
const (
	MDP  Format = iota // the mdp binary frame
	JSON               // recfmt's JSON lines, one record per line
	CSV                // recfmt's CSV: a header line, then one row per record
)

// FormatNames are the spellings of the format param.
var FormatNames = []string{"mdp", "json", "csv"}

// String returns mdp, json or csv.
func (f Format) String() string { return FormatNames[f] }

// ParseFormat parses mdp, json or csv.
func ParseFormat(s string) (Format, error) {
	for i, n := range FormatNames {
		if s == n {
			return Format(i), nil
		}
	}
	return MDP, fmt.Errorf("unknown format %q (want mdp, json or csv)", s)
}

// Writer turns batches into message payloads. It reuses one buffer, so a
// payload is valid until the next call; not safe for concurrent use.
type Writer struct {
	format Format
	enc    Encoder
	buf    []byte
}

// NewWriter returns a writer of format f.
func NewWriter(f Format) *Writer { return &Writer{format: f} }

// Format is the writer's format.
func (w *Writer) Format() Format { return w.format }

// Message encodes b as one message: an mdp frame, JSON lines, or a CSV
// header and rows (the header names the kind's columns, or the derived
// schema's, so every message is self-describing).
func (w *Writer) Message(b *md.Batch, syms []md.Instrument) ([]byte, error) {
	w.buf = w.buf[:0]
	switch w.format {
	case MDP:
		var err error
		w.buf, err = w.enc.AppendFrame(w.buf, b, syms)
		return w.buf, err
	case JSON:
		w.buf = recfmt.AppendJSONLines(w.buf, b, syms)
	case CSV:
		reason := b.Reason != ""
		if b.Kind == md.KindDerived {
			w.buf = recfmt.AppendDerivedCSVHeader(w.buf, b.Schema, reason)
		} else {
			w.buf = recfmt.AppendCSVHeader(w.buf, b.Kind, reason)
		}
		for i, n := 0, b.Len(); i < n; i++ {
			w.buf = recfmt.AppendCSV(w.buf, b, i, syms, reason)
		}
	}
	return w.buf, nil
}

// Reader decodes mdp frames for a source and counts the messages it
// refuses: drops{reason=malformed} on the node's stats (so the node shows
// DEGRADED for a while), a status counter malformed_<reason> per reason,
// and the node metric malformed_messages_total.
type Reader struct {
	format Format
	dec    *Decoder
	rows   *rows // json and csv
	st     *engine.NodeStats
	total  *engine.Counter
	mal    malformed
	// keepRows: refused json and csv rows are kept in refused (for the
	// dead-letter file) until the next Decode.
	keepRows bool
	refused  []refusedRow
}

// NewReader returns a reader interning into nc's symbol table and counting
// on nc's stats and metrics.
func NewReader(nc *engine.NodeContext) *Reader {
	log := nc.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Reader{dec: NewDecoder(nc.Symbols), st: nc.Stats, mal: malformed{log: log},
		total: nc.Metrics().Counter("malformed_messages_total", "Bus messages refused as malformed (mdp frames that do not decode).")}
}

// Decoder is the reader's frame decoder (set Expect on it for a derived
// source).
func (r *Reader) Decoder() *Decoder { return r.dec }

// Decode appends the message's records to b. A refused frame leaves b as
// it was, is counted, and returns its *FrameError; refused rows of a json
// or csv message are counted one by one, the others kept, and a
// *RowsError returned. The caller hands the error to Malformed, which
// applies on_error.
func (r *Reader) Decode(msg []byte, b *md.Batch) error {
	if r.rows != nil {
		return r.decodeRows(msg, b)
	}
	err := r.dec.Decode(msg, b)
	if err == nil {
		return nil
	}
	reason := "malformed"
	var fe *FrameError
	if errors.As(err, &fe) {
		reason = fe.Reason
	}
	if r.st != nil {
		r.st.Drop("malformed", 1)
		r.st.Count("malformed_"+reason, 1)
	}
	r.total.Inc()
	return err
}
