// Package checkpoint stores a job's checkpoints (engine.Checkpoint). The
// local-directory store writes one file per checkpoint: to a temporary name,
// fsynced, renamed into place and the directory fsynced, so a crash while
// saving leaves the previous checkpoint as the latest. Reading the latest
// skips a file that does not decode (a torn or truncated file) with a
// warning and takes the one before it. Other backends (an object store)
// implement engine.CheckpointStore and Loader.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mdpio/mdp/engine"
)

// Loader reads checkpoints back.
type Loader interface {
	// Latest returns the newest checkpoint that reads back whole.
	Latest(ctx context.Context) (*engine.Checkpoint, error)
	// Load returns checkpoint id.
	Load(ctx context.Context, id int64) (*engine.Checkpoint, error)
}

// ErrNone is returned by Latest when the store holds no usable checkpoint.
var ErrNone = errors.New("no checkpoint")

const (
	prefix = "checkpoint-"
	suffix = ".json"
)

// Dir is the local-directory store.
type Dir struct {
	path string
	keep int
	log  *slog.Logger
}

// Open returns the store at location: a directory path, or a file:// URL.
// keep is how many checkpoints to keep (at least 1). The directory is
// created if missing.
func Open(location string, keep int, log *slog.Logger) (*Dir, error) {
	path, err := ParseLocation(location)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dir{path: path, keep: max(keep, 1), log: log}, nil
}

// ParseLocation returns the directory of a store location: a path or a
// file:// URL. Any other scheme is an error.
func ParseLocation(location string) (string, error) {
	switch {
	case location == "":
		return "", errors.New("checkpoint store: empty location")
	case strings.HasPrefix(location, "file://"):
		return strings.TrimPrefix(location, "file://"), nil
	case strings.Contains(location, "://"):
		return "", fmt.Errorf("checkpoint store %q: only a directory or a file:// URL is supported", location)
	}
	return location, nil
}

// Path is the store's directory.
func (d *Dir) Path() string { return d.path }

// FileName is the name of checkpoint id's file.
func FileName(id int64) string { return fmt.Sprintf("%s%020d%s", prefix, id, suffix) }

// Save implements engine.CheckpointStore.
func (d *Dir) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("encode checkpoint %d: %w", c.ID, err)
	}
	data = append(data, '\n')
	final := filepath.Join(d.path, FileName(c.ID))
	tmp, err := os.CreateTemp(d.path, ".tmp-"+prefix+"*")
	if err != nil {
		return 0, fmt.Errorf("checkpoint %d: %w", c.ID, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("checkpoint %d: %w", c.ID, err)
	}
	if err := syncDir(d.path); err != nil {
		return 0, fmt.Errorf("checkpoint %d: sync %s: %w", c.ID, d.path, err)
	}
	d.prune()
	return int64(len(data)), nil
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// IDs lists the checkpoint ids in the store, newest first.
func (d *Dir) IDs() ([]int64, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint store: %w", err)
	}
	var ids []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids, nil
}

// prune removes all but the newest keep checkpoints.
func (d *Dir) prune() {
	ids, err := d.IDs()
	if err != nil {
		d.log.Warn("checkpoint store: cannot list for pruning", "err", err)
		return
	}
	for _, id := range ids[min(d.keep, len(ids)):] {
		if err := os.Remove(filepath.Join(d.path, FileName(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("checkpoint store: cannot remove an old checkpoint", "id", id, "err", err)
		}
	}
}

// Load implements Loader.
func (d *Dir) Load(ctx context.Context, id int64) (*engine.Checkpoint, error) {
	return ReadFile(filepath.Join(d.path, FileName(id)))
}

// Latest implements Loader: the newest checkpoint that reads back whole;
// newer ones that do not are logged and skipped.
func (d *Dir) Latest(ctx context.Context) (*engine.Checkpoint, error) {
	ids, err := d.IDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		c, err := d.Load(ctx, id)
		if err == nil {
			return c, nil
		}
		d.log.Warn("checkpoint unreadable; using the one before it", "id", id, "err", err)
	}
	return nil, fmt.Errorf("%w in %s", ErrNone, d.path)
}

// ReadFile reads and checks one checkpoint file.
func ReadFile(path string) (*engine.Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c engine.Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is torn or corrupt: %w", path, err)
	}
	if c.Format != engine.CheckpointFormat {
		return nil, fmt.Errorf("checkpoint %s has format %d; this mdp reads format %d", path, c.Format, engine.CheckpointFormat)
	}
	for _, n := range c.Nodes {
		for i, in := range n.Instances {
			if !in.Complete {
				return nil, fmt.Errorf("checkpoint %s: node %q instance %d is incomplete", path, n.ID, i)
			}
		}
	}
	return &c, nil
}

// Resolve finds the checkpoint a --from argument names: a file path, or an
// id in the store d.
func Resolve(ctx context.Context, d *Dir, from string) (*engine.Checkpoint, error) {
	if id, err := strconv.ParseInt(from, 10, 64); err == nil && d != nil {
		return d.Load(ctx, id)
	}
	return ReadFile(from)
}
