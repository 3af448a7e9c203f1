package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// timing is the membership and lease clock of a job.
type timing struct {
	// memberTTL is how long a member's key lives without a heartbeat.
	memberTTL time.Duration
	// leaseTTL is how long a partition's lease lives without a renewal.
	leaseTTL time.Duration
	// margin is how long before the server would expire a lease its
	// holder stops the partition (self-fencing).
	margin time.Duration
}

// defaultTiming is the research note's: 6 s TTLs, heartbeats and
// renewals every 2 s, self-fencing 1 s before the TTL.
var defaultTiming = timing{memberTTL: 6 * time.Second, leaseTTL: 6 * time.Second, margin: time.Second}

// tick is how often a worker heartbeats, renews and reconciles.
func (t timing) tick() time.Duration { return min(t.memberTTL, t.leaseTTL) / 3 }

// bucket is the name of one of the job's KV buckets (mdp_members_<job>,
// mdp_leases_<job>).
func (n names) bucket(kind string) string {
	return "mdp_" + kind + "_" + strings.TrimPrefix(n.stream, "MDP_")
}

// openBuckets creates (or opens) the job's membership and lease buckets:
// one history entry per key, expiry by the bucket's TTL; the membership
// bucket leaves a marker when a key expires so that watchers see it go.
func openBuckets(ctx context.Context, js jetstream.JetStream, n names, t timing) (members, leases jetstream.KeyValue, err error) {
	members, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucket("members"), Description: "mdp workers of the job; a key per live worker",
		History: 1, TTL: t.memberTTL, LimitMarkerTTL: time.Second, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("membership bucket %s: %w", n.bucket("members"), err)
	}
	leases, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucket("leases"), Description: "mdp partition leases of the job; a key per owned partition",
		History: 1, TTL: t.leaseTTL, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lease bucket %s: %w", n.bucket("leases"), err)
	}
	return members, leases, nil
}

// MemberInfo is what a worker publishes about itself in the membership
// bucket.
type MemberInfo struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Progress is what the worker had read of each partition it reads, at
	// its last heartbeat; empty before it reads.
	Progress []PartitionProgress `json:"progress,omitempty"`
	// Retries counts the worker's restarts of its job after transient
	// failures since it started.
	Retries int64 `json:"retries,omitempty"`
}

// DefaultWorkerID is host-pid, with characters a KV key does not allow
// replaced by '_'.
func DefaultWorkerID() string {
	h, _ := os.Hostname()
	return keyToken(fmt.Sprintf("%s-%d", h, os.Getpid()))
}

func keyToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

const memberPrefix = "w."

// membership is a worker's view of the job's live members: it heartbeats
// its own key and watches every member's key, expiries included.
type membership struct {
	kv   jetstream.KeyValue
	id   string
	info MemberInfo
	// reading is the worker's reader's progress, once it reads: every
	// heartbeat publishes it.
	reading atomic.Pointer[progress]
	// retries is the worker's count of restarts after transient failures.
	retries atomic.Int64

	mu      sync.Mutex
	live    map[string]MemberInfo
	changed chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// join puts the worker's key and starts watching the bucket. The worker's
// loop calls heartbeat at least every memberTTL/3.
func join(ctx context.Context, kv jetstream.KeyValue, info MemberInfo) (*membership, error) {
	if info.ID == "" || keyToken(info.ID) != info.ID {
		return nil, fmt.Errorf("worker id %q: use letters, digits, '-' and '_'", info.ID)
	}
	m := &membership{kv: kv, id: info.ID, info: info, live: map[string]MemberInfo{}, changed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := m.heartbeat(ctx); err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.Watch(wctx, memberPrefix+"*")
	if err != nil {
		stop()
		return nil, fmt.Errorf("watch the membership bucket: %w", err)
	}
	m.stop = stop
	go m.watch(wctx, w)
	return m, nil
}

// heartbeat puts the worker's key, with its reading progress, which
// restarts its TTL.
func (m *membership) heartbeat(ctx context.Context) error {
	info := m.info
	info.Retries = m.retries.Load()
	if p := m.reading.Load(); p != nil {
		info.Progress = p.snapshot()
	}
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("membership heartbeat of %s: %w", m.id, err)
	}
	if _, err := m.kv.Put(ctx, memberPrefix+m.id, b); err != nil {
		return fmt.Errorf("membership heartbeat of %s: %w", m.id, err)
	}
	return nil
}

func (m *membership) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer close(m.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are in
				continue
			}
			id := strings.TrimPrefix(e.Key(), memberPrefix)
			m.mu.Lock()
			_, had := m.live[id]
			if e.Operation() == jetstream.KeyValuePut {
				var mi MemberInfo
				if json.Unmarshal(e.Value(), &mi) != nil {
					mi.ID = id
				}
				m.live[id] = mi
			} else {
				delete(m.live, id)
			}
			_, has := m.live[id]
			m.mu.Unlock()
			if had != has {
				select {
				case m.changed <- struct{}{}:
				default:
				}
			}
		}
	}
}

// Live returns the ids of the live members, sorted.
func (m *membership) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.live))
	for id := range m.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Members returns what the live members published about themselves.
func (m *membership) Members() []MemberInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MemberInfo, 0, len(m.live))
	for _, mi := range m.live {
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MemberInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Changed is signalled when a member joins or leaves.
func (m *membership) Changed() <-chan struct{} { return m.changed }

// leave deletes the worker's key (others see it go at once) and stops
// watching.
func (m *membership) leave(ctx context.Context) error {
	m.close()
	if err := m.kv.Delete(ctx, memberPrefix+m.id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("leave the membership: %w", err)
	}
	return nil
}

// close stops watching without leaving (the key expires by its TTL).
func (m *membership) close() {
	m.stop()
	<-m.done
}
