package config

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
)

// Auto ids of the classic chain's fixed slots.
const (
	classicSourceID  = "source"
	classicBatcherID = "batcher"
	classicSinkID    = "sink"
)

// decodeClassic compiles classic.spec into a linear graph on the same
// engine: source -> operators… -> batcher (an operator.buffer node) -> sink.
// A component without an id gets "source", its type's short name
// ("bars" for operator.bars, "bars_2" for a second one), "batcher", "sink".
func (l *loader) decodeClassic(e entry) {
	m, ok := l.mapping(e.val, e.path, classicKeys)
	if !ok {
		return
	}
	se, ok := m["spec"]
	if !ok || isNull(resolve(se.val)) {
		l.errAt(resolve(e.val), e.path, "missing required key \"spec\"")
		return
	}
	sm, ok := l.mapping(se.val, se.path, specKeys)
	if !ok {
		return
	}
	specNode := resolve(se.val)
	if v, ok := sm["name"]; ok {
		if s, ok := l.str(v); ok && l.doc.Name == "" {
			l.doc.Name = s
		}
	}
	used := map[string]bool{classicSourceID: true, classicBatcherID: true, classicSinkID: true}
	type link struct {
		id   string
		at   *yaml.Node
		path string
	}
	var chain []link
	add := func(id string, ok bool, at *yaml.Node, path string) {
		if ok {
			chain = append(chain, link{id, resolve(at), path})
		}
	}
	// end decodes the chain's source or sink, which the spec must have.
	end := func(key, autoID string, kind engine.NodeKind) {
		v, ok := sm[key]
		if !ok {
			l.errAt(specNode, se.path, "missing required key %q", key)
			l.incomplete = true
			return
		}
		id, ok := l.decodeNode(v.val, v.path, refKeys, autoID, kind)
		add(id, ok, v.val, v.path)
		l.incomplete = l.incomplete || !ok
	}
	end("source", classicSourceID, engine.KindSource)
	if v, ok := sm["operators"]; ok && !isNull(resolve(v.val)) {
		seq := resolve(v.val)
		if seq.Kind != yaml.SequenceNode {
			l.errAt(seq, v.path, "want a list of operators, got %s", describe(seq))
		} else {
			for i, item := range seq.Content {
				auto := shortName(resolve(lookup(item, "type")), used)
				p := index(v.path, i)
				id, ok := l.decodeNode(item, p, refKeys, auto, engine.KindOperator)
				add(id, ok, item, p)
			}
		}
	}
	if v, ok := sm["batcher"]; ok {
		if id, ok := l.decodeBatcher(v); ok {
			add(id, ok, v.val, v.path)
		}
	}
	end("sink", classicSinkID, engine.KindSink)
	for i := 1; i < len(chain); i++ {
		to := chain[i]
		l.doc.Edges = append(l.doc.Edges, EdgeSpec{
			From: chain[i-1].id, To: to.id,
			File: l.fileOf(to.at), Line: to.at.Line, Column: to.at.Column, Path: to.path,
		})
	}
}

// decodeBatcher turns classic.spec.batcher into an operator.buffer node
// whose params are the batcher's keys.
func (l *loader) decodeBatcher(v entry) (string, bool) {
	n := resolve(v.val)
	spec, ok := component.Or(l.opts.Registry).Lookup(bufferType)
	if !ok {
		l.errAt(n, v.path, "a batcher compiles to %s, which is not registered in this build", bufferType)
		return "", false
	}
	if !isNull(n) && n.Kind != yaml.MappingNode {
		l.errAt(n, v.path, "want a mapping of max_rows, max_bytes, flush_interval, drop_policy, got %s", describe(n))
		return "", false
	}
	if first, dup := l.ids[classicBatcherID]; dup {
		l.errAt(n, v.path, "duplicate node id %q (first used by %s)", classicBatcherID, first)
		return "", false
	}
	l.ids[classicBatcherID] = v.path
	l.idOrder = append(l.idOrder, classicBatcherID)
	p := l.decodeParams(spec, classicBatcherID, v, n, v.path)
	l.doc.Nodes = append(l.doc.Nodes, NodeSpec{
		ID: classicBatcherID, Type: spec.Type, Spec: spec, Params: p, Parallelism: 1,
		File: l.fileOf(n), Line: n.Line, Column: n.Column, Path: v.path,
	})
	return classicBatcherID, true
}

// shortName is an operator's auto id: the last part of its type, made
// unique among the ids used so far.
func shortName(t *yaml.Node, used map[string]bool) string {
	base := "op"
	if t != nil && t.Kind == yaml.ScalarNode && t.Value != "" {
		base = t.Value[strings.LastIndexByte(t.Value, '.')+1:]
		if checkID(base) != nil || base == "" {
			base = "op"
		}
	}
	id := base
	for i := 2; used[id]; i++ {
		id = base + "_" + itoa(i)
	}
	used[id] = true
	return id
}
