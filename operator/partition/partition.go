// Package partition is the operator.hash_partition component: it splits
// records over named outputs p0..pN-1 by the stable hash of their symbol
// text, with md.Split at the level the engine uses for parallelism, so
// partition i holds exactly the symbols instance i of a node with
// parallelism N receives, in every run and process.
package partition

import (
	"context"
	"fmt"
	"strconv"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// Type is the component's type id.
const Type = "operator.hash_partition"

// MaxPartitions bounds partitions.
const MaxPartitions = 1024

func init() {
	component.Register(component.Spec{
		Type: Type, Kind: engine.KindOperator,
		Summary: "Split records over outputs p0..pN-1 by the stable symbol hash parallelism uses",
		Description: "Each record goes to port p<i> with i = md.Split(xxhash64(symbol), instances level, partitions): the same " +
			"choice the engine makes for a node with parallelism: partitions, so it is stable across runs and processes. " +
			"Records sent to a partition with no edge are counted as dropped under unconnected_port_p<i>.",
		Accepts: md.KindTrade | md.KindQuote | md.KindBar, Produces: engine.SameAsInput,
		PortsFn: func(p *component.Params) map[string]md.Kind {
			out := map[string]md.Kind{}
			for i := 0; i < int(p.Int("partitions")); i++ {
				out[PortName(i)] = engine.SameAsInput
			}
			return out
		},
		PortsDoc: "p0 .. p<partitions-1>",
		Fields: []component.Field{
			{Name: "partitions", Type: component.Int, Required: true, Min: component.Bound(1), Max: component.Bound(MaxPartitions),
				Description: "Number of output ports p0..pN-1.", Example: 4},
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			return New(int(p.Int("partitions"))), nil
		},
	})
}

// PortName is the name of partition i.
func PortName(i int) string { return "p" + strconv.Itoa(i) }

// Partition is the operator.
type Partition struct {
	n     int
	names []string
	part  []int32 // per SymID: partition+1, 0 while unknown
	outs  []*md.Batch
	nc    *engine.NodeContext
}

// New returns a partitioner over n outputs.
func New(n int) *Partition {
	p := &Partition{n: n, outs: make([]*md.Batch, n)}
	for i := 0; i < n; i++ {
		p.names = append(p.names, PortName(i))
	}
	return p
}

// Open keeps the node context.
func (p *Partition) Open(ctx context.Context, nc *engine.NodeContext) error {
	p.nc = nc
	return nil
}

func (p *Partition) of(id md.SymID) int {
	if int(id) >= len(p.part) {
		p.part = append(p.part, make([]int32, int(id)+1-len(p.part)+16)...)
	}
	if v := p.part[id]; v != 0 {
		return int(v - 1)
	}
	in := p.nc.Symbols.Get(id)
	i := md.Split(in.Hash, md.SplitInstances, p.n)
	p.part[id] = int32(i + 1)
	return i
}

// Process splits b. A batch whose records all go to one partition is
// forwarded whole.
func (p *Partition) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	first := p.of(sym(b, 0))
	i := 1
	for ; i < n && p.of(sym(b, i)) == first; i++ {
	}
	if i == n {
		b.Retain(1)
		return out.EmitTo(p.names[first], b)
	}
	for j := 0; j < n; j++ {
		k := p.of(sym(b, j))
		o := p.outs[k]
		if o == nil {
			o = p.nc.Pool.GetCap(b.Kind, n)
			p.outs[k] = o
		}
		switch b.Kind {
		case md.KindTrade:
			o.Trades = append(o.Trades, b.Trades[j])
		case md.KindQuote:
			o.Quotes = append(o.Quotes, b.Quotes[j])
		case md.KindBar:
			o.Bars = append(o.Bars, b.Bars[j])
		}
	}
	for k, o := range p.outs {
		if o == nil {
			continue
		}
		p.outs[k] = nil
		if err := out.EmitTo(p.names[k], o); err != nil {
			for _, rest := range p.outs[k+1:] {
				rest.Release()
			}
			clear(p.outs)
			return fmt.Errorf("operator.hash_partition: %w", err)
		}
	}
	return nil
}

func sym(b *md.Batch, i int) md.SymID {
	switch b.Kind {
	case md.KindTrade:
		return b.Trades[i].Sym
	case md.KindQuote:
		return b.Quotes[i].Sym
	}
	return b.Bars[i].Sym
}
