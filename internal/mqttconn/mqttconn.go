// Package mqttconn connects provider.mqtt and sink.mqtt to an MQTT 3.1.1
// broker (Eclipse Paho) the way every mdp bus client connects: reconnected
// after a loss with the retry package's backoff (exponential, full jitter;
// Paho's own reconnect is off, so there is one policy), the broker's
// absence counted as node errors (Health DEGRADED) and exported as the node
// gauge mqtt_connected, and the password masked wherever it is shown.
package mqttconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

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
		{Name: "url", Type: component.String, Default: "tcp://127.0.0.1:1883", Secret: true,
			Description: "Broker URL: tcp:// (or mqtt://), ssl:// (or mqtts://, tls://) for TLS; user:password@ in it logs in. The password is a secret: masked in status and logs."},
		{Name: "password", Type: component.String, Secret: true,
			Description: "Password (instead of one in the URL); masked in status and logs."},
		{Name: "client_id", Type: component.String,
			Description: "MQTT client id (keep it stable for a persistent session). Empty: mdp-<job>-<node>-<instance>."},
		{Name: "qos", Type: component.Int, Default: 1, Min: component.Bound(0), Max: component.Bound(2),
			Description: "Quality of service: 0 at most once, 1 at least once, 2 exactly once between client and broker."},
		{Name: "reconnect_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "First reconnect step; each failed attempt doubles it up to max_reconnect_backoff, the wait a random part of the step (full jitter). The client reconnects forever; while the broker is away the node counts errors and shows DEGRADED."},
		{Name: "max_reconnect_backoff", Type: component.Duration, Default: "5s", Min: component.Bound(0.001), Max: component.Bound(600),
			Description: "Cap of the reconnect step."},
	}, busio.TLSFields()...)
}

// URLTLS reports whether the URL's scheme asks for TLS.
func URLTLS(u string) bool {
	for _, p := range []string{"ssl://", "mqtts://", "tls://", "tcps://"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// Validate checks the URL and the TLS params.
func Validate(p *component.Params) error {
	u, err := url.Parse(p.String("url"))
	if err != nil || u.Host == "" {
		return p.Errorf("url", "not a broker URL (tcp://host:port): %s", component.MaskURL(p.String("url"), Mask))
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "mqtts", "tls", "tcps":
	default:
		return p.Errorf("url", "scheme %q: want tcp, mqtt, ssl, mqtts or tls", u.Scheme)
	}
	return busio.ValidateTLS(p, URLTLS(p.String("url")))
}

// Conn is a client with its node's accounting and mdp's reconnect loop.
type Conn struct {
	mqtt.Client
	masked  string
	backoff retry.Backoff
	timeout time.Duration
	st      *engine.NodeStats
	log     *slog.Logger
	up      atomic.Bool
	lost    chan struct{}
	// OnConnect runs after each (re)connection (a source subscribes).
	OnConnect func(c mqtt.Client) error
	done      chan struct{}
	wg        sync.WaitGroup
	dialled   bool
}

// New builds the client for one node instance: clean asks for a clean
// session, manualAck turns Paho's automatic acknowledgement of received
// messages off (the source acknowledges each message itself).
func New(p *component.Params, nc *engine.NodeContext, clean, manualAck bool) (*Conn, error) {
	raw := p.String("url")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mqtt url: %w", err)
	}
	c := &Conn{masked: component.MaskURL(raw, Mask), st: nc.Stats, log: nc.Logger, timeout: 5 * time.Second,
		backoff: retry.Backoff{Base: p.Duration("reconnect_backoff"), Max: p.Duration("max_reconnect_backoff")},
		lost:    make(chan struct{}, 1), done: make(chan struct{})}
	o := mqtt.NewClientOptions()
	user, pass := "", p.String("password")
	if u.User != nil {
		user = u.User.Username()
		if pw, ok := u.User.Password(); ok && pass == "" {
			pass = pw
		}
	}
	scheme := u.Scheme
	switch scheme {
	case "mqtt":
		scheme = "tcp"
	case "mqtts", "tcps":
		scheme = "ssl"
	}
	o.AddBroker(scheme + "://" + u.Host)
	if user != "" {
		o.SetUsername(user)
	}
	if pass != "" {
		o.SetPassword(pass)
	}
	tc, err := busio.TLSConfig(p, URLTLS(raw))
	if err != nil {
		return nil, fmt.Errorf("mqtt %s: tls: %w", c.masked, err)
	}
	if tc != nil {
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		o.SetTLSConfig(tc)
	}
	id := p.String("client_id")
	if id == "" {
		id = fmt.Sprintf("mdp-%s-%s-%d", nc.Job, nc.Node, nc.Instance)
	}
	o.SetClientID(id)
	o.SetProtocolVersion(4)
	o.SetCleanSession(clean)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(2 * time.Second)
	o.SetKeepAlive(10 * time.Second)
	o.SetOrderMatters(true)
	o.SetAutoAckDisabled(manualAck)
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		c.up.Store(false)
		c.st.Error("disconnected", fmt.Sprintf("disconnected from %s: %v", c.masked, err))
		if c.log != nil {
			c.log.Warn("mqtt disconnected; reconnecting", "url", c.masked, "err", err)
		}
		select {
		case c.lost <- struct{}{}:
		default:
		}
	})
	c.Client = mqtt.NewClient(o)
	nc.Metrics().GaugeFunc("mqtt_connected", "1 while the node's MQTT connection is up, else 0.", func() float64 {
		if c.up.Load() {
			return 1
		}
		return 0
	}, engine.MaxAcrossInstances())
	return c, nil
}

// Masked is the URL with its password masked.
func (c *Conn) Masked() string { return c.masked }

// Connected reports whether the connection is up.
func (c *Conn) Connected() bool { return c.up.Load() }

// Start connects (retrying with backoff until it succeeds or ctx ends)
// and then keeps reconnecting after every loss until Close.
func (c *Conn) Start(ctx context.Context) error {
	if err := c.connect(ctx); err != nil {
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-c.lost:
			case <-c.done:
				return
			case <-ctx.Done():
				return
			}
			if c.connect(ctx) != nil {
				return
			}
		}
	}()
	return nil
}

func (c *Conn) connect(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		t := c.Client.Connect()
		var err error
		if !t.WaitTimeout(c.timeout) {
			err = errors.New("connect timed out")
		} else {
			err = t.Error()
		}
		if err == nil && c.OnConnect != nil {
			err = c.OnConnect(c.Client)
		}
		if err == nil {
			c.up.Store(true)
			if c.dialled {
				c.st.Count("reconnects", 1)
				if c.log != nil {
					c.log.Info("mqtt reconnected", "url", c.masked)
				}
			}
			c.dialled = true
			return nil
		}
		if c.Client.IsConnected() {
			c.Client.Disconnect(0)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.st.Error("connect_failed", fmt.Sprintf("connecting to %s: %v", c.masked, err))
		if err := retry.Sleep(ctx, c.backoff.Delay(attempt)); err != nil {
			return err
		}
		select {
		case <-c.done:
			return errors.New("closed")
		default:
		}
	}
}

// Close disconnects (waiting up to 250ms for work in progress) and stops
// the reconnect loop.
func (c *Conn) Close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.Client.Disconnect(250)
	c.up.Store(false)
	c.wg.Wait()
}

// Backoff is the reconnect backoff.
func (c *Conn) Backoff() retry.Backoff { return c.backoff }
