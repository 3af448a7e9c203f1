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
			"a crash loses what was handed on but not yet stored by a sink (with checkpoints and --resume: nothing). QoS 0 is at " +
			"most once. Each topic keeps its publish order; a partitioned sink's topics (md/trade/{partition}) read by separate " +
			"sources keep each symbol's order. A message that does not decode (a json or csv row that does not) is counted (drops{reason=malformed}, counters " +
			"malformed_<reason>), logged and acknowledged. The broker's absence is counted as errors (Health DEGRADED) and in " +
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
	cur  []mqtt.Message // messages of the batch being filled
	msgs int64

	mu      sync.Mutex
	pend    []mqtt.Message // with checkpoints: emitted since the last Position
	covered []covered
	acked   int64
}

type covered struct {
	id   int64
	msgs []mqtt.Message
}

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
	c.OnConnect = func(cl mqtt.Client) error {
		t := cl.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { s.ch <- m })
		if !t.WaitTimeout(5 * time.Second) {
			return errors.New("subscribe timed out")
		}
		return t.Error()
	}
	return nil
}

// Cleanup disconnects.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.c != nil {
		s.c.Close()
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
	return map[string]int64{"messages": s.msgs, "acknowledged": s.acked}
}

type position struct {
	Topics []string `json:"topics"`
}

// Position implements engine.Seeker: the broker's session holds what was
// not acknowledged, so the position names the subscription; the messages
// emitted since the last Position are kept under id.
func (s *Source) Position(id int64) ([]byte, error) {
	s.mu.Lock()
	s.covered = append(s.covered, covered{id: id, msgs: s.pend})
	s.pend = nil
	s.mu.Unlock()
	return json.Marshal(position{Topics: s.topics})
}

// Seek implements engine.Seeker: nothing moves (the persistent session
// delivers again what was not acknowledged).
func (s *Source) Seek(ctx context.Context, b []byte) error {
	var pos position
	if err := json.Unmarshal(b, &pos); err != nil {
		return fmt.Errorf("mqtt position: %w", err)
	}
	if s.clean {
		return errors.New("a clean session cannot resume from a checkpoint: the broker forgot what was not acknowledged (set clean_session: false)")
	}
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener.
func (s *Source) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	var todo []mqtt.Message
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
	for _, m := range todo {
		m.Ack()
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
		s.add(b, m)
		for more := true; more && b.Len() < size; {
			select {
			case m = <-s.ch:
				s.add(b, m)
			default:
				more = false
			}
		}
		if err := s.emit(out, b); err != nil {
			return stopErr(ctx, err)
		}
	}
}

func (s *Source) add(b *md.Batch, m mqtt.Message) {
	s.mu.Lock()
	s.msgs++
	s.mu.Unlock()
	s.cur = append(s.cur, m)
	if err := s.rd.Decode(m.Payload(), b); err != nil && s.log != nil {
		s.log.Warn("malformed mqtt message dropped", "topic", m.Topic(), "bytes", len(m.Payload()), "err", err)
	}
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
		for _, m := range s.cur {
			m.Ack()
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
