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
