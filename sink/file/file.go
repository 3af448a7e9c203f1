// Package file is the sink.file component: records written to a local file
// as JSON lines or CSV, atomically.
//
// The sink writes to a temporary file next to the target (path +
// ".tmp-<random>"), and on Close flushes, fsyncs, renames it over the target
// and fsyncs the directory. Readers therefore see either the previous file
// or the complete new one, never a partial write. If the job aborts or fails
// instead of draining, Cleanup removes the temporary file and the target is
// untouched.
//
// CSV holds one record kind per file (its header names that kind's columns):
// a batch of another kind fails the node with a clear error rather than
// mixing columns. Use JSON lines, whose objects carry a "type", to write
// several kinds to one file.
package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

func init() {
	component.Register(component.Spec{
		Type:    "sink.file",
		Kind:    engine.KindSink,
		Summary: "Write records to a local file as JSON lines or CSV, atomically on close",
		Description: "Records go to a temporary file in the target's directory, which is fsynced and renamed " +
			"over path when the job ends, so the file appears complete or not at all (an existing file is " +
			"replaced). JSON lines carry every record kind; a CSV file holds one kind (a batch of another kind " +
			"fails the node). Runs as a single instance.",
		Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "path", Type: component.String, Required: true, Path: true,
				Description: "File to write; parent directories are created", Example: "out/bars.jsonl"},
			{Name: "format", Type: component.String, Enum: []string{"json", "jsonl", "csv"},
				Description: "json or jsonl (the same: one JSON object per line) or csv; default csv for a .csv path, json otherwise"},
		},
		Validate: func(p *component.Params) error {
			if p.String("path") == "" {
				return p.Errorf("path", "must not be empty")
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			if instance > 0 {
				return nil, fmt.Errorf("sink.file runs as one instance (set parallelism 1): instances would replace each other's file")
			}
			f := recfmt.FormatForPath(p.String("path"))
			if p.Has("format") {
				var err error
				if f, err = recfmt.ParseFormat(p.String("format")); err != nil {
					return nil, err
				}
			}
			return New(p.String("path"), f), nil
		},
	})
}

// Sink writes one file.
type Sink struct {
	path   string
	format recfmt.Format
	syms   *md.SymbolTable

	f   *os.File
	bw  *bufio.Writer
	enc *recfmt.Writer

	done      bool // committed or discarded
	discarded bool
}

// New returns a sink writing path in format f.
func New(path string, f recfmt.Format) *Sink { return &Sink{path: path, format: f} }

// TempName is the temporary file a sink writing path writes first.
func TempName(path string) string { return path + ".tmp-mdp" }

// TempPath is the temporary file being written ("" before Open).
func (s *Sink) TempPath() string {
	if s.f == nil {
		return ""
	}
	return s.f.Name()
}

// Open creates the temporary file next to the target.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.syms = nc.Symbols
	if msg := component.OutputDirProblem(s.path); msg != "" {
		return fmt.Errorf("%s: %s", s.path, msg)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", s.path, err)
	}
	// The temporary file has a predictable name beside the target, so a
	// run removes what a killed predecessor left (one job writes a target
	// at a time).
	tmp := TempName(s.path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return component.FileError("remove", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", s.path, err)
	}
	s.f = f
	s.bw = bufio.NewWriterSize(f, 256<<10)
	s.enc = recfmt.NewWriter(s.bw, s.format)
	return nil
}

// discard removes the temporary file unless it was already committed.
func (s *Sink) discard() error {
	if s.done || s.f == nil {
		return nil
	}
	s.done, s.discarded = true, true
	cerr := s.f.Close()
	if err := os.Remove(s.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return component.FileError("remove", s.f.Name(), err)
	}
	if cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		return component.FileError("close", s.f.Name(), cerr)
	}
	return nil
}

// Process encodes b into the file's buffer.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := s.enc.WriteBatch(b, s.syms.Snapshot()); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

// Close makes the file durable and moves it into place. With ctx already
// cancelled (the job aborted) the temporary file is removed instead.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if ctx.Err() != nil {
		return s.discard()
	}
	if s.done {
		if s.discarded {
			return fmt.Errorf("%s: not written: the job was aborted", s.path)
		}
		return nil
	}
	s.done = true
	tmp := s.f.Name()
	err := s.commit(tmp)
	if err != nil {
		s.discarded = true
		_ = s.f.Close()
		_ = os.Remove(tmp)
	}
	return err
}

// Cleanup removes the temporary file unless Close moved it into place: the
// engine calls it on every way out, so a failed or aborted job leaves the
// target as it was and no temporary file behind.
func (s *Sink) Cleanup(ctx context.Context) error { return s.discard() }

func (s *Sink) commit(tmp string) error {
	if err := s.bw.Flush(); err != nil {
		return component.FileError("write", tmp, err)
	}
	if err := s.f.Chmod(0o644); err != nil {
		return component.FileError("chmod", tmp, err)
	}
	if err := s.f.Sync(); err != nil {
		return component.FileError("sync", tmp, err)
	}
	if err := s.f.Close(); err != nil {
		return component.FileError("close", tmp, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return component.FileError("rename", tmp, err)
	}
	// The rename is durable once the directory entry is.
	d, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return fmt.Errorf("open directory of %s: %w", s.path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory of %s: %w", s.path, err)
	}
	return nil
}

// Records is how many records have been written.
func (s *Sink) Records() int64 {
	if s.enc == nil {
		return 0
	}
	return s.enc.Records()
}
