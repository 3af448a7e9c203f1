// Package mqttsink is the sink.mqtt component: it publishes each batch (or
// each symbol's or partition's part of it) to an MQTT topic from a
// template, and with QoS 1 or 2 counts a batch as written only once the
// broker acknowledged it.
package mqttsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/internal/mqttconn"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

func init() {
	fields := append(mqttconn.Fields(),
		component.Field{Name: "topic", Type: component.String, Default: "md/{kind}/{symbol}",
			Description: "Topic template: {kind} the record kind, {symbol} a record's symbol (one message per symbol of a batch), {partition} md.Split of the symbol over partitions (one message per partition)."},
		component.Field{Name: "partitions", Type: component.Int, Default: 0, Min: component.Bound(0), Max: component.Bound(4096),
			Description: "Number of partitions {partition} takes: a symbol's records always go to the same topic, in order."},
		component.Field{Name: "format", Type: component.String, Default: "mdp", Enum: busfmt.FormatNames,
			Description: "Message encoding: mdp (the binary frame of one batch, see README \"The mdp frame\"), json (JSON lines, as sink.file writes them) or csv (a header line and rows, as sink.file writes them)."},
		component.Field{Name: "retain", Type: component.Bool, Default: false,
			Description: "Publish retained messages (the broker keeps the last one per topic for new subscribers)."},
		component.Field{Name: "max_pending", Type: component.Int, Default: 64, Min: component.Bound(1), Max: component.Bound(65535),
			Description: "With QoS 1 or 2: messages published and not yet acknowledged; at the limit the sink waits for the oldest (backpressure)."},
		component.Field{Name: "ack_timeout", Type: component.Duration, Default: "10s", Min: component.Bound(0.01), Max: component.Bound(600),
			Description: "How long to wait for one acknowledgement before publishing the message again."},
		component.Field{Name: "max_attempts", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1000),
			Description: "Publications of one message before the job fails; between them the sink waits with the reconnect backoff."},
	)
	component.Register(component.Spec{
		Type:    "sink.mqtt",
		Kind:    engine.KindSink,
		Summary: "Publish batches to MQTT topics (QoS 0/1/2)",
		Description: "One message per batch, or per symbol or partition of it when topic names {symbol} or {partition} (the default " +
			"md/{kind}/{symbol}), in format mdp, json or csv, over MQTT 3.1.1 (Eclipse Paho). With QoS 1 or 2 a message counts as " +
			"written only once the broker acknowledged it (up to max_pending in flight); one whose acknowledgement fails or times " +
			"out is published again after a reconnect, so with QoS 1 it can arrive twice (at least once), and the job stops only " +
			"after the last acknowledgement. QoS 0 is at most once. A subscriber that is not connected (and has no persistent " +
			"session) misses what is published meanwhile. A crash (kill -9) loses the unacknowledged messages. The broker's absence " +
			"is counted as errors (Health DEGRADED) and in the mqtt_connected gauge; the client reconnects forever with backoff and jitter.",
		Accepts: md.KindAny,
		Fields:  fields,
		Validate: func(p *component.Params) error {
			var errs []error
			if err := mqttconn.Validate(p); err != nil {
				errs = append(errs, err)
			}
			t, err := busio.ParseTemplate(p.String("topic"))
			if err != nil {
				errs = append(errs, p.Errorf("topic", "%v", err))
			} else if t.Partition != (p.Int("partitions") > 0) {
				errs = append(errs, p.Errorf("partitions", "{partition} in topic and partitions > 0 go together"))
			}
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			f, err := busfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, p.Errorf("format", "%v", err)
			}
			t, err := busio.ParseTemplate(p.String("topic"))
			if err != nil {
				return nil, p.Errorf("topic", "%v", err)
			}
			return &Sink{p: p, tmpl: t, split: busio.NewSplitter(t, int(p.Int("partitions"))), w: busio.NewArena(busfmt.NewWriter(f)),
				qos: byte(p.Int("qos")), retain: p.Bool("retain"), maxPending: int(p.Int("max_pending")),
				ackTimeout: p.Duration("ack_timeout"), maxAttempts: int(p.Int("max_attempts"))}, nil
		},
	})
}

// Sink is a sink.mqtt instance.
type Sink struct {
	p           *component.Params
	tmpl        *busio.Template
	split       *busio.Splitter
	w           *busio.Arena
	qos         byte
	retain      bool
	maxPending  int
	ackTimeout  time.Duration
	maxAttempts int

	nc      *engine.NodeContext
	log     *slog.Logger
	c       *mqttconn.Conn
	pending []*inflight // oldest first
	timer   *time.Timer // the acknowledgement timeout, reused
	free    []*inflight // settled, their buffers reused
	msgs    int64
	records int64
	acked   *engine.Counter
	again   *engine.Counter
}

type inflight struct {
	topic    string
	data     []byte
	tok      mqtt.Token
	attempts int
}

// Open connects, waiting with backoff while the broker is away.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	c, err := mqttconn.New(s.p, nc, true, false)
	if err != nil {
		return err
	}
	s.c = c
	s.acked = nc.Metrics().Counter("mqtt_acked_messages_total", "Messages the broker acknowledged (QoS 1 and 2).")
	s.again = nc.Metrics().Counter("mqtt_republished_total", "Messages published again after a failed or late acknowledgement.")
	return c.Start(ctx)
}

// Process publishes b's messages.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	syms := s.nc.Symbols.Snapshot()
	for _, g := range s.split.Split(b, syms) {
		key := s.tmpl.Append(s.w.KeyBuf(), b.Kind, syms[g.Sym].Symbol, g.Partition)
		s.w.Reset()
		if err := s.w.Add(key, g.Batch, syms); err != nil {
			return fmt.Errorf("encode a %s batch for %s: %w", b.Kind, s.tmpl, err)
		}
		topic, payload := s.w.Get(0)
		// Paho keeps the payload until the message is sent (and, with
		// QoS > 0, acknowledged): each message in flight has its own
		// copy, in a buffer reused once it settled.
		f := s.get()
		f.topic, f.data = topic, append(f.data[:0], payload...)
		f.attempts = 1
		f.tok = s.c.Publish(f.topic, s.qos, s.retain, f.data)
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

// settleOldest waits for the oldest message's acknowledgement (QoS 1, 2)
// or its hand-over to the connection (QoS 0), publishing it again when it
// fails.
func (s *Sink) settleOldest(ctx context.Context) error {
	f := s.pending[0]
	for {
		var err error
		select { // the usual case: settled already, no timer needed
		case <-f.tok.Done():
			err = f.tok.Error()
		default:
			// One timer, reused (Reset and Stop leave no stale tick since
			// Go 1.23).
			if s.timer == nil {
				s.timer = time.NewTimer(s.ackTimeout)
			} else {
				s.timer.Reset(s.ackTimeout)
			}
			select {
			case <-f.tok.Done():
				err = f.tok.Error()
			case <-s.timer.C:
				err = fmt.Errorf("no acknowledgement within %s", s.ackTimeout)
			case <-ctx.Done():
				s.timer.Stop()
				return ctx.Err()
			}
			s.timer.Stop()
		}
		if err == nil {
			if s.qos > 0 {
				s.acked.Inc()
			}
			s.pending[0] = nil
			s.pending = s.pending[1:]
			f.tok = nil
			s.free = append(s.free, f)
			return nil
		}
		s.nc.Stats.Error("publish_failed", fmt.Sprintf("publish to %s on %s: %v", f.topic, s.c.Masked(), err))
		if f.attempts >= s.maxAttempts {
			return fmt.Errorf("publish to %s on %s: %d attempts: %w", f.topic, s.c.Masked(), f.attempts, err)
		}
		if err := retry.Sleep(ctx, s.c.Backoff().Delay(f.attempts)); err != nil {
			return err
		}
		// Wait for the reconnect loop, then publish it again.
		for !s.c.IsConnectionOpen() {
			if err := retry.Sleep(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
		// Every pending message that failed goes again, in order, so a
		// reconnect does not reorder a topic.
		for _, g := range s.pending {
			if g != f {
				select {
				case <-g.tok.Done():
					if g.tok.Error() == nil {
						continue
					}
				default:
					continue
				}
			}
			g.attempts++
			s.again.Inc()
			g.tok = s.c.Publish(g.topic, s.qos, s.retain, g.data)
		}
	}
}

// Close waits for every acknowledgement, then disconnects.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	for len(s.pending) > 0 {
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	if s.log != nil {
		s.log.Info("published", "topic", s.tmpl.String(), "messages", s.msgs, "records", s.records)
	}
	return nil
}

// Cleanup disconnects.
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.c != nil {
		s.c.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Sink) Ready() bool { return s.c != nil && s.c.Connected() }

// Summary implements engine.Summarizer.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.records, "messages": s.msgs}
}
