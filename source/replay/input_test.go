package replay

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestReadLineWindow: readLine, whether it takes a line from the window of
// what rd already holds or reads through rd, returns the lines a plain
// split gives ('\n' and "\r\n" endings, empty lines, lines longer than the
// buffer, a last line without an ending), with start and off at each
// line's bytes; and a seek after lines from the window goes on from the
// right place.
func TestReadLineWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 34))
	for round := range 200 {
		var data []byte
		for range rng.IntN(60) {
			n := rng.IntN(40)
			if rng.IntN(20) == 0 {
				n = 100 + rng.IntN(100) // longer than the buffer
			}
			for range n {
				data = append(data, byte('a'+rng.IntN(26)))
			}
			switch rng.IntN(4) {
			case 0:
				data = append(data, '\r', '\n')
			default:
				data = append(data, '\n')
			}
		}
		if rng.IntN(2) == 0 {
			data = append(data, "tail"...)
		}
		path := filepath.Join(t.TempDir(), "lines.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		bufSize := 16 + rng.IntN(80)
		in, err := openLines(path, compNone, bufSize, 0, new(atomic.Int64))
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		rest := data
		seekAt := rng.IntN(40)
		for k := 0; ; k++ {
			if k == seekAt && len(rest) > 0 {
				// Skip the next line by seeking past it, as a resume does.
				j := bytes.IndexByte(rest, '\n')
				if j < 0 {
					j = len(rest) - 1
				}
				off += int64(j + 1)
				rest = rest[j+1:]
				if err := in.seekTo(off); err != nil {
					t.Fatal(err)
				}
				continue
			}
			line, err := in.readLine()
			if len(rest) == 0 {
				if err != io.EOF {
					t.Fatalf("round %d: at the end readLine gave %q, %v", round, line, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("round %d line %d: %v", round, k, err)
			}
			j := bytes.IndexByte(rest, '\n')
			raw := rest
			if j >= 0 {
				raw = rest[:j+1]
			}
			want := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
			if !bytes.Equal(line, want) || in.start != off || in.off != off+int64(len(raw)) {
				t.Fatalf("round %d line %d (buffer %d): %q start %d off %d, want %q %d %d", round, k, bufSize, line, in.start, in.off, want, off, off+int64(len(raw)))
			}
			off += int64(len(raw))
			rest = rest[len(raw):]
		}
		in.close()
	}
}
