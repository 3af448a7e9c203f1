package options

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the chain's checkpoint encoding:
// version 2 adds the watermark and the held records (version 1 had none
// and is still read).
const snapshotVersion = 2

// snapshot is the chain's state in a checkpoint: each option contract's
// last trade, quote and volume by the contract's stable identity (what
// its symbol parses to is derived again on restore), and the latest
// underlying prices by symbol text; the watermark and the records held
// until it passes them, in arrival order.
type snapshot struct {
	V          int                `json:"v"`
	Contracts  []contractSnap     `json:"contracts"`
	Underlying map[string]float64 `json:"underlying"`
	WM         int64              `json:"wm"`
	Pending    []pendingSnap      `json:"pending,omitempty"`
}

type pendingSnap struct {
	Provider string  `json:"p"`
	Symbol   string  `json:"s"`
	TS       int64   `json:"ts"`
	Under    bool    `json:"under,omitempty"`
	Trade    bool    `json:"trade,omitempty"`
	OI       bool    `json:"oi,omitempty"`
	A        float64 `json:"a"`
	B        float64 `json:"b"`
}

type contractSnap struct {
	Provider string  `json:"p"`
	Symbol   string  `json:"s"`
	Last     float64 `json:"last"`
	Bid      float64 `json:"bid"`
	Ask      float64 `json:"ask"`
	Volume   float64 `json:"volume"`
	OI       float64 `json:"oi,omitempty"`
	HasOI    bool    `json:"has_oi,omitempty"`
}

// Snapshot implements engine.Snapshotter.
func (c *Chain) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion, Underlying: c.underlying, WM: c.wm}
	for _, r := range c.pend {
		k := keyed.KeyOf(c.nc.Symbols, r.sym)
		sn.Pending = append(sn.Pending, pendingSnap{Provider: k.Provider, Symbol: k.Symbol, TS: r.ts, Under: r.under, Trade: r.trade, OI: r.oi, A: r.a, B: r.b})
	}
	c.contracts.Range(func(_ md.SymID, k keyed.Key, x *contract) bool {
		if !x.bad {
			sn.Contracts = append(sn.Contracts, contractSnap{Provider: k.Provider, Symbol: k.Symbol, Last: x.last, Bid: x.bid, Ask: x.ask, Volume: x.volume, OI: x.oi, HasOI: x.hasOI})
		}
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter. With parallelism each instance
// takes, from every instance's state, the chains it owns by their
// partition key (PartitionKey), so a checkpoint restores at any
// parallelism.
func (c *Chain) Restore(ctx context.Context, states [][]byte) error {
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.options_chain: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion && sn.V != 1 {
			return fmt.Errorf("operator.options_chain: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		for sym, px := range sn.Underlying {
			if c.owns(sym) {
				c.underlying[sym] = px
			}
		}
		if sn.V >= 2 {
			c.wm = max(c.wm, sn.WM)
		}
		for _, r := range sn.Pending {
			if !c.owns(r.Symbol) {
				continue
			}
			sym := c.nc.Symbols.Intern(r.Provider, r.Symbol)
			c.pend = append(c.pend, pending{ts: r.TS, sym: sym, under: r.Under, trade: r.Trade, oi: r.OI, a: r.A, b: r.B})
		}
		for _, x := range sn.Contracts {
			if !c.owns(x.Symbol) {
				continue
			}
			sym := c.contracts.Restore(keyed.Key{Provider: x.Provider, Symbol: x.Symbol}, contract{last: x.Last, bid: x.Bid, ask: x.Ask, volume: x.Volume, oi: x.OI, hasOI: x.HasOI})
			c.parse(sym)
		}
	}
	return nil
}
