package websocket

import (
	"testing"
)

// The fuzz targets feed arbitrary bytes to each preset's decoder: it must
// never panic, and whatever it accepts must be a finite record. Seeds are
// the recorded messages. Run one with, e.g.:
//
//	go test -run '^$' -fuzz FuzzDecodeBinance -fuzztime 30s ./source/websocket/

func fuzzPreset(f *testing.F, files []string, params func() map[string]any) {
	for _, name := range files {
		for _, m := range readLines(f, name) {
			f.Add(m)
		}
	}
	f.Add([]byte(`{"stream":"x","data":{"data":{"e":"trade"}}}`))
	f.Add([]byte(`{"e":"trade","s":"\u0041","t":-1,"p":"1e308","q":"-0","T":-5,"m":false}`))
	td := newTestDec(f, params())
	f.Fuzz(func(t *testing.T, msg []byte) {
		td.trades, td.quotes = td.trades[:0], td.quotes[:0]
		td.handle(msg, 1)
		td.flush()
		for _, tr := range td.trades {
			if tr.Price != tr.Price || tr.Size != tr.Size {
				t.Fatalf("NaN in %+v from %q", tr, msg)
			}
		}
		for _, q := range td.quotes {
			if q.Bid != q.Bid || q.Ask != q.Ask {
				t.Fatalf("NaN in %+v from %q", q, msg)
			}
		}
	})
}

func FuzzDecodeBinance(f *testing.F) {
	fuzzPreset(f, []string{"binance_futures_trade.jsonl", "binance_spot_combined.jsonl", "binance_futures_combined.jsonl"},
		func() map[string]any { return map[string]any{"preset": "binance"} })
}

func FuzzDecodeCoinbase(f *testing.F) {
	fuzzPreset(f, []string{"coinbase.jsonl"},
		func() map[string]any { return map[string]any{"preset": "coinbase", "sequence_check": "sequence"} })
}

func FuzzDecodeGeneric(f *testing.F) {
	fuzzPreset(f, []string{"okx_trades.jsonl"}, func() map[string]any {
		return map[string]any{
			"preset": "generic", "records": "data", "match": map[string]any{"arg.channel": "trades"}, "ts_format": "unix_ms",
			"fields": map[string]any{"symbol": "instId", "price": "px", "size": "sz", "side": "side", "trade_id": "tradeId", "ts": "ts", "seq": "data.0.1"},
		}
	})
}
