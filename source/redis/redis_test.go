package redissrc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/sink/null"
	_ "github.com/mdpio/mdp/sink/redis"
	_ "github.com/mdpio/mdp/source/redis"
)

const redisHint = "start redis-server on 127.0.0.1:6379 (apt-get install redis-server), or point MDP_TEST_REDIS_URL at one"

// redisURL returns the test server's URL and a client to inspect it.
func redisURL(t testing.TB) (string, *redis.Client) {
	t.Helper()
	u := os.Getenv("MDP_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		testenv.Missing(t, "Redis", err.Error(), redisHint)
	}
	t.Cleanup(func() { c.Close() })
	return u, c
}

// stream is a fresh stream key, deleted at the end.
func stream(t testing.TB, c *redis.Client) string {
	name := bustest.Unique("mdptest:")
	t.Cleanup(func() { c.Del(context.Background(), name) })
	return name
}

func TestRoundTrip(t *testing.T) {
	url, c := redisURL(t)
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"}
	t.Run("trades", func(t *testing.T) {
		st := stream(t, c)
		want := bustest.Trades(5000, syms)
		pj := bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "stream": st})
		if got := pj.NodeSummary("pub")["messages"]; got != 50 {
			t.Fatalf("added %d entries, want 50", got)
		}
		if n := c.XLen(context.Background(), st).Val(); n != 50 {
			t.Fatalf("stream holds %d entries, want 50", n)
		}
		s, j := bustest.Read(t, "provider.redis", map[string]any{"url": url, "stream": st}, md.KindTrade, len(want), bustest.ReadOptions{})
		bustest.CheckTrades(t, s, want, syms)
		// Without checkpoints every entry handed on is acknowledged.
		if p := c.XPending(context.Background(), st, "mdp").Val(); p.Count != 0 {
			t.Fatalf("%d entries still pending", p.Count)
		}
		if got := j.NodeSummary("sub")["acknowledged"]; got != 50 {
			t.Fatalf("acknowledged %d, want 50", got)
		}
	})
	t.Run("bars", func(t *testing.T) {
		st := stream(t, c)
		want := bustest.Bars(777, syms)
		bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Bars: want, BatchSize: 64}, map[string]any{"url": url, "stream": st})
		s, _ := bustest.Read(t, "provider.redis", map[string]any{"url": url, "stream": st, "kind": "bar"}, md.KindBar, len(want), bustest.ReadOptions{})
		bustest.CheckBars(t, s, want, syms)
	})
}

// TestMaxLenTrims: XADD with MAXLEN keeps the stream at about maxlen
// entries (exactly, with exact_trim).
func TestMaxLenTrims(t *testing.T) {
	url, c := redisURL(t)
	st := stream(t, c)
	syms := []string{"A"}
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: bustest.Trades(2000, syms), BatchSize: 10},
		map[string]any{"url": url, "stream": st, "maxlen": 50, "exact_trim": true})
	if n := c.XLen(context.Background(), st).Val(); n != 50 {
		t.Fatalf("stream holds %d entries, want 50", n)
	}
	st2 := stream(t, c)
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: bustest.Trades(20000, syms), BatchSize: 10},
		map[string]any{"url": url, "stream": st2, "maxlen": 100})
	if n := c.XLen(context.Background(), st2).Val(); n < 100 || n >= 2000 {
		t.Fatalf("stream holds %d entries, want about 100 (approximate trimming)", n)
	}
}

// TestSymbolOrderFourInstances: the sink splits by symbol into 4
// partition streams; 4 source instances each read their partitions, so
// every symbol's trades arrive in order.
func TestSymbolOrderFourInstances(t *testing.T) {
	url, c := redisURL(t)
	base := bustest.Unique("mdptest:")
	for p := range 4 {
		t.Cleanup(func() { c.Del(context.Background(), base+":"+string(rune('0'+p))) })
	}
	syms := []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"}
	want := bustest.Trades(20000, syms)
	tmpl := base + ":{partition}"
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 256}, map[string]any{"url": url, "stream": tmpl, "partitions": 4})
	used := 0
	for p := range 4 {
		if c.XLen(context.Background(), base+":"+string(rune('0'+p))).Val() > 0 {
			used++
		}
	}
	if used < 3 {
		t.Fatalf("%d of 4 partition streams used", used)
	}
	var nodes []*engine.Node
	for p := range 4 {
		nodes = append(nodes, bustest.Node(t, "provider.redis", fmt.Sprintf("sub%d", p),
			map[string]any{"url": url, "stream": tmpl, "partitions": 4, "read_partitions": []string{strconv.Itoa(p)}}))
	}
	s, j := bustest.Read(t, "", nil, md.KindTrade, len(want), bustest.ReadOptions{Sources: nodes})
	bustest.CheckPerSymbolOrder(t, s, want, syms)
	for p := range 4 {
		if ns := bustest.NodeStatus(j, fmt.Sprintf("sub%d", p)); ns.EventsOut == 0 && c.XLen(context.Background(), base+":"+strconv.Itoa(p)).Val() > 0 {
			t.Fatalf("consumer %d read nothing from its partition", p)
		}
	}
}

// TestReconnectMidStream cuts every connection of both jobs (through a
// loopback proxy) while records flow: the sink adds again what Redis did
// not answer (a batch may then be stored twice: at least once), the source
// re-reads its pending entries after a failed read, before any new one
// (a read whose reply was lost delivered entries into the pending list);
// every record arrives, in order once duplicates are dropped.
func TestReconnectMidStream(t *testing.T) {
	url, c := redisURL(t)
	st := stream(t, c)
	px := tcpproxy.Start(t, strings.TrimPrefix(strings.TrimSuffix(url, "/0"), "redis://"))
	purl := "redis://" + px.Addr() + "/0"
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(200_000, syms)
	var wg sync.WaitGroup
	var pj *engine.Job
	wg.Add(1)
	go func() {
		defer wg.Done()
		src := &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 64}
		g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src),
			bustest.Node(t, "sink.redis", "pub", map[string]any{"url": purl, "stream": st, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms", "max_attempts": 100})},
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
	s, j := bustest.Read(t, "provider.redis", map[string]any{"url": purl, "stream": st, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms"},
		md.KindTrade, len(want), bustest.ReadOptions{During: func() {
			// Five cuts, 512 KiB apart: a cut that finds a job's
			// connection idle in go-redis's pool is healed by the pool's
			// health check on the next command, unseen by the job (3
			// cuts saw 1 reconnect in 1 run of 10), so two reconnects
			// need more than two cuts.
			for range 5 {
				px.CutAfter(t, 512<<10, 30*time.Second)
			}
		}, Settle: 500 * time.Millisecond, Until: bustest.Distinct(len(want))})
	wg.Wait()
	if t.Failed() {
		return
	}
	// Drop duplicates (a re-added batch repeats whole records).
	dedup := bustest.Dedup(s, false)
	bustest.CheckTrades(t, dedup, want, syms)
	var reconnects int64
	for _, n := range append(j.Status().Nodes, pj.Status().Nodes...) {
		reconnects += n.Counters["reconnects"]
	}
	if reconnects < 2 {
		t.Fatalf("%d reconnects after 5 cuts", reconnects)
	}
	t.Logf("%d records, %d duplicates, %d reconnects", len(s.Trades), len(s.Trades)-len(dedup.Trades), reconnects)
}

// TestMalformedCounted: entries that are not frames, or lack the field,
// are counted by reason, dead-lettered and acknowledged; the good ones
// around them arrive.
func TestMalformedCounted(t *testing.T) {
	url, c := redisURL(t)
	st, dl := stream(t, c), stream(t, c)
	ctx := context.Background()
	for _, v := range []map[string]any{{"d": `{"not":"a frame"}`}, {"d": string([]byte{'M', 'D', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0})}, {"d": "MD"}, {"other": "x"}} {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: st, Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	syms := []string{"A"}
	want := bustest.Trades(100, syms)
	bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 50}, map[string]any{"url": url, "stream": st})
	s, j := bustest.Read(t, "provider.redis", map[string]any{"url": url, "stream": st, "dead_letter_stream": dl}, md.KindTrade, len(want), bustest.ReadOptions{})
	bustest.CheckTrades(t, s, want, syms)
	ns := bustest.NodeStatus(j, "sub")
	if ns.Drops["malformed"] != 4 || ns.Counters["malformed_bad_magic"] != 1 || ns.Counters["malformed_bad_version"] != 1 ||
		ns.Counters["malformed_truncated"] != 1 || ns.Counters["malformed_missing_field"] != 1 || ns.Counters["dead_lettered"] != 4 {
		t.Fatalf("drops %v counters %v", ns.Drops, ns.Counters)
	}
	msgs := c.XRange(ctx, dl, "-", "+").Val()
	if len(msgs) != 4 || msgs[0].Values["reason"] != "bad_magic" || msgs[0].Values["d"] != `{"not":"a frame"}` || msgs[0].Values["stream"] != st {
		t.Fatalf("dead letters: %+v", msgs)
	}
	if p := c.XPending(ctx, st, "mdp").Val(); p.Count != 0 {
		t.Fatalf("%d entries still pending", p.Count)
	}
}

// TestUnavailableIsDegradedAndMasked: a server that does not answer is
// counted as errors (Health DEGRADED), the job is not ready, and the URL's
// password never shows.
func TestUnavailableIsDegradedAndMasked(t *testing.T) {
	redisURL(t)
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	var logs enginetest.SyncBuffer
	url := "redis://mdp:s3cr3t-pw@" + px.Addr() + "/0"
	g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.redis", "sub", map[string]any{"url": url, "stream": "x", "reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}),
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
	if ns.Errors["connect_failed"] == 0 {
		t.Fatalf("no connect_failed errors counted: %v (last %q)", ns.Errors, ns.LastError)
	}
	if !strings.Contains(ns.LastError, "redis://mdp:xxxxx@") {
		t.Fatalf("last error does not name the masked URL: %q", ns.LastError)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(ns.LastError, "s3cr3t") {
		t.Fatalf("password shown:\n%s\n%s", logs.String(), ns.LastError)
	}
	for _, typ := range []string{"provider.redis", "sink.redis"} {
		spec, _ := component.Lookup(typ)
		for _, f := range spec.Fields {
			if f.Name == "url" && !f.Secret {
				t.Fatalf("%s: url is not marked Secret", typ)
			}
		}
	}
}

// TestParamsValidated: TLS params, templates and partitions are checked
// when the job is built, each error naming its param.
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
		{"provider.redis", map[string]any{"stream": "s", "tls_ca_file": notPEM}, "tls_ca_file applies only with tls: true"},
		{"provider.redis", map[string]any{"stream": "s", "tls": true, "tls_ca_file": notPEM}, "holds no PEM certificate"},
		{"provider.redis", map[string]any{"stream": "s", "url": "rediss://127.0.0.1:6379", "tls_ca_file": dir + "/missing.pem"}, "read CA file"},
		{"sink.redis", map[string]any{"stream": "s", "tls": true, "tls_cert_file": notPEM}, "tls_cert_file needs tls_key_file"},
		{"sink.redis", map[string]any{"stream": "s", "tls": true, "tls_cert_file": notPEM, "tls_key_file": notPEM}, "client certificate"},
		{"sink.redis", map[string]any{"stream": "s.{partition}"}, "{partition} in stream and partitions > 0 go together"},
		{"sink.redis", map[string]any{"stream": "s.{sym}"}, "unknown placeholder {sym}"},
		{"sink.redis", map[string]any{"stream": "s", "exact_trim": true}, "exact_trim applies only with maxlen"},
		{"provider.redis", map[string]any{"stream": "s.{symbol}"}, "{symbol} applies only to sink.redis"},
		{"provider.redis", map[string]any{"stream": "s", "url": "http://x"}, "params.url"},
		{"provider.redis", map[string]any{"stream": "s.{partition}", "partitions": 4, "read_partitions": []string{"4"}}, "partition \"4\" is not a number in 0..3"},
		{"provider.redis", map[string]any{"stream": "s", "read_partitions": []string{"0"}}, "read_partitions applies only with partitions"},
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

// memStore keeps checkpoints in memory.
type memStore struct {
	mu  sync.Mutex
	cps []*engine.Checkpoint
}

func (m *memStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return 1, nil
}

// TestAckOnCheckpoint: with checkpoints on, entries handed downstream stay
// pending until a checkpoint covering them completes.
func TestAckOnCheckpoint(t *testing.T) {
	url, c := redisURL(t)
	ctx := context.Background()
	syms := []string{"A", "B"}
	want := bustest.Trades(3000, syms)
	for _, interval := range []time.Duration{time.Hour, 20 * time.Millisecond} {
		st := stream(t, c)
		bustest.Publish(t, "sink.redis", &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "stream": st})
		s := &bustest.Sink{}
		g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.redis", "sub", map[string]any{"url": url, "stream": st}),
			{ID: "got", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindTrade, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return s, nil }}},
			Edges: []*engine.Edge{{From: "sub", To: "got"}}}
		j, err := engine.New(g, engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: interval, Store: &memStore{}}})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		if err := j.Start(rctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for s.Len() < len(want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		var pending int64
		for range 100 {
			pending = c.XPending(ctx, st, "mdp").Val().Count
			if interval == time.Hour || pending == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		j.Abort()
		cancel()
		_ = j.Wait()
		bustest.CheckTrades(t, s, want, syms)
		if interval == time.Hour && pending != 30 {
			t.Fatalf("no checkpoint completed: %d entries pending, want all 30", pending)
		}
		if interval != time.Hour && pending != 0 {
			t.Fatalf("checkpoints completed: %d entries pending, want 0", pending)
		}
	}
}

// TestFormats: json and csv both ways, and foreign JSON through a mapping.
func TestFormats(t *testing.T) {
	url, c := redisURL(t)
	bustest.CheckFormats(t, bustest.Formats{Sink: "sink.redis", Source: "provider.redis",
		Fresh: func(t *testing.T) (map[string]any, map[string]any, func([]byte)) {
			st := stream(t, c)
			return map[string]any{"url": url, "stream": st}, map[string]any{"url": url, "stream": st}, func(b []byte) {
				if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: st, Values: []any{"d", b}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}})
}

// TestCheckpointCoveredNotRepeated: a crash after a checkpoint is saved and
// before the entries it covers are acknowledged leaves them pending; the
// resumed run acknowledges them instead of handing them on again, and
// hands on what came after the checkpoint.
func TestCheckpointCoveredNotRepeated(t *testing.T) {
	url, c := redisURL(t)
	st := stream(t, c)
	ctx := context.Background()
	bustest.CheckpointHeldNotRepeated(t, bustest.Held{
		Source: "provider.redis", SourceParams: map[string]any{"url": url, "stream": st},
		Sink: "sink.redis", SinkParams: map[string]any{"url": url, "stream": st},
		AfterCrash: func(t *testing.T) {
			if n := c.XPending(ctx, st, "mdp").Val().Count; n != 200 {
				t.Fatalf("%d entries pending after the crash, want all 200", n)
			}
		},
		Resumed: func(t *testing.T, _ *bustest.Running) {
			var pending int64
			for range 500 {
				if pending = c.XPending(ctx, st, "mdp").Val().Count; pending == 0 {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatalf("%d entries still pending after the resumed run's checkpoints", pending)
		},
	})
}
