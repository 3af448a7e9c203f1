// Package natssink is the sink.nats component: it publishes each batch as
// one message to a NATS subject, through JetStream (acknowledged,
// deduplicated by Nats-Msg-Id) or core NATS.
package natssink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/natsconn"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

func init() {
	fields := append(natsconn.Fields(),
		component.Field{Name: "subject", Type: component.String, Required: true,
			Description: "Subject every message is published to.", Example: "md.trades"},
		component.Field{Name: "jetstream", Type: component.Bool, Default: true,
			Description: "Publish through JetStream: each message is acknowledged by the stream that stores the subject, and carries Nats-Msg-Id (a hash of its bytes) so the stream drops a re-published copy within its duplicate window. false publishes on core NATS: at most once, nothing stored."},
		component.Field{Name: "stream", Type: component.String,
			Description: "With jetstream: a stream to create for subject when none exists (file storage, default limits). Empty: a stream must already store the subject."},
		component.Field{Name: "format", Type: component.String, Default: "mdp", Enum: busfmt.FormatNames,
			Description: "Message encoding: mdp (the binary frame of one batch, see README \"The mdp frame\"), json (JSON lines, as sink.file writes them) or csv (a header line and rows, as sink.file writes them)."},
		component.Field{Name: "max_pending", Type: component.Int, Default: 256, Min: component.Bound(1), Max: component.Bound(65536),
			Description: "JetStream messages published and not yet acknowledged; at the limit the sink waits until the oldest quarter of them are acknowledged (backpressure). A message lost with a broken connection is published again after the ones behind it got through, so after a reconnect the stream's order can differ from the batches' within this window; 1 keeps the order strictly (one message in flight, slower)."},
		component.Field{Name: "ack_timeout", Type: component.Duration, Default: "5s", Min: component.Bound(0.01), Max: component.Bound(600),
			Description: "How long to wait for one JetStream acknowledgement before publishing the message again (same Nats-Msg-Id)."},
		component.Field{Name: "max_attempts", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1000),
			Description: "Publications of one message before the job fails; between them the sink waits with the reconnect backoff."},
	)
	component.Register(component.Spec{
		Type:    "sink.nats",
		Kind:    engine.KindSink,
		Summary: "Publish batches to NATS (JetStream or core subjects)",
		Description: "One message per batch, in format mdp, json or csv. With jetstream (the default) a batch counts as written " +
			"only once the stream acknowledged it: the sink keeps up to max_pending messages in flight, publishes a message " +
			"again with the same Nats-Msg-Id when its acknowledgement fails or times out, and at the end of the job waits for " +
			"every acknowledgement before it reports stopped. Delivery is at least once; the Nats-Msg-Id makes a re-published " +
			"copy a no-op within the stream's duplicate window (default 2 minutes). After a reconnect, messages that were in flight can land " +
			"in the stream after later ones (at most max_pending of them; max_pending: 1 keeps the order). A crash (kill -9) loses the messages in " +
			"flight that the stream had not stored; with checkpoints off the source may already have moved past them. " +
			"With jetstream: false, messages go to core NATS (at most once; a subscriber that is not connected misses them); " +
			"the end of the job flushes the connection. The server's unavailability is counted as errors (Health DEGRADED) " +
			"and in the nats_connected gauge; the client reconnects forever with backoff and buffers up to 8 MiB meanwhile.",
		Accepts: md.KindAny,
		Fields:  fields,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			f, err := busfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, p.Errorf("format", "%v", err)
			}
			return &Sink{opts: natsconn.OptionsFrom(p), subject: p.String("subject"), js: p.Bool("jetstream"),
				stream: p.String("stream"), w: busfmt.NewWriter(f), maxPending: int(p.Int("max_pending")),
				ackTimeout: p.Duration("ack_timeout"), maxAttempts: int(p.Int("max_attempts"))}, nil
		},
		Validate: func(p *component.Params) error {
			if p.Has("stream") && !p.Bool("jetstream") {
				return p.Errorf("stream", "a stream applies only with jetstream: true")
			}
			return nil
		},
	})
}

// Sink is a sink.nats instance.
type Sink struct {
	opts        natsconn.Options
	subject     string
	js          bool
	stream      string
	w           *busfmt.Writer
	maxPending  int
	ackTimeout  time.Duration
	maxAttempts int

	nc      *engine.NodeContext
	log     *slog.Logger
	conn    *natsconn.Conn
	jsc     jetstream.JetStream
	pending []*inflight // oldest first
	free    []*inflight
	timer   *time.Timer // the ack_timeout of the message waited for, reused
	msgs    int64
	records int64
	acked   *engine.Counter
	retries *engine.Counter
}

// inflight is a published message waiting for its acknowledgement. Its
// buffer, message and header are reused once it is acknowledged (the
// client keeps the message only until then).
type inflight struct {
	data     []byte
	id       string
	records  int
	msg      *nats.Msg
	fut      jetstream.PubAckFuture
	attempts int
	// What wait took from fut's channels (each delivers once): acked,
	// or the attempt's error.
	acked  bool
	failed error
}

// Open connects (without failing when the server is down: see natsconn)
// and, when asked, creates the stream.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	conn, err := natsconn.Connect(ctx, s.opts, nc)
	if err != nil {
		return err
	}
	s.conn = conn
	s.acked = nc.Metrics().Counter("nats_acked_messages_total", "Messages the JetStream stream acknowledged.")
	s.retries = nc.Metrics().Counter("nats_republished_total", "Messages published again after a failed or late acknowledgement.")
	if !s.js {
		return nil
	}
	s.jsc, err = jetstream.New(conn.Conn, jetstream.WithPublishAsyncMaxPending(2*s.maxPending+16))
	if err != nil {
		return fmt.Errorf("jetstream on %s: %w", conn.Masked(), err)
	}
	if s.stream != "" {
		if _, err := s.jsc.Stream(ctx, s.stream); errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = s.jsc.CreateStream(ctx, jetstream.StreamConfig{Name: s.stream, Subjects: []string{s.subject}, Storage: jetstream.FileStorage})
			if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("create stream %s for %s on %s: %w", s.stream, s.subject, conn.Masked(), err)
			}
		} else if err != nil {
			return fmt.Errorf("look up stream %s on %s: %w", s.stream, conn.Masked(), err)
		}
	}
	return nil
}

// Process publishes b as one message.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	payload, err := s.w.Message(b, s.nc.Symbols.Snapshot())
	if err != nil {
		return fmt.Errorf("encode a %s batch for %s: %w", b.Kind, s.subject, err)
	}
	s.msgs++
	s.records += int64(n)
	if !s.js {
		if err := s.conn.Publish(s.subject, payload); err != nil {
			return fmt.Errorf("publish to %s on %s: %w", s.subject, s.conn.Masked(), err)
		}
		return nil
	}
	f := s.get()
	f.data = append(f.data[:0], payload...)
	f.records = n
	f.attempts = 0
	f.id = strconv.FormatUint(xxhash.Sum64(f.data), 16) + "-" + strconv.Itoa(len(f.data))
	if err := s.publish(ctx, f); err != nil {
		return err
	}
	s.pending = append(s.pending, f)
	if len(s.pending) < s.maxPending {
		return nil
	}
	// At the limit: wait until the oldest quarter is acknowledged. The
	// stream acknowledges in order, so waiting for the last of that
	// quarter parks the sink once for all of them rather than once per
	// acknowledgement; each is then settled in order (published again if
	// it failed).
	k := max(s.maxPending/4, 1)
	if k > 1 {
		if err := s.wait(ctx, s.pending[k-1]); err != nil {
			return err
		}
	}
	for range k {
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// wait waits until f is acknowledged, failed or late (ack_timeout),
// without settling it: settleOldest does, from what wait noted in f.
func (s *Sink) wait(ctx context.Context, f *inflight) error {
	ok, failed := f.fut.Ok(), f.fut.Err()
	select {
	case <-ok:
		f.acked = true
		return nil
	case f.failed = <-failed:
		return nil
	default:
	}
	t := s.startTimer()
	defer t.Stop()
	select {
	case <-ok:
		f.acked = true
	case f.failed = <-failed:
	case <-t.C: // late: settleOldest gives it its own ack_timeout
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// startTimer returns the sink's timer set to ack_timeout.
func (s *Sink) startTimer() *time.Timer {
	if s.timer == nil {
		s.timer = time.NewTimer(s.ackTimeout)
	} else {
		s.timer.Reset(s.ackTimeout)
	}
	return s.timer
}

func (s *Sink) get() *inflight {
	if n := len(s.free); n > 0 {
		f := s.free[n-1]
		s.free = s.free[:n-1]
		return f
	}
	return &inflight{}
}

// publish sends f (again) and keeps its future.
func (s *Sink) publish(ctx context.Context, f *inflight) error {
	for {
		f.attempts++
		if f.msg == nil || f.attempts > 1 {
			// A new message for each attempt after the first: the client
			// may still hold a failed or late attempt's message (it
			// retries "no responders" by itself), so that one is left
			// alone. A message whose last attempt was acknowledged is
			// held no more and is reused.
			f.msg = &nats.Msg{Subject: s.subject, Header: nats.Header{jetstream.MsgIDHeader: []string{""}}}
		}
		f.msg.Data = f.data
		f.msg.Header[jetstream.MsgIDHeader][0] = f.id
		fut, err := s.jsc.PublishMsgAsync(f.msg)
		if err == nil {
			f.fut, f.acked, f.failed = fut, false, nil
			return nil
		}
		if err := s.backoff(ctx, f, err); err != nil {
			return err
		}
	}
}

// backoff counts a failed attempt of f and waits before the next, or
// fails when f has used max_attempts.
func (s *Sink) backoff(ctx context.Context, f *inflight, err error) error {
	s.nc.Stats.Error("publish_failed", fmt.Sprintf("publish to %s: %v", s.subject, err))
	if f.attempts >= s.maxAttempts {
		return fmt.Errorf("publish %d records to %s on %s: no acknowledgement after %d attempts: %w", f.records, s.subject, s.conn.Masked(), f.attempts, err)
	}
	s.retries.Inc()
	if s.log != nil {
		s.log.Warn("nats publish not acknowledged; publishing again", "subject", s.subject, "attempt", f.attempts, "err", err)
	}
	return retry.Sleep(ctx, s.opts.Backoff.Delay(f.attempts))
}

// settleOldest waits for the oldest message's acknowledgement, publishing
// it again (same id) when it fails or times out.
func (s *Sink) settleOldest(ctx context.Context) error {
	f := s.pending[0]
	for {
		if f.acked {
			s.ackedOldest(f)
			return nil
		}
		err := f.failed
		if err == nil {
			ok := f.fut.Ok()
			select { // the usual case: acknowledged already, no timer needed
			case <-ok:
				s.ackedOldest(f)
				return nil
			default:
			}
			timer := s.startTimer()
			select {
			case <-ok:
				timer.Stop()
				s.ackedOldest(f)
				return nil
			case err = <-f.fut.Err():
			case <-timer.C:
				err = fmt.Errorf("no acknowledgement within %s", s.ackTimeout)
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
			timer.Stop()
		}
		if err := s.backoff(ctx, f, err); err != nil {
			return err
		}
		if err := s.publish(ctx, f); err != nil {
			return err
		}
	}
}

// ackedOldest retires the oldest pending message, f.
func (s *Sink) ackedOldest(f *inflight) {
	s.acked.Inc()
	s.pending[0] = nil
	s.pending = s.pending[1:]
	f.fut = nil
	s.free = append(s.free, f)
}

// Close waits for every acknowledgement (JetStream) or flushes the
// connection (core NATS), so the job reports stopped only once the broker
// has what the sink accepted.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	for len(s.pending) > 0 {
		if err := s.settleOldest(ctx); err != nil {
			return err
		}
	}
	if !s.js && s.conn != nil {
		fctx, cancel := context.WithTimeout(ctx, s.ackTimeout)
		defer cancel()
		if err := s.conn.FlushWithContext(fctx); err != nil {
			return fmt.Errorf("flush %s: %w", s.conn.Masked(), err)
		}
	}
	if s.log != nil {
		s.log.Info("published", "subject", s.subject, "messages", s.msgs, "records", s.records, "format", s.w.Format().String())
	}
	return nil
}

// Cleanup closes the connection.
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.conn != nil {
		s.conn.Close()
	}
	return nil
}

// Ready reports whether the connection is up.
func (s *Sink) Ready() bool { return s.conn != nil && s.conn.IsConnected() }

// Summary implements engine.Summarizer.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.records, "messages": s.msgs}
}
