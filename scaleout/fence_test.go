package scaleout

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/internal/tcpproxy"
)

// stopRecord is one stop of a partition as the handler saw it.
type stopRecord struct {
	p      int
	until  time.Time // the deadline the coordinator gave
	at     time.Time // when the handler was called
	reason string
}

// stopRecorder is a partitionHandler recording starts and stops.
type stopRecorder struct {
	mu      sync.Mutex
	started map[int]bool
	stops   []stopRecord
}

func (r *stopRecorder) start(p int, _ time.Time) {
	r.mu.Lock()
	r.started[p] = true
	r.mu.Unlock()
}

func (r *stopRecorder) stop(p int, until time.Time, reason string) {
	r.mu.Lock()
	r.stops = append(r.stops, stopRecord{p: p, until: until, at: time.Now(), reason: reason})
	r.mu.Unlock()
}

func (r *stopRecorder) counts() (started, stopped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started), len(r.stops)
}

// A worker whose connection to NATS goes dead (every connection through
// its proxy cut, new ones refused) stops each partition at its
// self-fencing deadline, within the margin, so before the server can
// expire the lease: its renewals in flight must not hold the coordinator
// past the deadline (without a bound they waited for the client's 5 s
// request timeout, past the 3 s TTL).
func TestFencedOnTimeWhenNATSGoesSilent(t *testing.T) {
	srv := loopbackServer(t)
	proxy := tcpproxy.Start(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the watch's "consumer not active" once cut off
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tm := timing{memberTTL: 3 * time.Second, leaseTTL: 3 * time.Second, margin: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := namesOf("fence")
	mkv, lkv, err := openBuckets(ctx, js, n, tm)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := join(ctx, mkv, MemberInfo{ID: "w0", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	const P = 4
	rec := &stopRecorder{started: map[int]bool{}}
	c := &coordinator{job: "fence", partitions: P, id: "w0", t: tm, mem: mem, leases: newLeases(lkv, "w0", tm), expect: 1,
		h: rec, log: slog.New(slog.DiscardHandler), hold: make(chan time.Duration), abandon: make(chan struct{})}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.run(rctx) }()
	defer func() {
		proxy.Resume()
		stop()
		<-done
	}()
	for started, _ := rec.counts(); started < P; started, _ = rec.counts() {
		if ctx.Err() != nil {
			t.Fatal("the worker never held every partition")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let a renewal round pass, so that one is likely in flight at the cut.
	time.Sleep(tm.tick() + tm.tick()/2)
	proxy.Pause()
	for _, stopped := rec.counts(); stopped < P; _, stopped = rec.counts() {
		if ctx.Err() != nil {
			t.Fatal("the partitions were never fenced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, s := range rec.stops {
		if s.reason != stopFenced {
			t.Errorf("partition %d stopped as %q, want %q", s.p, s.reason, stopFenced)
		}
		if late := s.at.Sub(s.until); late >= tm.margin {
			t.Errorf("partition %d stopped %s after its deadline: past the margin (%s), the server may have expired its lease", s.p, late, tm.margin)
		}
	}
}
