package engine

import "github.com/mdpio/mdp/md"

// InputKinds returns the record kinds that reach the node on its inputs, as
// Graph.Validate found them (zero before it ran or when it found problems
// upstream of the node).
func (n *Node) InputKinds() md.Kind { return n.inKind }

// InputSchemas returns the schemas of the derived records that reach the
// node, as Graph.Validate found them: the upstream nodes' declared schemas
// (Node.Schemas), carried through pass-through operators. A node whose
// params depend on them (an expression over a derived record's fields) is
// checked against them when the job is built (component.Spec.CheckInputs),
// and learns the same schemas at Open as NodeContext.InputSchemas.
func (n *Node) InputSchemas() []*md.Schema { return n.inSchemas }

// PartitionKey maps a symbol to the hash its records are partitioned by on
// their way to a node that runs as several instances, for a node whose
// state joins records of different symbols (an option and its underlying):
// records whose symbols map to the same hash reach the same instance. A
// sender calls it once per symbol and target, when it first splits a batch
// after the symbol was interned (the split table), never per record. It
// must be a pure function of the instrument, the same in every process. Nil
// means the symbol's own hash (md.Instrument.Hash).
type PartitionKey func(in *md.Instrument) uint64

// hash is the hash t splits the records of in by.
func (t *target) hash(in *md.Instrument) uint64 {
	if t.key != nil {
		return t.key(in)
	}
	return in.Hash
}
