package mqttsrc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/sink/mqtt"
	_ "github.com/mdpio/mdp/source/mqtt"
)

const hint = "start mosquitto on 127.0.0.1:1883 (apt-get install mosquitto), or point MDP_TEST_MQTT_URL at one"

func brokerURL(t testing.TB) (string, mqtt.Client) {
	t.Helper()
	u := os.Getenv("MDP_TEST_MQTT_URL")
	if u == "" {
		u = "tcp://127.0.0.1:1883"
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(u).SetClientID(bustest.Unique("mdptest-")).SetConnectTimeout(2 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		testenv.Missing(t, "MQTT broker", fmt.Sprint(tok.Error()), hint)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return u, c
}

// source is provider.mqtt params with a unique client id and a clean
// session (no session left behind on the shared broker).
func source(url string, topics ...string) map[string]any {
	return map[string]any{"url": url, "topics": topics, "client_id": bustest.Unique("mdptest-sub-"), "clean_session": true}
}

func sink(url, topic string) map[string]any {
	return map[string]any{"url": url, "topic": topic, "client_id": bustest.Unique("mdptest-pub-")}
}

func TestRoundTrip(t *testing.T) {
	url, _ := brokerURL(t)
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"}
	t.Run("trades by symbol topic", func(t *testing.T) {
		base := bustest.Unique("mdptest/")
		want := bustest.Trades(5000, syms)
		var pj *engine.Job
		s, j := bustest.Read(t, "provider.mqtt", source(url, base+"/trade/#"), md.KindTrade, len(want), bustest.ReadOptions{During: func() {
			time.Sleep(300 * time.Millisecond)
			pj = bustest.Publish(t, "sink.mqtt", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, sink(url, base+"/{kind}/{symbol}"))
		}})
		bustest.CheckPerSymbolOrder(t, s, want, syms)
		if got := pj.NodeSummary("pub")["messages"]; got != 250 {
			t.Fatalf("published %d messages, want 250", got)
		}
		if got := j.NodeSummary("sub")["acknowledged"]; got != 250 {
			t.Fatalf("acknowledged %d, want 250", got)
		}
	})
	for _, qos := range []int{0, 2} {
		t.Run(fmt.Sprintf("bars in order qos %d", qos), func(t *testing.T) {
			topic := bustest.Unique("mdptest/bars/")
			want := bustest.Bars(777, syms)
			src := source(url, topic)
			src["kind"], src["qos"] = "bar", qos
			s, _ := bustest.Read(t, "provider.mqtt", src, md.KindBar, len(want), bustest.ReadOptions{During: func() {
				time.Sleep(300 * time.Millisecond)
				p := sink(url, topic)
				p["qos"] = qos
				bustest.Publish(t, "sink.mqtt", &enginetest.Source{Symbols: syms, Bars: want, BatchSize: 64}, p)
			}})
			bustest.CheckBars(t, s, want, syms)
		})
	}
}

// TestSymbolOrderFourTopics: the sink splits by partition; four sources,
// one per partition topic, keep every symbol's order.
func TestSymbolOrderFourTopics(t *testing.T) {
	url, _ := brokerURL(t)
	base := bustest.Unique("mdptest/")
	syms := []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"}
	want := bustest.Trades(20000, syms)
	var nodes []*engine.Node
	for p := range 4 {
		nodes = append(nodes, bustest.Node(t, "provider.mqtt", fmt.Sprintf("sub%d", p), source(url, fmt.Sprintf("%s/trade/%d", base, p))))
	}
	s, j := bustest.Read(t, "", nil, md.KindTrade, len(want), bustest.ReadOptions{Sources: nodes, During: func() {
		time.Sleep(300 * time.Millisecond)
		p := sink(url, base+"/{kind}/{partition}")
		p["partitions"] = 4
		bustest.Publish(t, "sink.mqtt", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 256}, p)
	}})
	bustest.CheckPerSymbolOrder(t, s, want, syms)
	used := 0
	for p := range 4 {
		if bustest.NodeStatus(j, fmt.Sprintf("sub%d", p)).EventsOut > 0 {
			used++
		}
	}
	if used < 3 {
		t.Fatalf("%d of 4 partition topics used", used)
	}
}

// TestReconnectMidStream cuts every connection of both jobs while records
// flow: the sink publishes unacknowledged messages again, the source's
// persistent session gets what was published while it was away; every
// record arrives (QoS 1: some twice, as documented).
func TestReconnectMidStream(t *testing.T) {
	url, _ := brokerURL(t)
	topic := bustest.Unique("mdptest/re/")
	px := tcpproxy.Start(t, strings.TrimPrefix(url, "tcp://"))
	purl := "tcp://" + px.Addr()
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(50_000, syms)
	src := source(purl, topic)
	src["clean_session"] = false
	src["reconnect_backoff"], src["max_reconnect_backoff"] = "10ms", "50ms"
	var wg sync.WaitGroup
	var pj *engine.Job
	s, j := bustest.Read(t, "provider.mqtt", src, md.KindTrade, len(want), bustest.ReadOptions{During: func() {
		time.Sleep(300 * time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := sink(purl, topic)
			p["reconnect_backoff"], p["max_reconnect_backoff"], p["ack_timeout"], p["max_attempts"] = "10ms", "50ms", "1s", 100
			src := &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 64}
			g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src), bustest.Node(t, "sink.mqtt", "pub", p)},
				Edges: []*engine.Edge{{From: "src", To: "pub"}}}
			jj, err := engine.New(g, engine.Options{Job: "pub"})
			if err == nil {
				err = jj.Run(context.Background())
			}
			if err != nil {
				t.Error(err)
			}
			pj = jj
		}()
		for range 3 {
			px.CutAfter(t, 256<<10, 30*time.Second)
		}
	}, Settle: time.Second, Until: bustest.Distinct(len(want))})
	wg.Wait()
	// Leave no persistent session behind.
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(src["client_id"].(string)).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
		c.Disconnect(50)
	}
	if t.Failed() {
		return
	}
	dedup := bustest.Dedup(s, false)
	got := bustest.Dedup(s, true)
	bustest.CheckTrades(t, got, want, syms)
	var reconnects int64
	for _, n := range append(j.Status().Nodes, pj.Status().Nodes...) {
		reconnects += n.Counters["reconnects"]
	}
	if reconnects < 2 {
		t.Fatalf("%d reconnects after 3 cuts", reconnects)
	}
	t.Logf("%d records, %d duplicates, %d reconnects", len(s.Trades), len(s.Trades)-len(dedup.Trades), reconnects)
}

// TestMalformedCounted: messages that are not frames are counted by
// reason and dropped; the good ones arrive.
func TestMalformedCounted(t *testing.T) {
	url, raw := brokerURL(t)
	topic := bustest.Unique("mdptest/bad/")
	syms := []string{"A"}
	want := bustest.Trades(100, syms)
	s, j := bustest.Read(t, "provider.mqtt", source(url, topic), md.KindTrade, len(want), bustest.ReadOptions{During: func() {
		time.Sleep(300 * time.Millisecond)
		for _, m := range [][]byte{[]byte(`{"not":"a frame"}`), {'M', 'D', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {'M', 'D'}} {
			if tok := raw.Publish(topic, 1, false, m); !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
				t.Error(tok.Error())
			}
		}
		bustest.Publish(t, "sink.mqtt", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 50}, sink(url, topic))
	}})
	bustest.CheckTrades(t, s, want, syms)
	ns := bustest.NodeStatus(j, "sub")
	if ns.Drops["malformed"] != 3 || ns.Counters["malformed_bad_magic"] != 1 || ns.Counters["malformed_bad_version"] != 1 || ns.Counters["malformed_truncated"] != 1 {
		t.Fatalf("drops %v counters %v", ns.Drops, ns.Counters)
	}
}

// TestUnavailableIsDegradedAndMasked: a broker that does not answer is
// counted as errors (Health DEGRADED); the password never shows.
func TestUnavailableIsDegradedAndMasked(t *testing.T) {
	brokerURL(t)
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	var logs enginetest.SyncBuffer
	url := "tcp://mdp:s3cr3t-pw@" + px.Addr()
	p := source(url, "x")
	p["reconnect_backoff"], p["max_reconnect_backoff"] = "10ms", "20ms"
	g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.mqtt", "sub", p), enginetest.SinkNode("got", &enginetest.Sink{})},
		Edges: []*engine.Edge{{From: "sub", To: "got"}}}
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
	if ns.Errors["connect_failed"] == 0 || !strings.Contains(ns.LastError, "tcp://mdp:xxxxx@") {
		t.Fatalf("errors %v, last %q", ns.Errors, ns.LastError)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(ns.LastError, "s3cr3t") {
		t.Fatalf("password shown:\n%s\n%s", logs.String(), ns.LastError)
	}
	for _, typ := range []string{"provider.mqtt", "sink.mqtt"} {
		spec, _ := component.Lookup(typ)
		for _, f := range spec.Fields {
			if (f.Name == "url" || f.Name == "password") && !f.Secret {
				t.Fatalf("%s: %s is not marked Secret", typ, f.Name)
			}
		}
	}
}

// TestParamsValidated: URL scheme, TLS params and templates are checked
// when the job is built.
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
		{"provider.mqtt", map[string]any{"topics": []string{"a"}, "tls_server_name": "x"}, "tls_server_name applies only with tls: true"},
		{"provider.mqtt", map[string]any{"topics": []string{"a"}, "url": "ssl://h:8883", "tls_ca_file": notPEM}, "holds no PEM certificate"},
		{"provider.mqtt", map[string]any{"topics": []string{"a"}, "url": "http://h:1883"}, "scheme \"http\""},
		{"sink.mqtt", map[string]any{"tls": true, "tls_cert_file": notPEM, "tls_key_file": notPEM}, "client certificate"},
		{"sink.mqtt", map[string]any{"topic": "md/{partition}"}, "{partition} in topic and partitions > 0 go together"},
		{"sink.mqtt", map[string]any{"qos": 3}, "qos"},
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
	url, c := brokerURL(t)
	bustest.CheckFormats(t, bustest.Formats{Sink: "sink.mqtt", Source: "provider.mqtt",
		Fresh: func(t *testing.T) (map[string]any, map[string]any, func([]byte)) {
			topic := bustest.Unique("mdptest/fmt/")
			return sink(url, topic), source(url, topic), func(b []byte) {
				if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
		}})
}
