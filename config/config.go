// Package config loads mdp job files. A job is written in YAML or JSON (the
// shape of DESIGN §5) in one of two modes: "dag", a graph of nodes and edges,
// or "classic", a linear spec (source -> operators -> batcher -> sink) that
// compiles to the same graph. The loader layers the sources of settings —
// defaults < file < environment (MDP_UNIFIED_*, MDP_METRICS_*, MDP_FB_*) <
// flags (--set path=value, --mode, --job) — expands ${VAR} and
// ${VAR:-default} in strings, decodes every component's params through the
// component registry and validates the graph. It reports every problem at
// once, each with its file, line, column and key path, so a user fixes a job
// file in one pass. Schema returns the JSON Schema editors use for job files.
package config

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
)

// Modes.
const (
	modeClassic = "classic"
	ModeDAG     = "dag"
)

// Restart policies: what a job server (package jobs) does when a job ends.
// A job run by `mdp run` ends the process either way.
const (
	// RestartAlways restarts the job whenever it ends, unless it was stopped.
	RestartAlways = "always"
	// RestartOnFailure restarts the job when it failed (the default).
	RestartOnFailure = "on-failure"
	// RestartNever leaves the job as it ended.
	RestartNever = "never"
)

// Defaults applied when neither the file, the environment nor a flag sets a
// value.
const (
	defaultMetricsListen   = "127.0.0.1:9108"
	defaultShutdownTimeout = 30 * time.Second
	defaultSoftAt          = 0.5
	defaultHardAt          = 0.9
)

// LoadOptions are the command-line overrides and the environment a job is
// loaded with.
type LoadOptions struct {
	// Mode overrides the job's mode ("classic" or "dag"); "" keeps the file's.
	Mode string
	// Job overrides the job name; "" keeps the file's.
	Job string
	// Sets are --set path=value overrides, applied in order after the
	// environment. A path addresses YAML keys ("metrics.enable"); list items
	// are addressed by index ("dag.nodes[0].params.rate") or, for nodes, by
	// id ("dag.nodes.src.params.rate"). The value is parsed as YAML, so
	// true, 10, 1s and [a, b] mean what they do in a job file.
	Sets []string
	// Env looks up environment variables, for ${VAR} and the MDP_* overlay.
	// nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Registry is where component types are looked up; nil means
	// component.Default() (the built-ins and whatever registered there).
	Registry *component.Registry
}

// Document is a loaded, validated job.
type Document struct {
	// File is the job file's name ("" when loaded from bytes without one).
	File string
	// Mode is "classic" or "dag".
	Mode string
	// Name is the job name.
	Name string
	// Nodes and Edges are the job's graph; in classic mode, the compiled
	// linear chain.
	Nodes []NodeSpec
	Edges []EdgeSpec
	// Metrics configures the Prometheus endpoint.
	Metrics MetricsConfig
	// Feedback sets how sources react to store levels (default enabled,
	// scales 1.0 / 0.5 / 0.0) and the fractions of a sink queue's capacity
	// at which its level becomes soft and hard (defaults 0.5, 0.9).
	Feedback engine.FeedbackConfig
	// ShutdownTimeout bounds a graceful stop (default 30s).
	ShutdownTimeout time.Duration
	// BatchSize is the job's default batch capacity in records; 0 means the
	// engine's default.
	BatchSize int
	// Restart is the restart policy a job server applies when the job ends:
	// RestartAlways, RestartOnFailure (default) or RestartNever.
	Restart string
	// Checkpoint turns checkpoints on; nil when the job has none.
	Checkpoint *CheckpointConfig
	// Scaleout runs the job over NATS JetStream partitions; nil when the
	// job runs in one process.
	Scaleout *ScaleoutConfig
	// Sources lists where settings came from, in precedence order: the file
	// (if any), then "env NAME", "--set path", "--mode" and "--job" entries
	// that changed something.
	Sources []string
}

// Checkpoint section defaults and bounds.
const (
	// defaultCheckpointKeep is how many checkpoints a store keeps by default.
	defaultCheckpointKeep = 3
	// maxCheckpointKeep bounds keep.
	maxCheckpointKeep = 1000
	// maxTolerableFailures bounds tolerable_failures.
	maxTolerableFailures = 1_000_000
)

// CheckpointConfig is the checkpoint section.
type CheckpointConfig struct {
	Interval time.Duration // between checkpoints
	Store    string        // a directory or a file:// URL
	Keep     int           // checkpoints kept (default 3)
	// TolerableFailures is how many checkpoints in a row may fail before
	// the job fails; -1 (the default) never fails the job for it.
	TolerableFailures int
}

// MetricsConfig is the metrics section.
type MetricsConfig struct {
	Enable bool
	Listen string // host:port, default 127.0.0.1:9108
}

// NodeSpec is one decoded node of the job's graph.
type NodeSpec struct {
	ID          string
	Type        string // the canonical component type id
	Params      *component.Params
	Spec        *component.Spec
	Parallelism int // 1 or more; 0 when not set (one instance, but see engine.Graph.Instances)
	OnError     engine.ErrorPolicy
	// NoChain is `chain: false`: the node is never chained to its
	// neighbours (engine.Node.NoChain).
	NoChain bool
	// Where the node is written: File ("env MDP_UNIFIED_DAG_JSON" for a node
	// from the environment), Line, Column and Path (dag.nodes[2],
	// classic.spec.operators[0], …).
	File         string
	Line, Column int
	Path         string
}

// EdgeSpec is one decoded edge.
type EdgeSpec struct {
	From     string
	FromPort string // engine.PortMain ("") or a named output port
	To       string
	ToPort   string // engine.PortMain ("") or a named input port
	Capacity int    // batches; 0 means engine.DefaultQueueCapacity
	Policy   engine.Policy
	// Where the edge is written (for a classic job, the node it feeds).
	File         string
	Line, Column int
	Path         string
}

// LoadFile reads and loads a job file. Every problem, including a file that
// cannot be read, is returned as Errors.
func LoadFile(path string, opts LoadOptions) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, Errors{{File: path, Msg: "cannot read the job file: " + msg}}
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes loads a job from data; name is used in error positions. Empty
// data is a valid (empty) file: the environment and flags may supply every
// section. The error, when not nil, is Errors.
func LoadBytes(name string, data []byte, opts LoadOptions) (*Document, error) {
	l := newLoader(name, opts)
	doc := l.load(data)
	if len(l.errs) > 0 {
		l.sortErrors()
		return nil, l.errs
	}
	return doc, nil
}

// Graph builds the engine graph: one engine node per NodeSpec (through
// component.Node) and the edges. It validates the graph again and returns
// Errors placed at the nodes' and edges' lines if it does not hold.
func (d *Document) Graph() (*engine.Graph, error) {
	g := &engine.Graph{}
	for i := range d.Nodes {
		ns := &d.Nodes[i]
		g.Nodes = append(g.Nodes, component.Node(ns.Spec, ns.Params, component.NodeOptions{
			ID: ns.ID, Parallelism: ns.Parallelism, OnError: ns.OnError, NoChain: ns.NoChain,
		}))
	}
	for _, es := range d.Edges {
		g.Edges = append(g.Edges, &engine.Edge{From: es.From, FromPort: es.FromPort, To: es.To, ToPort: es.ToPort, Capacity: es.Capacity, Policy: es.Policy})
	}
	var errs Errors
	for _, ge := range onePerEdge(g.Validate()) {
		errs = append(errs, d.graphError(ge))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return g, nil
}

// graphError places a graph problem at the edge or node it names.
func (d *Document) graphError(ge *engine.GraphError) *Error {
	if ge.Edge >= 0 && ge.Edge < len(d.Edges) {
		e := &d.Edges[ge.Edge]
		return &Error{File: e.File, Line: e.Line, Column: e.Column, Path: e.Path, Msg: ge.Msg}
	}
	for i := range d.Nodes {
		if n := &d.Nodes[i]; n.ID == ge.Node {
			return &Error{File: n.File, Line: n.Line, Column: n.Column, Path: n.Path, Msg: ge.Msg}
		}
	}
	return &Error{File: d.File, Path: d.Mode, Msg: ge.Msg}
}
