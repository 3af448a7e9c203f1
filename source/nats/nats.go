// Package natssrc is the provider.nats component: it reads mdp frames from
// a JetStream stream (an ordered consumer, or a durable consumer with
// acknowledgements) or a core NATS subject.
package natssrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/natsconn"
	"github.com/mdpio/mdp/md"
)

// msgBuffer is how many received messages wait for the source's loop.
const msgBuffer = 4096

func init() {
	fields := append(natsconn.Fields(),
		component.Field{Name: "subject", Type: component.String, Required: true,
			Description: "Subject (wildcards allowed) to read; with stream, the consumer's filter subject.", Example: "md.trades"},
		component.Field{Name: "stream", Type: component.String,
			Description: "JetStream stream to read. Empty: subscribe to the core NATS subject (at most once: what is published while the source is not connected is missed)."},
		component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"},
			Description: "Record kind of the messages; a frame of another kind is malformed (bad_kind)."},
		component.Field{Name: "deliver", Type: component.String, Default: "all", Enum: []string{"all", "new", "by_sequence", "by_time"},
			Description: "With stream: where a new consumer starts: all (the first message kept), new (messages published from now on), by_sequence (start_sequence), by_time (start_time)."},
		component.Field{Name: "start_sequence", Type: component.Int, Min: component.Bound(1),
			Description: "First stream sequence to read, with deliver: by_sequence."},
		component.Field{Name: "start_time", Type: component.Time,
			Description: "First message time to read (RFC 3339), with deliver: by_time."},
		component.Field{Name: "durable", Type: component.String,
			Description: "With stream: name of a durable consumer (created when missing) whose acknowledgements the source sends once a batch is handed downstream, so a restart resumes after the last acknowledged message. Empty: an ordered consumer (no acknowledgements, restarts at deliver)."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.nats",
		Kind:    engine.KindSource,
		Summary: "Read batches from NATS (JetStream streams or core subjects)",
		Description: "Each message is one batch in format mdp, json or csv (sink.nats writes them; json and csv with a mapping read foreign messages); messages are gathered into the job's " +
			"batches (emitted when full or when no more message is waiting). A message that does not decode (a json or csv row that does not) is counted " +
			"(drops{reason=malformed}, counters malformed_<reason>), logged and dropped. With stream, an ordered consumer reads " +
			"in stream order and recovers from disconnects by itself (resuming after the last sequence it delivered): nothing " +
			"is lost or repeated while the job runs; a restarted job starts again at deliver. With durable, the source acknowledges " +
			"(ack all) the last message of each batch once the batch is handed downstream: a crash replays the messages after " +
			"the last acknowledgement (at least once; a batch handed downstream but not yet stored by a sink is lost only if the " +
			"sink had not stored it). Without stream, core NATS delivers at most once. The server's unavailability is counted as " +
			"errors (Health DEGRADED) and in the nats_connected gauge; the client reconnects forever with backoff.",
		ProducesFn: func(p *component.Params) md.Kind {
			k, err := md.ParseKind(p.String("kind"))
			if err != nil {
				return md.KindTrade
			}
			return k
		},
		Fields:   fields,
		Validate: validate,
		NewSource: func(p *component.Params, instance int) (engine.Source, error) {
			k, _ := md.ParseKind(p.String("kind"))
			cfg, err := busfmt.SourceConfigFrom(p, k)
			if err != nil {
				return nil, err
			}
			s := &Source{cfg: cfg, opts: natsconn.OptionsFrom(p), subject: p.String("subject"), stream: p.String("stream"), kind: k,
				deliver: p.String("deliver"), durable: p.String("durable")}
			s.startSeq = uint64(p.Int("start_sequence"))
			if ns, ok := p.Time("start_time"); ok {
				t := time.Unix(0, ns).UTC()
				s.startTime = &t
			}
			return s, nil
		},
	})
}

func validate(p *component.Params) error {
	var errs []error
	k, _ := md.ParseKind(p.String("kind"))
	if _, err := busfmt.SourceConfigFrom(p, k); err != nil {
		errs = append(errs, err)
	}
	d := p.String("deliver")
	if p.String("stream") == "" {
		for _, k := range []string{"durable", "start_sequence", "start_time"} {
			if p.Has(k) {
				errs = append(errs, p.Errorf(k, "%s applies only with a stream", k))
			}
		}
		if p.Has("deliver") {
			errs = append(errs, p.Errorf("deliver", "deliver applies only with a stream"))
		}
	}
	if d == "by_sequence" && !p.Has("start_sequence") {
		errs = append(errs, p.Errorf("start_sequence", "deliver: by_sequence needs start_sequence"))
	}
	if d == "by_time" && !p.Has("start_time") {
		errs = append(errs, p.Errorf("start_time", "deliver: by_time needs start_time"))
	}
	if p.Has("start_sequence") && d != "by_sequence" {
		errs = append(errs, p.Errorf("start_sequence", "start_sequence applies only with deliver: by_sequence"))
	}
	if p.Has("start_time") && d != "by_time" {
		errs = append(errs, p.Errorf("start_time", "start_time applies only with deliver: by_time"))
	}
	return errors.Join(errs...)
}

// Source is a provider.nats instance.
type Source struct {
	cfg       busfmt.SourceConfig
	opts      natsconn.Options
	subject   string
	stream    string
	kind      md.Kind
	deliver   string
	durable   string
	startSeq  uint64
	startTime *time.Time

	nc   *engine.NodeContext
	log  *slog.Logger
	conn *natsconn.Conn
	rd   *busfmt.Reader
	msgs int64
}

// Open connects; a server that is down is retried in the background.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	conn, err := natsconn.Connect(ctx, s.opts, nc)
	if err != nil {
		return err
	}
	s.conn = conn
	if s.rd, err = busfmt.NewSourceReader(nc, s.cfg); err != nil {
		conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// Cleanup closes the connection.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.conn != nil {
		s.conn.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Source) Ready() bool { return s.conn != nil && s.conn.IsConnected() }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 { return map[string]int64{"messages": s.msgs} }

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	if s.stream == "" {
		return s.runCore(ctx, out)
	}
	return s.runStream(ctx, out)
}

// batcher gathers decoded messages into the job's batches.
type batcher struct {
	s    *Source
	out  *engine.Output
	b    *md.Batch
	size int
}

func (s *Source) newBatcher(out *engine.Output) *batcher {
	return &batcher{s: s, out: out, size: s.nc.Pool.Size()}
}

// add decodes one payload; it reports whether the current batch is full.
func (bt *batcher) add(data []byte) bool {
	if bt.b == nil {
		bt.b = bt.out.NewBatch(bt.s.kind)
	}
	bt.s.msgs++
	if err := bt.s.rd.Decode(data, bt.b); err != nil {
		if bt.s.log != nil {
			bt.s.log.Warn("malformed nats message dropped", "subject", bt.s.subject, "bytes", len(data), "err", err)
		}
	}
	return bt.b.Len() >= bt.size
}

func (bt *batcher) emit() error {
	b := bt.b
	bt.b = nil
	if b == nil {
		return nil
	}
	if b.Len() == 0 {
		b.Release()
		return nil
	}
	return bt.out.Emit(b)
}

func (bt *batcher) release() {
	if bt.b != nil {
		bt.b.Release()
		bt.b = nil
	}
}

func (s *Source) runCore(ctx context.Context, out *engine.Output) error {
	ch := make(chan *nats.Msg, msgBuffer)
	sub, err := s.conn.ChanSubscribe(s.subject, ch)
	if err != nil {
		return fmt.Errorf("subscribe to %s on %s: %w", s.subject, s.conn.Masked(), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	bt := s.newBatcher(out)
	defer bt.release()
	for {
		select {
		case m := <-ch:
			full := bt.add(m.Data)
			for !full {
				select {
				case m = <-ch:
					full = bt.add(m.Data)
					continue
				default:
				}
				break
			}
			if err := bt.emit(); err != nil {
				return stopErr(ctx, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Source) runStream(ctx context.Context, out *engine.Output) error {
	js, err := jetstream.New(s.conn.Conn)
	if err != nil {
		return fmt.Errorf("jetstream on %s: %w", s.conn.Masked(), err)
	}
	var pol jetstream.DeliverPolicy
	switch s.deliver {
	case "new":
		pol = jetstream.DeliverNewPolicy
	case "by_sequence":
		pol = jetstream.DeliverByStartSequencePolicy
	case "by_time":
		pol = jetstream.DeliverByStartTimePolicy
	default:
		pol = jetstream.DeliverAllPolicy
	}
	var cons jetstream.Consumer
	for {
		if s.durable != "" {
			cons, err = js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{Durable: s.durable, FilterSubject: s.subject,
				DeliverPolicy: pol, OptStartSeq: s.startSeq, OptStartTime: s.startTime, AckPolicy: jetstream.AckAllPolicy, MaxAckPending: -1})
		} else {
			cons, err = js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.subject},
				DeliverPolicy: pol, OptStartSeq: s.startSeq, OptStartTime: s.startTime})
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s on %s: %w", s.stream, s.conn.Masked(), err)
		}
		// The server is unreachable: the connection reconnects; try again.
		s.nc.Stats.Error("consumer_failed", fmt.Sprintf("consumer on %s: %v", s.stream, err))
		if s.log != nil {
			s.log.Warn("nats consumer not created; retrying", "stream", s.stream, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.opts.Backoff.Delay(1)):
		}
	}
	ch := make(chan jetstream.Msg, msgBuffer)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(1024), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.nc.Stats.Error("consume", fmt.Sprintf("stream %s: %v", s.stream, err))
	}))
	if err != nil {
		return fmt.Errorf("read stream %s on %s: %w", s.stream, s.conn.Masked(), err)
	}
	defer cc.Stop()
	bt := s.newBatcher(out)
	defer bt.release()
	for {
		var last jetstream.Msg // the newest message of the batch
		select {
		case last = <-ch:
		case <-ctx.Done():
			return nil
		}
		full := bt.add(last.Data())
		for !full {
			select {
			case last = <-ch:
				full = bt.add(last.Data())
				continue
			default:
			}
			break
		}
		if err := bt.emit(); err != nil {
			return stopErr(ctx, err)
		}
		if s.durable != "" {
			if err := last.Ack(); err != nil {
				s.nc.Stats.Error("ack_failed", err.Error())
			}
		}
	}
}

// stopErr turns an Emit error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
