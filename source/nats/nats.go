// Package natssrc is the provider.nats component: it reads mdp frames from
// a JetStream stream (an ordered consumer, or a durable consumer with
// acknowledgements) or a core NATS subject.
package natssrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

// quietEvery is how long the source waits for a message before it lets a
// requested checkpoint barrier through (Output.Quiet).
const quietEvery = 20 * time.Millisecond

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
		component.Field{Name: "ack_wait", Type: component.Duration, Default: "30s", Min: component.Bound(0.1), Max: component.Bound(86400),
			Description: "With durable: how long the server waits for an acknowledgement before it delivers a message again. After a crash the messages read and not acknowledged come again only once it has passed; with checkpoints, keep it above the checkpoint interval (messages delivered again are skipped, but cost a round trip)."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.nats",
		Kind:    engine.KindSource,
		Summary: "Read batches from NATS (JetStream streams or core subjects)",
		Description: "Each message is one batch in format mdp, json or csv (sink.nats writes them; json and csv with a mapping read foreign messages); messages are gathered into the job's " +
			"batches (emitted when full or when no more message is waiting). A message that does not decode (a json or csv row that does not) is counted " +
			"(drops{reason=malformed}, counters malformed_<reason>), logged, and dropped, dead-lettered or fatal per on_error; a " +
			"dropped or dead-lettered message is acknowledged (durable) and its sequence checkpointed like a good one's. With stream, an ordered consumer reads " +
			"in stream order and recovers from disconnects by itself (resuming after the last sequence it delivered): nothing " +
			"is lost or repeated while the job runs; a restarted job starts again at deliver. With durable, the source acknowledges " +
			"(ack all) the last message of each batch once the batch is handed downstream: a crash replays the messages after " +
			"the last acknowledgement (at least once; a batch handed downstream but not yet stored by a sink is lost only if the " +
			"sink had not stored it). With checkpoints, the position is the stream sequence of the last message handed on: an " +
			"ordered consumer resumes after it, a durable one is acknowledged up to it only when the checkpoint completes and " +
			"skips what it covers when the server delivers it again, so a kill -9 and --resume give the stores of a clean run " +
			"(one source per durable). Without stream, core NATS delivers at most once, and a resumed job goes on live with a " +
			"recorded gap. The server's unavailability is counted as " +
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
				deliver: p.String("deliver"), durable: p.String("durable"), ackWait: p.Duration("ack_wait")}
			s.startSeq = uint64(p.Int("start_sequence"))
			if ns, ok := p.Time("start_time"); ok {
				t := time.Unix(0, ns).UTC()
				s.startTime = &t
			}
			if s.stream == "" {
				return s, nil // core NATS cannot seek: a restore resumes live with a gap
			}
			return &StreamSource{Source: s}, nil
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
		for _, k := range []string{"durable", "start_sequence", "start_time", "ack_wait"} {
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
	if p.Has("ack_wait") && p.String("durable") == "" && p.String("stream") != "" {
		errs = append(errs, p.Errorf("ack_wait", "ack_wait applies only with durable"))
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
	ackWait   time.Duration
	startSeq  uint64
	startTime *time.Time

	nc   *engine.NodeContext
	log  *slog.Logger
	conn *natsconn.Conn
	rd   *busfmt.Reader
	msgs int64
	ckpt bool

	// With a stream: the stream sequence of the last message handed on
	// (a durable consumer skips any at or below it: the server delivers
	// again what was not acknowledged), and the one a restore set.
	lastSeq   uint64
	resumeSeq uint64
	skipped   int64

	mu      sync.Mutex
	lastMsg jetstream.Msg // with checkpoints and durable: the last message handed on
	covered []coveredMsg  // with checkpoints and durable: the last message each Position covered
	ackedTo uint64        // the stream sequence acknowledged (ack all) up to
}

// coveredMsg is the last message checkpoint id covered.
type coveredMsg struct {
	id  int64
	seq uint64
	msg jetstream.Msg
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

// Cleanup closes the connection and the dead-letter file.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.rd != nil {
		return s.rd.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Source) Ready() bool { return s.conn != nil && s.conn.IsConnected() }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 {
	return map[string]int64{"messages": s.msgs, "redelivered_skipped": s.skipped}
}

// Unbounded implements engine.Unbounded: a subject or stream never ends.
func (s *Source) Unbounded() bool { return true }

// StreamSource is provider.nats reading a JetStream stream: a Source that
// can seek.
type StreamSource struct {
	*Source
}

type position struct {
	Stream string `json:"stream"`
	// Seq is the stream sequence of the last message handed on (0: none).
	Seq uint64 `json:"seq"`
}

// Position implements engine.Seeker: the stream sequence of the last
// message handed on; with a durable consumer that message is kept under id
// until NotifyCheckpointComplete(id) acknowledges it.
func (s *StreamSource) Position(id int64) ([]byte, error) {
	if s.durable != "" {
		s.mu.Lock()
		if n := len(s.covered); s.lastMsg != nil && s.lastSeq > s.ackedTo && (n == 0 || s.covered[n-1].seq < s.lastSeq) {
			s.covered = append(s.covered, coveredMsg{id: id, seq: s.lastSeq, msg: s.lastMsg})
		}
		s.mu.Unlock()
	}
	return json.Marshal(position{Stream: s.stream, Seq: s.lastSeq})
}

// Seek implements engine.Seeker: an ordered consumer starts after the
// checkpoint's sequence; a durable one resumes after its acknowledgements
// and skips the messages up to that sequence. A checkpoint of another
// stream is refused.
func (s *StreamSource) Seek(ctx context.Context, b []byte) error {
	var pos position
	if err := json.Unmarshal(b, &pos); err != nil {
		return fmt.Errorf("nats position: %w", err)
	}
	if pos.Stream != s.stream {
		return fmt.Errorf("checkpoint was taken on stream %q, this source reads %q", pos.Stream, s.stream)
	}
	s.resumeSeq, s.lastSeq = pos.Seq, pos.Seq
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener: with a
// durable consumer it acknowledges (ack all) the last message checkpoint
// id covered.
func (s *StreamSource) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	var last coveredMsg
	k := 0
	for _, c := range s.covered {
		if c.id > id {
			s.covered[k] = c
			k++
			continue
		}
		if c.seq > last.seq {
			last = c
		}
	}
	clear(s.covered[k:])
	s.covered = s.covered[:k]
	if last.msg == nil || last.seq <= s.ackedTo {
		s.mu.Unlock()
		return nil
	}
	s.ackedTo = last.seq
	s.mu.Unlock()
	if err := last.msg.Ack(); err != nil {
		s.nc.Stats.Error("ack_failed", err.Error())
		return err
	}
	return nil
}

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	s.ckpt = out.Checkpointing()
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

// add decodes one payload; it reports whether the current batch is full,
// and what Decode refused (for the caller to hand to Malformed with the
// message's origin).
func (bt *batcher) add(data []byte) (bool, error) {
	if bt.b == nil {
		bt.b = bt.out.NewBatch(bt.s.kind)
	}
	bt.s.msgs++
	err := bt.s.rd.Decode(data, bt.b)
	return bt.b.Len() >= bt.size, err
}

// addCore adds a core NATS message; the error is on_error's.
func (bt *batcher) addCore(m *nats.Msg) (bool, error) {
	full, err := bt.add(m.Data)
	if err != nil {
		err = bt.s.rd.Malformed(err, m.Data, &busfmt.Origin{Bus: "nats", Subject: m.Subject})
	}
	return full, err
}

// addStream adds a JetStream message; the error is on_error's.
func (bt *batcher) addStream(m jetstream.Msg) (bool, error) {
	full, err := bt.add(m.Data())
	if err != nil {
		o := busfmt.Origin{Bus: "nats", Stream: bt.s.stream, Subject: m.Subject()}
		if meta, merr := m.Metadata(); merr == nil {
			o.Seq = meta.Sequence.Stream
		}
		err = bt.s.rd.Malformed(err, m.Data(), &o)
	}
	return full, err
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
	quiet := time.NewTimer(quietEvery)
	defer quiet.Stop()
	for {
		select {
		case <-quiet.C:
			quiet.Reset(quietEvery)
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
		case m := <-ch:
			full, err := bt.addCore(m)
			for !full && err == nil {
				select {
				case m = <-ch:
					full, err = bt.addCore(m)
					continue
				default:
				}
				break
			}
			if err != nil {
				return err
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
	startSeq, startTime := s.startSeq, s.startTime
	if s.resumeSeq > 0 && s.durable == "" {
		// An ordered consumer starts after what the checkpoint covers.
		pol, startSeq, startTime = jetstream.DeliverByStartSequencePolicy, s.resumeSeq+1, nil
	}
	var cons jetstream.Consumer
	for {
		if s.durable == "" && pol == jetstream.DeliverNewPolicy {
			// "New" as a sequence, so that a checkpoint taken before the
			// first message resumes where this run started.
			st, err := js.Stream(ctx, s.stream)
			if err == nil {
				var info *jetstream.StreamInfo
				if info, err = st.Info(ctx); err == nil {
					pol, startSeq = jetstream.DeliverByStartSequencePolicy, info.State.LastSeq+1
					s.lastSeq = info.State.LastSeq
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					return fmt.Errorf("stream %s on %s: %w", s.stream, s.conn.Masked(), err)
				}
				s.nc.Stats.Error("consumer_failed", fmt.Sprintf("stream info of %s: %v", s.stream, err))
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(s.opts.Backoff.Delay(1)):
				}
				continue
			}
		}
		if s.durable != "" {
			cons, err = js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{Durable: s.durable, FilterSubject: s.subject,
				DeliverPolicy: pol, OptStartSeq: startSeq, OptStartTime: startTime, AckPolicy: jetstream.AckAllPolicy, AckWait: s.ackWait, MaxAckPending: -1})
		} else {
			cons, err = js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.subject},
				DeliverPolicy: pol, OptStartSeq: startSeq, OptStartTime: startTime})
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
	quiet := time.NewTimer(quietEvery)
	defer quiet.Stop()
	for {
		var m jetstream.Msg
		select {
		case m = <-ch:
		case <-quiet.C:
			quiet.Reset(quietEvery)
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
			continue
		case <-ctx.Done():
			return nil
		}
		var last jetstream.Msg // the newest message of the batch
		var lastSeq uint64
		full := false
		for {
			if seq, ok := s.take(m); ok {
				last, lastSeq = m, seq
				var err error
				if full, err = bt.addStream(m); err != nil {
					return err // on_error: fail (nothing of this batch is acknowledged)
				}
			}
			if full {
				break
			}
			select {
			case m = <-ch:
				continue
			default:
			}
			break
		}
		if last == nil {
			continue // every message was one handed on before
		}
		if s.durable == "" && s.ckpt {
			if meta, err := last.Metadata(); err == nil {
				lastSeq = meta.Sequence.Stream
			}
		}
		if lastSeq > 0 {
			s.lastSeq = lastSeq
		}
		if s.ckpt && s.durable != "" {
			s.mu.Lock()
			s.lastMsg = last
			s.mu.Unlock()
		}
		if err := bt.emit(); err != nil {
			return stopErr(ctx, err)
		}
		if s.durable != "" && !s.ckpt {
			if err := last.Ack(); err != nil {
				s.nc.Stats.Error("ack_failed", err.Error())
			}
		}
	}
}

// take reports whether stream message m is to be handed on, with its
// stream sequence for a durable consumer: a message at or below the last
// one handed on is a delivery again (after a restart, a restore or the ack
// wait) and is skipped. An ordered consumer reads each sequence once (0,
// true).
func (s *Source) take(m jetstream.Msg) (uint64, bool) {
	if s.durable == "" {
		return 0, true
	}
	meta, err := m.Metadata()
	if err != nil {
		return 0, true
	}
	seq := meta.Sequence.Stream
	if seq <= s.lastSeq {
		s.skipped++
		s.nc.Stats.Count("redelivered_skipped", 1)
		s.mu.Lock()
		done := !s.ckpt || seq <= s.resumeSeq || seq <= s.ackedTo
		s.mu.Unlock()
		if done {
			// Acknowledged before, or covered by a completed checkpoint:
			// let the server forget it.
			_ = m.Ack()
		}
		return 0, false
	}
	return seq, true
}

// stopErr turns an Emit error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
