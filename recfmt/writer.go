package recfmt

import (
	"fmt"
	"io"

	"github.com/mdpio/mdp/md"
)

// flushAt is the buffer size at which WriteBatch writes mid-batch, so a huge
// batch does not grow the buffer without bound.
const flushAt = 256 << 10

// Writer encodes batches onto an io.Writer in one Format. It encodes a whole
// batch into a reused buffer and hands it to the underlying writer in one
// Write, so a plain *os.File gets one system call per batch.
//
// In CSV a stream holds one record kind (and, for derived records, one
// schema): the header is written before the first record and names that
// kind's columns, and a batch of another kind or schema is an error. The reason column is present when the first batch carried a
// Reason; a later batch with a reason on a stream without that column is an
// error too, so no reason is ever lost. A Writer is not safe for concurrent
// use.
type Writer struct {
	w      io.Writer
	format Format
	buf    []byte

	started bool
	kind    md.Kind
	schema  *md.Schema
	reason  bool
	records int64
}

// NewWriter returns a Writer that encodes onto w.
func NewWriter(w io.Writer, f Format) *Writer {
	return &Writer{w: w, format: f, buf: make([]byte, 0, 64<<10)}
}

// Format is the writer's encoding.
func (w *Writer) Format() Format { return w.format }

// Records is how many records have been written.
func (w *Writer) Records() int64 { return w.records }

// WriteBatch encodes every record of b and writes them. syms resolves symbol
// ids (md.SymbolTable.Snapshot taken after b arrived).
func (w *Writer) WriteBatch(b *md.Batch, syms []md.Instrument) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	buf := w.buf[:0]
	if w.format == CSV {
		hasReason := b.Reason != ""
		if !w.started {
			w.started, w.kind, w.schema, w.reason = true, b.Kind, b.Schema, hasReason
			if b.Kind == md.KindDerived {
				buf = AppendDerivedCSVHeader(buf, b.Schema, hasReason)
			} else {
				buf = AppendCSVHeader(buf, b.Kind, hasReason)
			}
		} else if b.Kind != w.kind {
			return fmt.Errorf("csv output holds one record kind: got %s records after %s records (use format json, or one sink per kind)", b.Kind, w.kind)
		} else if b.Kind == md.KindDerived && !b.Schema.Equal(w.schema) {
			return fmt.Errorf("csv output holds one record schema: got %s records after %s records (use format json, or one sink per schema)", b.Schema.Name(), w.schema.Name())
		} else if hasReason && !w.reason {
			return fmt.Errorf("csv output has no reason column (its first records had none) but got %d %s records with reason %q (use format json, or a separate sink for diverted records)", n, b.Kind, b.Reason)
		}
	}
	for i := 0; i < n; i++ {
		if w.format == CSV {
			buf = AppendCSV(buf, b, i, syms, w.reason)
		} else {
			buf = AppendJSON(buf, b, i, syms)
			buf = append(buf, '\n')
		}
		if len(buf) >= flushAt {
			if err := w.write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	w.records += int64(n)
	return w.write(buf)
}

func (w *Writer) write(buf []byte) error {
	w.buf = buf[:0]
	if len(buf) == 0 {
		return nil
	}
	if _, err := w.w.Write(buf); err != nil {
		return fmt.Errorf("write %s records: %w", w.format, err)
	}
	return nil
}
