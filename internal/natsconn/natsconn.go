// Package natsconn connects provider.nats and sink.nats to a NATS server
// the way every mdp bus client connects: reconnecting forever with the
// retry package's backoff (exponential, full jitter), the broker's
// unavailability counted as node errors (so Health shows the node
// DEGRADED) and exported as the node gauge nats_connected, and the URL's
// credentials masked wherever it is shown.
package natsconn

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/retry"
)

// Mask is what replaces a secret in logs and status.
const Mask = "xxxxx"

// Options say how to connect.
type Options struct {
	URL     string
	Backoff retry.Backoff
	// ConnectTimeout bounds one dial.
	ConnectTimeout time.Duration
}

// Conn is a connection with its node's accounting.
type Conn struct {
	*nats.Conn
	masked string
}

// Masked is the server URL with its credentials masked.
func (c *Conn) Masked() string { return c.masked }

// Connect dials the server. When the server is down it does not fail: the
// client keeps trying in the background (RetryOnFailedConnect), each failed
// attempt and each disconnect counted as an error on the node's stats.
// Publications made meanwhile are buffered by the client (up to 8 MiB) and
// JetStream acknowledgements wait.
func Connect(ctx context.Context, o Options, nc *engine.NodeContext) (*Conn, error) {
	c := &Conn{masked: component.MaskURL(o.URL, Mask)}
	log := nc.Logger
	st := nc.Stats
	name := fmt.Sprintf("mdp %s/%s#%d", nc.Job, nc.Node, nc.Instance)
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(timeout),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return o.Backoff.Delay(attempts) }),
		nats.ConnectHandler(func(*nats.Conn) {
			if log != nil {
				log.Info("nats connected", "url", c.masked)
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			msg := "disconnected from " + c.masked
			if err != nil {
				msg += ": " + component.MaskQuerySecrets(err.Error(), Mask)
			}
			if st != nil {
				st.Error("disconnected", msg)
			}
			if log != nil {
				log.Warn("nats disconnected; reconnecting", "url", c.masked, "err", err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if st != nil {
				st.Error("connect_failed", "connecting to "+c.masked+": "+err.Error())
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			if st != nil {
				st.Count("reconnects", 1)
			}
			if log != nil {
				log.Info("nats reconnected", "url", c.masked)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if st != nil {
				st.Error("nats_error", err.Error())
			}
			if log != nil {
				log.Warn("nats error", "url", c.masked, "err", err)
			}
		}),
	}
	conn, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", c.masked, err)
	}
	c.Conn = conn
	nc.Metrics().GaugeFunc("nats_connected", "1 while the node's NATS connection is up, else 0.", func() float64 {
		if conn.IsConnected() {
			return 1
		}
		return 0
	}, engine.MaxAcrossInstances())
	return c, nil
}

// Fields are the connection params both components take.
func Fields() []component.Field {
	return []component.Field{
		{Name: "url", Type: component.String, Default: "nats://127.0.0.1:4222", Secret: true,
			Description: "NATS server URL(s), comma-separated; user:password@ in it is a secret (masked in status and logs)."},
		{Name: "reconnect_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "First reconnect step; each failed attempt doubles it up to max_reconnect_backoff, the wait a random part of the step (full jitter). The client reconnects forever; while it is down the node counts errors and shows DEGRADED."},
		{Name: "max_reconnect_backoff", Type: component.Duration, Default: "5s", Min: component.Bound(0.001), Max: component.Bound(600),
			Description: "Cap of the reconnect step."},
	}
}

// OptionsFrom reads Fields.
func OptionsFrom(p *component.Params) Options {
	return Options{URL: p.String("url"), Backoff: retry.Backoff{Base: p.Duration("reconnect_backoff"), Max: p.Duration("max_reconnect_backoff")}}
}
