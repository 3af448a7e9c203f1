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

	"github.com/nats-io/nats.go/jetstream"
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
	tok := []byte(job)
	for i, c := range tok {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			tok[i] = '_'
		}
	}
	t := string(tok)
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

// ensureStream creates the job's stream, or checks that the existing one
// has the job's partition count.
func ensureStream(ctx context.Context, js jetstream.JetStream, n names, partitions int) (jetstream.Stream, error) {
	want := strconv.Itoa(partitions)
	cfg := jetstream.StreamConfig{
		Name:     n.stream,
		Subjects: []string{n.prefix + "*"},
		Storage:  jetstream.FileStorage,
		// A publish past a limit fails loudly instead of evicting data no
		// worker has read.
		Discard:    jetstream.DiscardNew,
		Retention:  jetstream.LimitsPolicy,
		Duplicates: 2 * time.Minute,
		Metadata:   map[string]string{metaPartitions: want},
	}
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, n.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", n.stream, err)
	}
	if got := s.CachedInfo().Config.Metadata[metaPartitions]; got != want {
		return nil, fmt.Errorf("stream %s holds %s partitions, the job says %d: a partition count is fixed for a stream's life; delete the stream (or use another job name) to change it", n.stream, got, partitions)
	}
	return s, nil
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
