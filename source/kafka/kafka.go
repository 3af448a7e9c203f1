// Package kafkasrc is the provider.kafka component: it reads batches from
// Kafka topics through franz-go, in a consumer group or from chosen
// partitions, and commits what it read once it is safe: at checkpoints
// when the job takes them, else once the records are handed downstream.
package kafkasrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/kafkaconn"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

// pollWait bounds one poll, so a quiet source still lets checkpoints pass.
const pollWait = 200 * time.Millisecond

func init() {
	fields := append(kafkaconn.Fields(),
		component.Field{Name: "topics", Type: component.Strings, Required: true,
			Description: "Topics to read; with regex: true, regular expressions (RE2) matched against every topic of the cluster.", Example: []any{"md.trades"}},
		component.Field{Name: "regex", Type: component.Bool, Default: false,
			Description: "The topics are regular expressions (needs group: matching topics are found as they appear)."},
		component.Field{Name: "group", Type: component.String,
			Description: "Consumer group: the partitions are shared with the group's other members and the group's committed offsets say where to resume. Empty: read the partitions directly, with no group."},
		component.Field{Name: "instance_id", Type: component.String,
			Description: "With group: a static member id (Kafka static membership), the same on every restart of this job and different for each process of the group. A member restarted after a crash with the same id takes its partitions back at once; without it the group waits for the dead member's session to time out (45 s) before the partitions are read again. Each instance of the node (parallelism) appends .<instance> to it."},
		component.Field{Name: "partitions", Type: component.List,
			Description: "Without group: the partition numbers to read, of every topic. Default: all partitions."},
		component.Field{Name: "start", Type: component.String, Default: "earliest", Enum: []string{"earliest", "latest", "timestamp", "committed"},
			Description: "Where to begin: earliest (the oldest message kept), latest (messages produced from now on), timestamp (the first message at or after start_time), or committed (the group's committed offsets; needs group). In a group, a partition with committed offsets always resumes from them; start applies to those without."},
		component.Field{Name: "start_time", Type: component.Time,
			Description: "With start: timestamp, the first message time to read (RFC 3339)."},
		component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"},
			Description: "Record kind of the messages; an mdp frame of another kind is malformed (bad_kind)."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.kafka",
		Kind:    engine.KindSource,
		Summary: "Read batches from Kafka topics",
		Description: "Each message is one batch (sink.kafka writes them) in format mdp, json or csv (json and csv with a mapping read " +
			"foreign messages); messages are gathered into the job's batches. A message that does not decode (a json or csv row " +
			"that does not) is counted (drops{reason=malformed}, counters malformed_<reason>), logged, and dropped, dead-lettered or " +
			"fatal per on_error; a dropped or dead-lettered message's offset is committed like a good one's. " +
			"Order: Kafka keeps order per partition, and sink.kafka keys each message by symbol, so a symbol's records arrive in order. " +
			"When a partition's leader changes (a broker fails), the client may read records of that partition again from the point " +
			"the new leader confirms (at least once: a replay, never a gap; stores upsert, so the stores do not change). " +
			"With checkpoints, the source records its offsets in each checkpoint, commits them to the group only when that checkpoint " +
			"completes, and a resume seeks to them: a kill -9 and --resume leave the stores as a clean run does. Without checkpoints, " +
			"a group's offsets are committed once the records are handed downstream: a crash replays nothing the sinks had been handed " +
			"but may lose records handed downstream and not yet stored; without a group nothing is committed and a restart begins at start. " +
			"Broker unavailability is counted as errors (Health DEGRADED) and in the kafka_connected gauge; the client retries forever with backoff.",
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
			o, err := kafkaconn.OptionsFrom(p)
			if err != nil {
				return nil, err
			}
			s := &Source{cfg: cfg, opts: o, topics: p.Strings("topics"), regex: p.Bool("regex"),
				group: p.String("group"), start: p.String("start"), kind: k}
			if id := p.String("instance_id"); id != "" {
				s.instanceID = fmt.Sprintf("%s.%d", id, instance)
			}
			s.startTime, _ = p.Time("start_time")
			for _, v := range p.List("partitions") {
				n, _ := v.(int64)
				s.partitions = append(s.partitions, int32(n))
			}
			return s, nil
		},
	})
}

func validate(p *component.Params) error {
	errs := []error{kafkaconn.Validate(p)}
	k, _ := md.ParseKind(p.String("kind"))
	if _, err := busfmt.SourceConfigFrom(p, k); err != nil {
		errs = append(errs, err)
	}
	group := p.String("group") != ""
	if p.Bool("regex") {
		if !group {
			errs = append(errs, p.Errorf("regex", "regex needs a group"))
		}
		for _, t := range p.Strings("topics") {
			if _, err := regexp.Compile(t); err != nil {
				errs = append(errs, p.Errorf("topics", "topic regex %q: %v", t, err))
			}
		}
	}
	if p.String("instance_id") != "" && !group {
		errs = append(errs, p.Errorf("instance_id", "instance_id needs a group (it names a static member of the group)"))
	}
	if group && p.Has("partitions") {
		errs = append(errs, p.Errorf("partitions", "partitions apply only without a group (the group assigns them)"))
	}
	for _, v := range p.List("partitions") {
		if n, ok := v.(int64); !ok || n < 0 || n > 1<<31-1 {
			errs = append(errs, p.Errorf("partitions", "partition %v is not a partition number (0, 1, ...)", v))
		}
	}
	start := p.String("start")
	if start == "committed" && !group {
		errs = append(errs, p.Errorf("start", "start: committed needs a group"))
	}
	if start == "timestamp" && !p.Has("start_time") {
		errs = append(errs, p.Errorf("start_time", "start: timestamp needs start_time"))
	}
	if p.Has("start_time") && start != "timestamp" {
		errs = append(errs, p.Errorf("start_time", "start_time applies only with start: timestamp"))
	}
	return errors.Join(errs...)
}

// offsets are the next offsets to read, by topic and partition.
type offsets map[string]map[int32]int64

func (o offsets) clone() offsets {
	c := make(offsets, len(o))
	for t, ps := range o {
		m := make(map[int32]int64, len(ps))
		for p, off := range ps {
			m[p] = off
		}
		c[t] = m
	}
	return c
}

// Source is a provider.kafka instance.
type Source struct {
	cfg        busfmt.SourceConfig
	opts       kafkaconn.Options
	topics     []string
	regex      bool
	group      string
	instanceID string // static member id; empty: a dynamic member
	partitions []int32
	start      string
	startTime  int64
	kind       md.Kind

	nc    *engine.NodeContext
	log   *slog.Logger
	cl    *kgo.Client
	state atomic.Pointer[kafkaconn.State] // set by Run, read by Ready
	rd    *busfmt.Reader

	next    offsets // after the last record emitted (the source goroutine's)
	seek    offsets // restored from a checkpoint
	mu      sync.Mutex
	pending map[int64]offsets // checkpoint id -> what it covers
	ckpt    bool

	msgs      int64
	malformed int64
}

// Open prepares the decoder; the client is built
// in Run, once a restore has said where to begin.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	var err error
	s.rd, err = busfmt.NewSourceReader(nc, s.cfg)
	s.next = offsets{}
	return err
}

// leaveWait bounds how long Cleanup waits for the client to close and a
// checkpoint's commit to be done. Both wait for a rebalance in progress
// (franz-go's leave and commits wait for the join in flight), and a
// rebalance waits for members that may be dead: a killed process's member
// stays until its session times out (45 s), which would hold the job's
// shutdown past its shutdown timeout.
const leaveWait = 5 * time.Second

// Cleanup closes the client (leaving the group, waiting at most
// leaveWait: then the client finishes closing in the background) and the
// dead-letter file.
func (s *Source) Cleanup(ctx context.Context) error {
	if s.cl != nil {
		closed := make(chan struct{})
		go func(cl *kgo.Client) {
			cl.Close()
			close(closed)
		}(s.cl)
		t := time.NewTimer(leaveWait)
		select {
		case <-closed:
		case <-t.C:
			s.log.Warn("kafka: the group is rebalancing: closing in the background without waiting to leave it; this member's partitions stay with it until the rebalance ends or its session times out",
				"group", s.group, "waited", leaveWait)
		}
		t.Stop()
	}
	if s.rd != nil {
		return s.rd.Close()
	}
	return nil
}

// Ready reports whether the last broker connection succeeded.
func (s *Source) Ready() bool {
	st := s.state.Load()
	return st != nil && st.Up()
}

// Unbounded implements engine.Unbounded: a topic has no end.
func (s *Source) Unbounded() bool { return true }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 {
	return map[string]int64{"messages": s.msgs, "malformed": s.malformed}
}

// Position implements engine.Seeker: the offsets after everything emitted,
// kept under id for NotifyCheckpointComplete.
func (s *Source) Position(id int64) ([]byte, error) {
	cp := s.next.clone()
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[int64]offsets{}
	}
	s.pending[id] = cp
	s.mu.Unlock()
	return json.Marshal(cp)
}

// Seek implements engine.Seeker: Run begins at pos's offsets.
func (s *Source) Seek(ctx context.Context, pos []byte) error {
	var o offsets
	if err := json.Unmarshal(pos, &o); err != nil {
		return fmt.Errorf("kafka position %q: %w", pos, err)
	}
	s.seek = o
	s.next = o.clone()
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener: the
// group's offsets move to what checkpoint id covered (and no further).
func (s *Source) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	cp := s.pending[id]
	for k := range s.pending {
		if k <= id {
			delete(s.pending, k)
		}
	}
	cl := s.cl
	s.mu.Unlock()
	if cp == nil || s.group == "" || cl == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, leaveWait)
	defer cancel()
	err := s.commit(cctx, cl, cp, true)
	if err == nil && cctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("commit offsets of group %s for checkpoint %d: not done within %s (the group is rebalancing); a later checkpoint commits further, and --resume seeks to the checkpoint's offsets", s.group, id, leaveWait)
		s.nc.Stats.Error("commit_failed", err.Error())
	}
	return err
}

// commit moves the group's offsets to o.
func (s *Source) commit(ctx context.Context, cl *kgo.Client, o offsets, sync bool) error {
	m := make(map[string]map[int32]kgo.EpochOffset, len(o))
	for t, ps := range o {
		mm := make(map[int32]kgo.EpochOffset, len(ps))
		for p, off := range ps {
			mm[p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
		m[t] = mm
	}
	var cerr error
	done := func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil && resp != nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && err == nil {
						err = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, e)
					}
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			cerr = fmt.Errorf("commit offsets of group %s: %w", s.group, err)
			s.nc.Stats.Error("commit_failed", cerr.Error())
		}
	}
	if sync {
		cl.CommitOffsetsSync(ctx, m, done)
		return cerr
	}
	cl.CommitOffsets(ctx, m, done)
	return nil
}

func (s *Source) startOffset() kgo.Offset {
	switch s.start {
	case "latest":
		return kgo.NewOffset().AtEnd()
	case "timestamp":
		return kgo.NewOffset().AfterMilli(s.startTime / int64(time.Millisecond))
	}
	return kgo.NewOffset().AtStart()
}

// clientOpts are the consumer's options; direct partitions need the
// topics' partition lists, which Run looks up first.
func (s *Source) clientOpts(ctx context.Context) ([]kgo.Opt, error) {
	opts, st := kafkaconn.ClientOpts(s.opts, s.nc)
	s.state.Store(st)
	opts = append(opts, kgo.ConsumeResetOffset(s.startOffset()), kgo.FetchMaxWait(pollWait))
	if s.group != "" {
		opts = append(opts, kgo.ConsumerGroup(s.group), kgo.ConsumeTopics(s.topics...), kgo.DisableAutoCommit())
		if s.instanceID != "" {
			opts = append(opts, kgo.InstanceID(s.instanceID))
		}
		if s.regex {
			opts = append(opts, kgo.ConsumeRegex())
		}
		if s.seek != nil {
			seek := s.seek
			opts = append(opts, kgo.AdjustFetchOffsetsFn(func(_ context.Context, in map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
				for t, ps := range in {
					for p := range ps {
						if off, ok := seek[t][p]; ok {
							ps[p] = kgo.NewOffset().At(off).WithEpoch(-1)
						}
					}
				}
				return in, nil
			}))
		}
		return opts, nil
	}
	parts, err := s.directPartitions(ctx, opts)
	if err != nil {
		return nil, err
	}
	m := map[string]map[int32]kgo.Offset{}
	for t, ps := range parts {
		m[t] = map[int32]kgo.Offset{}
		for _, p := range ps {
			if off, ok := s.seek[t][p]; ok {
				m[t][p] = kgo.NewOffset().At(off)
			} else {
				m[t][p] = s.startOffset()
			}
		}
	}
	return append(opts, kgo.ConsumePartitions(m)), nil
}

// directPartitions lists the partitions to read without a group: the
// partitions param, or every partition of each topic (asked of the
// cluster, retried until a broker answers).
func (s *Source) directPartitions(ctx context.Context, opts []kgo.Opt) (map[string][]int32, error) {
	out := map[string][]int32{}
	if len(s.partitions) > 0 {
		for _, t := range s.topics {
			out[t] = s.partitions
		}
		return out, nil
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", s.opts.Masked(), err)
	}
	defer cl.Close()
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range s.topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			for _, t := range resp.Topics {
				name := ""
				if t.Topic != nil {
					name = *t.Topic
				}
				if e := kerr.ErrorForCode(t.ErrorCode); e != nil {
					if errors.Is(e, kerr.UnknownTopicOrPartition) {
						return nil, fmt.Errorf("topic %s on %s: %w", name, s.opts.Masked(), e)
					}
					err = e
					break
				}
				for _, p := range t.Partitions {
					out[name] = append(out[name], p.Partition)
				}
			}
			if err == nil {
				return out, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.nc.Stats.Error("metadata_failed", fmt.Sprintf("partitions of %v on %s: %v", s.topics, s.opts.Masked(), err))
		if err := retry.Sleep(ctx, s.opts.Backoff.Delay(attempt)); err != nil {
			return nil, err
		}
	}
}

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	opts, err := s.clientOpts(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", s.opts.Masked(), err)
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
	s.ckpt = out.Checkpointing()
	size := s.nc.Pool.Size()
	var b *md.Batch
	defer func() {
		if b != nil {
			b.Release()
		}
	}()
	emit := func() error {
		if b == nil {
			return nil
		}
		x := b
		b = nil
		if x.Len() == 0 {
			x.Release()
			return nil
		}
		return out.Emit(x)
	}
	var emitErr error
	for {
		pctx, cancel := context.WithTimeout(ctx, pollWait)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			s.nc.Stats.Error("fetch_failed", fmt.Sprintf("%s[%d] on %s: %v", t, p, s.opts.Masked(), err))
		})
		got := false
		fetches.EachRecord(func(r *kgo.Record) {
			if emitErr != nil {
				return
			}
			got = true
			if b == nil {
				b = out.NewBatch(s.kind)
			}
			s.msgs++
			if err := s.rd.Decode(r.Value, b); err != nil {
				s.malformed++
				o := busfmt.Origin{Bus: "kafka", Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, HasOffset: true}
				if emitErr = s.rd.Malformed(err, r.Value, &o); emitErr != nil {
					return // on_error: fail, or the dead-letter file: nothing after it is read or committed
				}
			}
			ps := s.next[r.Topic]
			if ps == nil {
				ps = map[int32]int64{}
				s.next[r.Topic] = ps
			}
			ps[r.Partition] = r.Offset + 1
			if b.Len() >= size {
				emitErr = emit()
			}
		})
		if emitErr == nil && got {
			emitErr = emit()
		}
		if emitErr != nil {
			if ctx.Err() != nil {
				return nil
			}
			return emitErr
		}
		if !got {
			if err := out.Quiet(); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		if !s.ckpt && s.group != "" {
			_ = s.commit(ctx, cl, s.next.clone(), false)
		}
	}
}
