package tws_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mdpio/mdp/source/ibkr/tws"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame reader and the
// message decoder: no panic, no frame longer than MaxFrame, and a decoded
// message's fields come only from terminated fields. The seed corpus is in
// testdata/fuzz/FuzzFrameDecoder (the research vectors and edge cases).
// Run longer with:
//
//	go test -run '^$' -fuzz FuzzFrameDecoder -fuzztime 30s ./source/ibkr/tws/
func FuzzFrameDecoder(f *testing.F) {
	for _, v := range []string{faketws.V1Version, faketws.V2TickPrice, faketws.V3TBTLast, faketws.V3TBTBidAsk,
		faketws.V4RTBar, faketws.V5Err200} {
		f.Add(faketws.Hex(v), 200)
	}
	f.Fuzz(func(t *testing.T, stream []byte, sv int) {
		sv = tws.MinVersion + (sv&0xffff)%(tws.MaxVersion-tws.MinVersion+1)
		r := tws.NewReader(bytes.NewReader(stream))
		var m tws.Message
		for {
			p, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, tws.ErrFrameTooLarge) {
					t.Fatalf("unexpected read error %v", err)
				}
				return
			}
			if len(p) > tws.MaxFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
			err = tws.Decode(p, sv, &m)
			if err == nil && len(p) > 0 && p[len(p)-1] != 0 && m.Known() {
				t.Fatalf("a known message without a terminated last field decoded: %q", p)
			}
		}
	})
}
