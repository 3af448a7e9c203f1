package config

import (
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// schemaID is the $id of the job file schema.
const schemaID = "https://github.com/mdpio/mdp/schema/job.json"

// Patterns that editors check string values against. An interpolated value
// (${VAR} or ${VAR:-default}) is accepted wherever a typed value is, since it
// is only known when the job is loaded.
const (
	interpolatedPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`
	durationPattern     = `^(\$\{.*\}|0|([0-9]+d)?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*)$`
	idPattern           = `^[A-Za-z0-9_-]+$`
)

type obj = map[string]any

// Schema returns the JSON Schema (draft 2020-12) for job files, generated
// from the component registry: each node's params are checked against its
// type's fields (types, enums, bounds, defaults, descriptions, examples),
// and unknown keys are not allowed anywhere. reg is the registry the job files
// are loaded with; nil means component.Default().
func Schema(reg *component.Registry) ([]byte, error) {
	reg = component.Or(reg)
	specs := reg.All()
	defs := obj{
		"interpolated": obj{"type": "string", "pattern": interpolatedPattern,
			"description": "A value taken from the environment when the job loads: ${VAR} or ${VAR:-default}."},
		"duration": obj{"type": "string", "pattern": durationPattern,
			"description": "A duration such as 500ms, 1s, 5m, 1h or 1d.", "examples": []any{"1s"}},
	}
	for _, s := range specs {
		defs[paramsDef(s.Type)] = paramsSchema(s)
	}
	defs["node"] = refSchema(specs, 0, true)
	defs["source_ref"] = refSchema(specs, engine.KindSource, false)
	defs["operator_ref"] = refSchema(specs, engine.KindOperator, false)
	defs["sink_ref"] = refSchema(specs, engine.KindSink, false)
	defs["edge"] = obj{
		"description": "An edge: [from, to] or a mapping. from may name an output port as node.port (bars.late), to an input port (join.right).",
		"oneOf": []any{
			obj{"type": "array", "prefixItems": []any{obj{"type": "string"}, obj{"type": "string"}}, "minItems": 2, "maxItems": 2, "items": false},
			obj{
				"type": "object", "required": []any{"from", "to"}, "additionalProperties": false,
				"properties": obj{
					"from":     obj{"type": "string", "description": "Node id, or node.port for a named output port."},
					"to":       obj{"type": "string", "description": "Node id, or node.port for a named input port."},
					"capacity": obj{"type": "integer", "minimum": 1, "maximum": engine.MaxQueueCapacity, "default": engine.DefaultQueueCapacity, "description": "Queue capacity in batches."},
					"policy": obj{"enum": []any{"block", "drop_oldest", "drop_newest"}, "default": "block",
						"description": "What a full queue does: block (backpressure) or drop (counted)."},
				},
			},
		},
	}
	graph := obj{
		"nodes": obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/node"}},
		"edges": obj{"type": "array", "items": obj{"$ref": "#/$defs/edge"}},
	}
	dagProps := obj{"graph": obj{"type": "object", "additionalProperties": false, "properties": graph,
		"description": "Alias: nodes and edges may be given under dag.graph."}}
	for k, v := range graph {
		dagProps[k] = v
	}
	batcher := obj{"type": "object", "description": "Batches records before the sink; compiles to an " + bufferType + " node."}
	if _, ok := reg.Lookup(bufferType); ok {
		batcher = obj{"$ref": "#/$defs/" + paramsDef(bufferType), "description": batcher["description"]}
	}
	root := obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  schemaID,
		"title":                "mdp job",
		"description":          "An mdp job: a dag of nodes and edges, or a classic linear spec.",
		"type":                 "object",
		"additionalProperties": false,
		"properties": obj{
			"$schema": obj{"type": "string", "description": "The schema an editor checks this file against; ignored by mdp."},
			"mode":    obj{"enum": []any{modeClassic, ModeDAG}, "description": "Which section runs; --mode and " + EnvMode + " override it."},
			"name":    obj{"type": "string", "description": "Job name; --job overrides it."},
			"dag":     obj{"type": "object", "additionalProperties": false, "properties": dagProps, "description": "The job as a graph of nodes and edges."},
			"classic": obj{
				"type": "object", "additionalProperties": false, "required": []any{"spec"},
				"description": "The job as a linear chain: source -> operators -> batcher -> sink.",
				"properties": obj{"spec": obj{
					"type": "object", "additionalProperties": false, "required": []any{"source", "sink"},
					"properties": obj{
						"name":      obj{"type": "string", "description": "Job name when the top-level name is not set."},
						"source":    obj{"$ref": "#/$defs/source_ref"},
						"operators": obj{"type": "array", "items": obj{"$ref": "#/$defs/operator_ref"}},
						"batcher":   batcher,
						"sink":      obj{"$ref": "#/$defs/sink_ref"},
					},
				}},
			},
			"metrics": obj{
				"type": "object", "additionalProperties": false, "description": "Prometheus /metrics endpoint.",
				"properties": obj{
					"enable": typed(obj{"type": "boolean", "default": false, "description": "Serve /metrics."}),
					"listen": obj{"type": "string", "default": defaultMetricsListen, "description": "host:port to listen on."},
				},
			},
			"feedback": obj{
				"type": "object", "additionalProperties": false, "description": "How sources slow down when stores fall behind.",
				"properties": obj{
					"enable_feedback": typed(obj{"type": "boolean", "default": true, "description": "Scale source rates by store level."}),
					"scale_ok":        typed(obj{"type": "number", "minimum": 0, "maximum": 1, "default": 1.0, "description": "Rate factor while stores keep up."}),
					"scale_soft":      typed(obj{"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "Rate factor at the soft level."}),
					"scale_hard":      typed(obj{"type": "number", "minimum": 0, "maximum": 1, "default": 0.0, "description": "Rate factor at the hard level; 0 pauses sources."}),
					"soft_at":         typed(obj{"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": defaultSoftAt, "description": "Queue fill fraction at which a store is soft."}),
					"hard_at":         typed(obj{"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": defaultHardAt, "description": "Queue fill fraction at which a store is hard."}),
				},
			},
			"shutdown_timeout": obj{"$ref": "#/$defs/duration", "default": defaultShutdownTimeout.String(), "description": "How long a graceful stop may take before the job is aborted."},
			"batch_size":       typed(obj{"type": "integer", "minimum": 1, "maximum": md.MaxBatchSize, "description": "Default batch capacity in records."}),
			"restart":          obj{"type": "string", "enum": []string{RestartAlways, RestartOnFailure, RestartNever}, "default": RestartOnFailure, "description": "What a job server (mdp serve) does when the job ends: always restart it, restart it on-failure, or never."},
			"checkpoint": obj{
				"type": "object", "additionalProperties": false, "required": []any{"interval", "store"},
				"description": "Aligned checkpoints: source positions and operator state, restored by mdp run --resume.",
				"properties": obj{
					"interval":           obj{"$ref": "#/$defs/duration", "description": "Time between checkpoints.", "examples": []any{"5s"}},
					"store":              obj{"type": "string", "description": "Directory (or file:// URL) checkpoints are written to."},
					"keep":               typed(obj{"type": "integer", "minimum": 1, "maximum": maxCheckpointKeep, "default": defaultCheckpointKeep, "description": "Checkpoints kept in the store."}),
					"tolerable_failures": typed(obj{"type": "integer", "minimum": -1, "maximum": maxTolerableFailures, "default": -1, "description": "Checkpoints in a row that may fail before the job fails; -1 never fails the job."}),
				},
			},
			"scaleout": obj{
				"type": "object", "additionalProperties": false, "required": []any{"nats"},
				"description": "Run the job over NATS JetStream: its source as ingest publishing into one stream with a subject per partition, the rest of the graph as workers reading the partitions.",
				"properties": obj{
					"nats":                obj{"type": "string", "description": "embedded (nats-server inside mdp) or the nats:// or tls:// URL of a server with JetStream.", "examples": []any{ScaleoutEmbedded, "nats://127.0.0.1:4222"}},
					"partitions":          typed(obj{"type": "integer", "minimum": 1, "maximum": MaxPartitions, "default": defaultPartitions, "description": "Fixed number of symbol partitions."}),
					"store":               obj{"type": "string", "description": "Directory of the embedded server's file store (nats: embedded only)."},
					"sync":                obj{"type": "string", "enum": []string{SyncAlways, SyncInterval}, "default": SyncAlways, "description": "Embedded store fsync: always (every write) or interval (nats-server's two-minute default)."},
					"records_per_message": typed(obj{"type": "integer", "minimum": 1, "maximum": MaxRecordsPerMessage, "description": "Most records of one partition the ingest puts in a data message (fewer when its watermark interval ends first, or to fit the NATS server's max_payload). Default: 16384 with the embedded store and sync: always (fewer fsyncs), else 4096."}),
					"outage_limit":        obj{"$ref": "#/$defs/duration", "default": "1m", "description": "How long the ingest rides out NATS not taking its messages (a server restart, a lost connection) before it fails (at least 1s)."},
					"retention": obj{
						"type": "object", "additionalProperties": false,
						"description": "The stream's limits: a publish past max_bytes or max_msgs fails the ingest; max_age removes older messages, and a worker that still needed one stops with a retention error.",
						"properties": obj{
							"max_age":   obj{"$ref": "#/$defs/duration", "default": "72h", "description": "How long the stream keeps a message (at least 100ms)."},
							"max_bytes": typed(obj{"type": "integer", "minimum": 0, "default": 0, "description": "Largest stream size in bytes; 0: no bound."}),
							"max_msgs":  typed(obj{"type": "integer", "minimum": 0, "default": 0, "description": "Most messages in the stream; 0: no bound."}),
						},
					},
				},
			},
		},
		"$defs": defs,
	}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode job schema: %w", err)
	}
	return out, nil
}

func paramsDef(t string) string { return "params." + t }

// refSchema is a node (dag) or a classic component reference: its type is
// one of the registered ids (of one kind for a classic slot) and its params
// follow that type's spec through if/then.
func refSchema(specs []*component.Spec, kind engine.NodeKind, needID bool) obj {
	var types, rules []any
	for _, s := range specs {
		if kind != 0 && s.Kind != kind {
			continue
		}
		for _, id := range append([]string{s.Type}, s.Aliases...) {
			types = append(types, id)
			rules = append(rules, obj{
				"if":   obj{"properties": obj{"type": obj{"const": id}}, "required": []any{"type"}},
				"then": obj{"properties": obj{"params": obj{"$ref": "#/$defs/" + paramsDef(s.Type)}}},
			})
		}
	}
	typeSchema := obj{"type": "string", "description": "Component type id (see `mdp components`)."}
	if len(types) > 0 {
		typeSchema["enum"] = types
	}
	required := []any{"type"}
	if needID {
		required = []any{"id", "type"}
	}
	s := obj{
		"type": "object", "additionalProperties": false, "required": required,
		"properties": obj{
			"id":          obj{"type": "string", "pattern": idPattern, "description": "Node id, unique in the job."},
			"type":        typeSchema,
			"params":      obj{"type": "object"},
			"parallelism": typed(obj{"type": "integer", "minimum": 1, "maximum": engine.MaxParallelism, "default": 1, "description": "Instances, partitioned by symbol."}),
			"on_error":    obj{"enum": []any{"fail", "skip", "dead_letter"}, "default": "fail", "description": "What a failing batch does."},
			"chain":       typed(obj{"type": "boolean", "default": true, "description": "Whether the node may be chained to its neighbours (operator chaining: a one-instance node runs in its upstream's goroutine, called directly instead of through a queue); false keeps every edge of the node a queue."}),
		},
	}
	if len(rules) > 0 {
		s["allOf"] = rules
	}
	return s
}

func paramsSchema(s *component.Spec) obj {
	props := obj{}
	var required []any
	for i := range s.Fields {
		f := &s.Fields[i]
		props[f.Name] = fieldSchema(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	out := obj{"type": "object", "additionalProperties": false, "properties": props, "description": s.Summary}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func fieldSchema(f *component.Field) obj {
	var s obj
	switch f.Type {
	case component.String:
		s = obj{"type": "string"}
		if len(f.Enum) > 0 {
			enum := make([]any, len(f.Enum))
			for i, e := range f.Enum {
				enum[i] = e
			}
			s = obj{"enum": enum}
		}
	case component.Int, component.Float:
		t := "integer"
		if f.Type == component.Float {
			t = "number"
		}
		s = obj{"type": t}
		if f.Min != nil {
			s["minimum"] = *f.Min
		}
		if f.Max != nil {
			s["maximum"] = *f.Max
		}
	case component.Bool:
		s = obj{"type": "boolean"}
	case component.Duration:
		s = obj{"$ref": "#/$defs/duration"}
	case component.Time:
		s = obj{"type": "string", "format": "date-time"}
	case component.Strings:
		s = obj{"anyOf": []any{obj{"type": "string"}, obj{"type": "array", "items": obj{"type": "string"}}}}
	case component.Map:
		s = obj{"type": "object"}
	case component.List:
		s = obj{"type": "array"}
	default:
		s = obj{}
	}
	switch {
	case f.Type == component.Int, f.Type == component.Float, f.Type == component.Bool, len(f.Enum) > 0:
		s = typed(s)
	}
	if f.Description != "" {
		s["description"] = f.Description
	}
	if f.Default != nil {
		s["default"] = f.Default
	}
	if f.Example != nil {
		s["examples"] = []any{f.Example}
	}
	if f.Secret {
		s["writeOnly"] = true
	}
	return s
}

// typed lets a typed value also be written as ${VAR}. Descriptions,
// defaults and examples stay on the outer schema, where editors look.
func typed(s obj) obj {
	if _, isRef := s["$ref"]; isRef || len(s) == 0 {
		return s
	}
	if s["type"] == "object" || s["type"] == "array" {
		return s
	}
	out := obj{}
	for _, k := range []string{"description", "default", "examples"} {
		if v, ok := s[k]; ok {
			out[k] = v
			delete(s, k)
		}
	}
	out["anyOf"] = []any{s, obj{"$ref": "#/$defs/interpolated"}}
	return out
}
