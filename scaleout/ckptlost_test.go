package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lostReplyKV is a real bucket whose next Create or Update (when lose is
// set) is stored but answered with context.Canceled, as a write whose
// context ended (the job ending) after the server took it.
type lostReplyKV struct {
	jetstream.KeyValue
	lose bool
}

func (k *lostReplyKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := k.KeyValue.Create(ctx, key, value, opts...)
	return k.lost(rev, err)
}

func (k *lostReplyKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	rev, err := k.KeyValue.Update(ctx, key, value, last)
	return k.lost(rev, err)
}

func (k *lostReplyKV) lost(rev uint64, err error) (uint64, error) {
	if err == nil && k.lose {
		k.lose = false
		return 0, context.Canceled
	}
	return rev, err
}

// A checkpoint write that was stored but whose answer was lost (the
// worker's job ended while it was in flight) leaves the partition's key
// at a revision the store did not see. The next write of the partition,
// or marking it done, recognises its own piece there and goes on; it
// used to fail with "checkpoint written by another worker" (mdp run then
// exited 1 after reading everything, and mdp serve restarted it). A piece
// that another worker wrote is still a conflict.
func TestCheckpointWriteWithLostReply(t *testing.T) {
	srv := loopbackServer(t)
	_, js := testJS(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := openCheckpoints(ctx, js, namesOf("so-bars"))
	if err != nil {
		t.Fatal(err)
	}
	lk := &lostReplyKV{KeyValue: kv}
	s := &ckptStore{kv: lk, job: "so-bars", worker: "w0", stream: 7, partitions: 2, parts: []int{0, 1},
		revs: map[int]uint64{}, last: map[int]*piece{}}
	pc := func(p int, id int64, seq uint64) *piece {
		return &piece{Format: pieceFormat, Job: "so-bars", Stream: 7, Partitions: 2, Partition: p, ID: id, Worker: "w0", Read: partRead{Seq: seq}}
	}
	for p := range 2 {
		if _, err := s.put(ctx, pc(p, 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	// Partition 0: an update lost; partition 1: an update lost, then
	// the key overwritten by another worker.
	lk.lose = true
	if _, err := s.put(ctx, pc(0, 2, 20)); !errors.Is(err, context.Canceled) {
		t.Fatalf("the lost write: %v", err)
	}
	lk.lose = true
	if _, err := s.put(ctx, pc(1, 2, 20)); !errors.Is(err, context.Canceled) {
		t.Fatalf("the lost write: %v", err)
	}
	other, _ := json.Marshal(&piece{Format: pieceFormat, Job: "so-bars", Stream: 7, Partitions: 2, Partition: 1, ID: 5, Worker: "w1", Read: partRead{Seq: 30}})
	if _, err := kv.Put(ctx, leaseKey(1), other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.put(ctx, pc(0, 3, 25)); err != nil {
		t.Fatalf("the write after a lost one: %v", err)
	}
	if _, err := s.put(ctx, pc(1, 3, 25)); !errors.Is(err, errCheckpointConflict) {
		t.Fatalf("over another worker's piece: %v, want the conflict", err)
	}
	s.parts = []int{0}
	lk.lose = true
	if _, err := s.put(ctx, pc(0, 4, 30)); !errors.Is(err, context.Canceled) {
		t.Fatalf("the lost write: %v", err)
	}
	if err := s.markDone(ctx); err != nil {
		t.Fatalf("marking done after a lost write: %v", err)
	}
	e, err := kv.Get(ctx, leaseKey(0))
	if err != nil {
		t.Fatal(err)
	}
	var got piece
	if err := json.Unmarshal(e.Value(), &got); err != nil {
		t.Fatal(err)
	}
	// The done piece carries the last piece the store knows it wrote.
	if !got.Done || got.Worker != "w0" || got.ID != 3 || got.Read.Seq != 25 || !got.Read.Ended {
		t.Fatalf("partition 0's piece: %+v", got)
	}
}
