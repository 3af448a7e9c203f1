package component

import "testing"

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://stream.binance.com:9443/ws/pqia91ma19a5s61cv6a81va65sdf19v8a65a1": "wss://stream.binance.com:9443/ws/xxxxx",
		"wss://h/ws?timestamp=1&signature=abc&listenKey=def":                     "wss://h/ws?timestamp=1&signature=xxxxx&listenKey=xxxxx",
		"wss://u:pw@h/stream?streams=btcusdt@trade/ethusdt@trade":                "wss://u:xxxxx@h/stream?streams=btcusdt@trade/ethusdt@trade",
		"wss://ws-feed.exchange.coinbase.com":                                    "wss://ws-feed.exchange.coinbase.com",
		"wss://h/v1/market-data-stream-endpoint?token=t0k&secret=s3c&password=p": "wss://h/v1/market-data-stream-endpoint?token=xxxxx&secret=xxxxx&password=xxxxx",
	} {
		if got := MaskURL(in, "xxxxx"); got != want {
			t.Errorf("MaskURL(%s) = %s, want %s", in, got, want)
		}
	}
}
