package quality

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mdpio/mdp/engine/keyed"
	"github.com/mdpio/mdp/md"
)

// snapshotVersion is the version of the checker's checkpoint encoding.
const snapshotVersion = 1

// snapshot is the checker's state in a checkpoint: the last sequence
// number of each symbol, by stable identity.
type snapshot struct {
	V    int       `json:"v"`
	Seqs []seqSnap `json:"seqs"`
}

type seqSnap struct {
	Provider string `json:"p"`
	Symbol   string `json:"s"`
	Seq      uint64 `json:"seq"`
}

// Snapshot implements engine.Snapshotter.
func (q *Quality) Snapshot(ctx context.Context) ([]byte, error) {
	sn := snapshot{V: snapshotVersion}
	q.lastSeq.Range(func(_ md.SymID, k keyed.Key, seq *uint64) bool {
		sn.Seqs = append(sn.Seqs, seqSnap{Provider: k.Provider, Symbol: k.Symbol, Seq: *seq})
		return true
	})
	return json.Marshal(&sn)
}

// Restore implements engine.Snapshotter: it takes the symbols this
// instance owns from every instance's snapshot, so the parallelism may
// change.
func (q *Quality) Restore(ctx context.Context, states [][]byte) error {
	for i, data := range states {
		if len(data) == 0 {
			continue
		}
		var sn snapshot
		if err := json.Unmarshal(data, &sn); err != nil {
			return fmt.Errorf("operator.quality: checkpoint state of instance %d: %w", i, err)
		}
		if sn.V != snapshotVersion {
			return fmt.Errorf("operator.quality: checkpoint state version %d; this mdp reads version %d", sn.V, snapshotVersion)
		}
		for _, s := range sn.Seqs {
			k := keyed.Key{Provider: s.Provider, Symbol: s.Symbol}
			if k.Owner(q.nc.Instances) == q.nc.Instance {
				q.lastSeq.Restore(k, s.Seq)
			}
		}
	}
	return nil
}
