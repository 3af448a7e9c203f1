package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// the calling goroutine, as testing.T's does, without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// waitCheckpointed, given two minutes, fails within seconds once a
// partition's checkpoint says its end marker was read before the other
// had a mid-stream checkpoint (it used to wait out its whole timeout),
// and returns once both have one mid-stream.
func TestWaitCheckpointedFailsOnceEnded(t *testing.T) {
	srv := loopbackServer(t)
	_, js := testJS(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := openCheckpoints(ctx, js, namesOf("so-bars"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(p int, seq uint64, ended bool) {
		t.Helper()
		b, err := json.Marshal(piece{Format: pieceFormat, Job: "so-bars", Partitions: 2, Partition: p, Read: partRead{Seq: seq, Ended: ended}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, leaseKey(p), b); err != nil {
			t.Fatal(err)
		}
	}
	wait := func() (string, bool) {
		t.Helper()
		rec := &fatalRecorder{TB: t}
		returned := make(chan bool, 1)
		go func() {
			ok := false
			defer func() { returned <- ok }()
			waitCheckpointed(rec, ctx, js, 2)
			ok = true
		}()
		select {
		case ok := <-returned:
			return rec.msg, ok
		case <-time.After(10 * time.Second):
			t.Fatal("waitCheckpointed still waits after 10s")
			return "", false
		}
	}

	put(0, 40, true) // read to its end; partition 1 has no checkpoint
	msg, ok := wait()
	if want := "the stream ended before every partition was checkpointed mid-stream: partitions [0] are read to their end, only [] of 2 have a mid-stream checkpoint"; ok || msg != want {
		t.Fatalf("returned %v, message %q; want the failure %q", ok, msg, want)
	}
	put(0, 30, false)
	put(1, 12, false)
	if msg, ok := wait(); !ok || msg != "" {
		t.Fatalf("both partitions mid-stream: returned %v, message %q", ok, msg)
	}
}
