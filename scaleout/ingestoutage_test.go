package scaleout

import (
	"context"
	"syscall"
	"testing"
	"time"
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
