package scaleout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errLeaseLost says a renewal found the lease's key at another revision:
// the lease expired and someone else (or nobody) holds the partition.
var errLeaseLost = errors.New("lease lost")

// lease is a held partition lease.
type lease struct {
	rev uint64
	// sent is when the last successful write of the lease (its creation
	// or renewal) was sent, on this process's monotonic clock: the server
	// expires the key no earlier than leaseTTL after that.
	sent time.Time
}

// leaseKey is partition p's key in the lease bucket.
func leaseKey(p int) string { return "p." + strconv.Itoa(p) }

// leases are the partition leases one worker holds. They are used by one
// goroutine only (the worker's coordinator).
type leases struct {
	kv    jetstream.KeyValue
	owner string
	t     timing
	held  map[int]*lease
}

func newLeases(kv jetstream.KeyValue, owner string, t timing) *leases {
	return &leases{kv: kv, owner: owner, t: t, held: map[int]*lease{}}
}

// acquire creates partition p's lease. It reports false when another
// worker holds it, and when it got it, the time it did (the partition may
// be processed from then on).
func (l *leases) acquire(ctx context.Context, p int) (bool, time.Time, error) {
	sent := time.Now()
	rev, err := l.kv.Create(ctx, leaseKey(p), []byte(l.owner))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// An earlier attempt whose reply was lost may have written it:
		// such a lease is deleted, and taken on a later round.
		if rev, ok := l.ours(ctx, p); ok {
			_ = l.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(rev))
		}
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, fmt.Errorf("acquire the lease of partition %d: %w", p, err)
	}
	l.held[p] = &lease{rev: rev, sent: sent}
	return true, time.Now(), nil
}

// renew extends partition p's lease by a revision-checked update. A
// revision mismatch drops the lease and returns errLeaseLost.
func (l *leases) renew(ctx context.Context, p int) error {
	h := l.held[p]
	sent := time.Now()
	rev, err := l.kv.Update(ctx, leaseKey(p), []byte(l.owner), h.rev)
	if err != nil {
		// A renewal whose reply was lost may have been written: the
		// lease then holds this worker's name at a newer revision, which
		// is taken (keeping the older send time: the deadline stays safe).
		if cur, ok := l.ours(ctx, p); ok && cur > h.rev {
			h.rev = cur
			return fmt.Errorf("renew the lease of partition %d (its revision is recovered): %w", p, err)
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			delete(l.held, p)
			return fmt.Errorf("partition %d: %w", p, errLeaseLost)
		}
		return fmt.Errorf("renew the lease of partition %d: %w", p, err)
	}
	h.rev, h.sent = rev, sent
	return nil
}

// ours returns the revision of partition p's lease when it holds this
// worker's name.
func (l *leases) ours(ctx context.Context, p int) (uint64, bool) {
	e, err := l.kv.Get(ctx, leaseKey(p))
	if err != nil || string(e.Value()) != l.owner {
		return 0, false
	}
	return e.Revision(), true
}

// release deletes partition p's lease if it is still this worker's.
func (l *leases) release(ctx context.Context, p int) error {
	h, ok := l.held[p]
	if !ok {
		return nil
	}
	delete(l.held, p)
	err := l.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(h.rev))
	if err != nil {
		if rev, ok := l.ours(ctx, p); ok && rev != h.rev { // a renewal whose reply was lost
			err = l.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(rev))
		}
	}
	if err != nil {
		return fmt.Errorf("release the lease of partition %d: %w", p, err)
	}
	return nil
}

// deadline is when the worker must have stopped partition p: margin
// before the earliest moment the server may expire its lease.
func (l *leases) deadline(p int) time.Time {
	return l.held[p].sent.Add(l.t.leaseTTL - l.t.margin)
}

// drop forgets partition p's lease without touching the bucket (it was
// fenced: the key expires by its TTL).
func (l *leases) drop(p int) { delete(l.held, p) }
