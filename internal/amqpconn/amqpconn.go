// Package amqpconn connects provider.rabbitmq and sink.rabbitmq to a
// RabbitMQ broker the way every mdp bus client connects: dialled again
// after a failure with the retry package's backoff (exponential, full
// jitter), the broker's absence counted as node errors (Health DEGRADED)
// and exported as the node gauge rabbitmq_connected, and the URL's
// password masked wherever it is shown.
package amqpconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/retry"
)

// Mask is what replaces a secret in logs and status.
const Mask = "xxxxx"

// Fields are the connection params both components take.
func Fields() []component.Field {
	return append([]component.Field{
		{Name: "url", Type: component.String, Default: "amqp://guest:guest@127.0.0.1:5672/", Secret: true,
			Description: "AMQP 0-9-1 URL (amqp://, or amqps:// for TLS; user:password@host:port/vhost). The password is a secret: masked in status and logs."},
		{Name: "reconnect_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "First reconnect step; each failed attempt doubles it up to max_reconnect_backoff, the wait a random part of the step (full jitter). The client reconnects forever; while the broker is away the node counts errors and shows DEGRADED."},
		{Name: "max_reconnect_backoff", Type: component.Duration, Default: "5s", Min: component.Bound(0.001), Max: component.Bound(600),
			Description: "Cap of the reconnect step."},
	}, busio.TLSFields()...)
}

// URLTLS reports whether the URL's scheme asks for TLS.
func URLTLS(url string) bool { return strings.HasPrefix(url, "amqps://") }

// Validate checks the URL and the TLS params.
func Validate(p *component.Params) error {
	u := p.String("url")
	if _, err := amqp.ParseURI(u); err != nil {
		return p.Errorf("url", "%s", strings.ReplaceAll(err.Error(), u, component.MaskURL(u, Mask)))
	}
	return busio.ValidateTLS(p, URLTLS(u))
}

// Dialer dials the broker for one node instance.
type Dialer struct {
	url     string
	masked  string
	cfg     amqp.Config
	backoff retry.Backoff
	st      *engine.NodeStats
	log     *slog.Logger
	up      atomic.Bool
	dialled bool
}

// New prepares a dialer (nothing is dialled yet).
func New(p *component.Params, nc *engine.NodeContext) (*Dialer, error) {
	u := p.String("url")
	d := &Dialer{url: u, masked: component.MaskURL(u, Mask), st: nc.Stats, log: nc.Logger,
		backoff: retry.Backoff{Base: p.Duration("reconnect_backoff"), Max: p.Duration("max_reconnect_backoff")}}
	tc, err := busio.TLSConfig(p, URLTLS(u))
	if err != nil {
		return nil, fmt.Errorf("rabbitmq %s: tls: %w", d.masked, err)
	}
	d.cfg = amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US", TLSClientConfig: tc,
		Properties: amqp.Table{"connection_name": fmt.Sprintf("mdp %s/%s#%d", nc.Job, nc.Node, nc.Instance)},
		Dial:       amqp.DefaultDial(2 * time.Second)}
	nc.Metrics().GaugeFunc("rabbitmq_connected", "1 while the node's RabbitMQ connection is up, else 0.", func() float64 {
		if d.up.Load() {
			return 1
		}
		return 0
	}, engine.MaxAcrossInstances())
	return d, nil
}

// Masked is the URL with its password masked.
func (d *Dialer) Masked() string { return d.masked }

// Connected reports whether the connection is up.
func (d *Dialer) Connected() bool { return d.up.Load() }

// Dial connects and opens a channel, set up by setup (declarations,
// confirm mode, consume), trying again with backoff until it succeeds or
// ctx ends. A setup error the broker answered (a refused declaration)
// fails at once.
func (d *Dialer) Dial(ctx context.Context, setup func(*amqp.Channel) error) (*amqp.Connection, *amqp.Channel, error) {
	for attempt := 1; ; attempt++ {
		conn, err := amqp.DialConfig(d.url, d.cfg)
		if err == nil {
			var ch *amqp.Channel
			ch, err = conn.Channel()
			if err == nil {
				err = setup(ch)
			}
			if err == nil {
				if d.dialled {
					d.st.Count("reconnects", 1)
					if d.log != nil {
						d.log.Info("rabbitmq reconnected", "url", d.masked)
					}
				}
				d.dialled = true
				d.up.Store(true)
				return conn, ch, nil
			}
			_ = conn.Close()
			var ae *amqp.Error
			if errors.As(err, &ae) && !ae.Recover && ae.Code != amqp.ChannelError && ae.Code != amqp.FrameError {
				if ae.Code == amqp.NotFound || ae.Code == amqp.PreconditionFailed || ae.Code == amqp.AccessRefused {
					return nil, nil, fmt.Errorf("rabbitmq %s: %w", d.masked, err)
				}
			}
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		d.Lost("connect_failed", err)
		if err := retry.Sleep(ctx, d.backoff.Delay(attempt)); err != nil {
			return nil, nil, err
		}
	}
}

// Lost counts a failed connection (reason connect_failed or disconnected)
// on the node and marks it down.
func (d *Dialer) Lost(reason string, err error) {
	d.up.Store(false)
	msg := reason + " " + d.masked
	if err != nil {
		msg += ": " + strings.ReplaceAll(err.Error(), d.url, d.masked)
	}
	d.st.Error(reason, msg)
	if d.log != nil {
		d.log.Warn("rabbitmq connection lost; reconnecting", "url", d.masked, "reason", reason, "err", err)
	}
}

// Backoff is the reconnect backoff.
func (d *Dialer) Backoff() retry.Backoff { return d.backoff }
