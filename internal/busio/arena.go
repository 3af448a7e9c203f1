package busio

import (
	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/md"
)

// Arena encodes the messages of one batch (one per group) and their
// destination names into reused buffers, so a client that sends them
// together (a pipeline) holds distinct payloads without allocating per
// message in steady state. Payloads and names are valid until Reset.
type Arena struct {
	w    *busfmt.Writer
	buf  []byte
	key  []byte
	offs []span
}

type span struct{ key, kend, data, dend int }

// NewArena returns an arena encoding with w.
func NewArena(w *busfmt.Writer) *Arena { return &Arena{w: w} }

// Format is the arena's encoding.
func (a *Arena) Format() busfmt.Format { return a.w.Format() }

// Reset forgets the messages added.
func (a *Arena) Reset() {
	a.buf = a.buf[:0]
	a.offs = a.offs[:0]
}

// KeyBuf is a scratch buffer to append a destination name to before Add.
func (a *Arena) KeyBuf() []byte { return a.key[:0] }

// Add encodes b as the next message, to destination key.
func (a *Arena) Add(key []byte, b *md.Batch, syms []md.Instrument) error {
	a.key = key
	msg, err := a.w.Message(b, syms)
	if err != nil {
		return err
	}
	var sp span
	sp.key = len(a.buf)
	a.buf = append(a.buf, key...)
	sp.kend = len(a.buf)
	sp.data = len(a.buf)
	a.buf = append(a.buf, msg...)
	sp.dend = len(a.buf)
	a.offs = append(a.offs, sp)
	return nil
}

// Len is the number of messages added.
func (a *Arena) Len() int { return len(a.offs) }

// Get returns message i's destination and payload (call it after the
// last Add: the buffer may move while messages are added).
func (a *Arena) Get(i int) (string, []byte) {
	sp := a.offs[i]
	return string(a.buf[sp.key:sp.kend]), a.buf[sp.data:sp.dend:sp.dend]
}
