package natssink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"

	_ "github.com/mdpio/mdp/sink/nats"
)

// TestSecretMasked: with no server answering, neither a URL's password
// nor a URL token shows in the log, the job's status or its error, and
// the failure is counted with the URL masked.
func TestSecretMasked(t *testing.T) {
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	for _, c := range []struct{ url, secret, masked string }{
		{"nats://mdp:s3cr3t-nats-pw@" + px.Addr(), "s3cr3t-nats-pw", "nats://mdp:xxxxx@"},
		{"nats://s3cr3t-nats-token@" + px.Addr(), "s3cr3t-nats-token", "nats://xxxxx@"},
	} {
		for _, js := range []bool{true, false} {
			ns := bustest.CheckSinkMasked(t, "sink.nats", map[string]any{"url": c.url, "subject": "x", "jetstream": js,
				"reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}, c.secret, time.Second)
			if ns.Errors["connect_failed"] == 0 || !strings.Contains(ns.LastError, c.masked) {
				t.Fatalf("%s (jetstream %v): errors %v, last %q, want connect_failed naming %s", c.masked, js, ns.Errors, ns.LastError, c.masked)
			}
		}
	}
}
