package runtime_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
	_ "github.com/mdpio/mdp/sink/nats"
	_ "github.com/mdpio/mdp/sink/null"
	_ "github.com/mdpio/mdp/source/websocket"
)

func TestRedactPatterns(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:s3cret@db:5432/x?sslmode=disable":                  "postgres://app:xxxxx@db:5432/x?sslmode=disable",
		"dial nats://u:p@127.0.0.1:4222 failed":                            "dial nats://u:xxxxx@127.0.0.1:4222 failed",
		"host=db user=app password=s3cret dbname=x":                        "host=db user=app password=xxxxx dbname=x",
		`connect: password="a b c" rejected`:                               `connect: password=xxxxx rejected`,
		"api_key: abc123, retrying":                                        "api_key: xxxxx, retrying",
		"Token=abc&x=1":                                                    "Token=xxxxx&x=1",
		"http://example.com/path@v1":                                       "http://example.com/path@v1",
		"redis://localhost:6379/0":                                         "redis://localhost:6379/0",
		`missing required param "password"`:                                `missing required param "password"`,
		`Get "https://h/ws?timestamp=1&signature=abc&listenKey=def&key=k"`: `Get "https://h/ws?timestamp=1&signature=xxxxx&listenKey=xxxxx&key=xxxxx"`,
	} {
		if got := runtime.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactorSecretParamsAndLogs(t *testing.T) {
	doc, err := config.LoadBytes("r.yaml", job("r", "count: 1", `name: r, password: "pa55word!", dsn: "x"`, ""), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := runtime.NewRedactor(doc)
	if got := r.String("auth failed with pa55word! twice: pa55word!"); got != "auth failed with xxxxx twice: xxxxx" {
		t.Fatalf("String: %q", got)
	}
	p := r.RedactedParams(doc.Nodes[1].Spec, doc.Nodes[1].Params)
	if p["password"] != runtime.Mask || p["name"] != "r" || p["dsn"] != "x" || p["block"] != false {
		t.Fatalf("RedactedParams: %v", p)
	}
	base := errors.New("login pa55word! refused")
	red := r.RedactError(base)
	if red.Error() != "login xxxxx refused" || !errors.Is(red, base) {
		t.Fatalf("RedactError: %v", red)
	}
	if r.RedactError(nil) != nil {
		t.Fatal("RedactError(nil) != nil")
	}

	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("dsn", "postgres://u:pa55word!@h/db")
	log.Info("connecting with pa55word!", "err", base, "list", []string{"pa55word!"},
		slog.Group("g", "token", "token=abc"))
	out := buf.String()
	if strings.Contains(out, "pa55word") || strings.Contains(out, "abc") {
		t.Fatalf("secret in log: %s", out)
	}
	for _, want := range []string{`"msg":"connecting with xxxxx"`, `"dsn":"postgres://u:xxxxx@h/db"`, `"err":"login xxxxx refused"`, `"list":["xxxxx"]`, `"g":{"token":"token=xxxxx"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}

// A WebSocket URL param's secrets (a listen key in the path, a signature in
// the query) are masked wherever they appear, in any spelling of the URL.
func TestRedactorURLSecrets(t *testing.T) {
	const key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
	doc, err := config.LoadBytes("w.yaml", []byte(`mode: dag
dag:
  nodes:
    - {id: src, type: provider.websocket, params: {preset: binance, url: "wss://fstream.binance.com/ws/`+key+`?signature=5ig"}}
    - {id: out, type: sink.null}
  edges: [[src, out]]
`), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := runtime.NewRedactor(doc)
	got := r.String(`dial "https://fstream.binance.com/ws/` + key + `?signature=5ig": refused; listen key ` + key)
	if want := `dial "https://fstream.binance.com/ws/xxxxx?signature=xxxxx": refused; listen key xxxxx`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// A NATS token in a bus component's URL (nats://token@host) is masked
// wherever it appears, as a URL's password is.
func TestRedactorNATSToken(t *testing.T) {
	const token = "s3cr3t-nats-token"
	doc, err := config.LoadBytes("n.yaml", []byte(`mode: dag
dag:
  nodes:
    - {id: src, type: provider.websocket, params: {preset: binance, url: "wss://fstream.binance.com/ws/btcusdt@trade"}}
    - {id: out, type: sink.nats, params: {url: "nats://`+token+`@127.0.0.1:4222", subject: md.x}}
  edges: [[src, out]]
`), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := runtime.NewRedactor(doc).String(`nats: dial nats://` + token + `@127.0.0.1:4222: refused (token ` + token + `)`)
	if want := `nats: dial xxxxx: refused (token xxxxx)`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
