// Package tws is a small client of the Interactive Brokers TWS / IB Gateway
// socket protocol for the market-data subset mdp needs: the handshake,
// reqMarketDataType, reqMktData, reqTickByTickData, reqRealTimeBars,
// reqHistoricalData, reqCurrentTime and their cancels, and the replies to
// them. It speaks the text protocol: the client advertises at most server
// version 200 (MaxVersion), the last version at which every message is
// text, and the encoder and decoder are gated on the negotiated version so
// that the raw-id and protobuf forms of later versions can be added in one
// place.
//
// It is written from the protocol facts and the byte vectors of the
// research notes on the protocol, not from IB's code (whose licence
// forbids copying it).
//
// Wire format: every frame after the 4-byte "API\0" greeting is a 4-byte
// big-endian length and a payload of at most 0xFFFFFF bytes; a text payload
// is a sequence of ASCII fields, each terminated by a NUL byte, the first
// being the message id in decimal.
//
// Decoding is allocation-free: a Reader reuses one buffer for frames, and
// Decode fills a caller-owned Message whose byte-slice fields point into
// that buffer (valid until the next read).
package tws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest payload a frame may carry.
const MaxFrame = 0xFFFFFF

// ErrFrameTooLarge is returned for a frame whose length exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("tws: frame longer than 0xFFFFFF bytes")

// Reader reads length-prefixed frames from a stream into one reused buffer.
// It reads ahead, so a burst of small frames costs one system call.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	total      int64
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, 64<<10)}
}

// Buffered reports whether bytes of a next frame are already read, so a
// caller can tell a burst (more is at hand) from the end of one.
func (r *Reader) Buffered() bool { return r.end > r.start }

// BytesRead is the number of bytes read from the stream so far, frames
// not yet returned included: a caller can tell a slow frame (bytes keep
// coming) from a silent peer.
func (r *Reader) BytesRead() int64 { return r.total }

// fill makes at least n bytes available at buf[start:], growing the buffer
// when a frame does not fit.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start+n > len(r.buf) {
		if n > len(r.buf) {
			nb := make([]byte, max(n, 2*len(r.buf)))
			r.end = copy(nb, r.buf[r.start:r.end])
			r.buf = nb
		} else {
			r.end = copy(r.buf, r.buf[r.start:r.end])
		}
		r.start = 0
	}
	for r.end-r.start < n {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		r.total += int64(m)
		if err != nil {
			if r.end-r.start >= n {
				return nil
			}
			if err == io.EOF && r.end > r.start {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Next returns the payload of the next frame. The slice is valid until the
// next call.
func (r *Reader) Next() ([]byte, error) {
	if err := r.fill(4); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(r.buf[r.start:])
	if n > MaxFrame {
		return nil, ErrFrameTooLarge
	}
	if err := r.fill(4 + int(n)); err != nil {
		return nil, err
	}
	p := r.buf[r.start+4 : r.start+4+int(n)]
	r.start += 4 + int(n)
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	return p, nil
}

// AppendFrame appends payload as one frame to dst.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxFrame {
		return dst, ErrFrameTooLarge
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...), nil
}

// Decoding errors. They are preallocated so that a malformed message costs
// no allocation; Decode wraps none of them on the hot path.
var (
	// ErrTruncated: a field is missing its NUL terminator or the message
	// ends before a field its layout needs.
	ErrTruncated = errors.New("tws: message truncated")
	// ErrBadNumber: a numeric field does not parse.
	ErrBadNumber = errors.New("tws: malformed number")
)

// Fields walks the NUL-terminated fields of a text payload. The zero value
// is empty; Reset points it at a payload. After the first error every
// accessor returns a zero value and Err reports the error.
type Fields struct {
	b   []byte
	err error
}

// Reset starts reading p.
func (f *Fields) Reset(p []byte) { f.b, f.err = p, nil }

// Err is the first error met, or nil.
func (f *Fields) Err() error { return f.err }

// More reports whether a field is left.
func (f *Fields) More() bool { return len(f.b) > 0 && f.err == nil }

// Count is the number of terminated fields left.
func (f *Fields) Count() int {
	n := 0
	for _, c := range f.b {
		if c == 0 {
			n++
		}
	}
	return n
}

// Bytes returns the next field (without its terminator), pointing into the
// payload.
func (f *Fields) Bytes() []byte {
	if f.err != nil {
		return nil
	}
	for i, c := range f.b {
		if c == 0 {
			v := f.b[:i]
			f.b = f.b[i+1:]
			return v
		}
	}
	f.b = nil
	f.err = ErrTruncated
	return nil
}

// Skip drops n fields.
func (f *Fields) Skip(n int) {
	for range n {
		f.Bytes()
	}
}

// Int parses the next field as a decimal integer; an empty field is 0.
func (f *Fields) Int() int64 {
	b := f.Bytes()
	if len(b) == 0 {
		return 0
	}
	v, ok := parseInt(b)
	if !ok {
		f.fail(ErrBadNumber)
	}
	return v
}

// Float parses the next field as a decimal number; an empty field is 0.
func (f *Fields) Float() float64 {
	b := f.Bytes()
	if len(b) == 0 {
		return 0
	}
	v, ok := parseFloat(b)
	if !ok {
		f.fail(ErrBadNumber)
	}
	return v
}

// Decimal parses the next field as a size. The spellings IB uses for "no
// value" (empty, 2147483647, 9223372036854775807, -9223372036854775808,
// 1.7976931348623157E308) give 0.
func (f *Fields) Decimal() float64 {
	b := f.Bytes()
	if len(b) == 0 || isUnsetDecimal(b) {
		return 0
	}
	v, ok := parseFloat(b)
	if !ok {
		f.fail(ErrBadNumber)
	}
	return v
}

// DecimalPlaces is Decimal that also returns how many decimal places the
// field was written with (tsparse.Decimals; 0 for "no value"), which a
// source reports as the instrument's size precision.
func (f *Fields) DecimalPlaces() (float64, int) {
	b := f.Bytes()
	if len(b) == 0 || isUnsetDecimal(b) {
		return 0, 0
	}
	v, ok := parseFloat(b)
	if !ok {
		f.fail(ErrBadNumber)
	}
	return v, decimals(b)
}

func (f *Fields) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

func isUnsetDecimal(b []byte) bool {
	switch string(b) {
	case "2147483647", "9223372036854775807", "-9223372036854775808", "1.7976931348623157E308":
		return true
	}
	return false
}

// FieldsString renders a payload's fields for error messages and test
// diffs: [71 2 7 ""].
func FieldsString(p []byte) string {
	var f Fields
	f.Reset(p)
	s := "["
	for i := 0; f.More(); i++ {
		b := f.Bytes()
		if i > 0 {
			s += " "
		}
		if len(b) == 0 {
			s += `""`
		} else {
			s += fmt.Sprintf("%q", b)[1 : len(fmt.Sprintf("%q", b))-1]
		}
	}
	if len(f.b) > 0 || f.err != nil {
		s += fmt.Sprintf(" <unterminated %q>", f.b)
	}
	return s + "]"
}
