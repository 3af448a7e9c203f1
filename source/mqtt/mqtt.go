// Package mqttsrc is the provider.mqtt component: it subscribes to MQTT
// topic filters and acknowledges each QoS 1/2 message itself, once its
// batch is handed downstream or, with checkpoints, once a checkpoint
// covering it completes.
package mqttsrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/internal/mqttconn"
	"github.com/mdpio/mdp/md"
)

// msgBuffer is how many received messages wait for the source's loop.
const msgBuffer = 4096

// quietEvery is how long the source waits for a message before it lets a
// requested checkpoint barrier through (Output.Quiet).
const quietEvery = 20 * time.Millisecond

func init() {
	fields := append(mqttconn.Fields(),
		component.Field{Name: "topics", Type: component.Strings, Required: true,
			Description: "Topic filters to subscribe to (+ and # wildcards), each at qos.", Example: []any{"md/trade/#"}},
		component.Field{Name: "clean_session", Type: component.Bool, Default: false,
			Description: "Start a clean session. false (the default) keeps a persistent session under client_id: the broker keeps the subscriptions and queues QoS 1/2 messages while the source is away, and delivers unacknowledged ones again."},
		component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"},
			Description: "Record kind of the messages; a frame of another kind is malformed (bad_kind)."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.mqtt",
		Kind:    engine.KindSource,
		Summary: "Subscribe to MQTT topics (QoS 0/1/2, persistent sessions)",
		Description: "Each message holds one batch in format mdp, json or csv (sink.mqtt writes them; json and csv with a mapping read foreign messages); messages are gathered into the job's " +
			"batches. MQTT 3.1.1 through Eclipse Paho, with mdp's reconnect loop (backoff and jitter) re-subscribing after each " +
			"reconnect. With QoS 1 or 2 the source acknowledges each message itself: without checkpoints once its batch is handed " +
			"downstream, with checkpoints once a checkpoint covering it completes (the broker's in-flight window, max_inflight_messages " +
			"in Mosquitto, then bounds the messages per checkpoint interval). With a persistent session (clean_session: false) the " +
			"broker queues messages while the source is away and delivers unacknowledged ones again after a reconnect or a restart; " +
			"without checkpoints a crash loses what was handed on but not yet stored by a sink, and a batch handed on but not yet " +
			"acknowledged comes again after the restart (counted twice if a sink had stored it). With checkpoints, messages a saved checkpoint " +
			"covers but a crash kept from being acknowledged come again (DUP) after --resume; the checkpoint holds the xxhash64 of their " +
			"payloads and the source does not hand them on again (counter redelivered_duplicates), so a kill -9 and --resume leave the " +
			"stores as a clean run does. QoS 0 is at " +
			"most once. Each topic keeps its publish order; a partitioned sink's topics (md/trade/{partition}) read by separate " +
			"sources keep each symbol's order. A message that does not decode (a json or csv row that does not) is counted (drops{reason=malformed}, counters " +
			"malformed_<reason>), logged, and dropped, dead-lettered or fatal per on_error; a dropped or dead-lettered message is acknowledged like a good one. The broker's absence is counted as errors (Health DEGRADED) and in " +
			"the mqtt_connected gauge.",
		ProducesFn: func(p *component.Params) md.Kind {
			k, err := md.ParseKind(p.String("kind"))
			if err != nil {
				return md.KindTrade
			}
			return k
		},
		Fields: fields,
		Validate: func(p *component.Params) error {
			k, _ := md.ParseKind(p.String("kind"))
			_, err := busfmt.SourceConfigFrom(p, k)
			return errors.Join(mqttconn.Validate(p), err)
		},
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			k, _ := md.ParseKind(p.String("kind"))
			cfg, err := busfmt.SourceConfigFrom(p, k)
			if err != nil {
				return nil, err
			}
			return &Source{p: p, cfg: cfg, topics: p.Strings("topics"), qos: byte(p.Int("qos")), clean: p.Bool("clean_session"), kind: k}, nil
		},
	})
}

// Source is a provider.mqtt instance.
type Source struct {
	p      *component.Params
	cfg    busfmt.SourceConfig
	topics []string
	qos    byte
	clean  bool
	kind   md.Kind

	nc   *engine.NodeContext
	log  *slog.Logger
	c    *mqttconn.Conn
	rd   *busfmt.Reader
	ch   chan mqtt.Message
	ckpt bool
	cur  []taken // messages of the batch being filled
	msgs int64

	mu      sync.Mutex
	pend    []taken // with checkpoints: emitted since the last Position
	covered []covered
	// held are the sums of the messages the restored checkpoint covered
	// and that were not acknowledged: the broker delivers them again (DUP)
	// and the restored state holds their records.
	held       busio.Held
	acked      int64
	duplicates int64
}

// taken is a message handed on and the sum of its payload.
type taken struct {
	m   mqtt.Message
	sum uint64
}

type covered struct {
	id   int64
	msgs []taken
}

// heldCap bounds the sums kept of messages expected back: the broker's
// in-flight window (Mosquitto's max_inflight_messages, 20 by default)
// bounds the messages unacknowledged at a crash.
const heldCap = 4096

// Open builds the client; it connects in Run.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	c, err := mqttconn.New(s.p, nc, s.clean, true)
	if err != nil {
		return err
	}
	s.c = c
	if s.rd, err = busfmt.NewSourceReader(nc, s.cfg); err != nil {
		return err
	}
	s.ch = make(chan mqtt.Message, msgBuffer)
	filters := map[string]byte{}
	for _, t := range s.topics {
		filters[t] = s.qos
	}
	handler := func(_ mqtt.Client, m mqtt.Message) { s.ch <- m }
	// A persistent session's queued messages can arrive right after the
	// CONNACK, before the SUBACK registers the subscription's handler: the
	// routes, set before any connection, catch them (without them Paho
	// dropped such a message unacknowledged, and the broker held it back
	// until the next reconnect).
	for t := range filters {
		c.AddRoute(t, handler)
	}
	c.OnConnect = func(cl mqtt.Client) error {
		t := cl.SubscribeMultiple(filters, handler)
		if !t.WaitTimeout(5 * time.Second) {
			return errors.New("subscribe timed out")
		}
		return t.Error()
	}
	return nil
}

// Cleanup disconnects and closes the dead-letter file.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.c != nil {
		s.c.Close()
	}
	if s.rd != nil {
		return s.rd.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Source) Ready() bool { return s.c != nil && s.c.Connected() }

// Unbounded implements engine.Unbounded.
func (s *Source) Unbounded() bool { return true }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int64{"messages": s.msgs, "acknowledged": s.acked, "redelivered_duplicates": s.duplicates}
}

type position struct {
	Topics []string `json:"topics"`
	// Held are the payload sums (busio.AppendSums) of the messages handed
	// on before the barrier and not yet acknowledged, oldest first: after a
	// restore the broker delivers them again, and the restored state
	// already holds their records.
	Held []byte `json:"held,omitempty"`
}

// Position implements engine.Seeker: the broker's session holds what was
// not acknowledged, so the position names the subscription and the
// messages handed on but not acknowledged; the messages emitted since the
// last Position are kept under id.
func (s *Source) Position(id int64) ([]byte, error) {
	s.mu.Lock()
	s.covered = append(s.covered, covered{id: id, msgs: s.pend})
	s.pend = nil
	pos := position{Topics: s.topics, Held: s.held.Append(nil)}
	for _, c := range s.covered {
		for _, t := range c.msgs {
			pos.Held = busio.AppendSums(pos.Held, t.sum)
		}
	}
	s.mu.Unlock()
	return json.Marshal(pos)
}

// Seek implements engine.Seeker: nothing moves (the persistent session
// delivers again what was not acknowledged); those the checkpoint holds
// are not handed on again.
func (s *Source) Seek(ctx context.Context, b []byte) error {
	var pos position
	if err := json.Unmarshal(b, &pos); err != nil {
		return fmt.Errorf("mqtt position: %w", err)
	}
	if s.clean {
		return errors.New("a clean session cannot resume from a checkpoint: the broker forgot what was not acknowledged (set clean_session: false)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held.Cap = heldCap
	if err := s.held.Restore(pos.Held); err != nil {
		return fmt.Errorf("mqtt position: %w", err)
	}
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener.
func (s *Source) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	var todo []taken
	k := 0
	for _, c := range s.covered {
		if c.id > id {
			s.covered[k] = c
			k++
			continue
		}
		todo = append(todo, c.msgs...)
	}
	s.covered = s.covered[:k]
	s.acked += int64(len(todo))
	s.mu.Unlock()
	for _, t := range todo {
		t.m.Ack()
	}
	return nil
}

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	s.ckpt = out.Checkpointing()
	if err := s.c.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	size := s.nc.Pool.Size()
	quiet := time.NewTimer(quietEvery)
	defer quiet.Stop()
	for {
		var m mqtt.Message
		select {
		case m = <-s.ch:
		case <-quiet.C:
			quiet.Reset(quietEvery)
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
			continue
		case <-ctx.Done():
			return nil
		}
		b := out.NewBatch(s.kind)
		err := s.add(b, m)
		for more := err == nil; more && b.Len() < size; {
			select {
			case m = <-s.ch:
				err = s.add(b, m)
				more = err == nil
			default:
				more = false
			}
		}
		if err != nil {
			// on_error: fail: nothing of this batch is acknowledged.
			b.Release()
			return err
		}
		if err := s.emit(out, b); err != nil {
			return stopErr(ctx, err)
		}
	}
}

// add decodes m into b, unless it is a message delivered again that the
// restored checkpoint holds (then it is taken without its records, and
// acknowledged with the others). The error is on_error: fail's.
func (s *Source) add(b *md.Batch, m mqtt.Message) error {
	t := taken{m: m}
	if s.ckpt {
		t.sum = busio.Sum(m.Payload())
	}
	s.mu.Lock()
	s.msgs++
	dup := s.ckpt && m.Duplicate() && s.held.Take(t.sum)
	if dup {
		s.duplicates++
	}
	s.mu.Unlock()
	s.cur = append(s.cur, t)
	if dup {
		s.nc.Stats.Count("redelivered_duplicates", 1)
		return nil
	}
	if err := s.rd.Decode(m.Payload(), b); err != nil {
		return s.rd.Malformed(err, m.Payload(), &busfmt.Origin{Bus: "mqtt", Topic: m.Topic()})
	}
	return nil
}

func (s *Source) emit(out *engine.Output, b *md.Batch) error {
	if s.ckpt {
		s.mu.Lock()
		s.pend = append(s.pend, s.cur...)
		s.mu.Unlock()
	}
	if b.Len() == 0 {
		b.Release()
	} else if err := out.Emit(b); err != nil {
		return err
	}
	if !s.ckpt {
		for _, t := range s.cur {
			t.m.Ack()
		}
		s.mu.Lock()
		s.acked += int64(len(s.cur))
		s.mu.Unlock()
	}
	clear(s.cur)
	s.cur = s.cur[:0]
	return nil
}

// stopErr turns an error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
