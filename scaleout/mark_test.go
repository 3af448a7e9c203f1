package scaleout

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/md"
)

// TestReaderWatermarkIsItsPartitionsLowest: the reader's watermark is the
// lowest of its partitions' markers, and the marker a frame carries
// counts after the frame's records. Partition 0's trade i (price i) is at
// i × 300 ms past a whole second; partition 1's marker 10 s on comes
// first. A reader that took any partition's marker as its watermark would
// close the first bar after trade 0 and count trades 1-3 late; one that
// took a frame's marker (here the second's end) before its records would
// count trades 2 and 3 late. The frame of trade 4 carries partition 0's
// end marker, which ends the partition (the run ends). Two bars: trades
// 0-3, and trade 4. The reader leaves no consumer behind (dropConsumer).
func TestReaderWatermarkIsItsPartitionsLowest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc, out, n, js, stream, syms := readerFixture(t, ctx, true)
	const t0 = 1_700_000_000_000_000_000 // a whole second
	frame := func(a, b int64, mk mark) {
		t.Helper()
		batch := &md.Batch{Kind: md.KindTrade}
		for i := a; i <= b; i++ {
			batch.Trades = append(batch.Trades, md.Trade{TS: t0 + i*300*int64(time.Millisecond), Price: float64(i), Size: 1, TradeID: i})
		}
		var enc busfmt.Encoder
		data, err := enc.AppendFrame(nil, batch, syms)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: n.subject(0), Data: data, Header: nats.Header{}}
		if mk.set {
			msg.Header.Set(headerMark, mk.header())
		}
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(string(appendMsgID(nil, 1, 0, a, b)))); err != nil {
			t.Fatal(err)
		}
	}
	marker := func(k int, kind byte, wm int64) {
		t.Helper()
		if _, err := js.Publish(ctx, n.subject(k), appendMarker(nil, kind, wm)); err != nil {
			t.Fatal(err)
		}
	}
	frame(0, 0, mark{})
	marker(1, markerWatermark, t0+10*int64(time.Second))
	frame(1, 1, mark{})
	frame(2, 3, mark{set: true, kind: markerWatermark, wm: t0 + int64(time.Second)})
	frame(4, 4, mark{set: true, kind: markerEnd, wm: md.MaxTime})
	marker(1, markerEnd, md.MaxTime)
	r := newReader(js, n, []int{0, 1})
	if err := workerRun(t, ctx, doc, r); err != nil {
		t.Fatal(err)
	}
	// The reader deleted its consumer as it stopped (dropConsumer).
	if info, err := stream.Info(ctx); err != nil {
		t.Error(err)
	} else if info.State.Consumers != 0 {
		t.Errorf("%d consumers left, want 0", info.State.Consumers)
	}
	if r.advanced != t0+10*int64(time.Second) {
		t.Errorf("the reader's watermark ended at %d, want %d", r.advanced, t0+10*int64(time.Second))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("bars file:\n%s\nwant a header and two bars", data)
	}
	head := strings.Split(lines[0], ",")
	for j, want := range []string{"4 0 3 0 3", "1 4 4 4 4"} {
		bar := map[string]string{}
		for i, v := range strings.Split(lines[j+1], ",") {
			bar[head[i]] = v
		}
		if got := strings.Join([]string{bar["trades"], bar["open"], bar["high"], bar["low"], bar["close"]}, " "); got != want {
			t.Errorf("bar %d: trades, open, high, low, close %q, want %q (%v)", j, got, want, bar)
		}
	}
}

// TestMarkerRidesOnTheRoundsLastFrame: a marker round gives a partition
// its marker on the last frame it publishes in the round, cut or not.
// Against a server whose max_payload (32 KiB) cuts each partition's
// records into several frames, with only the end round (an hour's marker
// interval), every partition's messages are frames (more frames than
// partitions: some were cut), and only its last carries a marker, the
// end; no marker message is published, and the ingest counts one carried
// marker per partition.
func TestMarkerRidesOnTheRoundsLastFrame(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc, n, stream, pub := cutIngest(t, ctx, 32<<10)
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parts := doc.Scaleout.Partitions
	frames := make([]int, parts)
	last := make([]string, parts) // each partition's last message's mark
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		k, err := n.partitionOf(m.Subject)
		if err != nil {
			t.Fatal(err)
		}
		if isMarker(m.Data) {
			t.Fatalf("message %d of partition %d is a marker message", seq, k)
		}
		if last[k] != "" {
			t.Fatalf("partition %d: a frame after the one that carries %q", k, last[k])
		}
		frames[k]++
		last[k] = m.Header.Get(headerMark)
	}
	end := strconv.Itoa(markerEnd) + ":" + strconv.FormatInt(md.MaxTime, 10)
	all := 0
	for k := range parts {
		all += frames[k]
		if last[k] != end {
			t.Errorf("partition %d: %d frames, the last carrying %q, want %q", k, frames[k], last[k], end)
		}
	}
	if all <= parts {
		t.Errorf("%d frames in %d partitions: none was cut", all, parts)
	}
	if pub.markers != 0 || pub.carried != int64(parts) {
		t.Errorf("%d marker messages and %d carried markers, want 0 and %d", pub.markers, pub.carried, parts)
	}
}

// TestReaderRestoresPartitionWatermark: a partition restored from a
// checkpoint starts at the watermark the checkpoint says it had (its
// markers before the checkpoint are not read again). Partition 0's marker
// at 10 s, which its checkpoint covers, and partition 1's make the
// watermark 10 s, so partition 1's trade at 9 s that follows is late and
// makes no bar; had partition 0 started without a watermark, the reader's
// would have stayed behind and the trade made one. The checkpoint of a
// partition that read a marker keeps its watermark (Position).
func TestReaderRestoresPartitionWatermark(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc, out, n, js, _, syms := readerFixture(t, ctx, true)
	const t0 = 1_700_000_000_000_000_000
	wm := t0 + 10*int64(time.Second)
	publish := func(k int, data []byte) uint64 {
		t.Helper()
		ack, err := js.Publish(ctx, n.subject(k), data)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	seq0 := publish(0, appendMarker(nil, markerWatermark, wm))
	publish(1, appendMarker(nil, markerWatermark, wm))
	var enc busfmt.Encoder
	frame, err := enc.AppendFrame(nil, &md.Batch{Kind: md.KindTrade, Trades: []md.Trade{{TS: wm - int64(time.Second), Price: 1, Size: 1}}}, syms)
	if err != nil {
		t.Fatal(err)
	}
	publish(1, frame)
	publish(0, appendMarker(nil, markerEnd, md.MaxTime))
	publish(1, appendMarker(nil, markerEnd, md.MaxTime))
	r := newReader(js, n, []int{0, 1})
	r.restored = map[int]partRead{0: {Seq: seq0, Wm: wm}}
	if err := workerRun(t, ctx, doc, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) > 1 {
		t.Fatalf("bars file:\n%s\nwant no bar: the trade is late", data)
	}

	// Position keeps an open partition's watermark.
	r.wms = map[int]int64{0: wm, 1: md.MinTime}
	pos, err := r.Position(0)
	if err != nil {
		t.Fatal(err)
	}
	var rp readerPos
	if err := json.Unmarshal(pos, &rp); err != nil {
		t.Fatal(err)
	}
	if rp.Parts[0].Wm != wm || rp.Parts[1].Wm != 0 {
		t.Fatalf("position %s: want partition 0's watermark %d, none for partition 1", pos, wm)
	}
}
