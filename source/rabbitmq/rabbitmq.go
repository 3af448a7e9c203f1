// Package rabbitmqsrc is the provider.rabbitmq component: it consumes a
// queue (declared, and bound to an exchange when asked) with a prefetch
// window and manual acknowledgements, sent once batches are handed
// downstream or, with checkpoints, once a checkpoint covering them
// completes.
package rabbitmqsrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/amqpconn"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/md"
)

// quietEvery is how long the source waits for a delivery before it lets a
// requested checkpoint barrier through (Output.Quiet).
const quietEvery = 20 * time.Millisecond

func init() {
	fields := append(amqpconn.Fields(),
		component.Field{Name: "queue", Type: component.String, Required: true,
			Description: "Queue to consume; declared at start (durable unless durable: false).", Example: "mdp.trades"},
		component.Field{Name: "durable", Type: component.Bool, Default: true,
			Description: "Declare the queue durable (it survives a broker restart, with persistent messages)."},
		component.Field{Name: "exchange", Type: component.String,
			Description: "Exchange to bind the queue to (declared, durable, of exchange_type). Empty: no binding (the queue gets what is published to it by name)."},
		component.Field{Name: "exchange_type", Type: component.String, Default: "topic", Enum: []string{"topic", "direct", "fanout", "headers"},
			Description: "Type of the exchange."},
		component.Field{Name: "binding_keys", Type: component.Strings, Default: []any{"#"},
			Description: "Binding keys of the queue on the exchange (topic patterns: md.trade.* or md.trade.3 for partition 3 of a sink with {partition})."},
		component.Field{Name: "prefetch", Type: component.Int, Default: 1024, Min: component.Bound(1), Max: component.Bound(65535),
			Description: "Unacknowledged messages the broker sends ahead (basic.qos). With checkpoints, messages are acknowledged at checkpoints, so prefetch bounds what one checkpoint interval can read."},
		component.Field{Name: "dead_letter_exchange", Type: component.String,
			Description: "Declare the queue with x-dead-letter-exchange, so the whole messages the source rejects as malformed (mdp frames that do not decode; not single json or csv rows) go there: the broker's dead-lettering, besides on_error's file. Under on_error: fail nothing is rejected (the message stays unacknowledged). Empty: rejected messages are discarded by the broker."},
		component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"},
			Description: "Record kind of the messages; a frame of another kind is malformed (bad_kind)."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.rabbitmq",
		Kind:    engine.KindSource,
		Summary: "Consume batches from a RabbitMQ queue (manual acks, prefetch)",
		Description: "Each message holds one batch in format mdp, json or csv (sink.rabbitmq writes them; json and csv with a mapping read foreign messages); messages are gathered into the job's " +
			"batches. The queue is declared (and bound to exchange with binding_keys) at start. Without checkpoints the source " +
			"acknowledges (multiple) the messages of a batch once it is handed downstream: a crash makes the broker deliver the " +
			"unacknowledged ones again (at most prefetch), and loses what was handed on but not yet stored by a sink. With " +
			"checkpoints it acknowledges only when a checkpoint covering the messages completes, so a kill -9 and --resume give the " +
			"stores of a clean run. After a lost connection the broker delivers the unacknowledged messages again (marked " +
			"redelivered); the source knows the ones it had handed on (and, after --resume, the ones the checkpoint holds) by " +
			"the xxhash64 of their body and does not hand them on twice. One queue keeps the publish order; consumers " +
			"sharing a queue share its messages with no order across them, so a partitioned sink's queues (one per partition, one " +
			"consumer each) keep each symbol's order. A message that does not decode is counted (drops{reason=malformed}, counters " +
			"malformed_<reason>), logged, and dropped, dead-lettered to dead_letter_path or fatal per on_error; a dropped or " +
			"dead-lettered message is settled: rejected without requeue (so the broker routes it to dead_letter_exchange when set; " +
			"both dead-letterings can be on at once). A json or csv row that does not decode is refused alone (on_error applies " +
			"to it), the message's other rows kept and the message acknowledged like a good one. Under on_error: fail the message " +
			"stays unacknowledged and the broker delivers it again to the next consumer. The broker's absence is counted as " +
			"errors (Health DEGRADED) and in the rabbitmq_connected gauge; the client reconnects forever with backoff and jitter.",
		ProducesFn: func(p *component.Params) md.Kind {
			k, err := md.ParseKind(p.String("kind"))
			if err != nil {
				return md.KindTrade
			}
			return k
		},
		Fields: fields,
		Validate: func(p *component.Params) error {
			var errs []error
			if err := amqpconn.Validate(p); err != nil {
				errs = append(errs, err)
			}
			k, _ := md.ParseKind(p.String("kind"))
			if _, err := busfmt.SourceConfigFrom(p, k); err != nil {
				errs = append(errs, err)
			}
			if p.String("exchange") == "" {
				for _, k := range []string{"exchange_type", "binding_keys"} {
					if p.Has(k) {
						errs = append(errs, p.Errorf(k, "%s applies only with an exchange", k))
					}
				}
			}
			return errors.Join(errs...)
		},
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			k, _ := md.ParseKind(p.String("kind"))
			cfg, err := busfmt.SourceConfigFrom(p, k)
			if err != nil {
				return nil, err
			}
			return &Source{p: p, cfg: cfg, queue: p.String("queue"), durable: p.Bool("durable"), exchange: p.String("exchange"),
				exchangeType: p.String("exchange_type"), keys: p.Strings("binding_keys"), prefetch: int(p.Int("prefetch")),
				dlx: p.String("dead_letter_exchange"), kind: k}, nil
		},
	})
}

// Source is a provider.rabbitmq instance.
type Source struct {
	p            *component.Params
	cfg          busfmt.SourceConfig
	queue        string
	durable      bool
	exchange     string
	exchangeType string
	keys         []string
	prefetch     int
	dlx          string
	kind         md.Kind

	nc   *engine.NodeContext
	log  *slog.Logger
	d    *amqpconn.Dialer
	rd   *busfmt.Reader
	ckpt bool
	msgs int64

	mu      sync.Mutex
	conn    *amqp.Connection
	ch      *amqp.Channel
	gen     int       // connection generation: delivery tags belong to one
	last    uint64    // with checkpoints: last tag emitted on gen
	ackedTo uint64    // the highest tag acknowledged (multiple) on gen
	covered []covered // with checkpoints: the last tag each Position covered
	// pending are the deliveries of gen handed on (or known as handed on
	// before) and not yet acknowledged, in delivery order.
	pending []taken
	// lost are the body sums of messages handed on whose acknowledgement
	// did not happen: those pending when a connection was lost, and those
	// the restored checkpoint holds, oldest first. The broker delivers them
	// again (redelivered); one that matches is not handed on twice. Some
	// never come back (a checkpoint holds the messages its successor's
	// acknowledgement then settled), so they are bounded by lostCap, the
	// oldest dropped first.
	lost       busio.Held
	acked      int64
	duplicates int64
}

type covered struct {
	id  int64
	gen int
	tag uint64
}

// taken is a delivery handed on: its tag and the sum of its body.
type taken struct {
	tag uint64
	sum uint64
}

// Open prepares the dialer; the broker is reached in Run.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	d, err := amqpconn.New(s.p, nc)
	if err != nil {
		return err
	}
	s.d = d
	if s.rd, err = busfmt.NewSourceReader(nc, s.cfg); err != nil {
		return err
	}
	return nil
}

// Cleanup closes the connection and the dead-letter file.
func (s *Source) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if s.rd != nil {
		return s.rd.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Source) Ready() bool { return s.d != nil && s.d.Connected() }

// Unbounded implements engine.Unbounded: a queue never ends.
func (s *Source) Unbounded() bool { return true }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int64{"messages": s.msgs, "acknowledged": s.acked, "redelivered_duplicates": s.duplicates}
}

// lostCap bounds the sums kept of messages expected back: a lost
// connection or a restart gives back at most prefetch messages, so this
// keeps the last four such windows.
func (s *Source) lostCap() int { return max(4*s.prefetch, 1024) }

type position struct {
	Queue string `json:"queue"`
	// Held are the body sums (xxhash64, little endian) of the messages
	// handed on before the barrier and not yet acknowledged, oldest first:
	// after a restore the broker delivers them again, and the restored
	// state already holds their records.
	Held []byte `json:"held,omitempty"`
}

// Position implements engine.Seeker: the broker keeps the queue, so the
// position names it and the messages handed on but not acknowledged; the
// last delivery emitted is kept under id until NotifyCheckpointComplete(id).
func (s *Source) Position(id int64) ([]byte, error) {
	s.mu.Lock()
	if n := len(s.covered); s.last > s.ackedTo && (n == 0 || s.covered[n-1].gen != s.gen || s.covered[n-1].tag < s.last) {
		s.covered = append(s.covered, covered{id: id, gen: s.gen, tag: s.last})
	}
	pos := position{Queue: s.queue}
	if n := len(s.pending) + s.lost.Len(); n > 0 {
		pos.Held = s.lost.Append(make([]byte, 0, 8*n))
		for _, t := range s.pending {
			pos.Held = busio.AppendSums(pos.Held, t.sum)
		}
	}
	s.mu.Unlock()
	return json.Marshal(pos)
}

// Seek implements engine.Seeker: nothing moves, since the broker delivers
// again every message not acknowledged; those the checkpoint holds are
// not handed on again. A checkpoint of another queue is refused.
func (s *Source) Seek(ctx context.Context, b []byte) error {
	var pos position
	if err := json.Unmarshal(b, &pos); err != nil {
		return fmt.Errorf("rabbitmq position: %w", err)
	}
	if pos.Queue != s.queue {
		return fmt.Errorf("checkpoint was taken on queue %q, this source reads %q", pos.Queue, s.queue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost.Cap = s.lostCap()
	if err := s.lost.Restore(pos.Held); err != nil {
		return fmt.Errorf("rabbitmq position: %w", err)
	}
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener: it
// acknowledges (multiple) up to the last delivery checkpoint id covered on
// the current connection, unless an earlier acknowledgement did (a tag
// acknowledged twice is a channel error); deliveries of an older
// connection were given back to the queue when it closed.
func (s *Source) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tag uint64
	k := 0
	for _, c := range s.covered {
		if c.id > id {
			s.covered[k] = c
			k++
			continue
		}
		if c.gen == s.gen && c.tag > tag {
			tag = c.tag
		}
	}
	s.covered = s.covered[:k]
	if tag <= s.ackedTo || s.ch == nil {
		return nil
	}
	if err := s.ch.Ack(tag, true); err != nil {
		s.nc.Stats.Error("ack_failed", fmt.Sprintf("ack on %s: %v", s.d.Masked(), err))
		return err
	}
	s.settled(tag)
	return nil
}

// settled records the acknowledgement (multiple) of tag; s.mu is held.
func (s *Source) settled(tag uint64) {
	s.acked++
	s.ackedTo = tag
	k := 0
	for k < len(s.pending) && s.pending[k].tag <= tag {
		k++
	}
	s.pending = append(s.pending[:0], s.pending[k:]...)
}

func (s *Source) connect(ctx context.Context) (<-chan amqp.Delivery, error) {
	var deliveries <-chan amqp.Delivery
	conn, ch, err := s.d.Dial(ctx, func(ch *amqp.Channel) error {
		var args amqp.Table
		if s.dlx != "" {
			args = amqp.Table{"x-dead-letter-exchange": s.dlx}
		}
		if _, err := ch.QueueDeclare(s.queue, s.durable, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", s.queue, err)
		}
		if s.exchange != "" {
			if err := ch.ExchangeDeclare(s.exchange, s.exchangeType, true, false, false, false, nil); err != nil {
				return fmt.Errorf("declare exchange %s: %w", s.exchange, err)
			}
			for _, k := range s.keys {
				if err := ch.QueueBind(s.queue, k, s.exchange, false, nil); err != nil {
					return fmt.Errorf("bind queue %s to %s with %s: %w", s.queue, s.exchange, k, err)
				}
			}
		}
		if err := ch.Qos(s.prefetch, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
		var err error
		deliveries, err = ch.Consume(s.queue, "", false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume %s: %w", s.queue, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conn, s.ch = conn, ch
	s.gen++
	s.last, s.ackedTo = 0, 0
	// The tags of the lost connection are void; its messages handed on
	// and not acknowledged come again.
	s.covered = s.covered[:0]
	s.lost.Cap = s.lostCap()
	for _, t := range s.pending {
		s.lost.Add(t.sum)
	}
	s.pending = s.pending[:0]
	s.mu.Unlock()
	return deliveries, nil
}

// Run consumes until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	s.ckpt = out.Checkpointing()
	size := s.nc.Pool.Size()
	quiet := time.NewTimer(quietEvery)
	defer quiet.Stop()
	for {
		deliveries, err := s.connect(ctx)
		if err != nil {
			return stopErr(ctx, err)
		}
		for open := true; open; {
			var first amqp.Delivery
			select {
			case first, open = <-deliveries:
			case <-quiet.C:
				quiet.Reset(quietEvery)
				if err := out.Quiet(); err != nil {
					return stopErr(ctx, err)
				}
				continue
			case <-ctx.Done():
				return nil
			}
			if !open {
				break
			}
			b := out.NewBatch(s.kind)
			var last uint64 // the newest delivery taken (rejected ones are settled already)
			ok, err := s.add(b, &first)
			if ok {
				last = first.DeliveryTag
			}
			for more := err == nil; more && b.Len() < size; {
				select {
				case d, ok := <-deliveries:
					if !ok {
						open, more = false, false
						break
					}
					var took bool
					if took, err = s.add(b, &d); took {
						last = d.DeliveryTag
					}
					more = err == nil
				default:
					more = false
				}
			}
			if err != nil {
				b.Release()
				return err
			}
			if err := s.emit(ctx, out, b, last); err != nil {
				return stopErr(ctx, err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		s.d.Lost("disconnected", errors.New("delivery channel closed"))
		s.mu.Lock()
		_ = s.conn.Close()
		s.mu.Unlock()
	}
}

// add decodes delivery d into b, or counts it malformed and rejects it
// (then it reports false). A redelivered message known as handed on
// already is taken without its records. The error is on_error: fail's.
func (s *Source) add(b *md.Batch, d *amqp.Delivery) (bool, error) {
	sum := busio.Sum(d.Body)
	s.mu.Lock()
	s.msgs++
	if d.Redelivered && s.lost.Take(sum) {
		s.duplicates++
		s.pending = append(s.pending, taken{tag: d.DeliveryTag, sum: sum})
		s.mu.Unlock()
		s.nc.Stats.Count("redelivered_duplicates", 1)
		return true, nil
	}
	s.mu.Unlock()
	if err := s.rd.Decode(d.Body, b); err != nil {
		if ferr := s.rd.Malformed(err, d.Body, &busfmt.Origin{Bus: "rabbitmq", Queue: s.queue}); ferr != nil {
			// on_error: fail: the message stays unacknowledged (the
			// broker delivers it again to the next consumer).
			return false, ferr
		}
		if re := (*busfmt.RowsError)(nil); !errors.As(err, &re) {
			// The whole message is refused: rejected without requeue,
			// so the broker dead-letters it when the queue has a
			// dead-letter exchange. Rows refused: the others are kept.
			_ = d.Reject(false)
			return false, nil
		}
	}
	s.mu.Lock()
	s.pending = append(s.pending, taken{tag: d.DeliveryTag, sum: sum})
	s.mu.Unlock()
	return true, nil
}

// emit hands b downstream and settles its deliveries up to tag (0: none
// to settle).
func (s *Source) emit(ctx context.Context, out *engine.Output, b *md.Batch, tag uint64) error {
	if s.ckpt && tag > 0 {
		s.mu.Lock()
		s.last = tag
		s.mu.Unlock()
	}
	if b.Len() == 0 {
		b.Release()
	} else if err := out.Emit(b); err != nil {
		return err
	}
	if s.ckpt || tag == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ch.Ack(tag, true); err != nil {
		// The connection is gone: the broker delivers these again (and
		// they are known as handed on).
		s.nc.Stats.Error("ack_failed", fmt.Sprintf("ack on %s: %v", s.d.Masked(), err))
		return nil
	}
	s.settled(tag)
	return nil
}

// stopErr turns an error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
