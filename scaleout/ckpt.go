package scaleout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Checkpoints of a scaled-out job.
//
// A worker runs every operator of the job as one instance per partition
// (instance p owns exactly partition p's symbols: both are md.Split of the
// symbol at the instance level over P), and its reader is an engine.Seeker
// whose position is, per partition it reads, the last stream sequence it
// has covered. A checkpoint of the worker's job is cut into one piece per
// partition it reads, written to the job's KV bucket mdp_ckpt_<job> under
// key p.<p>: the partition's covered sequence, its reader state, and
// instance p's state of every operator. Any worker can thus restore any
// set of partitions, each from its own piece taken at its own position:
// its reader starts at the lowest covered sequence + 1 and skips, per
// partition, what the piece covers, and each operator instance restores
// from its own partition's state only (engine.CheckpointOptions.
// OwnInstanceState), so its watermark bookkeeping is its own partition's.
//
// Pieces are written with compare-and-set on the revision the worker read
// when it took the partition: a worker that lost a partition cannot
// overwrite the piece of its new owner. The engine saves a checkpoint only
// once every sink has flushed what came before its barrier, so a piece
// never claims a sequence whose bars are not in the sinks.

// pieceFormat is the version of a piece's encoding.
const pieceFormat = 1

// piece is one partition's part of a worker's checkpoint.
type piece struct {
	Format     int       `json:"format"`
	Job        string    `json:"job"`
	Stream     int64     `json:"stream"` // the stream's creation time (unix ns): pieces of a deleted stream are refused
	Partitions int       `json:"partitions"`
	Partition  int       `json:"partition"`
	Graph      string    `json:"graph"` // engine.GraphFingerprint of the worker graph
	ID         int64     `json:"id"`    // the engine checkpoint's id
	Time       time.Time `json:"time"`
	Worker     string    `json:"worker"`
	// Read is the partition's reader state: the last stream sequence
	// covered, the last record number read and whether its end marker was
	// read.
	Read partRead `json:"read"`
	// Watermark is the reader's watermark at the checkpoint.
	Watermark int64 `json:"watermark"`
	// Done says the partition was read to its end marker and the job over
	// it drained: nothing is left to do for it.
	Done bool `json:"done,omitempty"`
	// Nodes are instance p's states of the worker's operators.
	Nodes []pieceNode `json:"nodes,omitempty"`
}

type pieceNode struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	State     []byte `json:"state,omitempty"`
	Watermark int64  `json:"watermark"`
}

// partRead is a reader's state for one partition.
type partRead struct {
	Seq   uint64 `json:"seq"`           // last stream sequence covered
	Rec   uint64 `json:"rec,omitempty"` // number of the last record read (HasRec)
	Data  uint64 `json:"data,omitempty"`
	Has   bool   `json:"has_rec,omitempty"`
	Ended bool   `json:"ended,omitempty"`
	// Wm is the partition's latest marker watermark (0: none read).
	Wm int64 `json:"wm,omitempty"`
	// Dec are the size decimals the frames said for the partition's
	// symbols (md.SymbolTable.SizeDecimals): a bar restored open whose
	// symbol sends no record after the restore still rounds its volume
	// as the one that read them.
	Dec []symDec `json:"dec,omitempty"`
}

// symDec is one symbol's size decimals.
type symDec struct {
	Provider string `json:"p"`
	Symbol   string `json:"s"`
	Dec      int    `json:"d"`
}

// readerPos is the reader's engine.Seeker position: per partition.
type readerPos struct {
	Parts map[int]partRead `json:"parts"`
}

// errCheckpointConflict says a piece's key was written by someone else
// since the worker read it: the partition is another worker's.
var errCheckpointConflict = errors.New("checkpoint written by another worker: the partition is no longer this worker's")

// openCheckpoints creates (or opens) the job's checkpoint bucket.
func openCheckpoints(ctx context.Context, js jetstream.JetStream, n names) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucket("ckpt"), Description: "mdp checkpoints of the job: a key per partition",
		History: 4, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint bucket %s: %w", n.bucket("ckpt"), err)
	}
	return kv, nil
}

// ckptStore is an engine.CheckpointStore over the pieces of one job run's
// partitions.
type ckptStore struct {
	kv         jetstream.KeyValue
	job        string
	worker     string
	stream     int64
	partitions int
	source     string // the reader's node id
	graph      *engine.Graph
	parts      []int // the partitions the run reads
	started    time.Time

	mu   sync.Mutex
	revs map[int]uint64 // per partition: the piece's revision (0: none yet)
	// last is what each partition's latest saved piece said (for Done and
	// the status).
	last map[int]*piece
	// unsure is, per partition, the piece of a write that failed without
	// an answer (it may have been stored).
	unsure map[int][]byte
}

// loadPieces reads the pieces of partitions ps. A piece of another
// stream (one deleted and created again) is ignored; one of another
// partition count or graph is refused.
func loadPieces(ctx context.Context, kv jetstream.KeyValue, job string, stream int64, partitions int, fp string, ps []int) (map[int]*piece, map[int]uint64, error) {
	out, revs := map[int]*piece{}, map[int]uint64{}
	for _, p := range ps {
		e, err := kv.Get(ctx, leaseKey(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the checkpoint of partition %d: %w", p, err)
		}
		revs[p] = e.Revision()
		var pc piece
		if err := json.Unmarshal(e.Value(), &pc); err != nil {
			return nil, nil, fmt.Errorf("checkpoint of partition %d: %w", p, err)
		}
		switch {
		case pc.Format != pieceFormat:
			return nil, nil, fmt.Errorf("checkpoint of partition %d has format %d; this mdp reads %d", p, pc.Format, pieceFormat)
		case pc.Stream != stream:
			continue // of an earlier stream: its sequences mean nothing now
		case pc.Partitions != partitions || pc.Partition != p:
			return nil, nil, fmt.Errorf("checkpoint of partition %d was taken as partition %d of %d; the job has %d", p, pc.Partition, pc.Partitions, partitions)
		case pc.Graph != fp && !pc.Done:
			return nil, nil, fmt.Errorf("checkpoint of partition %d was taken from another graph (%s, this job's is %s): %w", p, pc.Graph, fp, engine.ErrGraphChanged)
		}
		out[p] = &pc
	}
	return out, revs, nil
}

// restoreOf assembles the engine checkpoint a worker's job over ps
// resumes from: nil when no partition has a piece.
func restoreOf(g *engine.Graph, job, source string, pieces map[int]*piece, ps []int, partitions int) (*engine.Checkpoint, error) {
	if len(pieces) == 0 {
		return nil, nil
	}
	cp := &engine.Checkpoint{Format: engine.CheckpointFormat, Job: job, Graph: engine.GraphFingerprint(g)}
	pos := readerPos{Parts: map[int]partRead{}}
	wm := int64(math.MaxInt64)
	for _, p := range ps {
		pc := pieces[p]
		if pc == nil {
			wm = md.MinTime // read from the stream's start: every marker again
			continue
		}
		pos.Parts[p] = pc.Read
		wm = min(wm, pc.Watermark)
		if pc.ID > cp.ID {
			cp.ID, cp.Time = pc.ID, pc.Time
		}
	}
	posb, err := json.Marshal(pos)
	if err != nil {
		return nil, fmt.Errorf("encode the reader's position: %w", err)
	}
	for _, n := range g.Nodes {
		ns := engine.NodeState{ID: n.ID, Type: n.Type}
		switch {
		case n.ID == source:
			ns.Instances = []engine.InstanceState{{State: posb, Watermark: wm, Resume: engine.ResumeSeek, Complete: true}}
		case n.Kind == engine.KindOperator:
			ns.Instances = make([]engine.InstanceState, partitions)
			for p := range ns.Instances {
				ns.Instances[p] = engine.InstanceState{Watermark: md.MinTime, Complete: true}
			}
			for _, p := range ps {
				pc := pieces[p]
				if pc == nil {
					continue
				}
				for _, s := range pc.Nodes {
					if s.ID == n.ID && s.Type == n.Type {
						ns.Instances[p] = engine.InstanceState{State: s.State, Watermark: s.Watermark, Complete: true}
					}
				}
			}
		default:
			ns.Instances = make([]engine.InstanceState, max(n.Parallelism, 1))
		}
		cp.Nodes = append(cp.Nodes, ns)
	}
	return cp, nil
}

// Save cuts c into one piece per partition of the run and writes each
// with compare-and-set.
func (s *ckptStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	var pos readerPos
	byID := map[string]*engine.NodeState{}
	for i := range c.Nodes {
		ns := &c.Nodes[i]
		byID[ns.ID] = ns
	}
	src := byID[s.source]
	if src == nil || len(src.Instances) != 1 {
		return 0, fmt.Errorf("checkpoint %d has no state of the reader %q", c.ID, s.source)
	}
	if err := json.Unmarshal(src.Instances[0].State, &pos); err != nil {
		return 0, fmt.Errorf("checkpoint %d: the reader's position: %w", c.ID, err)
	}
	for _, n := range s.graph.Nodes {
		ns := byID[n.ID]
		if ns == nil || n.ID == s.source || n.Kind == engine.KindOperator {
			continue
		}
		for _, in := range ns.Instances {
			if len(in.State) > 0 {
				return 0, fmt.Errorf("node %q (%s) keeps checkpoint state that does not split by partition: a scaled-out job cannot checkpoint it", n.ID, n.Type)
			}
		}
	}
	var total int64
	for _, p := range s.parts {
		pc := &piece{Format: pieceFormat, Job: s.job, Stream: s.stream, Partitions: s.partitions, Partition: p,
			Graph: c.Graph, ID: c.ID, Time: c.Time, Worker: s.worker, Read: pos.Parts[p], Watermark: src.Instances[0].Watermark}
		for _, n := range s.graph.Nodes {
			ns := byID[n.ID]
			if n.Kind != engine.KindOperator || ns == nil || p >= len(ns.Instances) {
				continue
			}
			in := ns.Instances[p]
			pc.Nodes = append(pc.Nodes, pieceNode{ID: n.ID, Type: n.Type, State: in.State, Watermark: in.Watermark})
		}
		n, err := s.put(ctx, pc)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// latest returns the partitions' latest pieces: the ones this run saved,
// or restored from; a partition without one counts from when the run
// started.
func (s *ckptStore) latest() map[int]piece {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]piece, len(s.parts))
	for _, p := range s.parts {
		if pc := s.last[p]; pc != nil {
			out[p] = *pc
		} else {
			out[p] = piece{Partition: p, Time: s.started}
		}
	}
	return out
}

// put writes one piece with compare-and-set on the revision last seen.
func (s *ckptStore) put(ctx context.Context, pc *piece) (int64, error) {
	b, err := json.Marshal(pc)
	if err != nil {
		return 0, fmt.Errorf("encode the checkpoint of partition %d: %w", pc.Partition, err)
	}
	p := pc.Partition
	s.mu.Lock()
	rev := s.revs[p]
	s.mu.Unlock()
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, leaseKey(p), b)
	} else {
		nrev, err = s.kv.Update(ctx, leaseKey(p), b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// An earlier write whose reply was lost may have landed: the key
		// then holds exactly what this store wrote, at a newer revision.
		if cur, ok := s.landed(ctx, p); ok && cur != rev {
			nrev, err = s.kv.Update(ctx, leaseKey(p), b, cur)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, fmt.Errorf("partition %d: %w", p, errCheckpointConflict)
		}
	}
	if err != nil {
		// The write may have landed though its reply did not arrive (ctx
		// ended, a timeout): remembered, so that the next write of the
		// partition can tell its own piece from another worker's.
		s.mu.Lock()
		if s.unsure == nil {
			s.unsure = map[int][]byte{}
		}
		s.unsure[p] = b
		s.mu.Unlock()
		return 0, fmt.Errorf("write the checkpoint of partition %d: %w", p, err)
	}
	s.mu.Lock()
	s.revs[p] = nrev
	s.last[p] = pc
	delete(s.unsure, p)
	s.mu.Unlock()
	return int64(len(b)), nil
}

// landed returns the revision of partition p's key when it holds the
// piece of this store's last write that failed without an answer.
func (s *ckptStore) landed(ctx context.Context, p int) (uint64, bool) {
	s.mu.Lock()
	b := s.unsure[p]
	s.mu.Unlock()
	if b == nil {
		return 0, false
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	e, err := s.kv.Get(gctx, leaseKey(p))
	if err != nil || !bytes.Equal(e.Value(), b) {
		return 0, false
	}
	return e.Revision(), true
}

// markDone writes every partition of the run as done: the job read them to
// their end markers and drained.
func (s *ckptStore) markDone(ctx context.Context) error {
	var errs []error
	for _, p := range s.parts {
		pc := &piece{Format: pieceFormat, Job: s.job, Stream: s.stream, Partitions: s.partitions, Partition: p,
			Time: time.Now().UTC(), Worker: s.worker, Done: true, Watermark: md.MaxTime}
		s.mu.Lock()
		if l := s.last[p]; l != nil {
			pc.ID, pc.Graph, pc.Read = l.ID, l.Graph, l.Read
		}
		s.mu.Unlock()
		pc.Read.Ended = true
		if _, err := s.put(ctx, pc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// allDone reports whether every partition of the job has a done piece of
// the current stream.
func allDone(ctx context.Context, kv jetstream.KeyValue, stream int64, partitions int) (bool, error) {
	for p := range partitions {
		e, err := kv.Get(ctx, leaseKey(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read the checkpoint of partition %d: %w", p, err)
		}
		var pc piece
		if json.Unmarshal(e.Value(), &pc) != nil || pc.Stream != stream || !pc.Done {
			return false, nil
		}
	}
	return true, nil
}
