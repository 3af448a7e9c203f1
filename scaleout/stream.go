// Package scaleout runs one job over NATS JetStream: the job's source runs
// as ingest, publishing its records per symbol as mdp frames into one
// stream with a subject per partition, each partition's records
// interleaved with in-band watermark markers; the rest of the graph runs
// as a worker reading the partitions. With nats: embedded the server runs
// inside the mdp process (package server of nats-server), with its file
// store in the job's scaleout.store directory.
package scaleout

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
)

// Names of a job's stream and subjects.
type names struct {
	stream string // MDP_<job>
	prefix string // mdp.<job>.p.
}

// namesOf derives a job's stream name and subject prefix. A job name may
// hold characters NATS does not allow in a stream name or a subject token;
// they become '_'.
func namesOf(job string) names {
	t := keyToken(job)
	return names{stream: "MDP_" + t, prefix: "mdp." + t + ".p."}
}

// subject is partition p's subject.
func (n names) subject(p int) string { return n.prefix + strconv.Itoa(p) }

// partitionOf parses the partition from a subject of the stream.
func (n names) partitionOf(subject string) (int, error) {
	s, ok := strings.CutPrefix(subject, n.prefix)
	if !ok {
		return 0, fmt.Errorf("subject %q is not one of the job's partitions (%s*)", subject, n.prefix)
	}
	p, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("subject %q is not one of the job's partitions (%s*)", subject, n.prefix)
	}
	return p, nil
}

// metaPartitions is the stream metadata key holding the partition count, so
// processes started with another count refuse the stream.
const metaPartitions = "mdp_partitions"

// duplicateWindow is how long the stream remembers a data message's id
// (Nats-Msg-Id), so an ingest that publishes a frame again within it
// stores it once; shorter when the stream keeps messages for less.
const duplicateWindow = 2 * time.Minute

// streamConfig is the job's stream: file storage (memory for the
// benchmark's comparison), the configured limits, DiscardNew.
func streamConfig(n names, so *config.ScaleoutConfig, memory bool) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if memory {
		storage = jetstream.MemoryStorage
	}
	r := so.Retention
	limit := func(v int64) int64 {
		if v == 0 {
			return -1
		}
		return v
	}
	return jetstream.StreamConfig{
		Name:     n.stream,
		Subjects: []string{n.prefix + "*"},
		Storage:  storage,
		// A publish past MaxBytes or MaxMsgs fails loudly instead of
		// evicting data no worker has read; MaxAge removes old messages
		// regardless, and a worker that needed one stops
		// (RetentionError).
		Discard:    jetstream.DiscardNew,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     r.MaxAge,
		MaxBytes:   limit(r.MaxBytes),
		MaxMsgs:    limit(r.MaxMsgs),
		Duplicates: min(duplicateWindow, r.MaxAge),
		Metadata:   map[string]string{metaPartitions: strconv.Itoa(so.Partitions)},
		// Uncompressed: BenchmarkEmbeddedVsSingle's -s2 row measures S2.
		Compression: streamCompression,
	}
}

// streamCompression is the file store's compression (the benchmark's
// knob).
var streamCompression = jetstream.NoCompression

// ensureStream creates the job's stream, or checks that the existing one
// has the job's partition count and brings its limits to the job's.
func ensureStream(ctx context.Context, js jetstream.JetStream, n names, so *config.ScaleoutConfig, memory bool) (jetstream.Stream, error) {
	cfg := streamConfig(n, so, memory)
	want := cfg.Metadata[metaPartitions]
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, n.stream)
		if err == nil {
			if got := s.CachedInfo().Config.Metadata[metaPartitions]; got != want {
				return nil, fmt.Errorf("stream %s holds %s partitions, the job says %d: a partition count is fixed for a stream's life; delete the stream (or use another job name) to change it", n.stream, got, so.Partitions)
			}
			if old := s.CachedInfo().Config; old.MaxAge != cfg.MaxAge || old.MaxBytes != cfg.MaxBytes || old.MaxMsgs != cfg.MaxMsgs || old.Duplicates != cfg.Duplicates {
				cfg.Storage = old.Storage // fixed for a stream's life
				s, err = js.UpdateStream(ctx, cfg)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", n.stream, err)
	}
	return s, nil
}

// purge empties the stream and returns its next sequence: the ingest's
// epoch, which its message ids carry, so a new run's frames are never
// taken for duplicates of an earlier run's (the duplicate window outlives
// a purge), and the sequence the worker starts at.
func purge(ctx context.Context, s jetstream.Stream) (uint64, error) {
	if err := s.Purge(ctx); err != nil {
		return 0, fmt.Errorf("purge stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq + 1, nil
}

// Watermark markers travel in a partition's subject between data frames.
// A data frame starts with the mdp frame magic "MD"; a marker with "MW",
// a version byte, a kind byte and the watermark (int64, little-endian).
const (
	markerMagic0, markerMagic1 = 'M', 'W'
	markerVersion              = 1
	markerSize                 = 12
	// markerWatermark advances the partition's watermark.
	markerWatermark = 0
	// markerEnd says the ingest's source ended: no record follows.
	markerEnd = 1
)

func appendMarker(dst []byte, kind byte, wm int64) []byte {
	dst = append(dst, markerMagic0, markerMagic1, markerVersion, kind)
	return binary.LittleEndian.AppendUint64(dst, uint64(wm))
}

// isMarker reports whether a message is a marker rather than a data frame.
func isMarker(data []byte) bool {
	return len(data) >= 2 && data[0] == markerMagic0 && data[1] == markerMagic1
}

// parseMarker decodes a marker.
func parseMarker(data []byte) (kind byte, wm int64, err error) {
	if len(data) != markerSize || data[2] != markerVersion || data[3] > markerEnd {
		return 0, 0, fmt.Errorf("malformed watermark marker (% x)", data)
	}
	return data[3], int64(binary.LittleEndian.Uint64(data[4:])), nil
}

// headerMark carries, on a data frame, the marker that follows the
// frame's records in its partition: "<kind>:<watermark>" (kind
// markerWatermark or markerEnd). A marker round of the ingest puts its
// marker on each partition's last frame of the round instead of
// publishing it as a message of its own after that frame: the same place
// in the partition, one stream write (and with sync: always one fsync)
// fewer.
const headerMark = "Mdp-Mark"

// mark is a marker to put on a data frame (set false: none).
type mark struct {
	set  bool
	kind byte
	wm   int64
}

// header is m's headerMark value.
func (m mark) header() string {
	return strconv.Itoa(int(m.kind)) + ":" + strconv.FormatInt(m.wm, 10)
}

// markOf returns the marker a data message carries in its headerMark.
func markOf(h nats.Header) (mark, error) {
	v := h.Get(headerMark)
	if v == "" {
		return mark{}, nil
	}
	k, w, ok := strings.Cut(v, ":")
	kind, err1 := strconv.Atoi(k)
	wm, err2 := strconv.ParseInt(w, 10, 64)
	if !ok || err1 != nil || err2 != nil || kind < markerWatermark || kind > markerEnd {
		return mark{}, fmt.Errorf("malformed %s header %q", headerMark, v)
	}
	return mark{set: true, kind: byte(kind), wm: wm}, nil
}
