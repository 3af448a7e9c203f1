package redissink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"

	_ "github.com/mdpio/mdp/sink/redis"
)

// TestSecretMasked: with no server answering, the URL's password never
// shows in the log, the job's status or its error, and the failure is
// counted with the URL masked.
func TestSecretMasked(t *testing.T) {
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	const secret = "s3cr3t-redis-pw"
	ns := bustest.CheckSinkMasked(t, "sink.redis", map[string]any{"url": "redis://mdp:" + secret + "@" + px.Addr() + "/0",
		"stream": "x", "reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}, secret, time.Second)
	if len(ns.Errors) == 0 || !strings.Contains(ns.LastError, "redis://mdp:xxxxx@") {
		t.Fatalf("errors %v, last %q", ns.Errors, ns.LastError)
	}
}
