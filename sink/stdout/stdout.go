// Package stdout is the sink.stdout component: records written to standard
// output as JSON lines or CSV, for demos, pipes into other tools and
// debugging a job.
package stdout

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

func init() {
	component.Register(component.Spec{
		Type:    "sink.stdout",
		Kind:    engine.KindSink,
		Summary: "Write records to standard output as JSON lines or CSV",
		Description: "Each batch is encoded and written with one write, so output appears as soon as a batch " +
			"arrives. JSON lines carry every record kind; CSV writes one header and holds one record kind " +
			"(a batch of another kind fails the node). Records diverted to a late or dead_letter port carry a " +
			"reason field. Runs as a single instance.",
		Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "format", Type: component.String, Default: "json", Enum: []string{"json", "jsonl", "csv"},
				Description: "json or jsonl (the same): one JSON object per line; csv: a header line, then one row per record"},
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			if instance > 0 {
				return nil, fmt.Errorf("sink.stdout runs as one instance (set parallelism 1): instances would interleave their output")
			}
			f, err := recfmt.ParseFormat(p.String("format"))
			if err != nil {
				return nil, err
			}
			return New(nil, f), nil
		},
	})
}

// Sink writes records to an io.Writer (the job's standard output in a job).
type Sink struct {
	enc    *recfmt.Writer
	format recfmt.Format
	syms   *md.SymbolTable
}

// New returns a sink that writes to w in format f; a nil w means the job's
// standard output (engine.NodeContext.Stdout), taken at Open.
func New(w io.Writer, f recfmt.Format) *Sink {
	s := &Sink{format: f}
	if w != nil {
		s.enc = recfmt.NewWriter(w, f)
	}
	return s
}

// Open keeps the job's symbol table to name instruments, and takes the
// job's standard output when the sink was built without a writer.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.syms = nc.Symbols
	if s.enc == nil {
		w := nc.Stdout
		if w == nil {
			w = os.Stdout
		}
		s.enc = recfmt.NewWriter(w, s.format)
	}
	return nil
}

// Process encodes b and writes it at once.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if err := s.enc.WriteBatch(b, s.syms.Snapshot()); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	return nil
}

// Records is how many records the sink has written.
func (s *Sink) Records() int64 { return s.enc.Records() }
