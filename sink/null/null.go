// Package null is the sink.null component: it counts records and discards
// them, to measure a job without the cost of a store.
package null

import (
	"context"
	"log/slog"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func init() {
	component.Register(component.Spec{
		Type:    "sink.null",
		Kind:    engine.KindSink,
		Summary: "Count records and discard them",
		Description: "For benchmarks and dry runs: every record is counted (in the node's events_in and " +
			"in a log line at close) and dropped.",
		Accepts: md.KindAny,
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return &Sink{}, nil
		},
	})
}

// Sink counts and discards.
type Sink struct {
	log *slog.Logger
	n   Counts
}

// Counts are the records a Sink discarded, by kind, and the batches that
// carried them.
type Counts struct {
	Trades, Quotes, Bars, Derived int64
	Batches                       int64
}

// Records is the number of records of every kind.
func (c Counts) Records() int64 { return c.Trades + c.Quotes + c.Bars + c.Derived }

// Open keeps the node's logger.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.log = nc.Logger
	return nil
}

// Process counts b's records.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.n.Batches++
	switch b.Kind {
	case md.KindTrade:
		s.n.Trades += int64(len(b.Trades))
	case md.KindQuote:
		s.n.Quotes += int64(len(b.Quotes))
	case md.KindBar:
		s.n.Bars += int64(len(b.Bars))
	case md.KindDerived:
		s.n.Derived += int64(len(b.Derived))
	}
	return nil
}

// Close logs the counts.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if s.log != nil {
		s.log.Info("discarded records", "trades", s.n.Trades, "quotes", s.n.Quotes, "bars", s.n.Bars, "derived", s.n.Derived, "batches", s.n.Batches)
	}
	return nil
}

// Summary implements engine.Summarizer: nothing is written, everything
// received is discarded.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": 0, "discarded": s.n.Records()}
}

// Counts returns the records discarded so far by kind, and the batches.
// Call it from the node's goroutine or after the job has finished.
func (s *Sink) Counts() Counts { return s.n }
