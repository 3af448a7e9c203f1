// Package redissink is the sink.redis component: it adds each batch as one
// entry to a Redis stream (XADD, trimmed with MAXLEN), or one entry per
// symbol or partition when the stream key names them.
package redissink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/internal/redisconn"
	"github.com/mdpio/mdp/md"
)

func init() {
	fields := append(redisconn.Fields(),
		component.Field{Name: "stream", Type: component.String, Required: true,
			Description: "Stream key; {kind} is the batch's record kind, {symbol} a record's symbol (one entry per symbol of a batch), {partition} md.Split of the symbol over partitions (one entry per partition).", Example: "md.{kind}"},
		component.Field{Name: "partitions", Type: component.Int, Default: 0, Min: component.Bound(0), Max: component.Bound(4096),
			Description: "Number of partitions {partition} takes (with {partition} in stream): a symbol's records always go to the same partition stream, in order, so provider.redis with the same partitions reads each symbol on one instance."},
		component.Field{Name: "format", Type: component.String, Default: "mdp", Enum: busfmt.FormatNames,
			Description: "Message encoding: mdp (the binary frame of one batch, see README \"The mdp frame\"), json (JSON lines, as sink.file writes them) or csv (a header line and rows, as sink.file writes them)."},
		component.Field{Name: "field", Type: component.String, Default: "d",
			Description: "Entry field the message is stored under."},
		component.Field{Name: "maxlen", Type: component.Int, Default: 0, Min: component.Bound(0),
			Description: "Trim each stream to about this many entries on every XADD (MAXLEN ~, which trims whole macro nodes: cheap, and never below maxlen). 0 keeps everything."},
		component.Field{Name: "exact_trim", Type: component.Bool, Default: false,
			Description: "Trim to exactly maxlen (MAXLEN =, costlier) instead of about it."},
		component.Field{Name: "max_attempts", Type: component.Int, Default: 10, Min: component.Bound(1), Max: component.Bound(1000),
			Description: "Attempts at adding one batch before the job fails; between them the sink waits with the reconnect backoff."},
	)
	component.Register(component.Spec{
		Type:    "sink.redis",
		Kind:    engine.KindSink,
		Summary: "Add batches to Redis Streams (XADD with MAXLEN trimming)",
		Description: "One entry per batch (or per symbol or partition of it, when stream names {symbol} or {partition}) in format mdp, " +
			"json or csv, under field. A batch counts as written only when Redis answered its XADD (the entries of one batch go " +
			"in one pipelined round trip), so delivery is at least once: a command whose answer was lost with the connection is " +
			"sent again and its entry can be stored twice. A crash (kill -9) loses nothing Redis answered; with checkpoints off " +
			"the source may already have moved past the batch in hand. With maxlen the stream keeps about that many entries " +
			"(older ones trimmed, possibly before a consumer read them). The server's absence is counted as errors (Health " +
			"DEGRADED) and in the redis_connected gauge; the sink retries with backoff and jitter and fails the job after " +
			"max_attempts.",
		Accepts: md.KindAny,
		Fields:  fields,
		Validate: func(p *component.Params) error {
			var errs []error
			if err := redisconn.Validate(p); err != nil {
				errs = append(errs, err)
			}
			t, err := busio.ParseTemplate(p.String("stream"))
			if err != nil {
				errs = append(errs, p.Errorf("stream", "%v", err))
			} else if t.Partition != (p.Int("partitions") > 0) {
				errs = append(errs, p.Errorf("partitions", "{partition} in stream and partitions > 0 go together"))
			}
			if p.Has("exact_trim") && p.Int("maxlen") == 0 {
				errs = append(errs, p.Errorf("exact_trim", "exact_trim applies only with maxlen"))
			}
			return errors.Join(errs...)
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			f, err := busfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, p.Errorf("format", "%v", err)
			}
			t, err := busio.ParseTemplate(p.String("stream"))
			if err != nil {
				return nil, p.Errorf("stream", "%v", err)
			}
			partitions := int(p.Int("partitions"))
			return &Sink{p: p, tmpl: t, split: busio.NewSplitter(t, partitions), w: busio.NewArena(busfmt.NewWriter(f)),
				field: p.String("field"), maxLen: p.Int("maxlen"), approx: !p.Bool("exact_trim"), maxAttempts: int(p.Int("max_attempts"))}, nil
		},
	})
}

// Sink is a sink.redis instance.
type Sink struct {
	p           *component.Params
	tmpl        *busio.Template
	split       *busio.Splitter
	w           *busio.Arena
	field       string
	maxLen      int64
	approx      bool
	maxAttempts int

	nc      *engine.NodeContext
	log     *slog.Logger
	c       *redisconn.Client
	args    []redis.XAddArgs
	msgs    int64
	records int64
	written *engine.Counter
}

// Open builds the client (the server is reached at the first batch).
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	c, err := redisconn.Connect(s.p, nc)
	if err != nil {
		return err
	}
	s.c = c
	s.written = nc.Metrics().Counter("redis_entries_added_total", "Stream entries Redis acknowledged (XADD answered).")
	return nil
}

// Process adds b's entries and returns once Redis answered them.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	syms := s.nc.Symbols.Snapshot()
	groups := s.split.Split(b, syms)
	s.w.Reset()
	s.args = s.args[:0]
	for _, g := range groups {
		key := s.tmpl.Append(s.w.KeyBuf(), b.Kind, syms[g.Sym].Symbol, g.Partition)
		if err := s.w.Add(key, g.Batch, syms); err != nil {
			return fmt.Errorf("encode a %s batch for %s: %w", b.Kind, s.tmpl, err)
		}
	}
	for i := range groups {
		key, payload := s.w.Get(i)
		a := redis.XAddArgs{Stream: key, Values: []any{s.field, payload}}
		if s.maxLen > 0 {
			a.MaxLen, a.Approx = s.maxLen, s.approx
		}
		s.args = append(s.args, a)
	}
	for attempt := 1; ; attempt++ {
		err := s.add(ctx)
		if err == nil {
			s.c.OK()
			break
		}
		if attempt >= s.maxAttempts || !redisconn.IsConnErr(err) {
			return fmt.Errorf("add %d records to %s on %s: attempt %d: %w", n, s.tmpl, s.c.Masked(), attempt, err)
		}
		if err := s.c.Fail(ctx, "write_failed", "XADD "+s.tmpl.String(), err); err != nil {
			return err
		}
	}
	s.msgs += int64(len(groups))
	s.records += int64(n)
	s.written.Add(int64(len(groups)))
	return nil
}

// add sends the prepared XADDs: one command, or a pipeline of them.
func (s *Sink) add(ctx context.Context) error {
	if len(s.args) == 1 {
		return s.c.XAdd(ctx, &s.args[0]).Err()
	}
	pipe := s.c.Pipeline()
	for i := range s.args {
		pipe.XAdd(ctx, &s.args[i])
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Close logs what was written: every batch was acknowledged in Process.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if s.log != nil {
		s.log.Info("added", "stream", s.tmpl.String(), "entries", s.msgs, "records", s.records)
	}
	return nil
}

// Cleanup closes the client.
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.c != nil {
		return s.c.Close()
	}
	return nil
}

// Summary implements engine.Summarizer.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.records, "messages": s.msgs}
}
