package component

import "testing"

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://stream.binance.com:9443/ws/pqia91ma19a5s61cv6a81va65sdf19v8a65a1": "wss://stream.binance.com:9443/ws/xxxxx",
		"wss://h/ws?timestamp=1&signature=abc&listenKey=def":                     "wss://h/ws?timestamp=1&signature=xxxxx&listenKey=xxxxx",
		"wss://u:pw@h/stream?streams=btcusdt@trade/ethusdt@trade":                "wss://u:xxxxx@h/stream?streams=btcusdt@trade/ethusdt@trade",
		"wss://ws-feed.exchange.coinbase.com":                                    "wss://ws-feed.exchange.coinbase.com",
		"wss://h/v1/market-data-stream-endpoint?token=t0k&secret=s3c&password=p": "wss://h/v1/market-data-stream-endpoint?token=xxxxx&secret=xxxxx&password=xxxxx",
		"nats://s3cr3t-nats-token@127.0.0.1:4222":                                "nats://xxxxx@127.0.0.1:4222",
		"tls://t0k@h:4222":                        "tls://xxxxx@h:4222",
		"nats://u:pw@h:4222":                      "nats://u:xxxxx@h:4222",
		"postgres://postgres@127.0.0.1:5432/test": "postgres://postgres@127.0.0.1:5432/test",
	} {
		if got := MaskURL(in, "xxxxx"); got != want {
			t.Errorf("MaskURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// A NATS token (the user info of a nats:// or tls:// URL without a
// password) is a secret; a user name of another scheme is not.
func TestURLSecretsNATSToken(t *testing.T) {
	for in, want := range map[string]string{
		"nats://s3cr3t-nats-token@127.0.0.1:4222": "s3cr3t-nats-token",
		"tls://s3cr3t-nats-token@h:4222":          "s3cr3t-nats-token",
		"nats://user:s3cr3t-pw@h:4222":            "s3cr3t-pw",
		"postgres://postgres@127.0.0.1:5432/test": "",
		"nats://short@h:4222":                     "",
	} {
		got := URLSecrets(in)
		if want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("URLSecrets(%s) = %q, want %q", in, got, want)
		}
	}
}
