// Package redisconn connects provider.redis and sink.redis to a Redis
// server the way every mdp bus client connects: a failed command is retried
// by the component with the retry package's backoff (go-redis's own retries
// are off, so there is one policy), the server's absence is counted as node
// errors (Health DEGRADED) and exported as the node gauge redis_connected,
// and the URL's password is masked wherever it is shown.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
		{Name: "url", Type: component.String, Default: "redis://127.0.0.1:6379/0", Secret: true,
			Description: "Redis URL (redis:// or rediss:// for TLS; user:password@ and /db as usual). The password is a secret: masked in status and logs."},
		{Name: "reconnect_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "First retry step after a failed command; each failure in a row doubles it up to max_reconnect_backoff, the wait a random part of the step (full jitter). While the server is away the node counts errors and shows DEGRADED."},
		{Name: "max_reconnect_backoff", Type: component.Duration, Default: "5s", Min: component.Bound(0.001), Max: component.Bound(600),
			Description: "Cap of the retry step."},
	}, busio.TLSFields()...)
}

// URLTLS reports whether the URL's scheme asks for TLS.
func URLTLS(url string) bool { return strings.HasPrefix(url, "rediss://") }

// Validate checks the URL and the TLS params.
func Validate(p *component.Params) error {
	u := p.String("url")
	if _, err := redis.ParseURL(u); err != nil {
		return p.Errorf("url", "%s", component.MaskQuerySecrets(strings.ReplaceAll(err.Error(), u, component.MaskURL(u, Mask)), Mask))
	}
	return busio.ValidateTLS(p, URLTLS(u))
}

// Client is a Redis client with its node's accounting.
type Client struct {
	*redis.Client
	Backoff retry.Backoff
	masked  string
	st      *engine.NodeStats
	log     *slog.Logger
	down    atomic.Bool
	fails   int // failures in a row (the caller's goroutine)
}

// Connect builds the client (it dials lazily: a server that is down shows
// up as failed commands, retried by the components).
func Connect(p *component.Params, nc *engine.NodeContext) (*Client, error) {
	u := p.String("url")
	masked := component.MaskURL(u, Mask)
	o, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("redis url %s: %w", masked, err)
	}
	tc, err := busio.TLSConfig(p, URLTLS(u))
	if err != nil {
		return nil, fmt.Errorf("redis %s: tls: %w", masked, err)
	}
	if tc != nil {
		if tc.ServerName == "" {
			tc.ServerName = strings.Split(o.Addr, ":")[0]
		}
		o.TLSConfig = tc
	}
	o.MaxRetries = -1 // one retry policy: the component's
	o.DialTimeout = 2 * time.Second
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	o.ClientName = fmt.Sprintf("mdp-%s-%s-%d", nc.Job, nc.Node, nc.Instance)
	c := &Client{Client: redis.NewClient(o), masked: masked, st: nc.Stats, log: nc.Logger,
		Backoff: retry.Backoff{Base: p.Duration("reconnect_backoff"), Max: p.Duration("max_reconnect_backoff")}}
	nc.Metrics().GaugeFunc("redis_connected", "1 while the node's last Redis command succeeded, else 0.", func() float64 {
		if c.down.Load() {
			return 0
		}
		return 1
	}, engine.MaxAcrossInstances())
	return c, nil
}

// Masked is the URL with its password masked.
func (c *Client) Masked() string { return c.masked }

// Connected reports whether the last command reached the server.
func (c *Client) Connected() bool { return !c.down.Load() }

// OK records a command that reached the server (a reconnect, after
// failures).
func (c *Client) OK() {
	if c.fails == 0 {
		return
	}
	c.fails = 0
	c.down.Store(false)
	if c.st != nil {
		c.st.Count("reconnects", 1)
	}
	if c.log != nil {
		c.log.Info("redis reconnected", "url", c.masked)
	}
}

// Fail counts a command that did not reach the server (or failed there)
// as error reason on the node and waits the backoff before the next
// attempt; it returns ctx's error when the job is stopping.
func (c *Client) Fail(ctx context.Context, reason, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.fails++
	if IsConnErr(err) {
		c.down.Store(true)
	}
	msg := component.MaskQuerySecrets(fmt.Sprintf("%s on %s: %v", what, c.masked, err), Mask)
	if c.st != nil {
		c.st.Error(reason, msg)
	}
	if c.log != nil && (c.fails == 1 || c.fails%50 == 0) {
		c.log.Warn("redis command failed; retrying", "url", c.masked, "what", what, "attempt", c.fails, "err", err)
	}
	return retry.Sleep(ctx, c.Backoff.Delay(c.fails))
}

// Fails is the number of failed commands in a row.
func (c *Client) Fails() int { return c.fails }

// IsConnErr reports whether err means the server was not reached (as
// opposed to an error reply).
func IsConnErr(err error) bool {
	if err == nil {
		return false
	}
	var re redis.Error
	return !errors.As(err, &re)
}
