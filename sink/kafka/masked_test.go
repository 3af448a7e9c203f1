package kafkasink_test

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"

	_ "github.com/mdpio/mdp/sink/kafka"
)

// TestSecretMasked: with no broker answering, the SASL password never
// shows in the log, the job's status or its error, and the failure is
// counted.
func TestSecretMasked(t *testing.T) {
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	const secret = "s3cr3t-kafka-pw"
	ns := bustest.CheckSinkMasked(t, "sink.kafka", map[string]any{"brokers": []any{px.Addr()}, "topic": "t",
		"sasl_mechanism": "plain", "sasl_username": "mdp", "sasl_password": secret,
		"reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}, secret, time.Second)
	if len(ns.Errors) == 0 {
		t.Fatalf("no error counted without a broker (status %+v)", ns)
	}
	t.Logf("errors %v, last %q", ns.Errors, ns.LastError)
}
