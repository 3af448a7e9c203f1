package scaleout

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reasons a coordinator stops a partition.
const (
	stopMoved    = "moved"    // the assignment gives it to another member: released
	stopLost     = "lost"     // a renewal found another revision
	stopFenced   = "fenced"   // no renewal succeeded in time: stopped before the TTL
	stopShutdown = "shutdown" // the worker leaves: released
)

// partitionHandler starts and stops the processing of partitions. start
// is called once the lease is held; stop must have ended the partition's
// processing when it returns, and is given the time by which processing
// had to end (for a fenced partition, its deadline; otherwise now).
type partitionHandler interface {
	start(p int, since time.Time)
	stop(p int, until time.Time, reason string)
}

// coordinator keeps one worker's membership and leases: every tick it
// heartbeats, renews its leases, stops partitions whose lease it can no
// longer prove, releases those the assignment moved away and acquires
// those the assignment gives it. One goroutine runs it.
type coordinator struct {
	job        string
	partitions int
	id         string
	t          timing
	mem        *membership
	leases     *leases
	h          partitionHandler
	log        *slog.Logger

	// expect is how many members must be live before the first
	// assignment (mdp worker --workers); later ones follow every join and
	// leave.
	expect  int
	started bool

	hold    chan time.Duration // tests: freeze the loop, like SIGSTOP
	abandon chan struct{}      // tests: end without releasing, like kill -9
}

// settler is a partitionHandler told when a round of the coordinator has
// ended, so that it acts once on all of the round's starts and stops.
type settler interface{ settled() }

// run coordinates until ctx ends; it then stops and releases every
// partition and leaves the membership (a kill skips this: see abandon).
func (c *coordinator) run(ctx context.Context) error {
	tick := time.NewTicker(c.t.tick())
	defer tick.Stop()
	fence := time.NewTimer(time.Hour)
	defer fence.Stop()
	for {
		err := c.step(ctx)
		if s, ok := c.h.(settler); ok {
			s.settled()
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("scale-out coordination", "worker", c.id, "err", err)
		}
		fence.Reset(c.untilFence())
		select {
		case <-ctx.Done():
			c.shutdown()
			return nil
		case <-tick.C:
		case <-c.mem.Changed():
			c.log.Info("scale-out membership", "worker", c.id, "members", c.mem.Live())
		case <-fence.C:
		case d := <-c.hold:
			time.Sleep(d)
		case <-c.abandon:
			c.mem.close()
			return nil
		}
	}
}

// untilFence is the time to the earliest lease deadline.
func (c *coordinator) untilFence() time.Duration {
	d := time.Hour
	for p := range c.leases.held {
		d = min(d, time.Until(c.leases.deadline(p)))
	}
	return max(d, time.Millisecond)
}

// bounded is ctx for one call of a round to NATS: it ends at the
// earliest deadline of the held leases (at most a lease TTL away), so that
// a call the server does not answer (a dead connection waits for the
// client's request timeout, 5 s) cannot keep the loop from stopping a
// partition at its deadline.
func (c *coordinator) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, min(c.untilFence(), c.t.leaseTTL))
}

// step is one round: fence, heartbeat, renew, release, acquire.
func (c *coordinator) step(ctx context.Context) error {
	c.fenceExpired()
	var errs []error
	cctx, cancel := c.bounded(ctx)
	err := c.mem.heartbeat(cctx)
	cancel()
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range c.heldSorted() {
		if time.Now().After(c.leases.deadline(p)) {
			continue
		}
		cctx, cancel := c.bounded(ctx)
		err := c.leases.renew(cctx, p)
		cancel()
		if err != nil {
			if errors.Is(err, errLeaseLost) {
				c.h.stop(p, time.Now(), stopLost)
				c.log.Warn("partition lease lost", "worker", c.id, "partition", p)
			}
			errs = append(errs, err)
		}
	}
	c.fenceExpired()
	target := c.assignment()
	if target == nil {
		return errors.Join(errs...)
	}
	for _, p := range c.heldSorted() {
		c.fenceExpired()
		if _, ok := c.leases.held[p]; ok && target[p] != c.id {
			c.h.stop(p, time.Now(), stopMoved)
			cctx, cancel := c.bounded(ctx)
			err := c.leases.release(cctx, p)
			cancel()
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	for p, o := range target {
		if o != c.id {
			continue
		}
		if _, ok := c.leases.held[p]; ok {
			continue
		}
		c.fenceExpired()
		cctx, cancel := c.bounded(ctx)
		ok, since, err := c.leases.acquire(cctx, p)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			c.h.start(p, since)
		}
	}
	return errors.Join(errs...)
}

// fenceExpired stops every partition whose deadline has passed: its last
// successful renewal is too old to prove the lease is still held.
func (c *coordinator) fenceExpired() { c.fencedNow() }

// fencedNow fences what fenceExpired does and returns those partitions.
func (c *coordinator) fencedNow() []int {
	now := time.Now()
	var out []int
	for _, p := range c.heldSorted() {
		if d := c.leases.deadline(p); now.After(d) {
			c.leases.drop(p)
			c.h.stop(p, d, stopFenced)
			c.log.Warn("partition fenced: no lease renewal in time", "worker", c.id, "partition", p)
			out = append(out, p)
		}
	}
	return out
}

// assignment is the current target among the live members: nil until
// expect members have been live once.
func (c *coordinator) assignment() []string {
	live := c.mem.Live()
	if !c.started {
		if len(live) < c.expect || !slices.Contains(live, c.id) {
			return nil
		}
		c.started = true
	}
	return assign(c.job, c.partitions, live)
}

func (c *coordinator) heldSorted() []int {
	ps := make([]int, 0, len(c.leases.held))
	for p := range c.leases.held {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// shutdown stops and releases every partition, then leaves.
func (c *coordinator) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), c.t.leaseTTL)
	defer cancel()
	for _, p := range c.fencedNow() {
		// A late renewal fenced it, but the key may still be this
		// worker's: deleting it spares the next owner the TTL.
		if rev, ok := c.leases.ours(ctx, p); ok {
			_ = c.leases.kv.Delete(ctx, leaseKey(p), jetstream.LastRevision(rev))
		}
	}
	for _, p := range c.heldSorted() {
		c.h.stop(p, time.Now(), stopShutdown)
		if err := c.leases.release(ctx, p); err != nil {
			c.log.Warn("scale-out shutdown", "worker", c.id, "err", err)
		}
	}
	if err := c.mem.leave(ctx); err != nil {
		c.log.Warn("scale-out shutdown", "worker", c.id, "err", err)
	}
}
