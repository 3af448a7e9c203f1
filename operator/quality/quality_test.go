package quality_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/quality"
)

const t0 = int64(1_700_000_000_000_000_000)

// Trades of two symbols, TradeID naming each; the comment says which rule
// each bad one breaks.
func trades() []md.Trade {
	return []md.Trade{
		{TradeID: 1, TS: t0, Ingest: t0, Price: 10, Size: 1, Seq: 1, Sym: 0},
		{TradeID: 2, TS: t0 + 1, Price: math.NaN(), Size: 1, Seq: 2, Sym: 0},                 // non_finite
		{TradeID: 3, TS: t0 + 2, Price: -1, Size: 1, Seq: 3, Sym: 0},                         // non_positive_price
		{TradeID: 4, TS: t0 + 3, Price: 10, Size: 0, Seq: 4, Sym: 0},                         // non_positive_size
		{TradeID: 5, TS: t0 - 1, Price: 10, Size: 1, Seq: 5, Sym: 0},                         // ts_out_of_range (before min_ts)
		{TradeID: 6, TS: t0 + 10, Ingest: t0 + 10 + 2e9, Price: 10, Size: 1, Seq: 6, Sym: 1}, // ingest_skew 2s > 1s
		{TradeID: 7, TS: t0 + 11, Price: 10, Size: 1, Seq: 6, Sym: 0},                        // fine: seq 6 > 1 (sym 0's last good)
		{TradeID: 8, TS: t0 + 12, Price: 10, Size: 1, Seq: 6, Sym: 0},                        // sequence: 6 not above 6
		{TradeID: 9, TS: t0 + 13, Price: 10, Size: 1, Seq: 0, Sym: 0},                        // fine: no seq
		{TradeID: 10, TS: t0 + 14, Price: math.Inf(1), Size: -1, Seq: 9, Sym: 1},             // non_finite first
		{TradeID: 11, TS: t0 + 3e9, Price: 10, Size: 1, Seq: 7, Sym: 1},                      // fine
	}
}

var params = map[string]any{"min_ts": "2023-11-14T22:13:20Z", "max_ingest_skew": "1s"}

func ids(ts []md.Trade) []int64 {
	var out []int64
	for _, t := range ts {
		out = append(out, t.TradeID)
	}
	slices.Sort(out)
	return out
}

func TestQualityDropsByReason(t *testing.T) {
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A", "B"}, Trades: trades(), BatchSize: 3},
			Type: quality.Type, Params: params, Parallelism: par})
		if got := ids(res.Ports[""].Trades); !slices.Equal(got, []int64{1, 7, 9, 11}) {
			t.Fatalf("parallelism %d: passed %v", par, got)
		}
		want := map[string]int64{"non_finite": 2, "non_positive_price": 1, "non_positive_size": 1, "ts_out_of_range": 1, "ingest_skew": 1, "sequence": 1}
		for k, v := range want {
			if res.Drops[k] != v {
				t.Fatalf("parallelism %d: drops %v, want %v", par, res.Drops, want)
			}
		}
	}
}

func TestQualityDeadLetters(t *testing.T) {
	p := map[string]any{"min_ts": "2023-11-14T22:13:20Z", "max_ingest_skew": "1s", "action": "dead_letter"}
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A", "B"}, Trades: trades()},
		Type: quality.Type, Params: p, Ports: []string{engine.PortDeadLetter}})
	dl := res.Ports[engine.PortDeadLetter]
	if got := ids(dl.Trades); !slices.Equal(got, []int64{2, 3, 4, 5, 6, 8, 10}) {
		t.Fatalf("dead-lettered %v", got)
	}
	if !slices.Contains(dl.Reasons, "quality: crossed_quote") && !slices.Contains(dl.Reasons, "quality: sequence") {
		t.Fatalf("reasons %v", dl.Reasons)
	}
	if res.Counts["non_finite"] != 2 || len(res.Drops) != 0 {
		t.Fatalf("counts %v drops %v", res.Counts, res.Drops)
	}
}

func TestQualityQuotesAndChecksSubset(t *testing.T) {
	qs := []md.Quote{
		{TS: 1, Bid: 10, Ask: 11, Seq: 1},
		{TS: 2, Bid: 12, Ask: 11, Seq: 2}, // crossed
		{TS: 3, Bid: 0, Ask: 11, Seq: 3},  // one side absent: fine
		{TS: 4, Bid: 0, Ask: 0, Seq: 4},   // no side
		{TS: 5, Bid: 10, Ask: 11, BidSize: -1, Seq: 5},
		{TS: 6, Bid: 10, Ask: 10, Seq: 3}, // sequence: 3 not above 3 (failed records do not advance it)
	}
	res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Quotes: qs}, Type: quality.Type, Params: map[string]any{}})
	if n := len(res.Ports[""].Quotes); n != 2 || res.Drops["crossed_quote"] != 1 || res.Drops["non_positive_price"] != 1 || res.Drops["non_positive_size"] != 1 || res.Drops["sequence"] != 1 {
		t.Fatalf("passed %d, drops %v", n, res.Drops)
	}
	res = optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: []string{"A"}, Quotes: qs}, Type: quality.Type, Params: map[string]any{"checks": []any{"crossed"}}})
	if n := len(res.Ports[""].Quotes); n != 5 || res.Drops["crossed_quote"] != 1 {
		t.Fatalf("only crossed: passed %d, drops %v", n, res.Drops)
	}
}

func TestQualityBadParams(t *testing.T) {
	for _, tc := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{"checks": []any{"crossd"}}, "crossd"},
		{map[string]any{"action": "skip"}, "action"},
		{map[string]any{"min_ts": "2024-01-02T00:00:00Z", "max_ts": "2024-01-01T00:00:00Z"}, "max_ts must be after min_ts"},
		{map[string]any{"max_ingest_skew": "-1s"}, "max_ingest_skew"},
	} {
		if err := optest.Params(quality.Type, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.p, err, tc.want)
		}
	}
}

func BenchmarkQuality(b *testing.B) {
	in := optest.NewInstance(b, quality.Type, map[string]any{"max_ingest_skew": "1s"}, enginetest.Symbols(64))
	batch := md.NewBatch(md.KindTrade)
	batch.Trades = enginetest.Trades(1024, 64, 1)
	optest.Bench(b, in, 1024, 16, func(i int) {
		for j := range batch.Trades {
			batch.Trades[j].Seq = uint64(i*1024 + j + 1)
		}
		in.Process(batch)
	})
}
