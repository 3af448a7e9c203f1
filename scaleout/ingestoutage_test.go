package scaleout

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mdpio/mdp/engine"
)

// TestNATSKilledWhileIngestPublishes is §4.5 with the outage where it
// hurts the ingest: the nats-server process (file store, sync always) is
// stopped (SIGSTOP) for half a second and killed -9 while `mdp ingest` is
// still publishing, with publishes in flight, and started again on the
// same port a second later. The ingest keeps its unacknowledged
// messages, publishes them again in order once the server is back (the
// duplicate window and the workers' record numbers drop what was stored
// already) and ends with exit status 0; the workers retry through the
// outage; the bars equal the oracle's, and no row ever had a value the
// oracle never had.
func TestNATSKilledWhileIngestPublishes(t *testing.T) {
	ns := startNATSProc(t)
	var killed time.Time
	var ingest *liveProc
	runScene(t, scene{url: ns.url(), now: true}, func(h *handoff) {
		h.worker(t, "w0", 2)
		h.worker(t, "w1", 2)
	}, func(h *handoff) {
		// Kill the server once the ingest has published some of its
		// input: the stream holds messages, the ingest still runs.
		for {
			ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
			st, err := h.js.Stream(ctx, namesOf("so-bars").stream)
			var msgs uint64
			if err == nil {
				msgs = st.CachedInfo().State.Msgs
			}
			cancel()
			if msgs >= 100 {
				break
			}
			if !running(h.ingest) {
				t.Fatalf("the ingest ended before the stream held 100 messages:\n%s", h.ingest.stderr)
			}
			select {
			case <-h.ctx.Done():
				t.Fatal("the stream never held 100 messages")
			case <-time.After(20 * time.Millisecond):
			}
		}
		if !running(h.ingest) {
			t.Fatalf("the ingest ended before the server was killed:\n%s", h.ingest.stderr)
		}
		ingest = h.ingest
		// Stopped first, the server leaves the ingest's publishes of
		// the next half second unacknowledged: the kill then fails
		// them (without a stop the client's reconnect buffer may hold
		// everything the outage saw, and no publish fails).
		if err := ns.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		ns.kill()
		killed = time.Now()
		time.Sleep(time.Second)
		ns.start(t)
	})
	rode := ingest.stderr.lines("scale-out ingest: publishing again after a NATS outage")
	if len(rode) == 0 || logTime(t, rode[0]).Before(killed) {
		t.Fatalf("the ingest never published again after the server's restart:\n%s", ingest.stderr)
	}
	t.Logf("the ingest rode out the outage: %v after the kill, %v messages published again, %d outage(s)",
		logTime(t, rode[0]).Sub(killed).Round(time.Millisecond), rode[0]["republished"], len(rode))
}

// outagePublisher is a publisher of synthJob's names on its own
// connection to srv, opened, with the job's stream in memory.
func outagePublisher(t *testing.T, ctx context.Context, srv *server.Server, extra string) *publisher {
	t.Helper()
	js := loopbackJS(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	doc := synthJob(t, 1000, extra)
	n := namesOf(doc.Name)
	if _, err := ensureStream(ctx, js, n, doc.Scaleout, true); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(js, n, doc.Scaleout.Partitions)
	p.configure(doc.Scaleout)
	if err := p.Open(ctx, &engine.NodeContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.pnc.Close)
	return p
}

// TestPublishFailsAtOnceWhenNotTransient: a message the server refuses
// (larger than its max payload) fails the publish at once, with the
// client's error and no outage counted (no wait for the connection).
func TestPublishFailsAtOnceWhenNotTransient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := outagePublisher(t, ctx, loopbackServer(t), "")
	if p.outageLimit != time.Minute {
		t.Fatalf("outage limit %s without outage_limit, want 1m", p.outageLimit)
	}
	// ctx ends (30 s) before the outage limit (1 min): a publish that
	// rode the error out as an outage would fail with ctx's error, not
	// the client's. No wall-clock bound: a slow machine is not a defect.
	err := p.publish(ctx, 3, make([]byte, 2<<20), "1:3:0:9")
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish: %v, want %v", err, nats.ErrMaxPayload)
	}
	if p.outages != 0 {
		t.Fatalf("%d outages: a non-transient error must fail at once, without an outage", p.outages)
	}
}

// TestPublishOutageLimit: with the server gone for good, a publish waits
// out the outage limit (the job file's scaleout.outage_limit, 1 s here),
// then fails with an error naming it, one outage counted; the message
// stays unacknowledged in the window.
func TestPublishOutageLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := loopbackServer(t)
	p := outagePublisher(t, ctx, srv, ", outage_limit: 1s")
	if err := p.publish(ctx, 2, []byte("frame"), "1:2:0:0"); err != nil {
		t.Fatal(err)
	}
	if err := p.reap(ctx, true); err != nil || len(p.window) != 0 {
		t.Fatalf("reap: %v, %d unacknowledged", err, len(p.window))
	}
	srv.Shutdown()
	for p.pnc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	err := p.publish(ctx, 2, []byte("frame"), "1:2:1:1")
	took := time.Since(start)
	if err == nil || !errors.Is(err, errNotConnected) || !strings.Contains(err.Error(), "for 1s (outage limit)") {
		t.Fatalf("publish: %v, want the outage limit's error", err)
	}
	if took < time.Second || took > 10*time.Second {
		t.Fatalf("the publish failed after %s, want the 1s limit", took)
	}
	if p.outages != 1 || len(p.window) != 1 || p.window[0].id != "1:2:1:1" {
		t.Fatalf("%d outages, window %d", p.outages, len(p.window))
	}
}
