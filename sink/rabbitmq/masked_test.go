package rabbitmqsink_test

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"

	_ "github.com/mdpio/mdp/sink/rabbitmq"
)

// TestSecretMasked: with no broker answering, the amqp URL's password
// never shows in the log, the job's status or its error (Open dials until
// the job's deadline), and the failures are counted.
func TestSecretMasked(t *testing.T) {
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	const secret = "s3cr3t-amqp-pw"
	ns := bustest.CheckSinkMasked(t, "sink.rabbitmq", map[string]any{"url": "amqp://mdp:" + secret + "@" + px.Addr() + "/",
		"routing_key": "x", "reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}, secret, time.Second)
	if ns.Errors["connect_failed"] == 0 {
		t.Fatalf("errors %v, last %q", ns.Errors, ns.LastError)
	}
}
