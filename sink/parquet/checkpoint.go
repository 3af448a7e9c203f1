package parquet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Checkpoints: a two-phase commit over part files, as Flink's FileSink
// does it. With checkpoints on, a file that is complete (max_rows,
// max_age) keeps its temporary name; on the barrier of checkpoint N every
// open file is completed too, and all of them are renamed to pending
// names that carry N (.part-….parquet.pending-N, hidden like the
// temporaries) and listed in the sink's state. When checkpoint N is
// complete and saved, the pending files of N and earlier are renamed to
// their final names. A restore from checkpoint N publishes the pending
// files of N and earlier (the restored state covers their rows) and
// removes what came after N: temporary files, pending files of a later
// checkpoint, and the final files a run published after N (a drain or an
// abort publishes what it holds), known by their part numbers, which the
// state records per worker and directory. Their rows come again from the
// replay after N.

// snapshotVersion is the version of the sink's checkpoint encoding.
const snapshotVersion = 1

// snapshot is one instance's state in a checkpoint.
type snapshot struct {
	V        int `json:"v"`
	Instance int `json:"instance"`
	// Next is, per worker, the next part number per partition directory
	// (relative to dir): every file numbered below it was started before
	// the barrier, every file at or above it after.
	Next []map[string]int `json:"next"`
	// Pending are the files (final names, relative to dir) waiting for
	// the checkpoint that covers them, by checkpoint id, oldest first.
	Pending []pendingSet `json:"pending,omitempty"`
}

// pendingSet are the files pending under one checkpoint id.
type pendingSet struct {
	ID    int64    `json:"id"`
	Files []string `json:"files"`
}

// tmpName is the temporary name of a final file.
func tmpName(final string) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".tmp")
}

// pendingName is the name of a final file while it waits for checkpoint id.
func pendingName(final string, id int64) string {
	return filepath.Join(filepath.Dir(final), "."+filepath.Base(final)+".pending-"+strconv.FormatInt(id, 10))
}

// File states, by name.
const (
	stateFinal = iota
	stateTmp
	statePending
)

// partFile is what a file's name says.
type partFile struct {
	state    int
	final    string // the final name (base)
	id       int64  // statePending: its checkpoint
	instance int
	worker   int
	n        int // part number
}

// parse reads a file name this writer may have written; ok is false for
// any other file (another job's, another writer name's, not a part).
func (w *Writer) parse(name string) (partFile, bool) {
	var pf partFile
	switch {
	case strings.HasPrefix(name, ".part-") && strings.HasSuffix(name, ".parquet.tmp"):
		pf.state, pf.final = stateTmp, strings.TrimSuffix(name[1:], ".tmp")
	case strings.HasPrefix(name, ".part-") && strings.Contains(name, ".parquet.pending-"):
		i := strings.LastIndex(name, ".pending-")
		id, err := strconv.ParseInt(name[i+len(".pending-"):], 10, 64)
		if err != nil {
			return pf, false
		}
		pf.state, pf.final, pf.id = statePending, name[1:i], id
	case strings.HasPrefix(name, "part-") && strings.HasSuffix(name, ".parquet"):
		pf.state, pf.final = stateFinal, name
	default:
		return pf, false
	}
	i := strings.LastIndex(pf.final, w.writer+"-i")
	if w.writer == "" || i < 0 {
		return pf, false
	}
	rest := pf.final[i+len(w.writer)+2:]
	if _, err := fmt.Sscanf(rest, "%dw%d-%d.parquet", &pf.instance, &pf.worker, &pf.n); err != nil ||
		rest != fmt.Sprintf("%dw%d-%04d.parquet", pf.instance, pf.worker, pf.n) {
		return pf, false
	}
	return pf, true
}

// walkMine calls fn for every file under dir this job's instance wrote
// (by its name). Without a job name nothing is known to be this job's.
func (w *Writer) walkMine(instance int, fn func(path string, pf partFile) error) error {
	if w.writer == "" {
		return nil
	}
	return filepath.WalkDir(w.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // an unreadable subdirectory is not ours to judge
		}
		pf, ok := w.parse(d.Name())
		if !ok || pf.instance != instance {
			return nil
		}
		return fn(path, pf)
	})
}

// PreCommit implements storekit.Committer: on checkpoint id's barrier,
// with every row before it written, it completes every open file and
// renames the files completed since the last barrier to their pending
// names under id.
func (w *Writer) PreCommit(ctx context.Context, id int64) error {
	set := pendingSet{ID: id}
	dirs := map[string]bool{}
	var errs []error
	always := func(time.Time) bool { return true }
	for _, wf := range w.workers {
		wf.mu.Lock()
		errs = append(errs, w.completeFiles(wf, always))
		for _, final := range wf.closed {
			if err := os.Rename(tmpName(final), pendingName(final, id)); err != nil {
				errs = append(errs, fmt.Errorf("parquet pre-commit: %w", err))
				continue
			}
			rel, err := filepath.Rel(w.Dir, final)
			if err != nil {
				errs = append(errs, fmt.Errorf("parquet pre-commit: %w", err))
				continue
			}
			set.Files = append(set.Files, rel)
			dirs[filepath.Dir(final)] = true
		}
		wf.closed = nil
		wf.mu.Unlock()
	}
	for d := range dirs {
		errs = append(errs, syncDir(d))
	}
	if len(set.Files) > 0 {
		w.pmu.Lock()
		w.pending = append(w.pending, set)
		w.pmu.Unlock()
	}
	return errors.Join(errs...)
}

// Snapshot implements storekit.Committer: the next part numbers and the
// pending files.
func (w *Writer) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Instance: w.instance, Next: make([]map[string]int, len(w.workers))}
	for i, wf := range w.workers {
		wf.mu.Lock()
		m := make(map[string]int, len(wf.ordinal))
		for dir, n := range wf.ordinal {
			rel, err := filepath.Rel(w.Dir, dir)
			if err != nil {
				wf.mu.Unlock()
				return nil, fmt.Errorf("parquet snapshot: %w", err)
			}
			m[rel] = n
		}
		wf.mu.Unlock()
		sn.Next[i] = m
	}
	w.pmu.Lock()
	sn.Pending = append([]pendingSet(nil), w.pending...)
	w.pmu.Unlock()
	return json.Marshal(&sn)
}

// NotifyCheckpointComplete implements storekit.Committer: it publishes the
// files pending under id and earlier ids (a checkpoint that failed is
// covered by the next that completes). Files it could not publish stay
// pending for the next notification or Close.
func (w *Writer) NotifyCheckpointComplete(ctx context.Context, id int64) error {
	w.pmu.Lock()
	n := 0
	for n < len(w.pending) && w.pending[n].ID <= id {
		n++
	}
	sets := w.pending[:n:n]
	w.pending = w.pending[n:]
	w.pmu.Unlock()
	if err := w.commit(sets); err != nil {
		w.pmu.Lock()
		w.pending = append(sets, w.pending...)
		w.pmu.Unlock()
		return err
	}
	return nil
}

// commit renames the files of sets from their pending names to their
// final names. A file already published (by an earlier attempt) counts as
// done.
func (w *Writer) commit(sets []pendingSet) error {
	var errs []error
	for _, set := range sets {
		finals := make([]string, len(set.Files))
		for i, rel := range set.Files {
			finals[i] = filepath.Join(w.Dir, rel)
		}
		errs = append(errs, publish(finals, func(final string) string { return pendingName(final, set.ID) }))
	}
	return errors.Join(errs...)
}

// publish renames each final file from its name src(final) into place and
// syncs the directories. A file already in place counts as done.
func publish(finals []string, src func(final string) string) error {
	var errs []error
	dirs := map[string]bool{}
	for _, final := range finals {
		if err := os.Rename(src(final), final); err != nil {
			if _, serr := os.Stat(final); errors.Is(err, fs.ErrNotExist) && serr == nil {
				continue
			}
			errs = append(errs, fmt.Errorf("parquet publish: %w", err))
			continue
		}
		dirs[filepath.Dir(final)] = true
	}
	for d := range dirs {
		errs = append(errs, syncDir(d))
	}
	return errors.Join(errs...)
}

// Restore implements storekit.Committer. This instance takes the states of
// the instances i of the checkpoint with i mod its instance count equal
// to its own (so the sink's parallelism may change): it publishes their
// files pending under the restored checkpoint or an earlier one, and
// removes their temporary files, their pending files of later
// checkpoints and the final files they started after the barrier. Its own
// state gives it the next part numbers.
func (w *Writer) Restore(ctx context.Context, states [][]byte) error {
	for i, data := range states {
		if i%w.instances != w.instance {
			continue
		}
		var sn *snapshot
		if len(data) > 0 {
			sn = &snapshot{}
			if err := json.Unmarshal(data, sn); err != nil {
				return fmt.Errorf("parquet restore: instance %d: %w", i, err)
			}
			if sn.V != snapshotVersion {
				return fmt.Errorf("parquet restore: instance %d: state version %d, want %d", i, sn.V, snapshotVersion)
			}
		}
		if err := w.recover(i, sn); err != nil {
			return err
		}
		if i == w.instance && sn != nil {
			for k, next := range sn.Next {
				if k >= len(w.workers) {
					break
				}
				for rel, n := range next {
					w.workers[k].ordinal[filepath.Join(w.Dir, rel)] = n
				}
			}
		}
	}
	if w.instance >= len(states) { // a new instance: only its own leftovers
		return w.removeStale()
	}
	return nil
}

// recover sorts out the files instance i of the restored checkpoint left
// (sn is its state, nil when it saved none).
func (w *Writer) recover(i int, sn *snapshot) error {
	if sn != nil {
		if err := w.commit(sn.Pending); err != nil {
			return fmt.Errorf("parquet restore: %w", err)
		}
	}
	dirs := map[string]bool{}
	err := w.walkMine(i, func(path string, pf partFile) error {
		remove := false
		switch pf.state {
		case stateTmp:
			remove = true
		case statePending:
			if pf.id <= w.restoreID { // covered, though not listed: publish it too
				dirs[filepath.Dir(path)] = true
				return os.Rename(path, filepath.Join(filepath.Dir(path), pf.final))
			}
			remove = true
		case stateFinal:
			if sn == nil || pf.worker >= len(sn.Next) {
				return nil
			}
			rel, err := filepath.Rel(w.Dir, filepath.Dir(path))
			if err != nil {
				return err
			}
			remove = pf.n >= sn.Next[pf.worker][rel]
		}
		if !remove {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		w.log.Debug("parquet restore: removed a file the checkpoint does not cover", "file", path)
		return nil
	})
	for d := range dirs {
		err = errors.Join(err, syncDir(d))
	}
	if err != nil {
		return fmt.Errorf("parquet restore: %w", err)
	}
	return nil
}
