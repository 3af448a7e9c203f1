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
	log                  *slog.Logger
	trades, quotes, bars int64
	batches              int64
}

// Open keeps the node's logger.
func (s *Sink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.log = nc.Logger
	return nil
}

// Process counts b's records.
func (s *Sink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.batches++
	switch b.Kind {
	case md.KindTrade:
		s.trades += int64(len(b.Trades))
	case md.KindQuote:
		s.quotes += int64(len(b.Quotes))
	case md.KindBar:
		s.bars += int64(len(b.Bars))
	}
	return nil
}

// Close logs the counts.
func (s *Sink) Close(ctx context.Context, out *engine.Output) error {
	if s.log != nil {
		s.log.Info("discarded records", "trades", s.trades, "quotes", s.quotes, "bars", s.bars, "batches", s.batches)
	}
	return nil
}

// Counts returns the records discarded so far by kind, and the batches.
// Call it from the node's goroutine or after the job has finished.
// Summary implements engine.Summarizer: nothing is written, everything
// received is discarded.
func (s *Sink) Summary() map[string]int64 {
	return map[string]int64{"rows_written": 0, "discarded": s.trades + s.quotes + s.bars}
}

func (s *Sink) Counts() (trades, quotes, bars, batches int64) {
	return s.trades, s.quotes, s.bars, s.batches
}
