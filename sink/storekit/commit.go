package storekit

import (
	"context"
	"fmt"
)

// Committer is a Writer that commits its output in two phases across
// checkpoints (engine.PreCommitter), as a file store does whose files
// become readable only when complete. Build its sink with NewCommitting:
// on a checkpoint barrier the sink waits until its workers have written
// everything accepted (Flush), then calls PreCommit with the checkpoint's
// id, then Snapshot. NotifyCheckpointComplete arrives from the checkpoint
// coordinator's goroutine, concurrently with the workers' Write and Tick
// calls; Restore runs after Open, before any Write.
type Committer interface {
	Writer
	PreCommit(ctx context.Context, id int64) error
	Snapshot(ctx context.Context) ([]byte, error)
	Restore(ctx context.Context, states [][]byte) error
	NotifyCheckpointComplete(ctx context.Context, id int64) error
}

// CommitSink is the sink of a Committer: a Sink that also implements
// engine.PreCommitter, engine.Snapshotter and engine.CheckpointListener by
// passing them to its Committer.
type CommitSink struct {
	*Sink
	c Committer
}

// NewCommitting returns a sink that writes through w and takes part in
// checkpoints through it.
func NewCommitting(w Committer, cfg Config) *CommitSink {
	return &CommitSink{Sink: New(w, cfg), c: w}
}

// PreCommit implements engine.PreCommitter. The engine has flushed the
// sink (Flush) before it; an error fails the sink, since the store may
// have lost what it was committing.
func (s *CommitSink) PreCommit(ctx context.Context, id int64) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	if err := s.c.PreCommit(ctx, id); err != nil {
		err = fmt.Errorf("pre-commit checkpoint %d: %w", id, err)
		s.setFatal(err)
		return err
	}
	return nil
}

// Snapshot implements engine.Snapshotter.
func (s *CommitSink) Snapshot(ctx context.Context) ([]byte, error) { return s.c.Snapshot(ctx) }

// Restore implements engine.Snapshotter.
func (s *CommitSink) Restore(ctx context.Context, states [][]byte) error {
	return s.c.Restore(ctx, states)
}

// NotifyCheckpointComplete implements engine.CheckpointListener.
func (s *CommitSink) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	return s.c.NotifyCheckpointComplete(ctx, id)
}
