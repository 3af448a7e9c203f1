package dedupe_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/dedupe"
	"github.com/mdpio/mdp/operator/internal/optest"
)

const s = int64(time.Second)

func tradeIDs(ts []md.Trade) []int64 {
	var out []int64
	for _, t := range ts {
		out = append(out, t.TS/s*1000+t.TradeID)
	}
	slices.Sort(out)
	return out
}

// Trade ids repeat within and beyond the ttl, per symbol, out of order
// within the source's lateness.
func TestDedupeWithinTTLOfEventTime(t *testing.T) {
	in := []md.Trade{
		{TS: 10 * s, TradeID: 1, Sym: 0, Price: 1, Size: 1},
		{TS: 10 * s, TradeID: 1, Sym: 1, Price: 1, Size: 1}, // other symbol: kept
		{TS: 9 * s, TradeID: 2, Sym: 0, Price: 1, Size: 1},  // out of order, new key
		{TS: 11 * s, TradeID: 1, Sym: 0, Price: 1, Size: 1}, // duplicate (within 5s)
		{TS: 12 * s, TradeID: 2, Sym: 0, Price: 1, Size: 1}, // duplicate of the ts 9 one
		{TS: 14 * s, TradeID: 1, Sym: 0, Price: 1, Size: 1}, // 10+5=15 > wm 13: duplicate
		{TS: 17 * s, TradeID: 9, Sym: 0, Price: 1, Size: 1}, // wm 16: key 1 (expires 15) and key 2 (14) forgotten
		{TS: 17 * s, TradeID: 1, Sym: 0, Price: 1, Size: 1}, // seen again after expiry: kept
		{TS: 18 * s, TradeID: 1, Sym: 0, Price: 1, Size: 1}, // duplicate of the ts 17 one
		{TS: 18 * s, Seq: 7, Sym: 1, Price: 1, Size: 1},     // no trade id: keyed by seq
		{TS: 18 * s, Seq: 7, Sym: 1, Price: 1, Size: 1},     // duplicate by seq
		{TS: 19 * s, Sym: 1, Price: 1, Size: 1},             // keyless: passes
		{TS: 19 * s, Sym: 1, Price: 1, Size: 1},             // keyless: passes
	}
	want := []int64{9002, 10001, 10001, 17001, 17009, 18000, 19000, 19000}
	for _, par := range []int{1, 4} {
		for _, bs := range []int{1, 4, 64} {
			res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A", "B"}, Trades: in, BatchSize: bs},
				Type: dedupe.Type, Params: map[string]any{"ttl": "5s"}, Parallelism: par, OOO: time.Second})
			if got := tradeIDs(res.Ports[""].Trades); !slices.Equal(got, want) {
				t.Fatalf("parallelism %d, batch %d: got %v, want %v", par, bs, got, want)
			}
			if res.Drops["duplicate"] != 5 || res.Counts["keyless"] != 2 {
				t.Fatalf("parallelism %d, batch %d: drops %v counts %v", par, bs, res.Drops, res.Counts)
			}
		}
	}
}

func TestDedupeMemoryIsBoundedAndEvictionsCounted(t *testing.T) {
	var in []md.Trade
	for i := 0; i < 10; i++ {
		in = append(in, md.Trade{TS: s + int64(i), TradeID: int64(i + 1), Price: 1, Size: 1})
	}
	// ids 1..10 then 1 again: with max_keys 4, key 1 was evicted (passes)
	// and 10 is still there (dropped).
	in = append(in, md.Trade{TS: 2 * s, TradeID: 1, Price: 1, Size: 1}, md.Trade{TS: 2 * s, TradeID: 10, Price: 1, Size: 1})
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Trades: in, BatchSize: 5},
		Type: dedupe.Type, Params: map[string]any{"ttl": "1h", "max_keys": 4}})
	if n := len(res.Ports[""].Trades); n != 11 || res.Drops["duplicate"] != 1 || res.Counts["evicted"] != 7 {
		t.Fatalf("passed %d, drops %v, counts %v", n, res.Drops, res.Counts)
	}
}

func TestDedupeKeyExpression(t *testing.T) {
	qs := []md.Quote{{TS: 1, Bid: 1, Ask: 2, Seq: 1}, {TS: 2, Bid: 1, Ask: 2, Seq: 2}, {TS: 3, Bid: 1, Ask: 3, Seq: 3}}
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Quotes: qs}, Type: dedupe.Type,
		Params: map[string]any{"ttl": "1m", "key": `string(bid) + "/" + string(ask)`}})
	if q := res.Ports[""].Quotes; len(q) != 2 || q[0].TS != 1 || q[1].TS != 3 {
		t.Fatalf("quotes %+v", q)
	}
}

func TestDedupeBadParams(t *testing.T) {
	for _, tc := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{}, `missing required param "ttl"`},
		{map[string]any{"ttl": "0s"}, "ttl"},
		{map[string]any{"ttl": "1s", "max_keys": 0}, "max_keys"},
		{map[string]any{"ttl": "1s", "key": "price > 1"}, "integer or a string"},
		{map[string]any{"ttl": "1s", "key": "tradeid"}, "tradeid"},
	} {
		if err := optest.Params(dedupe.Type, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.p, err, tc.want)
		}
	}
}

// Steady state: 4096 live keys over 64 symbols, every record new, the
// oldest expiring as the watermark moves.
func BenchmarkDedupe(b *testing.B) {
	in := optest.NewInstance(b, dedupe.Type, map[string]any{"ttl": "4096ns", "max_keys": 1 << 20}, enginetest.Symbols(64))
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = enginetest.Trades(1024, 64, 0)
	optest.Bench(b, in, 1024, 64, func(i int) {
		for j := range batch.Trades {
			n := int64(i*1024 + j)
			batch.Trades[j].TS, batch.Trades[j].TradeID = n, n+1
		}
		in.Process(batch)
		in.Watermark(int64(i*1024 + 1023))
	})
}
