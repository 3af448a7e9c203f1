package scaleout

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

// maxPayloadServer is a loopback JetStream server whose max_payload is
// maxPayload bytes (0: the server's default, 1 MiB).
func maxPayloadServer(t *testing.T, maxPayload int32) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("test NATS server not ready")
	}
	return srv
}

// loopbackJS is a JetStream client of srv over its loopback port (not in
// process: the publisher opens a second connection with the same options),
// connected with opts and closed when the test ends.
func loopbackJS(t *testing.T, srv *server.Server, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestFramesCutToMaxPayload: against a server whose max_payload (32 KiB)
// is smaller than a frame of records_per_message (16384 trades, ~300 KB),
// the ingest cuts each partition's records into frames that fit, halving
// until they do: every message of the stream fits, each data message's id
// names exactly the records its frame holds, and the ids of each partition
// run on from 0 without a gap to the partition's record count, 50 000
// trades in all.
func TestFramesCutToMaxPayload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const maxPayload = 32 << 10
	doc, n, stream, pub := cutIngest(t, ctx, maxPayload)
	if pub.cut == 0 {
		t.Fatal("no frame was cut")
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]uint64, doc.Scaleout.Partitions)
	var data, records uint64
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if size := len(m.Data) + len(m.Header.Get(jetstream.MsgIDHeader)) + len(m.Header.Get(headerWatermark)); size > maxPayload {
			t.Fatalf("message %d takes %d bytes, more than the server's max_payload %d", seq, size, maxPayload)
		}
		if isMarker(m.Data) {
			continue
		}
		k, err := n.partitionOf(m.Subject)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.Split(m.Header.Get(jetstream.MsgIDHeader), ":")
		var first, last uint64
		if len(id) != 4 || !parseUints(&first, id[2], &last, id[3]) {
			t.Fatalf("message %d: id %q", seq, m.Header.Get(jetstream.MsgIDHeader))
		}
		if first != next[k] {
			t.Fatalf("partition %d: a frame of records %d…%d after record %d", k, first, last, next[k]-1)
		}
		if got := uint64(binary.LittleEndian.Uint32(m.Data[4:8])); got != last-first+1 {
			t.Fatalf("partition %d: the frame of records %d…%d holds %d", k, first, last, got)
		}
		next[k] = last + 1
		data++
		records += last - first + 1
	}
	if records != 50_000 || data != uint64(pub.frames) {
		t.Fatalf("%d data messages of %d records in the stream; the ingest published %d", data, records, pub.frames)
	}
	// Uncut, each of the 8 partitions' records would be one frame (the
	// marker interval is an hour, 16384 is more than any holds).
	if data <= 8 {
		t.Fatalf("%d data messages, want more than the 8 partitions", data)
	}
	t.Logf("%d data messages, %d cut", data, pub.cut)
}

// cutIngest publishes 50 000 synthetic trades (8 partitions, 16384
// records a message, marker rounds an hour apart: frames end by size and
// at the end only) into a stream in memory on a loopback server whose
// max_payload is maxPayload bytes.
func cutIngest(t *testing.T, ctx context.Context, maxPayload int32) (*config.Document, names, jetstream.Stream, *publisher) {
	t.Helper()
	js := loopbackJS(t, maxPayloadServer(t, maxPayload))
	doc := synthJob(t, 50_000, ", records_per_message: 16384")
	n := namesOf(doc.Name)
	stream, err := ensureStream(ctx, js, n, doc.Scaleout, true)
	if err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(js, n, doc.Scaleout.Partitions)
	pub.configure(doc.Scaleout)
	pub.interval = time.Hour
	runIngest(t, doc, pub)
	return doc, n, stream, pub
}

// parseUints parses a and b; false when either is not a number.
func parseUints(a *uint64, as string, b *uint64, bs string) bool {
	var err1, err2 error
	*a, err1 = strconv.ParseUint(as, 10, 64)
	*b, err2 = strconv.ParseUint(bs, 10, 64)
	return err1 == nil && err2 == nil
}

// TestOpenRefusesTinyMaxPayload: a server whose max_payload leaves no room
// for a frame beside the headers is refused at Open, naming it.
func TestOpenRefusesTinyMaxPayload(t *testing.T) {
	srv := maxPayloadServer(t, 1500)
	js := loopbackJS(t, srv)
	pub := newPublisher(js, namesOf("tiny"), 4)
	err := pub.Open(context.Background(), &engine.NodeContext{})
	if err == nil || err.Error() != "the NATS server's max_payload, 1500 bytes, is too small for the ingest's messages" {
		t.Fatalf("Open: %v", err)
	}
}
