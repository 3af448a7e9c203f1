package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/scaleout/sostatus"
)

// Status is a scaled-out job's status as mdp status shows it (package
// sostatus, which runtime imports without importing this package).
type Status = sostatus.Status

// WorkerStatus is one live worker of a Status.
type WorkerStatus = sostatus.Worker

// PartitionStatus is one partition of a Status.
type PartitionStatus = sostatus.Partition

// StatusSink is told what a role's status is made of: the worker's
// engine job once it is started, and the measure of the job's scale-out
// status (runtime.Role implements it for mdp status).
type StatusSink interface {
	WorkerJob(j *engine.Job, fb *engine.Feedback)
	ScaleoutStatus(measure func(context.Context) (Status, error))
}

// buildStatus puts the members, the owners and the stream's lag together.
func buildStatus(ctx context.Context, js jetstream.JetStream, n names, partitions int, members []MemberInfo, owners map[int]string, pieces map[int]*piece) (Status, error) {
	st := Status{Stream: n.stream, Partitions: partitions, Workers: []WorkerStatus{}, PartitionLag: make([]PartitionStatus, partitions)}
	progress := map[string]map[int]PartitionProgress{}
	for _, m := range members {
		pm := make(map[int]PartitionProgress, len(m.Progress))
		for _, p := range m.Progress {
			pm[p.Partition] = p
		}
		progress[m.ID] = pm
	}
	var reported []PartitionProgress
	for p := range partitions {
		ps := PartitionStatus{Partition: p, Owner: owners[p]}
		if ps.Owner == "" {
			st.Unowned = append(st.Unowned, p)
		} else if pp, ok := progress[ps.Owner][p]; ok {
			ps.Reported, ps.Duplicates = true, pp.Duplicates
			reported = append(reported, pp)
		}
		st.PartitionLag[p] = ps
	}
	lag, err := measureLag(ctx, js, n, reported)
	if err != nil {
		return Status{}, err
	}
	now := time.Now()
	st.MeasuredAt = now.UTC().Format(time.RFC3339Nano)
	for p, pc := range pieces {
		if p < 0 || p >= partitions {
			continue
		}
		ps := &st.PartitionLag[p]
		ps.Checkpointed, ps.CheckpointSeq, ps.Done = true, pc.Read.Seq, pc.Done
		ps.CheckpointTime = pc.Time.UTC().Format(time.RFC3339Nano)
		ps.CheckpointAgeSeconds = max(now.Sub(pc.Time).Seconds(), 0)
	}
	for _, pl := range lag.Partitions {
		ps := &st.PartitionLag[pl.Partition]
		ps.LagMessages, ps.LagSeconds = pl.Messages, pl.Seconds
	}
	st.LagMessages, st.LagSeconds = lag.Messages, lag.Seconds
	for _, m := range members {
		w := WorkerStatus{ID: m.ID, Host: m.Host, PID: m.PID, Partitions: []int{}, Retries: m.Retries}
		if !m.Started.IsZero() {
			w.Started = m.Started.UTC().Format(time.RFC3339Nano)
		}
		for _, ps := range st.PartitionLag {
			if ps.Owner == m.ID {
				w.Partitions = append(w.Partitions, ps.Partition)
				w.LagMessages += ps.LagMessages
				w.LagSeconds = max(w.LagSeconds, ps.LagSeconds)
			}
		}
		st.Workers = append(st.Workers, w)
	}
	slices.SortFunc(st.Workers, func(a, b WorkerStatus) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}

// bucketValues reads every key's current value of a KV bucket (one
// watcher's initial values).
func bucketValues(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string][]byte{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("bucket %s: the watcher stopped", kv.Bucket())
			}
			if e == nil {
				return out, nil
			}
			out[e.Key()] = e.Value()
		case <-ctx.Done():
			return nil, fmt.Errorf("bucket %s: %w", kv.Bucket(), ctx.Err())
		}
	}
}

// workerStatus measures the job's status from a worker: every live member
// and lease from the buckets, the worker's own progress live rather than
// as of its last heartbeat.
func workerStatus(ctx context.Context, js jetstream.JetStream, n names, partitions int, mem *membership, leases, ckpts jetstream.KeyValue, stream int64) (Status, error) {
	mv, err := bucketValues(ctx, mem.kv)
	if err != nil {
		return Status{}, err
	}
	var members []MemberInfo
	for k, v := range mv {
		id, ok := strings.CutPrefix(k, memberPrefix)
		if !ok {
			continue
		}
		var mi MemberInfo
		if json.Unmarshal(v, &mi) != nil {
			mi = MemberInfo{}
		}
		mi.ID = id
		if id == mem.id {
			mi.Progress = nil
			if p := mem.reading.Load(); p != nil {
				mi.Progress = p.snapshot()
			}
		}
		members = append(members, mi)
	}
	lv, err := bucketValues(ctx, leases)
	if err != nil {
		return Status{}, err
	}
	owners := map[int]string{}
	for k, v := range lv {
		s, ok := strings.CutPrefix(k, "p.")
		if !ok {
			continue
		}
		if p, err := strconv.Atoi(s); err == nil {
			owners[p] = string(v)
		}
	}
	var pieces map[int]*piece
	if ckpts != nil {
		if pieces, err = currentPieces(ctx, ckpts, stream); err != nil {
			return Status{}, err
		}
	}
	return buildStatus(ctx, js, n, partitions, members, owners, pieces)
}

// currentPieces reads every partition's latest checkpoint of the stream.
func currentPieces(ctx context.Context, ckpts jetstream.KeyValue, stream int64) (map[int]*piece, error) {
	cv, err := bucketValues(ctx, ckpts)
	if err != nil {
		return nil, err
	}
	out := map[int]*piece{}
	for k, v := range cv {
		var pc piece
		if _, ok := strings.CutPrefix(k, "p."); !ok || json.Unmarshal(v, &pc) != nil || pc.Stream != stream {
			continue
		}
		out[pc.Partition] = &pc
	}
	return out, nil
}
