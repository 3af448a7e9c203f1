package rabbitmqsrc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/sink/rabbitmq"
	_ "github.com/mdpio/mdp/source/rabbitmq"
)

const hint = "start rabbitmq-server on 127.0.0.1:5672 with guest/guest (apt-get install rabbitmq-server), or point MDP_TEST_AMQP_URL at one"

func amqpURL(t testing.TB) (string, *amqp.Channel) {
	t.Helper()
	u := os.Getenv("MDP_TEST_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.Dial(u)
	if err != nil {
		testenv.Missing(t, "RabbitMQ", err.Error(), hint)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return u, ch
}

// queue declares a fresh queue bound to exchange ex with keys (deleted at
// the end).
func queue(t testing.TB, ch *amqp.Channel, ex string, keys ...string) string {
	t.Helper()
	q := bustest.Unique("mdptest.")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if ex != "" {
		if err := ch.ExchangeDeclare(ex, "topic", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := ch.QueueBind(q, k, ex, false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(q, false, false, false) })
	return q
}

func exchange(t testing.TB, ch *amqp.Channel) string {
	ex := bustest.Unique("mdptest.x.")
	t.Cleanup(func() { _ = ch.ExchangeDelete(ex, false, false) })
	return ex
}

func TestRoundTrip(t *testing.T) {
	url, ch := amqpURL(t)
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"}
	t.Run("trades by symbol key", func(t *testing.T) {
		ex := exchange(t, ch)
		q := queue(t, ch, ex, "md.trade.*")
		want := bustest.Trades(5000, syms)
		pj := bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "exchange": ex})
		if got := pj.NodeSummary("pub")["messages"]; got != 250 {
			t.Fatalf("published %d messages, want 250 (one per symbol of each batch)", got)
		}
		s, j := bustest.Read(t, "provider.rabbitmq", map[string]any{"url": url, "queue": q, "exchange": ex, "binding_keys": []string{"md.trade.*"}},
			md.KindTrade, len(want), bustest.ReadOptions{})
		bustest.CheckPerSymbolOrder(t, s, want, syms)
		if got := j.NodeSummary("sub")["messages"]; got != 250 {
			t.Fatalf("consumed %d messages, want 250", got)
		}
		if info, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil); info.Messages != 0 {
			t.Fatalf("%d messages left in the queue", info.Messages)
		}
	})
	t.Run("bars in order", func(t *testing.T) {
		q := queue(t, ch, "")
		want := bustest.Bars(777, syms)
		bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Bars: want, BatchSize: 64}, map[string]any{"url": url, "routing_key": q})
		s, _ := bustest.Read(t, "provider.rabbitmq", map[string]any{"url": url, "queue": q, "kind": "bar"}, md.KindBar, len(want), bustest.ReadOptions{})
		bustest.CheckBars(t, s, want, syms)
	})
}

// TestSymbolOrderFourQueues: the sink keys by partition; four queues, one
// per partition, each with its own source, keep every symbol's order.
func TestSymbolOrderFourQueues(t *testing.T) {
	url, ch := amqpURL(t)
	ex := exchange(t, ch)
	var qs []string
	for p := range 4 {
		qs = append(qs, queue(t, ch, ex, fmt.Sprintf("md.trade.%d", p)))
	}
	syms := []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"}
	want := bustest.Trades(20000, syms)
	bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 256},
		map[string]any{"url": url, "exchange": ex, "routing_key": "md.{kind}.{partition}", "partitions": 4})
	var nodes []*engine.Node
	for p, q := range qs {
		nodes = append(nodes, bustest.Node(t, "provider.rabbitmq", fmt.Sprintf("sub%d", p), map[string]any{"url": url, "queue": q}))
	}
	s, j := bustest.Read(t, "", nil, md.KindTrade, len(want), bustest.ReadOptions{Sources: nodes})
	bustest.CheckPerSymbolOrder(t, s, want, syms)
	used := 0
	for p := range 4 {
		if bustest.NodeStatus(j, fmt.Sprintf("sub%d", p)).EventsOut > 0 {
			used++
		}
	}
	if used < 3 {
		t.Fatalf("%d of 4 partition queues used", used)
	}
}

// TestReconnectMidStream cuts every connection of both jobs while records
// flow: the sink publishes its unconfirmed messages again, the broker
// delivers the unacknowledged ones again; every record arrives (some
// twice, as documented).
func TestReconnectMidStream(t *testing.T) {
	url, ch := amqpURL(t)
	q := queue(t, ch, "")
	px := tcpproxy.Start(t, "127.0.0.1:5672")
	purl := strings.Replace(url, "127.0.0.1:5672", px.Addr(), 1)
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(100_000, syms)
	var wg sync.WaitGroup
	var pj *engine.Job
	wg.Add(1)
	go func() {
		defer wg.Done()
		src := &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 64}
		g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src),
			bustest.Node(t, "sink.rabbitmq", "pub", map[string]any{"url": purl, "routing_key": q, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms", "max_attempts": 100})},
			Edges: []*engine.Edge{{From: "src", To: "pub"}}}
		j, err := engine.New(g, engine.Options{Job: "pub"})
		if err == nil {
			err = j.Run(context.Background())
		}
		if err != nil {
			t.Error(err)
		}
		pj = j
	}()
	s, j := bustest.Read(t, "provider.rabbitmq", map[string]any{"url": purl, "queue": q, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms"},
		md.KindTrade, len(want), bustest.ReadOptions{During: func() {
			for range 3 {
				px.CutAfter(t, 1<<20, 30*time.Second)
			}
		}, Settle: 500 * time.Millisecond, Until: bustest.Distinct(len(want))})
	wg.Wait()
	if t.Failed() {
		return
	}
	dedup := bustest.Dedup(s, false)
	sorted := bustest.Dedup(s, true)
	bustest.CheckTrades(t, sorted, want, syms)
	var reconnects int64
	for _, n := range append(j.Status().Nodes, pj.Status().Nodes...) {
		reconnects += n.Counters["reconnects"]
	}
	if reconnects < 2 {
		t.Fatalf("%d reconnects after 3 cuts", reconnects)
	}
	t.Logf("%d records, %d duplicates, %d reconnects", len(s.Trades), len(s.Trades)-len(dedup.Trades), reconnects)
}

// TestMalformedDeadLettered: messages that are not frames are counted by
// reason and rejected to the dead-letter exchange (the broker's
// dead-lettering) and, with on_error: dead_letter too, written to the
// dead-letter file; the good ones arrive.
func TestMalformedDeadLettered(t *testing.T) {
	url, ch := amqpURL(t)
	dlx := exchange(t, ch)
	if err := ch.ExchangeDeclare(dlx, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	dlq := queue(t, ch, "")
	if err := ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	q := bustest.Unique("mdptest.")
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-dead-letter-exchange": dlx}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(q, false, false, false) })
	ctx := context.Background()
	for _, m := range [][]byte{[]byte(`{"not":"a frame"}`), {'M', 'D', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {'M', 'D'}} {
		if err := ch.PublishWithContext(ctx, "", q, false, false, amqp.Publishing{Body: m}); err != nil {
			t.Fatal(err)
		}
	}
	syms := []string{"A"}
	want := bustest.Trades(100, syms)
	bustest.Publish(t, "sink.rabbitmq", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 50}, map[string]any{"url": url, "routing_key": q})
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	s, j := bustest.Read(t, "provider.rabbitmq", map[string]any{"url": url, "queue": q, "dead_letter_exchange": dlx,
		"on_error": "dead_letter", "dead_letter_path": path}, md.KindTrade, len(want), bustest.ReadOptions{})
	bustest.CheckTrades(t, s, want, syms)
	ns := bustest.NodeStatus(j, "sub")
	if ns.Drops["malformed"] != 3 || ns.Counters["malformed_bad_magic"] != 1 || ns.Counters["malformed_bad_version"] != 1 || ns.Counters["malformed_truncated"] != 1 {
		t.Fatalf("drops %v counters %v", ns.Drops, ns.Counters)
	}
	if info, err := ch.QueueDeclarePassive(dlq, true, false, false, false, nil); err != nil || info.Messages != 3 {
		t.Fatalf("dead-letter queue holds %d messages (%v), want 3", info.Messages, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want3 := `{"bus":"rabbitmq","queue":"` + q + `","reason":"bad_magic","raw_base64":"eyJub3QiOiJhIGZyYW1lIn0="}` + "\n" +
		`{"bus":"rabbitmq","queue":"` + q + `","reason":"bad_version","raw_base64":"TUQJAQAAAAAAAAAA"}` + "\n" +
		`{"bus":"rabbitmq","queue":"` + q + `","reason":"truncated","raw_base64":"TUQ="}` + "\n"
	if string(b) != want3 {
		t.Fatalf("dead-letter file:\n%s\nwant:\n%s", b, want3)
	}
}

// TestUnavailableIsDegradedAndMasked: a broker that does not answer is
// counted as errors (Health DEGRADED), and the URL's password never shows.
func TestUnavailableIsDegradedAndMasked(t *testing.T) {
	amqpURL(t)
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	var logs enginetest.SyncBuffer
	url := "amqp://mdp:s3cr3t-pw@" + px.Addr() + "/"
	g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.rabbitmq", "sub", map[string]any{"url": url, "queue": "x", "reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}),
		enginetest.SinkNode("got", &enginetest.Sink{})}, Edges: []*engine.Edge{{From: "sub", To: "got"}}}
	j, err := engine.New(g, engine.Options{Job: "down", Logger: enginetest.Logger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if j.Ready() {
		t.Fatal("job ready without a connection")
	}
	if err := j.Wait(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	ns := bustest.NodeStatus(j, "sub")
	if ns.Errors["connect_failed"] == 0 || !strings.Contains(ns.LastError, "amqp://mdp:xxxxx@") {
		t.Fatalf("errors %v, last %q", ns.Errors, ns.LastError)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(ns.LastError, "s3cr3t") {
		t.Fatalf("password shown:\n%s\n%s", logs.String(), ns.LastError)
	}
	for _, typ := range []string{"provider.rabbitmq", "sink.rabbitmq"} {
		spec, _ := component.Lookup(typ)
		for _, f := range spec.Fields {
			if f.Name == "url" && !f.Secret {
				t.Fatalf("%s: url is not marked Secret", typ)
			}
		}
	}
}

// TestParamsValidated: TLS params and templates are checked when the job
// is built.
func TestParamsValidated(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/ca.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		typ    string
		params map[string]any
		want   string
	}{
		{"provider.rabbitmq", map[string]any{"queue": "q", "tls_ca_file": notPEM}, "tls_ca_file applies only with tls: true"},
		{"provider.rabbitmq", map[string]any{"queue": "q", "url": "amqps://h/", "tls_ca_file": notPEM}, "holds no PEM certificate"},
		{"sink.rabbitmq", map[string]any{"tls": true, "tls_key_file": notPEM}, "tls_key_file needs tls_cert_file"},
		{"sink.rabbitmq", map[string]any{"routing_key": "md.{partition}"}, "{partition} in routing_key and partitions > 0 go together"},
		{"sink.rabbitmq", map[string]any{"exchange_type": "fanout"}, "exchange_type applies only with an exchange"},
		{"provider.rabbitmq", map[string]any{"queue": "q", "binding_keys": []string{"x"}}, "binding_keys applies only with an exchange"},
		{"provider.rabbitmq", map[string]any{"queue": "q", "url": "http://x"}, "params.url"},
	}
	for _, tc := range cases {
		spec, _ := component.Lookup(tc.typ)
		p, err := component.NewParams(spec, tc.params)
		if err == nil && spec.Validate != nil {
			err = spec.Validate(p)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want %q", tc.typ, tc.params, err, tc.want)
		}
	}
}

// TestFormats: json and csv both ways, and foreign JSON through a mapping.
func TestFormats(t *testing.T) {
	url, ch := amqpURL(t)
	bustest.CheckFormats(t, bustest.Formats{Sink: "sink.rabbitmq", Source: "provider.rabbitmq",
		Fresh: func(t *testing.T) (map[string]any, map[string]any, func([]byte)) {
			q := queue(t, ch, "")
			return map[string]any{"url": url, "routing_key": q}, map[string]any{"url": url, "queue": q}, func(b []byte) {
				if err := ch.PublishWithContext(context.Background(), "", q, false, false, amqp.Publishing{Body: b}); err != nil {
					t.Fatal(err)
				}
			}
		}})
}
