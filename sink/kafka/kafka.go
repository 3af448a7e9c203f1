// Package kafkasink is the sink.kafka component: it produces batches to a
// Kafka topic through franz-go, one message per symbol of each batch keyed
// by the symbol, with an idempotent producer and acks from all in-sync
// replicas.
package kafkasink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/busio"
	"github.com/mdpio/mdp/internal/kafkaconn"
	"github.com/mdpio/mdp/md"
)

func init() {
	fields := append(kafkaconn.Fields(),
		component.Field{Name: "topic", Type: component.String, Required: true,
			Description: "Topic every message is produced to (it must exist, or the cluster must create topics on use).", Example: "md.trades"},
		component.Field{Name: "format", Type: component.String, Default: "mdp", Enum: busfmt.FormatNames,
			Description: "Message encoding: mdp (the binary frame, README \"The mdp frame\"), json (JSON lines, as sink.file writes them) or csv (a header line and rows, as sink.file writes them)."},
		component.Field{Name: "linger", Type: component.Duration, Default: "5ms", Min: component.Bound(0), Max: component.Bound(60),
			Description: "How long a partition's batch waits for more messages before it is sent (0: send at once)."},
		component.Field{Name: "batch_max_bytes", Type: component.Int, Default: 1 << 20, Min: component.Bound(1 << 10), Max: component.Bound(1 << 30),
			Description: "Largest record batch sent to one partition, in bytes (before compression); a message larger than it fails the job."},
		component.Field{Name: "compression", Type: component.String, Default: "none", Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"},
			Description: "Compression of record batches."},
		component.Field{Name: "max_buffered", Type: component.Int, Default: 4096, Min: component.Bound(1), Max: component.Bound(1 << 20),
			Description: "Messages produced and not yet acknowledged; at the limit the sink waits (backpressure)."},
		component.Field{Name: "delivery_timeout", Type: component.Duration, Default: "5m", Min: component.Bound(1), Max: component.Bound(86400),
			Description: "How long a message may stay unacknowledged (retried meanwhile with the backoff) before the job fails."},
	)
	component.Register(component.Spec{
		Type:    "sink.kafka",
		Kind:    engine.KindSink,
		Summary: "Produce batches to a Kafka topic",
		Description: "Each batch is split by symbol and each symbol's records become one message keyed by the symbol text, " +
			"so Kafka's key partitioner (murmur2, as the Java client) keeps every symbol on one partition and in order. " +
			"The producer is idempotent with acks from all in-sync replicas: a retried message is written once, in order. " +
			"A batch counts as written only once the brokers acknowledged it: checkpoints wait for every acknowledgement " +
			"(Flush) and the end of the job waits for them before it reports stopped. Delivery is at least once; a crash (kill -9) " +
			"loses the messages not yet acknowledged, which with checkpoints a resume produces again, and without them the " +
			"source may already have moved past. Broker unavailability is counted as errors (Health DEGRADED) and in the " +
			"kafka_connected gauge; the client retries with backoff until delivery_timeout.",
		Accepts:  md.KindAny,
		Fields:   fields,
		Validate: kafkaconn.Validate,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			f, err := busfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, p.Errorf("format", "%v", err)
			}
			o, err := kafkaconn.OptionsFrom(p)
			if err != nil {
				return nil, err
			}
			return &Sink{opts: o, topic: p.String("topic"), w: busfmt.NewWriter(f),
				linger: p.Duration("linger"), batchBytes: int32(p.Int("batch_max_bytes")), compression: p.String("compression"),
				maxBuffered: int(p.Int("max_buffered")), deliveryTimeout: p.Duration("delivery_timeout")}, nil
		},
	})
}

// Sink is a sink.kafka instance.
type Sink struct {
	opts            kafkaconn.Options
	topic           string
	w               *busfmt.Writer
	linger          time.Duration
	batchBytes      int32
	compression     string
	maxBuffered     int
	deliveryTimeout time.Duration

	nc    *engine.NodeContext
	log   *slog.Logger
	cl    *kgo.Client
	state *kafkaconn.State

	split   *busio.Splitter
	recs    sync.Pool // *kgo.Record with a reusable Value
	promise func(*kgo.Record, error)
	failMu  sync.Mutex
	failed  error
	msgs    int64
	records int64
	acked   *engine.Counter
	keys    [][]byte // symbol text by SymID
}

// Open builds the client. It does not wait for a broker: one that is down
// is retried in the background while the sink buffers.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	opts, st := kafkaconn.ClientOpts(s.opts, nc)
	s.state = st
	var codec kgo.CompressionCodec
	switch s.compression {
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		codec = kgo.NoCompression()
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(s.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default and needs all acks
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(s.linger),
		kgo.ProducerBatchMaxBytes(s.batchBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(s.maxBuffered),
		kgo.RecordDeliveryTimeout(s.deliveryTimeout),
	)
	var err error
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("kafka client for %s: %w", s.opts.Masked(), err)
	}
	tmpl, err := busio.ParseTemplate("{symbol}")
	if err != nil {
		return err
	}
	s.split = busio.NewSplitter(tmpl, 0)
	s.acked = nc.Metrics().Counter("kafka_acked_messages_total", "Messages the brokers acknowledged.")
	s.recs.New = func() any { return &kgo.Record{} }
	s.promise = func(r *kgo.Record, err error) {
		if err != nil {
			s.failMu.Lock()
			if s.failed == nil {
				s.failed = err
			}
			s.failMu.Unlock()
			return
		}
		s.acked.Inc()
		r.Value = r.Value[:0]
		s.recs.Put(r)
	}
	return nil
}

// fail is the first delivery failure, if any.
func (s *Sink) fail() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failed == nil {
		return nil
	}
	return fmt.Errorf("produce to %s on %s: %w", s.topic, s.opts.Masked(), s.failed)
}

// key is the message key of sym: its symbol text.
func (s *Sink) key(sym md.SymID) []byte {
	for int(sym) >= len(s.keys) {
		s.keys = append(s.keys, nil)
	}
	if s.keys[sym] == nil {
		s.keys[sym] = []byte(s.nc.Symbols.Get(sym).Symbol)
	}
	return s.keys[sym]
}

// Process produces b, one message per symbol.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := s.fail(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	syms := s.nc.Symbols.Snapshot()
	for _, g := range s.split.Split(b, syms) {
		payload, err := s.w.Message(g.Batch, syms)
		if err != nil {
			return fmt.Errorf("encode a %s batch for %s: %w", b.Kind, s.topic, err)
		}
		r := s.recs.Get().(*kgo.Record)
		r.Topic = s.topic
		r.Key = s.key(g.Sym)
		r.Value = append(r.Value[:0], payload...)
		r.Partition, r.Offset, r.Headers = 0, 0, nil
		s.cl.Produce(ctx, r, s.promise)
		s.msgs++
	}
	s.records += int64(b.Len())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// Flush waits until the brokers acknowledged every message produced so far
// (a checkpoint's barrier: nothing before it may be lost).
func (s *Sink) Flush(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush %s: %w", s.topic, err)
	}
	return s.fail()
}

// Close waits for every acknowledgement, so the job reports stopped only
// once the brokers have what the sink accepted.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	if s.log != nil {
		s.log.Info("produced", "topic", s.topic, "messages", s.msgs, "records", s.records, "format", s.w.Format().String())
	}
	return nil
}

// Cleanup closes the client.
func (s *Sink) Cleanup(ctx context.Context) error {
	if s.cl != nil {
		s.cl.Close()
	}
	return nil
}

// Ready reports whether the last broker connection succeeded.
func (s *Sink) Ready() bool { return s.state != nil && s.state.Up() }

// Summary implements engine.Summarizer.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": s.records, "messages": s.msgs}
}
