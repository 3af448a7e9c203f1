package mqttsink_test

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"

	_ "github.com/mdpio/mdp/sink/mqtt"
)

// TestSecretMasked: with no broker answering, neither the password param
// nor a user:password@ URL's password shows in the log, the job's status
// or its error (Open dials until the job's deadline), and the failures
// are counted.
func TestSecretMasked(t *testing.T) {
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	for _, c := range []struct {
		params map[string]any
		secret string
	}{
		{map[string]any{"url": "tcp://mdp@" + px.Addr(), "password": "s3cr3t-mqtt-param"}, "s3cr3t-mqtt-param"},
		{map[string]any{"url": "tcp://mdp:s3cr3t-mqtt-url@" + px.Addr()}, "s3cr3t-mqtt-url"},
	} {
		p := c.params
		p["topic"], p["client_id"] = "x", bustest.Unique("mdptest-pub-")
		p["reconnect_backoff"], p["max_reconnect_backoff"] = "10ms", "20ms"
		ns := bustest.CheckSinkMasked(t, "sink.mqtt", p, c.secret, time.Second)
		if ns.Errors["connect_failed"] == 0 {
			t.Fatalf("%v: errors %v, last %q", p["url"], ns.Errors, ns.LastError)
		}
	}
}
