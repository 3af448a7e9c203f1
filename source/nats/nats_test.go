package natssrc_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/internal/bustest"
	"github.com/mdpio/mdp/internal/tcpproxy"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/sink/nats"
	_ "github.com/mdpio/mdp/sink/null"
	_ "github.com/mdpio/mdp/source/nats"
	_ "github.com/mdpio/mdp/source/replay"
)

func natsURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MDP_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	c, err := nats.Connect(u, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(t, "NATS", err.Error(), testenv.NATSHint)
	}
	c.Close()
	return u
}

// stream creates a stream for a fresh subject and deletes it at the end.
func stream(t *testing.T, url string) (name, subject string) {
	t.Helper()
	name, subject = bustest.Unique("MDPTEST_"), bustest.Unique("mdptest.")
	c, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(c)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = js.DeleteStream(context.Background(), name)
		c.Close()
	})
	return name, subject
}

// read runs provider.nats -> a bustest.Sink until want records arrived
// (then a little longer, to catch extra ones) and stops the job.
func read(t *testing.T, params map[string]any, kind md.Kind, want int, during func()) (*bustest.Sink, *engine.Job) {
	t.Helper()
	return bustest.Read(t, "provider.nats", params, kind, want, bustest.ReadOptions{During: during, Settle: 100 * time.Millisecond, Timeout: 20 * time.Second})
}

// publish runs src -> sink.nats to the end.
func publish(t *testing.T, src *enginetest.Source, params map[string]any) *engine.Job {
	t.Helper()
	return bustest.Publish(t, "sink.nats", src, params)
}

func TestRoundTripJetStream(t *testing.T) {
	url := natsURL(t)
	syms := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"}
	t.Run("trades", func(t *testing.T) {
		name, subj := stream(t, url)
		want := bustest.Trades(5000, syms)
		pj := publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "subject": subj})
		if got := pj.NodeSummary("pub")["messages"]; got != 50 {
			t.Fatalf("published %d messages, want 50", got)
		}
		s, _ := read(t, map[string]any{"url": url, "subject": subj, "stream": name}, md.KindTrade, len(want), nil)
		bustest.CheckTrades(t, s, want, syms)
	})
	for _, f := range []string{"json", "csv"} {
		t.Run("trades/"+f, func(t *testing.T) {
			name, subj := stream(t, url)
			want := bustest.Trades(1000, syms)
			publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "subject": subj, "format": f})
			s, _ := read(t, map[string]any{"url": url, "subject": subj, "stream": name, "format": f}, md.KindTrade, len(want), nil)
			bustest.CheckTrades(t, s, want, syms)
		})
	}
	for _, format := range []string{"mdp", "json", "csv"} {
		t.Run("bars/"+format, func(t *testing.T) {
			name, subj := stream(t, url)
			want := bustest.Bars(777, syms)
			publish(t, &enginetest.Source{Symbols: syms, Bars: want, BatchSize: 64}, map[string]any{"url": url, "subject": subj, "format": format})
			s, _ := read(t, map[string]any{"url": url, "subject": subj, "stream": name, "kind": "bar", "durable": bustest.Unique("d"), "format": format}, md.KindBar, len(want), nil)
			if len(s.Bars) != len(want) {
				t.Fatalf("%d bars, want %d", len(s.Bars), len(want))
			}
			for i := range want {
				g, w := s.Bars[i], want[i]
				if s.Names[i] != syms[w.Sym] {
					t.Fatalf("bar %d: symbol %s, want %s", i, s.Names[i], syms[w.Sym])
				}
				g.Sym, w.Sym = 0, 0
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("bar %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// TestDedupeByMsgID: publishing the same batches twice stores them once.
func TestDedupeByMsgID(t *testing.T) {
	url := natsURL(t)
	syms := []string{"A", "B"}
	name, subj := stream(t, url)
	want := bustest.Trades(1000, syms)
	for range 2 {
		publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "subject": subj})
	}
	c, _ := nats.Connect(url)
	defer c.Close()
	js, _ := jetstream.New(c)
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	if info.State.Msgs != 10 {
		t.Fatalf("stream holds %d messages, want 10 (the second run deduplicated)", info.State.Msgs)
	}
}

// TestDurableResumes: a durable consumer acknowledges what it handed on, so
// a second run reads only what came after.
func TestDurableResumes(t *testing.T) {
	url := natsURL(t)
	syms := []string{"A", "B", "C"}
	name, subj := stream(t, url)
	all := bustest.Trades(3000, syms)
	dur := bustest.Unique("dur")
	publish(t, &enginetest.Source{Symbols: syms, Trades: all[:1000], BatchSize: 100}, map[string]any{"url": url, "subject": subj})
	s1, _ := read(t, map[string]any{"url": url, "subject": subj, "stream": name, "durable": dur}, md.KindTrade, 1000, nil)
	bustest.CheckTrades(t, s1, all[:1000], syms)
	publish(t, &enginetest.Source{Symbols: syms, Trades: all[1000:], BatchSize: 100}, map[string]any{"url": url, "subject": subj})
	s2, _ := read(t, map[string]any{"url": url, "subject": subj, "stream": name, "durable": dur}, md.KindTrade, 2000, nil)
	want := append([]md.Trade(nil), all[1000:]...)
	bustest.CheckTrades(t, s2, want, syms)
}

// TestReconnectMidStream cuts every connection of both jobs (through a
// loopback proxy) while records flow: the sink republishes what was not
// acknowledged (the stream deduplicates), the ordered consumer resumes
// after its last sequence; every record arrives exactly once. With the
// default window the order may change within max_pending messages; with
// max_pending 1 it is kept.
func TestReconnectMidStream(t *testing.T) {
	t.Run("window", func(t *testing.T) { reconnect(t, 200_000, 256) })
	t.Run("ordered", func(t *testing.T) { reconnect(t, 20_000, 1) })
}

func reconnect(t *testing.T, n, maxPending int) {
	url := natsURL(t)
	name, subj := stream(t, url)
	px := tcpproxy.Start(t, strings.TrimPrefix(url, "nats://"))
	purl := "nats://" + px.Addr()
	syms := []string{"A", "B", "C", "D"}
	want := bustest.Trades(n, syms)
	pubDone := make(chan *engine.Job, 1)
	go func() {
		src := &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 64}
		g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, src),
			bustest.Node(t, "sink.nats", "pub", map[string]any{"url": purl, "subject": subj, "ack_timeout": "500ms", "max_pending": maxPending, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms"})},
			Edges: []*engine.Edge{{From: "src", To: "pub"}}}
		j, err := engine.New(g, engine.Options{Job: "pub"})
		if err == nil {
			err = j.Run(context.Background())
		}
		if err != nil {
			t.Error(err)
		}
		pubDone <- j
	}()
	var cuts int
	s, j := read(t, map[string]any{"url": purl, "subject": subj, "stream": name, "reconnect_backoff": "10ms", "max_reconnect_backoff": "50ms"}, md.KindTrade, len(want), func() {
		for range 3 {
			px.CutAfter(t, int64(n)*8, 30*time.Second)
			cuts++
		}
	})
	pj := <-pubDone
	if t.Failed() {
		return
	}
	if maxPending > 1 {
		idx := make([]int, len(s.Trades))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.Trades[idx[a]].Seq < s.Trades[idx[b]].Seq })
		tr, nm := make([]md.Trade, len(idx)), make([]string, len(idx))
		for i, k := range idx {
			tr[i], nm[i] = s.Trades[k], s.Names[k]
		}
		s.Trades, s.Names = tr, nm
	}
	bustest.CheckTrades(t, s, want, syms)
	var reconnects int64
	for _, n := range append(j.Status().Nodes, pj.Status().Nodes...) {
		reconnects += n.Counters["reconnects"]
	}
	if reconnects < 2 {
		t.Fatalf("%d reconnects after %d cuts", reconnects, cuts)
	}
	_ = name
}

// TestMalformedCounted: messages that are not frames are counted by
// reason and dropped; the good ones around them arrive.
func TestMalformedCounted(t *testing.T) {
	url := natsURL(t)
	name, subj := stream(t, url)
	syms := []string{"A"}
	want := bustest.Trades(100, syms)
	c, _ := nats.Connect(url)
	defer c.Close()
	js, _ := jetstream.New(c)
	ctx := context.Background()
	for _, m := range [][]byte{[]byte("{\"not\":\"a frame\"}"), {'M', 'D', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {'M', 'D'}} {
		if _, err := js.Publish(ctx, subj, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 50}, map[string]any{"url": url, "subject": subj})
	s, j := read(t, map[string]any{"url": url, "subject": subj, "stream": name}, md.KindTrade, len(want), nil)
	bustest.CheckTrades(t, s, want, syms)
	var st engine.NodeStatus
	for _, n := range j.Status().Nodes {
		if n.ID == "sub" {
			st = n
		}
	}
	if st.Drops["malformed"] != 3 || st.Counters["malformed_bad_magic"] != 1 || st.Counters["malformed_bad_version"] != 1 || st.Counters["malformed_truncated"] != 1 {
		t.Fatalf("drops %v counters %v", st.Drops, st.Counters)
	}
}

// TestCoreSubject: core NATS (no stream) carries frames while both ends
// are connected.
func TestCoreSubject(t *testing.T) {
	url := natsURL(t)
	subj := bustest.Unique("mdptest.core.")
	syms := []string{"A", "B"}
	want := bustest.Trades(2000, syms)
	s, _ := read(t, map[string]any{"url": url, "subject": subj}, md.KindTrade, len(want), func() {
		time.Sleep(200 * time.Millisecond) // the subscription is up
		publish(t, &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 100}, map[string]any{"url": url, "subject": subj, "jetstream": false})
	})
	bustest.CheckTrades(t, s, want, syms)
}

// TestUnavailableIsDegradedAndMasked: a server that does not answer is
// counted as errors (Health DEGRADED) and the URL's password never shows.
func TestUnavailableIsDegradedAndMasked(t *testing.T) {
	natsURL(t)
	px := tcpproxy.Start(t, "127.0.0.1:1")
	px.Pause()
	var logs enginetest.SyncBuffer
	url := "nats://mdp:s3cr3t-pw@" + px.Addr()
	g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.nats", "sub", map[string]any{"url": url, "subject": "x", "reconnect_backoff": "10ms", "max_reconnect_backoff": "20ms"}),
		enginetest.SinkNode("got", &enginetest.Sink{})}, Edges: []*engine.Edge{{From: "sub", To: "got"}}}
	j, err := engine.New(g, engine.Options{Job: "down", Logger: enginetest.Logger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := j.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	var st engine.NodeStatus
	for _, n := range j.Status().Nodes {
		if n.ID == "sub" {
			st = n
		}
	}
	if st.Errors["connect_failed"] == 0 {
		t.Fatalf("no connect_failed errors counted: %v (last %q)", st.Errors, st.LastError)
	}
	if j.Ready() {
		t.Fatal("job ready without a connection")
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(st.LastError, "s3cr3t") {
		t.Fatalf("password shown:\n%s\n%s", logs.String(), st.LastError)
	}
	spec, _ := component.Lookup("provider.nats")
	for _, f := range spec.Fields {
		if f.Name == "url" && !f.Secret {
			t.Fatal("url is not marked Secret")
		}
	}
}

// runBars runs nodes -> operator.Bars (1m) -> a collector until the job
// ends (finite sources) or, when until is set, until it reports true, and
// returns the bars with their symbols.
func runBars(t *testing.T, src *engine.Node, until func(j *engine.Job) bool) *bustest.Sink {
	t.Helper()
	s := &bustest.Sink{}
	sn := &engine.Node{ID: "got", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindBar, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
	g := &engine.Graph{Nodes: []*engine.Node{src, bustest.Node(t, "operator.bars", "bars", map[string]any{"interval": "1m"}), sn},
		Edges: []*engine.Edge{{From: src.ID, To: "bars"}, {From: "bars", To: "got"}}}
	j, err := engine.New(g, engine.Options{Job: "bars"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if until != nil {
		deadline := time.Now().Add(20 * time.Second)
		for !until(j) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTwoJobPipelineSameBars: job 1 replays the Tardis trades into
// JetStream, job 2 reads them and builds 1m bars; the bars equal the single
// job's (replay -> bars), field by field.
func TestTwoJobPipelineSameBars(t *testing.T) {
	url := natsURL(t)
	name, subj := stream(t, url)
	replay := map[string]any{"path": "../../testdata/replay/tardis_trades.csv", "preset": "tardis_trades"}
	single := runBars(t, bustest.Node(t, "provider.replay", "replay", replay), nil)
	if len(single.Bars) == 0 {
		t.Fatal("no bars from the single job")
	}
	g := &engine.Graph{Nodes: []*engine.Node{bustest.Node(t, "provider.replay", "replay", replay), bustest.Node(t, "sink.nats", "pub", map[string]any{"url": url, "subject": subj})},
		Edges: []*engine.Edge{{From: "replay", To: "pub"}}}
	j1, err := engine.New(g, engine.Options{Job: "ingest"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j1.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sent int64
	for _, n := range j1.Status().Nodes {
		if n.ID == "replay" {
			sent = n.EventsOut
		}
	}
	two := runBars(t, bustest.Node(t, "provider.nats", "bus", map[string]any{"url": url, "subject": subj, "stream": name}), func(j *engine.Job) bool {
		for _, n := range j.Status().Nodes {
			if n.ID == "bus" {
				return n.EventsOut >= sent
			}
		}
		return false
	})
	if len(two.Bars) != len(single.Bars) {
		t.Fatalf("%d bars through JetStream, %d from the single job", len(two.Bars), len(single.Bars))
	}
	for i := range single.Bars {
		a, b := single.Bars[i], two.Bars[i]
		if single.Names[i] != two.Names[i] {
			t.Fatalf("bar %d: symbol %s vs %s", i, two.Names[i], single.Names[i])
		}
		a.Sym, b.Sym = 0, 0
		if a != b {
			t.Fatalf("bar %d:\n two jobs %+v\n single   %+v", i, b, a)
		}
	}
}
