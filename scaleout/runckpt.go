package scaleout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
)

// runCheckpoints are the checkpoints of mdp run's one worker: the same
// pieces in the same bucket as RunWorker's (ckpt.go), over every
// partition.
type runCheckpoints struct {
	kv     jetstream.KeyValue
	stream int64 // the stream's creation time
	resume bool
	// pieces and revs are what the bucket held for the partitions at the
	// start (none unless resume).
	pieces map[int]*piece
	revs   map[int]uint64
	// restored counts the partitions restored from a piece that is not
	// done; store is set by job.
	restored int
	store    *ckptStore
}

// openRunCheckpoints opens the job's checkpoint bucket. A fresh run (not
// resume) deletes what the bucket held first: it covers a stream that was
// just purged.
func openRunCheckpoints(ctx context.Context, js jetstream.JetStream, n names, doc *config.Document, stream int64, resume bool) (*runCheckpoints, error) {
	if !resume {
		if err := js.DeleteKeyValue(ctx, n.bucket("ckpt")); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("delete the earlier run's checkpoints %s: %w", n.bucket("ckpt"), err)
		}
	}
	kv, err := openCheckpoints(ctx, js, n)
	if err != nil {
		return nil, err
	}
	return &runCheckpoints{kv: kv, stream: stream, resume: resume}, nil
}

// job builds the checkpointing worker over every partition that is not
// done, restored from its piece when resuming. It sets the reader's
// partitions, and c.store.
func (c *runCheckpoints) job(ctx context.Context, doc *config.Document, r *reader, fb *engine.Feedback, log *slog.Logger, stdout io.Writer) (*engine.Job, error) {
	so := doc.Scaleout
	g, err := workerGraph(doc, r, so.Partitions)
	if err != nil {
		return nil, err
	}
	all := r.partitions
	c.pieces, c.revs = map[int]*piece{}, map[int]uint64{}
	if c.resume {
		if c.pieces, c.revs, err = loadPieces(ctx, c.kv, doc.Name, c.stream, so.Partitions, engine.GraphFingerprint(g), all); err != nil {
			return nil, err
		}
	}
	var live []int
	for _, p := range all {
		pc := c.pieces[p]
		if pc != nil && pc.Done {
			continue
		}
		if pc != nil {
			c.restored++
		}
		live = append(live, p)
	}
	r.partitions, r.progress, r.partitionCount = live, newProgress(live), so.Partitions
	cp, err := restoreOf(g, doc.Name, so.Source, c.pieces, live, so.Partitions)
	if err != nil {
		return nil, err
	}
	c.store = &ckptStore{kv: c.kv, job: doc.Name, worker: DefaultWorkerID(), stream: c.stream, partitions: so.Partitions, source: so.Source, graph: g,
		parts: live, revs: map[int]uint64{}, last: map[int]*piece{}, started: time.Now()}
	for _, p := range live {
		c.store.revs[p] = c.revs[p]
		c.store.last[p] = c.pieces[p]
	}
	j, err := engine.New(g, engine.Options{Job: doc.Name, Fingerprint: doc.Fingerprint(), Logger: log, BatchSize: doc.BatchSize,
		Feedback: fb, Stdout: stdout,
		Checkpoint: &engine.CheckpointOptions{Interval: doc.Checkpoint.Interval, Store: c.store, TolerableFailures: doc.Checkpoint.TolerableFailures,
			Restore: cp, OwnInstanceState: true}})
	if err != nil {
		return nil, fmt.Errorf("build the worker of job %q: %w", doc.Name, err)
	}
	return j, nil
}

// latest is the partitions' latest pieces, for the status.
func (c *runCheckpoints) latest() map[int]*piece {
	out := map[int]*piece{}
	for p, pc := range c.store.latest() {
		out[p] = &pc
	}
	return out
}

// done marks every partition done once the worker read each to its end
// marker and drained: a later resume has nothing left to do.
func (c *runCheckpoints) done(ctx context.Context, r *reader, log *slog.Logger) error {
	for _, p := range c.store.parts {
		if !r.ended[p] && !r.restored[p].Ended {
			return fmt.Errorf("the worker stopped before the end marker of partition %d", p)
		}
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.store.markDone(mctx); err != nil {
		return fmt.Errorf("mark the partitions done: %w", err)
	}
	log.Debug("partitions read to their end", "partitions", len(c.store.parts))
	return nil
}
