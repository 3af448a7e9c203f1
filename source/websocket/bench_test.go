package websocket

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// The decode benchmarks run the recorded messages through the decoder the
// source uses (scan, intern, sequence check, append to a pooled batch, emit
// per full batch) and report messages per second. The Stdlib variants decode
// the same messages into the same records with encoding/json, as the
// reference for the ratio: run both in one go, e.g.
//
//	go test -run '^$' -bench 'Decode' -benchmem ./source/websocket/

func benchDecode(b *testing.B, file string, params map[string]any) {
	msgs := readLines(b, file)
	td := newTestDec(b, params)
	td.emit = func(bt *md.Batch) error { bt.Release(); return nil }
	td.feed(msgs, 1) // intern symbols, warm the pool
	var bytes int
	for _, m := range msgs {
		bytes += len(m)
	}
	b.SetBytes(int64(bytes / len(msgs)))
	b.ReportAllocs()
	cpu := threadCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(msgs)
		if j == 0 {
			// The recorded ids start over: forget them so the sequence
			// check (on in production) passes instead of dropping.
			for _, st := range td.syms {
				st.seen = false
			}
		}
		td.handle(msgs[j], 1)
	}
	td.flush()
	if td.c.duplicate != 0 || td.c.gaps != 0 || td.c.malformed != 0 {
		b.Fatalf("counts %+v", td.c)
	}
	reportRates(b, cpu)
}

// reportRates reports messages per wall-clock second and, where the OS
// tells thread CPU time, per CPU second: the per-core rate, which a loaded
// machine does not distort.
func reportRates(b *testing.B, cpu func() (time.Duration, bool)) {
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if d, ok := cpu(); ok && d > 0 {
		b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/cpu-s")
	}
}

// BenchmarkDecodeBinanceTrade is the figure: raw Binance trade
// messages, at least 1,000,000 per second per core.
func BenchmarkDecodeBinanceTrade(b *testing.B) {
	benchDecode(b, "binance_futures_trade.jsonl", map[string]any{"preset": "binance"})
}

// BenchmarkDecodeBinanceTradeStdlib decodes the same messages into the same
// md.Trade values with encoding/json (reflection into a struct), the
// reference the hand scanner is measured against.
func BenchmarkDecodeBinanceTradeStdlib(b *testing.B) {
	msgs := readLines(b, "binance_futures_trade.jsonl")
	batch := make([]md.Trade, 0, md.DefaultBatchSize)
	var bytes int
	for _, m := range msgs {
		bytes += len(m)
	}
	b.SetBytes(int64(bytes / len(msgs)))
	b.ReportAllocs()
	cpu := threadCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var o binanceTradeMsg
		if err := json.Unmarshal(msgs[i%len(msgs)], &o); err != nil {
			b.Fatal(err)
		}
		p, err1 := strconv.ParseFloat(o.P, 64)
		q, err2 := strconv.ParseFloat(o.Q, 64)
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		side := md.SideBuy
		if o.M {
			side = md.SideSell
		}
		batch = append(batch, md.Trade{TS: o.Time * 1e6, Ingest: 1, Price: p, Size: q, TradeID: o.ID, Side: side})
		if len(batch) == cap(batch) {
			batch = batch[:0]
		}
	}
	reportRates(b, cpu)
}

// BenchmarkDecodeBinanceCombined reads trades inside combined-stream envelopes.
func BenchmarkDecodeBinanceCombined(b *testing.B) {
	benchDecode(b, "binance_spot_combined.jsonl", map[string]any{"preset": "binance", "sequence_check": "none"})
}

// BenchmarkDecodeCoinbase reads match, ticker and other channel messages.
func BenchmarkDecodeCoinbase(b *testing.B) {
	benchDecode(b, "coinbase.jsonl", map[string]any{"preset": "coinbase"})
}

// BenchmarkDecodeGenericOKX reads OKX trade arrays through field paths.
func BenchmarkDecodeGenericOKX(b *testing.B) {
	benchDecode(b, "okx_trades.jsonl", map[string]any{
		"preset": "generic", "records": "data",
		"match":  map[string]any{"arg.channel": "trades"},
		"fields": map[string]any{"symbol": "instId", "price": "px", "size": "sz", "side": "side", "trade_id": "tradeId", "ts": "ts"},
	})
}

// rawFrameServer is a minimal WebSocket server for the loopback benchmark:
// it performs the opening handshake by hand, then writes pre-encoded text
// frames in large chunks, so the server costs little next to the client.
func rawFrameServer(b *testing.B, frames []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(h[:]))
		if rw.Flush() != nil {
			return
		}
		for len(frames) > 0 {
			n := min(len(frames), 256<<10)
			if _, err := conn.Write(frames[:n]); err != nil {
				return
			}
			frames = frames[n:]
		}
		io.Copy(io.Discard, conn) // until the client leaves
	}))
	b.Cleanup(srv.Close)
	return srv
}

// textFrame encodes msg as one unmasked server-to-client text frame.
func textFrame(dst, msg []byte) []byte {
	switch n := len(msg); {
	case n < 126:
		dst = append(dst, 0x81, byte(n))
	case n < 1<<16:
		dst = append(dst, 0x81, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x81, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, msg...)
}

// BenchmarkSourceLoopback measures the whole source over a real loopback
// TCP connection: socket reads, WebSocket framing, decoding, batching and
// emitting into the engine, to a sink that only counts. It reports messages
// per second and the mean records per batch (how well bursts fill batches).
func BenchmarkSourceLoopback(b *testing.B) {
	msgs := readLines(b, "binance_futures_trade.jsonl")
	var frames []byte
	for i := 0; i < b.N; i++ {
		frames = textFrame(frames, msgs[i%len(msgs)])
	}
	srv := rawFrameServer(b, frames)
	c := &countSink{}
	nodes := []*engine.Node{
		sourceNode(b, map[string]any{"url": "ws" + strings.TrimPrefix(srv.URL, "http"), "preset": "binance", "sequence_check": "none"}),
		{ID: "sink", Type: "sink.count", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return c, nil }},
	}
	b.ResetTimer()
	rj := startJob(b, nodes, []*engine.Edge{{From: "src", To: "sink"}})
	for c.records.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if err := rj.stop(b); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(c.records.Load())/float64(c.batches.Load()), "recs/batch")
}

type countSink struct{ records, batches atomic.Int64 }

func (c *countSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.records.Add(int64(b.Len()))
	c.batches.Add(1)
	return nil
}
