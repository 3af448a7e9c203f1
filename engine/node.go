// Package engine runs a graph of market-data nodes: sources that produce
// batches of records, operators that transform them and sinks that store them.
// It owns the edges (bounded queues with backpressure or counted drops),
// watermarks, partitioning by symbol, error policies, the shutdown sequence and
// the per-node statistics that status output and metrics read.
//
// A node instance runs on its own goroutine and sees one message at a time, so
// component state needs no locks. Data moves as *md.Batch; the engine does no
// per-record work except partitioning and the source watermark scan.
package engine

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/mdpio/mdp/md"
)

// NodeKind says where a node sits in a graph.
type NodeKind uint8

// Node kinds.
const (
	KindSource NodeKind = iota + 1
	KindOperator
	KindSink
)

// String returns "source", "operator" or "sink".
func (k NodeKind) String() string {
	switch k {
	case KindSource:
		return "source"
	case KindOperator:
		return "operator"
	case KindSink:
		return "sink"
	}
	return "unknown"
}

// Source produces records. Run emits batches through out until the source is
// exhausted (return nil) or ctx is cancelled (return nil or ctx.Err(): both are
// a clean stop). Any other error fails the node. After Run returns the engine
// sends the final watermark, which flushes every open window downstream.
//
// The engine derives the source watermark from the event times it emits (max
// event time minus max_out_of_orderness); a source never has to send one.
type Source interface {
	Run(ctx context.Context, out *Output) error
}

// Processor is an operator or a sink: it receives batches one at a time.
// Process must not modify b (fan-out shares it) and must not keep it after
// returning unless it calls b.Retain first. A sink is a Processor whose Output
// has no main port edges.
type Processor interface {
	Process(ctx context.Context, b *md.Batch, out *Output) error
}

// PortProcessor is a Processor with named input ports (Node.Inputs), such
// as a join: the engine calls ProcessPort instead of Process, with port the
// index in Node.Inputs of the port the batch arrived on (resolved once per
// queue when the job is wired, so it costs nothing per batch). The rules of
// Process apply. The engine never calls its Process; implement it as
// ProcessPort on the port a batch without one belongs to. A node with
// Inputs may also be a plain Processor when it does not care where a batch
// came from.
type PortProcessor interface {
	Processor
	ProcessPort(ctx context.Context, port int, b *md.Batch, out *Output) error
}

// Opener is implemented by nodes that acquire resources before data flows.
type Opener interface {
	Open(ctx context.Context, nc *NodeContext) error
}

// WatermarkHandler is implemented by processors that act on event-time
// progress, such as windows and bars. OnWatermark is called each time the
// minimum watermark of the node's inputs advances; the final call at end of
// stream has wm == md.MaxTime.
type WatermarkHandler interface {
	OnWatermark(ctx context.Context, wm int64, out *Output) error
}

// WatermarkHolder lets a processor hold back the watermark it forwards, for
// example a bar builder whose emitted bars are stamped earlier than the input
// watermark. OutputWatermark is called after OnWatermark with the input
// watermark and returns the watermark to forward (never more than wm).
type WatermarkHolder interface {
	OutputWatermark(wm int64) int64
}

// Closer is implemented by nodes that must flush at the end of the stream.
// Close runs once, after the final watermark, with the node's Output still
// open, so a processor may emit its last records. Sinks must make everything
// they accepted durable before Close returns. Close runs only when the
// node's inputs ended normally; releasing resources on every way out is
// Cleaner's job.
type Closer interface {
	Close(ctx context.Context, out *Output) error
}

// Cleaner is implemented by nodes that hold resources (files, connections,
// goroutines) that must be released however the job ends, like Caddy's
// CleanerUpper. The engine calls Cleanup exactly once for every instance it
// opened (its Open returned nil, or it has no Open), on every way out: after
// Close when the job finishes normally, and without Close when this node or
// another one failed, when the job was aborted, and when another node's Open
// failed. It is never called for an instance whose Open failed or was never
// reached (an Open that fails releases what it acquired itself), nor for a
// job that was built but never started: a constructor must not acquire
// resources, Open does.
//
// Cleanup runs after the instance's goroutine has stopped, so never at the
// same time as its other methods, and may tell the ways out apart by whether
// its Close ran. ctx carries the job's values but not its cancellation: an
// aborted job still lets Cleanup close connections and remove temporary
// files, so Cleanup must not block without bound. An error from Cleanup
// fails the node when the job was otherwise succeeding; after a failure or
// an abort it is logged.
type Cleaner interface {
	Cleanup(ctx context.Context) error
}

// TimerHandler is implemented by processors that act on wall-clock time, such
// as a batcher's flush_interval. OnTimer runs on the node's goroutine every
// TimerInterval, so it needs no locks against Process.
type TimerHandler interface {
	TimerInterval() time.Duration
	OnTimer(ctx context.Context, now time.Time, out *Output) error
}

// Decoupler is implemented by processors whose output edges must stay
// queues: ones that check Output.Blocked to hold or drop records rather
// than stall their input (a buffer with a drop policy). When
// DecoupledOutput returns true the engine never chains the node's output
// edges, so a slow receiver fills a queue instead of running in the
// node's own call.
type Decoupler interface {
	DecoupledOutput() bool
}

// EventClock is implemented by sources whose event time does not follow the
// wall clock (a replay at speed k). The idle watermark advance asks it for the
// event time that corresponds to now.
type EventClock interface {
	EventNow() int64
}

// Readiness is implemented by nodes that are not ready to serve until
// something has happened, such as a live feed's first connection. A job is
// ready once every such node is.
type Readiness interface {
	Ready() bool
}

// Summarizer is implemented by nodes with counts of their own for the
// job's end-of-run summary, such as the rows a store sink wrote
// ("rows_written"). Summary is called once the node has stopped.
type Summarizer interface {
	Summary() map[string]int64
}

// OrderedSource is implemented by sources whose batches are in event-time
// order, each record no older than the one before. The engine then takes a
// batch's last event time as its newest instead of scanning the batch.
type OrderedSource interface {
	EventTimeOrdered() bool
}

// NodeContext is what a node instance learns about its place in the job.
type NodeContext struct {
	Job       string
	Node      string // node id
	Type      string // component type id
	Instance  int    // 0..Instances-1
	Instances int
	Symbols   *md.SymbolTable
	Pool      *md.Pool // the instance's own batch pool (no other instance shares it)
	Logger    *slog.Logger
	Feedback  *Feedback
	Stats     *NodeStats
	// Inputs are the record kinds the node's inputs can carry, and
	// InputSchemas the derived schemas among them, as the graph declares
	// them; a store creates tables for exactly these. Zero when the node
	// runs outside a validated graph.
	Inputs       md.Kind
	InputSchemas []*md.Schema
	// SourceTotals returns the records all of the job's sources have emitted
	// and the wall-clock time (ns) of the first one (0 before any).
	SourceTotals func() (events, firstAt int64)
	// Fingerprint identifies what the job computes (engine.Options).
	Fingerprint string
	// Progress is the job's setting for progress reports (bars on a
	// terminal, or log records).
	Progress ProgressOptions
	// Stdout is the job's standard output (engine.Options.Stdout).
	Stdout io.Writer
	// Checkpointing reports whether the job takes checkpoints, and
	// RestoreID which one it restores after Open (0: none). A sink that
	// commits in two phases (PreCommitter) keeps its output invisible
	// until a checkpoint completes only when Checkpointing, and at Open
	// leaves what a restore will sort out to Restore.
	Checkpointing bool
	RestoreID     int64

	metrics *NodeMetrics
}

// Metrics is where the instance registers its own counters, gauges and
// histograms; they belong to the job (see MetricSet). Nil-safe: on a
// NodeContext built outside a job it returns handles that work but are not
// exported.
func (nc *NodeContext) Metrics() *NodeMetrics {
	if nc == nil {
		return nil
	}
	return nc.metrics
}

// ProgressOptions say how a job's sources report progress. They belong to
// the job, not the process, so two jobs in one process can differ.
type ProgressOptions struct {
	// Mode overrides each source's own progress param: "" keeps the
	// param, "always" reports progress, "never" does not.
	Mode string
	// Terminal is where a self-overwriting progress bar may be drawn: a
	// terminal that no record data is written to. nil when there is none;
	// progress that must be reported (mode always) then goes to the log as
	// records, never as a bar.
	Terminal io.Writer
}

// ErrorPolicy decides what happens when a processor returns an error.
type ErrorPolicy uint8

// Error policies.
const (
	// OnErrorFail fails the job (the default).
	OnErrorFail ErrorPolicy = iota
	// OnErrorSkip counts the error, drops the batch and goes on.
	OnErrorSkip
	// OnErrorDeadLetter counts the error and sends the batch, with the error
	// as its Reason, to the node's dead_letter port.
	OnErrorDeadLetter
)

// ParseErrorPolicy parses fail, skip or dead_letter.
func ParseErrorPolicy(s string) (ErrorPolicy, bool) {
	switch s {
	case "", "fail":
		return OnErrorFail, true
	case "skip":
		return OnErrorSkip, true
	case "dead_letter":
		return OnErrorDeadLetter, true
	}
	return OnErrorFail, false
}

// String returns the policy's config spelling.
func (p ErrorPolicy) String() string {
	switch p {
	case OnErrorSkip:
		return "skip"
	case OnErrorDeadLetter:
		return "dead_letter"
	}
	return "fail"
}

// Port names with a meaning to the engine.
const (
	PortMain       = ""
	PortLate       = "late"
	PortDeadLetter = "dead_letter"
)

// SameAsInput as a port kind means the port carries whatever kind the node
// receives (a batcher, a filter, a dead_letter port).
const SameAsInput md.Kind = 0x80
