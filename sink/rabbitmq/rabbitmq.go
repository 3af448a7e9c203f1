// Package rabbitmqsink is the sink.rabbitmq component: it publishes each
// batch (or each symbol's or partition's part of it) to an exchange with a
// routing key template, in confirm mode, and counts a batch as written only
// once the broker confirmed it.
package rabbitmqsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/amqpconn"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

func init() {
	fields := append(amqpconn.Fields(),
		component.Field{Name: "exchange", Type: component.String, Default: "",
			Description: "Exchange to publish to. Empty: the default exchange, where the routing key names a queue."},
		component.Field{Name: "exchange_type", Type: component.String, Default: "topic", Enum: []string{"topic", "direct", "fanout", "headers"},
			Description: "Type of the exchange, declared (durable) at start when exchange is set."},
		component.Field{Name: "routing_key", Type: component.String, Default: "md.{kind}.{symbol}",
			Description: "Routing key template: {kind} the record kind, {symbol} a record's symbol (one message per symbol of a batch), {partition} md.Split of the symbol over partitions (one message per partition)."},
		component.Field{Name: "partitions", Type: component.Int, Default: 0, Min: component.Bound(0), Max: component.Bound(4096),
			Description: "Number of partitions {partition} takes: a symbol's records always carry the same key, so a queue bound to one partition's key gets each of its symbols in order."},
		component.Field{Name: "format", Type: component.String, Default: "mdp", Enum: busfmt.FormatNames,
			Description: "Message encoding: mdp (the binary frame of one batch, see README \"The mdp frame\"), json (JSON lines, as sink.file writes them) or csv (a header line and rows, as sink.file writes them)."},
		component.Field{Name: "persistent", Type: component.Bool, Default: true,
			Description: "Publish with delivery mode 2, so a durable queue keeps the messages across a broker restart."},
		component.Field{Name: "max_pending", Type: component.Int, Default: 256, Min: component.Bound(1), Max: component.Bound(65536),
			Description: "Messages published and not yet confirmed; at the limit the sink waits for the oldest confirmation (backpressure)."},
		component.Field{Name: "confirm_timeout", Type: component.Duration, Default: "10s", Min: component.Bound(0.01), Max: component.Bound(600),
			Description: "How long to wait for one confirmation before the connection is dropped and every unconfirmed message published again."},
		component.Field{Name: "max_attempts", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1000),
			Description: "Publications of one message (a negative confirmation, or a connection lost before its confirmation) before the job fails."},
	)
	component.Register(component.Spec{
		Type:    "sink.rabbitmq",
		Kind:    engine.KindSink,
		Summary: "Publish batches to RabbitMQ (publisher confirms, routing key template)",
		Description: "One message per batch, or per symbol or partition of it when routing_key names {symbol} or {partition} " +
			"(the default md.{kind}.{symbol}), in format mdp, json or csv. The channel is in confirm mode: a message counts as " +
			"written only once the broker confirmed it (up to max_pending in flight); a negative confirmation, or a connection " +
			"lost before the confirmation, publishes it again after a reconnect (so a message can arrive twice: at least once), " +
			"and the job stops only after the last confirmation. A message no queue is bound for is dropped by the broker " +
			"(not mandatory): declare and bind the queues (provider.rabbitmq does) before publishing. A crash (kill -9) loses " +
			"the unconfirmed messages the broker had not taken. The broker's absence is counted as errors (Health DEGRADED) " +
			"and in the rabbitmq_connected gauge; the client reconnects forever with backoff and jitter.",
		Accepts: md.KindAny,
		Fields:  fields,
		Validate: func(p *component.Params) error {
			var errs []error
			if err := amqpconn.Validate(p); err != nil {
				errs = append(errs, err)
			}
			t, err := busio.ParseTemplate(p.String("routing_key"))
			if err != nil {
				errs = append(errs, p.Errorf("routing_key", "%v", err))
			} else if t.Partition != (p.Int("partitions") > 0) {
				errs = append(errs, p.Errorf("partitions", "{partition} in routing_key and partitions > 0 go together"))
			}
			if p.Has("exchange_type") && p.String("exchange") == "" {
				errs = append(errs, p.Errorf("exchange_type", "exchange_type applies only with an exchange"))
			}
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			f, err := busfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, p.Errorf("format", "%v", err)
			}
			t, err := busio.ParseTemplate(p.String("routing_key"))
			if err != nil {
				return nil, p.Errorf("routing_key", "%v", err)
			}
			mode := amqp.Transient
			if p.Bool("persistent") {
				mode = amqp.Persistent
			}
			return &Sink{p: p, tmpl: t, split: busio.NewSplitter(t, int(p.Int("partitions"))), w: busio.NewArena(busfmt.NewWriter(f)),
				exchange: p.String("exchange"), exchangeType: p.String("exchange_type"), mode: mode,
				maxPending: int(p.Int("max_pending")), confirmTimeout: p.Duration("confirm_timeout"), maxAttempts: int(p.Int("max_attempts"))}, nil
		},
	})
}

var contentTypes = map[busfmt.Format]string{busfmt.MDP: "application/x-mdp-frame", busfmt.JSON: "application/x-ndjson", busfmt.CSV: "text/csv"}

// Sink is a sink.rabbitmq instance.
type Sink struct {
	p              *component.Params
	tmpl           *busio.Template
	split          *busio.Splitter
	w              *busio.Arena
	exchange       string
	exchangeType   string
	mode           uint8
	maxPending     int
	confirmTimeout time.Duration
	maxAttempts    int

	nc        *engine.NodeContext
	log       *slog.Logger
	d         *amqpconn.Dialer
	conn      *amqp.Connection
	ch        *amqp.Channel
	pending   []*inflight // oldest first
	free      []*inflight
	msgs      int64
	records   int64
	confirmed *engine.Counter
	again     *engine.Counter
}

// inflight is a published message waiting for its confirmation.
type inflight struct {
	key      string
	data     []byte
	dc       *amqp.DeferredConfirmation
	attempts int
}

// Open connects (waiting, with backoff, while the broker is away) and
// declares the exchange.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	d, err := amqpconn.New(s.p, nc)
	if err != nil {
		return err
	}
	s.d = d
	s.confirmed = nc.Metrics().Counter("rabbitmq_confirmed_messages_total", "Messages the broker confirmed.")
	s.again = nc.Metrics().Counter("rabbitmq_republished_total", "Messages published again after a negative confirmation or a lost connection.")
	return s.connect(ctx)
}

func (s *Sink) connect(ctx context.Context) error {
	conn, ch, err := s.d.Dial(ctx, func(ch *amqp.Channel) error {
		if s.exchange != "" {
			if err := ch.ExchangeDeclare(s.exchange, s.exchangeType, true, false, false, false, nil); err != nil {
				return fmt.Errorf("declare exchange %s: %w", s.exchange, err)
			}
		}
		return ch.Confirm(false)
	})
	if err != nil {
		return err
	}
	s.conn, s.ch = conn, ch
	return nil
}

// Process publishes b's messages; it returns once at most max_pending are
// unconfirmed.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	syms := s.nc.Symbols.Snapshot()
	groups := s.split.Split(b, syms)
	for _, g := range groups {
		key := s.tmpl.Append(s.w.KeyBuf(), b.Kind, syms[g.Sym].Symbol, g.Partition)
		s.w.Reset()
		if err := s.w.Add(key, g.Batch, syms); err != nil {
			return fmt.Errorf("encode a %s batch for %s: %w", b.Kind, s.tmpl, err)
		}
		k, payload := s.w.Get(0)
		f := s.get()
		f.key = k
		f.data = append(f.data[:0], payload...)
		f.attempts = 0
		if err := s.publish(ctx, f); err != nil {
			return err
		}
		s.pending = append(s.pending, f)
		s.msgs++
		for len(s.pending) >= s.maxPending {
			if err := s.settleOldest(ctx); err != nil {
				return err
			}
		}
	}
	s.records += int64(n)
	return nil
}

func (s *Sink) get() *inflight {
	if n := len(s.free); n > 0 {
		f := s.free[n-1]
		s.free = s.free[:n-1]
		return f
	}
	return &inflight{}
}

// publish sends f on the current channel, reconnecting (and publishing
// every pending message again) when the channel is gone.
func (s *Sink) publish(ctx context.Context, f *inflight) error {
	for {
		f.attempts++
		dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.exchange, f.key, false, false, amqp.Publishing{
			ContentType: contentTypes[s.w.Format()], DeliveryMode: s.mode, Body: f.data})
		if err == nil {
			f.dc = dc
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if f.attempts >= s.maxAttempts {
			return fmt.Errorf("publish to %s on %s: %d attempts: %w", f.key, s.d.Masked(), f.attempts, err)
		}
		if err := s.reconnect(ctx, err); err != nil {
			return err
		}
	}
}

// reconnect replaces a broken connection and publishes the pending
// messages again, in order.
func (s *Sink) reconnect(ctx context.Context, cause error) error {
	s.d.Lost("disconnected", cause)
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	for _, f := range s.pending {
		if f.dc != nil && f.dc.Acked() {
			continue // confirmed before the connection broke
		}
		s.again.Inc()
		f.attempts++
		if f.attempts > s.maxAttempts {
			return fmt.Errorf("publish to %s on %s: no confirmation after %d attempts: %w", f.key, s.d.Masked(), f.attempts-1, cause)
		}
		dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.exchange, f.key, false, false, amqp.Publishing{
			ContentType: contentTypes[s.w.Format()], DeliveryMode: s.mode, Body: f.data})
		if err != nil {
			if err := retry.Sleep(ctx, s.d.Backoff().Delay(f.attempts)); err != nil {
				return err
			}
			return s.reconnect(ctx, err)
		}
		f.dc = dc
	}
	return nil
}

// settleOldest waits for the oldest message's confirmation.
func (s *Sink) settleOldest(ctx context.Context) error {
	for {
		f := s.pending[0]
		var cause error
		select {
		case <-f.dc.Done():
			if f.dc.Acked() {
				s.confirmed.Inc()
				s.pending[0] = nil
				s.pending = s.pending[1:]
				s.free = append(s.free, f)
				return nil
			}
			cause = errors.New("negative confirmation (nack)")
		default:
			t := time.NewTimer(s.confirmTimeout)
			select {
			case <-f.dc.Done():
				t.Stop()
				continue
			case <-t.C:
				cause = fmt.Errorf("no confirmation within %s", s.confirmTimeout)
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		s.nc.Stats.Error("publish_failed", fmt.Sprintf("publish to %s: %v", f.key, cause))
		if err := retry.Sleep(ctx, s.d.Backoff().Delay(f.attempts)); err != nil {
			return err
		}
		if err := s.reconnect(ctx, cause); err != nil {
			return err
		}
	}
}

// Close waits for every confirmation, so the job reports stopped only once
// the broker has what the sink accepted.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	for len(s.pending) > 0 {
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	if s.log != nil {
		s.log.Info("published", "exchange", s.exchange, "routing_key", s.tmpl.String(), "messages", s.msgs, "records", s.records)
	}
	return nil
}

// Cleanup closes the connection.
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Sink) Ready() bool { return s.d != nil && s.d.Connected() }

// Summary implements engine.Summarizer.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.records, "messages": s.msgs}
}
