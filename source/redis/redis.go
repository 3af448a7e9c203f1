// Package redissrc is the provider.redis component: it reads batches from
// Redis Streams through a consumer group (XREADGROUP), acknowledges each
// read's entries (one XACK, pipelined with the next read) once they are
// all handed downstream or, with checkpoints, once a checkpoint covering
// them completes, and claims entries a dead consumer left pending
// (XAUTOCLAIM).
package redissrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

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
			Description: "Stream key to read. {kind} is replaced by kind; with partitions, {partition} by each partition number (the streams sink.redis writes with the same template).", Example: "md.trades"},
		component.Field{Name: "partitions", Type: component.Int, Default: 0, Min: component.Bound(0), Max: component.Bound(4096),
			Description: "Number of partition streams ({partition} in stream, 0..partitions-1) that sink.redis wrote with the same template and partitions; each symbol is in one of them, in order."},
		component.Field{Name: "read_partitions", Type: component.Strings,
			Description: "The partitions this node reads (numbers below partitions). Empty: all. Several provider.redis nodes (or jobs) reading disjoint partitions in the same group share the load and keep each symbol's order; nodes sharing one stream in a group share its entries (each to one of them) with no order across them."},
		component.Field{Name: "group", Type: component.String, Default: "mdp",
			Description: "Consumer group; created (with the stream, if missing) at start."},
		component.Field{Name: "consumer", Type: component.String,
			Description: "Consumer name prefix; instance i is <consumer>-<i>. Keep it stable: a restarted consumer first reads the entries it had not acknowledged. Empty: <job>-<node>."},
		component.Field{Name: "start", Type: component.String, Default: "earliest", Enum: []string{"earliest", "latest"},
			Description: "Where a new consumer group starts: earliest (the first entry the stream keeps) or latest (entries added from now on). An existing group resumes where it was."},
		component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"},
			Description: "Record kind of the messages; a frame of another kind is malformed (bad_kind)."},
		component.Field{Name: "field", Type: component.String, Default: "d",
			Description: "Entry field holding the message; an entry without it is malformed (missing_field)."},
		component.Field{Name: "count", Type: component.Int, Default: 64, Min: component.Bound(1), Max: component.Bound(100000),
			Description: "Entries asked for per XREADGROUP."},
		component.Field{Name: "block", Type: component.Duration, Default: "500ms", Min: component.Bound(0.001), Max: component.Bound(60),
			Description: "How long one XREADGROUP waits for new entries."},
		component.Field{Name: "claim_idle", Type: component.Duration, Default: "1m", Min: component.Bound(0), Max: component.Bound(86400),
			Description: "Entries another consumer of the group left unacknowledged this long are claimed (XAUTOCLAIM, checked every claim_idle/2) and read by this one: the way a dead instance's entries get processed. 0 disables."},
		component.Field{Name: "dead_letter_stream", Type: component.String,
			Description: "Stream that whole malformed entries (not single json or csv rows) are added to (fields reason, stream, id and the message under field): dead-lettering inside Redis, besides on_error's file. Not under on_error: fail (the entry then stays pending). Empty: none."},
	)
	fields = append(fields, busfmt.SourceFields()...)
	component.Register(component.Spec{
		Type:    "provider.redis",
		Kind:    engine.KindSource,
		Summary: "Read batches from Redis Streams (consumer group)",
		Description: "Each entry holds one batch in format mdp, json or csv (sink.redis writes them; json and csv with a mapping read foreign messages) under field; entries are gathered into the " +
			"job's batches. The source reads through a consumer group: at start it creates the group (MKSTREAM), reads the entries " +
			"it had read and not acknowledged before (its own pending list), then new ones. Without checkpoints it acknowledges " +
			"(XACK) the entries of each read (at most count) at once, once all of them are handed downstream, in the round trip of the next read: a crash replays " +
			"the entries read and not yet acknowledged (at most one read's), and loses what was handed on but not yet stored by a sink. With checkpoints it acknowledges only when a " +
			"checkpoint covering the entries completes, and a resumed job re-reads its pending entries, so a kill -9 and --resume " +
			"lose nothing and repeat nothing (the checkpoint lists the entries it covers that were not yet acknowledged, and the resumed " +
			"run acknowledges them instead of handing them on again). Entries left pending by another consumer for claim_idle are claimed (XAUTOCLAIM). " +
			"A message that does not decode is counted (drops{reason=malformed}, counters malformed_<reason>), logged, and dropped, " +
			"dead-lettered or fatal per on_error; a dropped or dead-lettered entry is acknowledged like a good one (under fail it " +
			"stays pending). Independently of on_error (except fail), a whole refused entry is also added to dead_letter_stream " +
			"when set; a json or csv row that does not decode is refused alone, the entry's other rows kept. The server's absence is counted as errors (Health DEGRADED) and in " +
			"the redis_connected gauge; commands are retried forever with backoff and jitter.",
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
			t, err := busio.ParseTemplate(p.String("stream"))
			if err != nil {
				return nil, p.Errorf("stream", "%v", err)
			}
			start := "0"
			if p.String("start") == "latest" {
				start = "$"
			}
			parts, err := readPartitions(p)
			if err != nil {
				return nil, err
			}
			cfg, err := busfmt.SourceConfigFrom(p, k)
			if err != nil {
				return nil, err
			}
			return &Source{p: p, cfg: cfg, tmpl: t, partitions: int(p.Int("partitions")), parts: parts, group: p.String("group"),
				consumerPrefix: p.String("consumer"), start: start, kind: k, field: p.String("field"),
				count: p.Int("count"), block: p.Duration("block"), claimIdle: p.Duration("claim_idle"),
				deadLetter: p.String("dead_letter_stream")}, nil
		},
	})
}

func validate(p *component.Params) error {
	var errs []error
	if err := redisconn.Validate(p); err != nil {
		errs = append(errs, err)
	}
	k, _ := md.ParseKind(p.String("kind"))
	if _, err := busfmt.SourceConfigFrom(p, k); err != nil {
		errs = append(errs, err)
	}
	t, err := busio.ParseTemplate(p.String("stream"))
	if err != nil {
		errs = append(errs, p.Errorf("stream", "%v", err))
	} else {
		if t.Symbol {
			errs = append(errs, p.Errorf("stream", "{symbol} applies only to sink.redis; read the partitions a sink wrote with {partition} and partitions"))
		}
		if t.Partition != (p.Int("partitions") > 0) {
			errs = append(errs, p.Errorf("partitions", "{partition} in stream and partitions > 0 go together"))
		}
	}
	if _, err := readPartitions(p); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readPartitions parses read_partitions (nil: all).
func readPartitions(p *component.Params) ([]int, error) {
	if !p.Has("read_partitions") {
		return nil, nil
	}
	n := int(p.Int("partitions"))
	if n == 0 {
		return nil, p.Errorf("read_partitions", "read_partitions applies only with partitions")
	}
	var out []int
	seen := map[int]bool{}
	for _, v := range p.Strings("read_partitions") {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 || k >= n {
			return nil, p.Errorf("read_partitions", "partition %q is not a number in 0..%d", v, n-1)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// Source is a provider.redis instance.
type Source struct {
	p              *component.Params
	cfg            busfmt.SourceConfig
	tmpl           *busio.Template
	partitions     int
	parts          []int
	group          string
	consumerPrefix string
	start          string
	kind           md.Kind
	field          string
	count          int64
	block          time.Duration
	claimIdle      time.Duration
	deadLetter     string

	nc       *engine.NodeContext
	log      *slog.Logger
	c        *redisconn.Client
	rd       *busfmt.Reader
	streams  []string
	index    map[string]int // stream -> index in streams
	consumer string
	ckpt     bool
	ready    bool
	readyMu  sync.Mutex

	cur         [][]string          // ids in the batch being filled, per stream
	needPending bool                // read the pending list before new entries
	skip        map[string]struct{} // held ids, while reading the pending list
	msgs        int64
	acked       int64
	fresh       []string             // ">" per stream
	args        []string             // XREADGROUP's streams and ids
	xargs       redis.XReadGroupArgs // XREADGROUP's arguments

	mu      sync.Mutex
	pend    [][]string // with checkpoints: ids emitted since the last Position
	covered []covered  // with checkpoints: ids each Position covered
}

// covered is the entries checkpoint id covers, per stream.
type covered struct {
	id  int64
	ids [][]string
}

// Open builds the client; the server is reached in Run.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc, s.log = nc, nc.Logger
	c, err := redisconn.Connect(s.p, nc)
	if err != nil {
		return err
	}
	s.c = c
	if s.rd, err = busfmt.NewSourceReader(nc, s.cfg); err != nil {
		return err
	}
	prefix := s.consumerPrefix
	if prefix == "" {
		prefix = nc.Job + "-" + nc.Node
	}
	s.consumer = fmt.Sprintf("%s-%d", prefix, nc.Instance)
	if s.partitions == 0 {
		s.streams = []string{s.tmpl.Expand(s.kind, "", 0)}
	} else if s.parts != nil {
		for _, p := range s.parts {
			s.streams = append(s.streams, s.tmpl.Expand(s.kind, "", p))
		}
	} else {
		for p := range s.partitions {
			s.streams = append(s.streams, s.tmpl.Expand(s.kind, "", p))
		}
	}
	s.index = map[string]int{}
	for i, st := range s.streams {
		s.index[st] = i
	}
	s.cur = make([][]string, len(s.streams))
	s.pend = make([][]string, len(s.streams))
	return nil
}

// Cleanup closes the client and the dead-letter file.
func (s *Source) Cleanup(ctx context.Context) error {
	var err error
	if s.c != nil {
		err = s.c.Close()
	}
	if s.rd != nil {
		err = errors.Join(err, s.rd.Close())
	}
	return err
}

// Ready reports whether the source has reached the server once.
func (s *Source) Ready() bool {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.ready && s.c != nil && s.c.Connected()
}

// Unbounded implements engine.Unbounded: a stream never ends.
func (s *Source) Unbounded() bool { return true }

// Summary implements engine.Summarizer.
func (s *Source) Summary() map[string]int64 {
	return map[string]int64{"messages": s.msgs, "acknowledged": s.acked}
}

// Streams are the stream keys this instance reads (after Open).
func (s *Source) Streams() []string { return s.streams }

// position is what Position saves: the consumer whose pending entries a
// resumed run re-reads, and the entries the checkpoint covers that were
// not yet acknowledged when it was taken (Done[i] for Streams[i]).
type position struct {
	Group    string     `json:"group"`
	Consumer string     `json:"consumer"`
	Streams  []string   `json:"streams"`
	Done     [][]string `json:"done,omitempty"`
}

// Position implements engine.Seeker: the broker keeps the group's state,
// so the position names the consumer; the entries emitted since the last
// Position are kept under id until NotifyCheckpointComplete(id). The
// position lists every entry it covers that is not acknowledged yet: a
// crash between saving the checkpoint and the XACK leaves them in the
// pending list, and the resumed run must not hand them on again.
func (s *Source) Position(id int64) ([]byte, error) {
	s.mu.Lock()
	s.covered = append(s.covered, covered{id: id, ids: s.pend})
	s.pend = make([][]string, len(s.streams))
	done := make([][]string, len(s.streams))
	for _, cv := range s.covered {
		for i := range done {
			done[i] = append(done[i], cv.ids[i]...)
		}
	}
	s.mu.Unlock()
	return json.Marshal(position{Group: s.group, Consumer: s.consumer, Streams: s.streams, Done: done})
}

// Seek implements engine.Seeker. Nothing moves: Run always reads this
// consumer's pending entries before new ones. Those the checkpoint covers
// (its Done list) are held as if a checkpoint were about to acknowledge
// them: the pending read skips them and the first completed checkpoint
// acknowledges them; the others (read after the checkpoint and never
// acknowledged) are handed on again. A checkpoint taken by another
// consumer name is refused, since its pending entries would only come
// back through claim_idle.
func (s *Source) Seek(ctx context.Context, b []byte) error {
	var pos position
	if err := json.Unmarshal(b, &pos); err != nil {
		return fmt.Errorf("redis position: %w", err)
	}
	if pos.Group != s.group || pos.Consumer != s.consumer {
		return fmt.Errorf("checkpoint was taken by group %q consumer %q, this instance is group %q consumer %q (keep group and consumer, and the parallelism, to resume)",
			pos.Group, pos.Consumer, s.group, s.consumer)
	}
	done := make([][]string, len(s.streams))
	for i, st := range pos.Streams {
		if i >= len(pos.Done) {
			break
		}
		j, ok := s.index[st]
		if !ok {
			return fmt.Errorf("checkpoint covers stream %q, which this instance does not read (keep streams and partitions to resume)", st)
		}
		done[j] = append(done[j], pos.Done[i]...)
	}
	s.mu.Lock()
	s.covered = append([]covered{{id: 0, ids: done}}, s.covered...)
	s.mu.Unlock()
	return nil
}

// NotifyCheckpointComplete implements engine.CheckpointListener: it
// acknowledges the entries every checkpoint up to id covered.
func (s *Source) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	s.mu.Lock()
	ids := make([][]string, len(s.streams))
	k := 0
	for _, cv := range s.covered {
		if cv.id > id {
			s.covered[k] = cv
			k++
			continue
		}
		for i := range ids {
			ids[i] = append(ids[i], cv.ids[i]...)
		}
	}
	clear(s.covered[k:])
	s.covered = s.covered[:k]
	s.mu.Unlock()
	if err := s.ackOnce(ctx, ids); err != nil {
		// Keep them for the next checkpoint.
		s.mu.Lock()
		s.covered = append([]covered{{id: id, ids: ids}}, s.covered...)
		s.mu.Unlock()
		s.nc.Stats.Error("ack_failed", fmt.Sprintf("XACK on %s: %v", s.c.Masked(), err))
		return err
	}
	return nil
}

// ackOnce acknowledges ids (per stream) in one round trip.
func (s *Source) ackOnce(ctx context.Context, ids [][]string) error {
	n := 0
	for _, l := range ids {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	if len(ids) == 1 {
		// One stream: a plain XACK, without a pipeline's bookkeeping.
		if err := s.c.XAck(ctx, s.streams[0], s.group, ids[0]...).Err(); err != nil {
			return err
		}
		s.mu.Lock()
		s.acked += int64(n)
		s.mu.Unlock()
		return nil
	}
	pipe := s.c.Pipeline()
	for i, l := range ids {
		if len(l) > 0 {
			pipe.XAck(ctx, s.streams[i], s.group, l...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.acked += int64(n)
	s.mu.Unlock()
	return nil
}

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	s.ckpt = out.Checkpointing()
	if err := s.createGroups(ctx); err != nil {
		return stopErr(ctx, err)
	}
	// This consumer's pending entries first, then new ones; the pending
	// list again after a failed read of new entries or claim (its reply,
	// and the entries it delivered, may have been lost with the
	// connection: they sit in the pending list, and reading new entries
	// first would hand them on out of order).
	s.needPending = true
	nextClaim := time.Now().Add(s.claimIdle / 2)
	for {
		if s.needPending {
			if err := s.readPending(ctx, out); err != nil {
				return stopErr(ctx, err)
			}
		}
		n, err := s.read(ctx, out, s.newIDs(), s.block)
		if err != nil {
			return stopErr(ctx, err)
		}
		if n == 0 {
			if err := out.Quiet(); err != nil {
				return stopErr(ctx, err)
			}
		}
		if s.claimIdle > 0 && time.Now().After(nextClaim) {
			if err := s.claim(ctx, out); err != nil {
				return stopErr(ctx, err)
			}
			nextClaim = time.Now().Add(s.claimIdle / 2)
		}
	}
}

// newIDs are the ids asking for new entries (made once, never changed:
// read advances only "0"-style ids).
func (s *Source) newIDs() []string {
	if s.fresh == nil {
		s.fresh = make([]string, len(s.streams))
		for i := range s.fresh {
			s.fresh[i] = ">"
		}
	}
	return s.fresh
}

// readPending reads this consumer's pending list to its end, skipping the
// entries it holds for a checkpoint. A failed page is asked for again from
// the same ids: reading the pending list changes nothing on the server.
func (s *Source) readPending(ctx context.Context, out *engine.Output) error {
	s.needPending = false
	s.skip = s.heldSet()
	defer func() { s.skip = nil }()
	ids := make([]string, len(s.streams))
	for i := range ids {
		ids[i] = "0"
	}
	for {
		n, err := s.read(ctx, out, ids, 0)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

func (s *Source) setReady() {
	s.readyMu.Lock()
	s.ready = true
	s.readyMu.Unlock()
}

func (s *Source) createGroups(ctx context.Context) error {
	for _, st := range s.streams {
		for {
			err := s.c.XGroupCreateMkStream(ctx, st, s.group, s.start).Err()
			if err == nil || strings.HasPrefix(err.Error(), "BUSYGROUP") {
				s.c.OK()
				break
			}
			if !redisconn.IsConnErr(err) {
				return fmt.Errorf("create group %s on stream %s at %s: %w", s.group, st, s.c.Masked(), err)
			}
			if err := s.c.Fail(ctx, "connect_failed", "create group "+s.group, err); err != nil {
				return err
			}
		}
	}
	s.setReady()
	return nil
}

// read runs one XREADGROUP from ids (per stream; "0"-style ids page
// through the pending list and are advanced) and emits what it got. It
// returns the number of entries. A failed read of new entries (">") is
// not repeated: the server may have delivered entries whose reply was
// lost, so read returns 0 with needPending set and the caller reads the
// pending list first; a failed page of the pending list is repeated.
func (s *Source) read(ctx context.Context, out *engine.Output, ids []string, block time.Duration) (int, error) {
	fresh := ids[0] == ">"
	// The arguments are reused from read to read: the client copies them
	// into its command.
	s.args = append(append(s.args[:0], s.streams...), ids...)
	a := &s.xargs
	*a = redis.XReadGroupArgs{Group: s.group, Consumer: s.consumer, Streams: s.args, Count: s.count, Block: block}
	if block == 0 {
		a.Block = -1 // no BLOCK: the pending list answers at once
	}
	var res []redis.XStream
	for {
		var err error
		if s.unacked() {
			res, err = s.ackAndRead(ctx, a)
		} else {
			res, err = s.c.XReadGroup(ctx, a).Result()
		}
		if err == nil || errors.Is(err, redis.Nil) {
			s.c.OK()
			break
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The stream was deleted (and with it the group): make both again.
			if err := s.createGroups(ctx); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.c.Fail(ctx, "read_failed", "XREADGROUP", err); err != nil {
			return 0, err
		}
		if fresh {
			s.needPending = true
			return 0, nil
		}
	}
	n := 0
	var b *md.Batch
	for _, xs := range res {
		si := s.index[xs.Stream]
		for _, m := range xs.Messages {
			n++
			if ids[si] != ">" {
				ids[si] = m.ID
				if _, ok := s.skip[m.ID]; ok {
					continue // ours, waiting for a checkpoint
				}
			}
			if b == nil {
				b = out.NewBatch(s.kind)
			}
			if err := s.add(ctx, b, si, xs.Stream, &m); err != nil {
				b.Release()
				return n, err // on_error: fail: the entry stays pending
			}
			if b.Len() >= s.nc.Pool.Size() {
				if err := s.emit(ctx, out, b); err != nil {
					return n, err
				}
				b = nil
			}
		}
	}
	if b != nil {
		if err := s.emit(ctx, out, b); err != nil {
			return n, err
		}
	}
	// Without checkpoints the entries handed on are acknowledged by the
	// next read, in the same round trip (ackAndRead).
	return n, nil
}

// unacked reports whether entries handed on wait for their XACK (never
// with checkpoints: a completed checkpoint acknowledges those).
func (s *Source) unacked() bool {
	if s.ckpt {
		return false
	}
	for _, l := range s.cur {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

// ackAndRead acknowledges the entries of the last read, all handed on
// by now, and sends the next XREADGROUP a in the same pipeline: one
// round trip where an XACK and then a read took two. The read does not
// block (go-redis reads a pipeline's replies under the client's read
// timeout, not a blocking command's): when it finds nothing, the caller
// reads again, then blocking, with nothing left to acknowledge. An error
// of an XACK is returned as is (the read's reply, if any, is dropped:
// its new entries stay in this consumer's pending list, which the
// caller reads again after a failed read) and the ids are kept for the
// next try; XACK is idempotent.
func (s *Source) ackAndRead(ctx context.Context, a *redis.XReadGroupArgs) ([]redis.XStream, error) {
	ra := *a
	ra.Block = -1
	pipe := s.c.Pipeline()
	n := 0
	var acks [4]*redis.IntCmd
	ackCmds := acks[:0]
	for i, l := range s.cur {
		if len(l) > 0 {
			ackCmds = append(ackCmds, pipe.XAck(ctx, s.streams[i], s.group, l...))
			n += len(l)
		}
	}
	rd := pipe.XReadGroup(ctx, &ra)
	_, _ = pipe.Exec(ctx) // each command's error is its own
	for _, c := range ackCmds {
		if err := c.Err(); err != nil {
			return nil, err
		}
	}
	for i := range s.cur {
		s.cur[i] = s.cur[i][:0]
	}
	s.mu.Lock()
	s.acked += int64(n)
	s.mu.Unlock()
	return rd.Result()
}

// add decodes entry m of stream si into b (or counts it malformed) and
// notes its id for acknowledgement. The error is on_error: fail's (then
// the entry is not noted, and stays pending).
func (s *Source) add(ctx context.Context, b *md.Batch, si int, stream string, m *redis.XMessage) error {
	s.msgs++
	v, ok := m.Values[s.field].(string)
	if !ok {
		s.nc.Stats.Drop("malformed", 1)
		s.nc.Stats.Count("malformed_missing_field", 1)
		err := &busfmt.MessageError{Reason: "missing_field", Detail: fmt.Sprintf("entry has no field %q", s.field)}
		if ferr := s.rd.Malformed(err, nil, &busfmt.Origin{Bus: "redis", Stream: stream, ID: m.ID}); ferr != nil {
			return ferr
		}
		s.cur[si] = append(s.cur[si], m.ID)
		s.deadLetterEntry(ctx, stream, m.ID, "missing_field", nil)
		return nil
	}
	// The decoder only reads the payload: view the string's bytes.
	data := unsafe.Slice(unsafe.StringData(v), len(v))
	if err := s.rd.Decode(data, b); err != nil {
		if ferr := s.rd.Malformed(err, data, &busfmt.Origin{Bus: "redis", Stream: stream, ID: m.ID}); ferr != nil {
			return ferr
		}
		if re := (*busfmt.RowsError)(nil); !errors.As(err, &re) {
			// A whole message refused: also to dead_letter_stream. Rows
			// refused: the others are kept.
			reason := "malformed"
			if fe := (*busfmt.FrameError)(nil); errors.As(err, &fe) {
				reason = fe.Reason
			}
			s.deadLetterEntry(ctx, stream, m.ID, reason, data)
		}
	}
	s.cur[si] = append(s.cur[si], m.ID)
	return nil
}

// deadLetterEntry adds a refused message to dead_letter_stream, if set.
func (s *Source) deadLetterEntry(ctx context.Context, stream, id, reason string, data []byte) {
	if s.deadLetter == "" {
		return
	}
	vals := []any{"reason", reason, "stream", stream, "id", id, s.field, data}
	for {
		err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: s.deadLetter, Values: vals}).Err()
		if err == nil {
			s.nc.Stats.Count("dead_lettered", 1)
			return
		}
		if !redisconn.IsConnErr(err) {
			s.nc.Stats.Error("dead_letter_failed", fmt.Sprintf("XADD %s: %v", s.deadLetter, err))
			return
		}
		if s.c.Fail(ctx, "dead_letter_failed", "XADD "+s.deadLetter, err) != nil {
			return
		}
	}
}

// emit hands b downstream; with checkpoints its entries are kept for the
// next Position, without them they wait for ack.
func (s *Source) emit(ctx context.Context, out *engine.Output, b *md.Batch) error {
	if s.ckpt {
		s.mu.Lock()
		for i := range s.cur {
			s.pend[i] = append(s.pend[i], s.cur[i]...)
			s.cur[i] = s.cur[i][:0]
		}
		s.mu.Unlock()
	}
	if b.Len() == 0 {
		b.Release()
		return nil
	}
	return out.Emit(b)
}

// ack acknowledges (without checkpoints) the entries handed downstream
// since the last ack, in one round trip; claim calls it after each page
// it emitted. A read's entries are acknowledged by the next read instead,
// in the same pipeline (ackAndRead), after every batch of the reply was
// emitted, so a reply of count entries costs no round trip of its own
// however many job batches it filled (an XACK per batch cost a round trip
// per batch: four per reply of 64 entries of 64 trades with the default
// batch size of 1024 records).
func (s *Source) ack(ctx context.Context) error {
	if s.ckpt {
		return nil
	}
	for {
		err := s.ackOnce(ctx, s.cur)
		if err == nil {
			break
		}
		if err := s.c.Fail(ctx, "ack_failed", "XACK", err); err != nil {
			return err
		}
	}
	for i := range s.cur {
		s.cur[i] = s.cur[i][:0]
	}
	return nil
}

// claim takes over entries other consumers left pending for claimIdle and
// emits them.
func (s *Source) claim(ctx context.Context, out *engine.Output) error {
	for si, st := range s.streams {
		start := "0-0"
		for {
			msgs, next, err := s.c.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: st, Group: s.group, Consumer: s.consumer,
				MinIdle: s.claimIdle, Start: start, Count: s.count}).Result()
			if err != nil {
				// A lost reply may have claimed entries: they are this
				// consumer's pending ones now, idle too briefly to be
				// claimed again.
				s.needPending = true
				if err := s.c.Fail(ctx, "claim_failed", "XAUTOCLAIM", err); err != nil {
					return err
				}
				continue
			}
			s.c.OK()
			var b *md.Batch
			var held map[string]struct{}
			if len(msgs) > 0 {
				held = s.heldSet()
			}
			for i := range msgs {
				if _, ok := held[msgs[i].ID]; ok {
					continue // ours, waiting for a checkpoint
				}
				if b == nil {
					b = out.NewBatch(s.kind)
				}
				s.nc.Stats.Count("claimed", 1)
				s.add(ctx, b, si, st, &msgs[i])
			}
			if b != nil {
				if err := s.emit(ctx, out, b); err != nil {
					return err
				}
			}
			if err := s.ack(ctx); err != nil {
				return err
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	}
	return nil
}

// heldSet is the ids this instance read and holds for a checkpoint to
// acknowledge (XAUTOCLAIM and the pending list return them too); nil
// without checkpoints, where nothing is held between reads.
func (s *Source) heldSet() map[string]struct{} {
	if !s.ckpt {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]struct{}{}
	for _, l := range s.pend {
		for _, x := range l {
			set[x] = struct{}{}
		}
	}
	for _, cv := range s.covered {
		for _, l := range cv.ids {
			for _, x := range l {
				set[x] = struct{}{}
			}
		}
	}
	return set
}

// stopErr turns an error after cancellation into a clean stop.
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
