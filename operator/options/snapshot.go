package options

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the chain's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the chain's state in a checkpoint: each option contract's
// last trade, quote and volume by the contract's stable identity (what
// its symbol parses to is derived again on restore), and the latest
// underlying prices by symbol text.
type snapshot struct {
	V          int                `json:"v"`
	Contracts  []contractSnap     `json:"contracts"`
	Underlying map[string]float64 `json:"underlying"`
}

type contractSnap struct {
	Provider string  `json:"p"`
	Symbol   string  `json:"s"`
	Last     float64 `json:"last"`
	Bid      float64 `json:"bid"`
	Ask      float64 `json:"ask"`
	Volume   float64 `json:"volume"`
}

// Snapshot implements engine.Snapshotter.
func (c *Chain) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Underlying: c.underlying}
	c.contracts.Range(func(_ md.SymID, k keyed.Key, x *contract) bool {
		if !x.bad {
			sn.Contracts = append(sn.Contracts, contractSnap{Provider: k.Provider, Symbol: k.Symbol, Last: x.last, Bid: x.bid, Ask: x.ask, Volume: x.volume})
		}
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter. The chain runs as one instance,
// so every state in the checkpoint is its own.
func (c *Chain) Restore(ctx context.Context, states [][]byte) error {
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.options_chain: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.options_chain: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		maps.Copy(c.underlying, sn.Underlying)
		for _, x := range sn.Contracts {
			sym := c.contracts.Restore(keyed.Key{Provider: x.Provider, Symbol: x.Symbol}, contract{last: x.Last, bid: x.Bid, ask: x.Ask, volume: x.Volume})
			c.parse(sym)
		}
	}
	return nil
}
