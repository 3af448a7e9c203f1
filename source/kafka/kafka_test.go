package kafkasrc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"

	_ "github.com/mdpio/mdp/operator/bars"
	_ "github.com/mdpio/mdp/sink/kafka"
	_ "github.com/mdpio/mdp/sink/null"
	_ "github.com/mdpio/mdp/source/kafka"
)

func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// cluster starts an in-process kfake cluster with topic (4 partitions).
func cluster(t testing.TB, brokers int, topic string, opts ...kfake.Opt) (*kfake.Cluster, []any) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(brokers), kfake.SeedTopics(4, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var addrs []any
	for _, a := range c.ListenAddrs() {
		addrs = append(addrs, a)
	}
	return c, addrs
}

func node(t testing.TB, typ, id string, params map[string]any) *engine.Node {
	t.Helper()
	spec, ok := component.Lookup(typ)
	if !ok {
		t.Fatalf("%s not registered", typ)
	}
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	return component.Node(spec, p, component.NodeOptions{ID: id})
}

// publish runs src -> sink.kafka to the end.
func publish(t testing.TB, src *enginetest.Source, params map[string]any) *engine.Job {
	t.Helper()
	g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", src.Kind(), src), node(t, "sink.kafka", "pub", params)},
		Edges: []*engine.Edge{{From: "src", To: "pub"}}}
	j, err := engine.New(g, engine.Options{Job: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return j
}

// namedSink collects records with their symbols' names.
type namedSink struct {
	mu     sync.Mutex
	syms   *md.SymbolTable
	trades []md.Trade
	bars   []md.Bar
	names  []string
}

func (s *namedSink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.syms = nc.Symbols
	return nil
}

func (s *namedSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range b.Trades {
		s.trades = append(s.trades, t)
		s.names = append(s.names, s.syms.Get(t.Sym).Symbol)
	}
	for _, r := range b.Bars {
		s.bars = append(s.bars, r)
		s.names = append(s.names, s.syms.Get(r.Sym).Symbol)
	}
	return nil
}

func (s *namedSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.trades) + len(s.bars)
}

// read runs provider.kafka -> namedSink until want records arrived (then
// a little longer, to catch extra ones) and stops the job.
func read(t *testing.T, params map[string]any, kind md.Kind, want int, during func(j *engine.Job)) (*namedSink, *engine.Job) {
	t.Helper()
	s := &namedSink{}
	sn := &engine.Node{ID: "got", Type: "sink.test", Kind: engine.KindSink, Accepts: kind, Ports: map[string]md.Kind{},
		NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
	g := &engine.Graph{Nodes: []*engine.Node{node(t, "provider.kafka", "sub", params), sn}, Edges: []*engine.Edge{{From: "sub", To: "got"}}}
	j, err := engine.New(g, engine.Options{Job: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := j.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during(j)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.len() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	return s, j
}

func trades(n int, syms []string) []md.Trade {
	out := make([]md.Trade, n)
	for i := range out {
		out[i] = md.Trade{TS: 1_700_000_000_000_000_000 + int64(i)*1_000_003, Ingest: 1_700_000_000_500_000_000 + int64(i),
			Price: 100 + float64(i%997)/8, Size: float64(i%13) * 0.001, TradeID: int64(i) * 7, Seq: uint64(i) + 1,
			Side: md.Side(i % 3), Sym: md.SymID(i % len(syms))}
	}
	return out
}

func bars(n int, syms []string) []md.Bar {
	out := make([]md.Bar, n)
	for i := range out {
		out[i] = md.Bar{Start: int64(i) * 1e9, End: int64(i+1) * 1e9, Interval: 1e9, Open: 1 + float64(i), High: 2 + float64(i),
			Low: 0.5, Close: 1.5, Volume: 3.25, VWAP: 1.25, Trades: int64(i), Sym: md.SymID(i % len(syms)),
			Type: md.BarType(i % 4), Source: md.BarSource(i % 4), LabelEnd: i%2 == 0, Update: i%5 == 0}
	}
	return out
}

// perSymbol checks that, symbol by symbol, got holds exactly want's
// records in want's order (Kafka orders per partition, and a symbol keeps
// to one partition), every field equal.
func perSymbol[T any](t *testing.T, got []T, names []string, want []T, symOf func(T) md.SymID, clear func(*T), syms []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	g, w := map[string][]T{}, map[string][]T{}
	for i, r := range got {
		clear(&r)
		g[names[i]] = append(g[names[i]], r)
	}
	for _, r := range want {
		n := syms[symOf(r)]
		clear(&r)
		w[n] = append(w[n], r)
	}
	for n := range w {
		if !reflect.DeepEqual(g[n], w[n]) {
			for i := range w[n] {
				if i >= len(g[n]) || !reflect.DeepEqual(g[n][i], w[n][i]) {
					t.Fatalf("symbol %s record %d differs (of %d, got %d)", n, i, len(w[n]), len(g[n]))
				}
			}
			t.Fatalf("symbol %s: %d records, want %d", n, len(g[n]), len(w[n]))
		}
	}
}

func tradeSym(r md.Trade) md.SymID { return r.Sym }
func clearTrade(r *md.Trade)       { r.Sym = 0 }
func barSym(r md.Bar) md.SymID     { return r.Sym }
func clearBar(r *md.Bar)           { r.Sym = 0 }

var syms = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT"}

// TestRoundTrip: trades and bars through sink.kafka -> a 4-partition topic
// -> provider.kafka come back with every field equal and every symbol in
// order, in each format and with a group or direct partitions.
func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name   string
		format string
		group  bool
		kind   md.Kind
	}{
		{"trades/mdp/group", "mdp", true, md.KindTrade},
		{"trades/json/direct", "json", false, md.KindTrade},
		{"trades/csv/group", "csv", true, md.KindTrade},
		{"bars/mdp/direct", "mdp", false, md.KindBar},
		{"bars/json/group", "json", true, md.KindBar},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := unique("mdptest.")
			_, brokers := cluster(t, 1, topic)
			src := &enginetest.Source{Symbols: syms, BatchSize: 100}
			n := 5000
			if c.kind == md.KindTrade {
				src.Trades = trades(n, syms)
			} else {
				n = 777
				src.Bars = bars(n, syms)
			}
			pj := publish(t, src, map[string]any{"brokers": brokers, "topic": topic, "format": c.format, "compression": "zstd", "linger": "1ms"})
			if got := pj.NodeSummary("pub")["rows_written"]; got != int64(n) {
				t.Fatalf("wrote %d rows, want %d", got, n)
			}
			params := map[string]any{"brokers": brokers, "topics": []any{topic}, "format": c.format, "kind": c.kind.String()}
			if c.group {
				params["group"] = unique("g")
			}
			s, j := read(t, params, c.kind, n, nil)
			if c.kind == md.KindTrade {
				perSymbol(t, s.trades, s.names, src.Trades, tradeSym, clearTrade, syms)
			} else {
				perSymbol(t, s.bars, s.names, src.Bars, barSym, clearBar, syms)
			}
			if d := j.Status().Nodes[0].Drops["malformed"]; d != 0 {
				t.Fatalf("malformed %d", d)
			}
		})
	}
}

// TestSymbolKeepsItsPartition: each symbol's messages land on exactly one
// of the 4 partitions, keyed by the symbol.
func TestSymbolKeepsItsPartition(t *testing.T) {
	topic := unique("mdptest.")
	_, brokers := cluster(t, 1, topic)
	publish(t, &enginetest.Source{Symbols: syms, Trades: trades(2000, syms), BatchSize: 64}, map[string]any{"brokers": brokers, "topic": topic})
	cl := client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	parts := map[string]map[int32]bool{}
	// Read the whole topic (the sink has flushed it): a count of messages
	// to stop at could be reached from some partitions before another
	// partition's first fetch, and miss its symbols.
	got := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		f := cl.PollFetches(ctx)
		cancel()
		if f.Empty() {
			break
		}
		f.EachRecord(func(r *kgo.Record) {
			got++
			k := string(r.Key)
			if parts[k] == nil {
				parts[k] = map[int32]bool{}
			}
			parts[k][r.Partition] = true
		})
	}
	used := map[int32]bool{}
	for k, ps := range parts {
		if len(ps) != 1 {
			t.Fatalf("symbol %s on partitions %v", k, ps)
		}
		for p := range ps {
			used[p] = true
		}
	}
	if len(parts) != len(syms) || len(used) < 2 || got < 2000/64 {
		t.Fatalf("%d keys over partitions %v in %d messages", len(parts), used, got)
	}
}

func client(t testing.TB, brokers []any, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.(string))
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestBrokerKilledMidStream: a broker of three is removed while the sink
// produces and the source reads; every record arrives, once, in order.
func TestBrokerKilledMidStream(t *testing.T) {
	topic := unique("mdptest.")
	c, brokers := cluster(t, 3, topic)
	want := trades(60000, syms)
	src := &enginetest.Source{Symbols: syms, Trades: want, BatchSize: 50}
	done := make(chan *engine.Job)
	go func() {
		done <- publish(t, src, map[string]any{"brokers": brokers, "topic": topic, "linger": "0s", "reconnect_backoff": "10ms", "max_reconnect_backoff": "200ms"})
	}()
	s, _ := read(t, map[string]any{"brokers": brokers, "topics": []any{topic}, "reconnect_backoff": "10ms", "max_reconnect_backoff": "200ms"},
		md.KindTrade, len(want), func(j *engine.Job) {
			deadline := time.Now().Add(10 * time.Second)
			for s := j; time.Now().Before(deadline); {
				if n := s.Status().Nodes[0].EventsOut; n > 1000 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := c.RemoveNode(c.LeaderFor(topic, 0)); err != nil {
				t.Error(err)
			}
		})
	<-done
	// At least once: a partition's new leader may serve records again (the
	// consumer re-reads from where the new leader's epoch says it is
	// safe), so a record may arrive twice, never not at all; per symbol,
	// dropping the replays gives exactly the records sent, in order.
	got := dedupe(s)
	perSymbol(t, got, s.names, want, tradeSym, clearTrade, syms)
}

// dedupe drops records already seen (by symbol and seq), keeping the first
// arrival (perSymbol then compares every field of what is left).
func dedupe(s *namedSink) []md.Trade {
	type key struct {
		sym string
		seq uint64
	}
	seen := map[key]md.Trade{}
	var out []md.Trade
	var names []string
	for i, r := range s.trades {
		k := key{s.names[i], r.Seq}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = r
		out = append(out, r)
		names = append(names, s.names[i])
	}
	s.names = names
	return out
}

// TestMalformedCounted: messages that do not decode are counted by reason
// and dropped; the good ones around them arrive.
func TestMalformedCounted(t *testing.T) {
	topic := unique("mdptest.")
	_, brokers := cluster(t, 1, topic)
	publish(t, &enginetest.Source{Symbols: syms, Trades: trades(100, syms), BatchSize: 100}, map[string]any{"brokers": brokers, "topic": topic})
	cl := client(t, brokers, kgo.DefaultProduceTopic(topic))
	for _, v := range [][]byte{[]byte("XXgarbage-garbage-garbage"), []byte("MD\x09\x01\x00\x00\x00\x00\x00\x00"), nil} {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, &enginetest.Source{Symbols: syms, Trades: trades(100, syms), BatchSize: 100}, map[string]any{"brokers": brokers, "topic": topic})
	s, j := read(t, map[string]any{"brokers": brokers, "topics": []any{topic}}, md.KindTrade, 200, nil)
	if len(s.trades) != 200 {
		t.Fatalf("%d trades, want 200", len(s.trades))
	}
	st := j.Status().Nodes[0]
	if st.Drops["malformed"] != 3 || st.Counters["malformed_bad_magic"] != 1 || st.Counters["malformed_bad_version"] != 1 || st.Counters["malformed_truncated"] != 1 {
		t.Fatalf("drops %v counters %v", st.Drops, st.Counters)
	}
}

func TestParamsValidated(t *testing.T) {
	for _, c := range []struct {
		typ    string
		params map[string]any
		want   string
	}{
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "sasl_mechanism": "scram-sha-256", "sasl_username": "u"}, "sasl_mechanism scram-sha-256 needs sasl_password"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "sasl_password": "p"}, "sasl_password applies only with sasl_mechanism"},
		{"sink.kafka", map[string]any{"topic": "t", "tls_cert_file": "c.pem"}, "tls_cert_file"},
		{"sink.kafka", map[string]any{"topic": "t", "brokers": []any{"localhost"}}, `broker "localhost" is not host:port`},
		{"sink.kafka", map[string]any{"topic": "t", "tls": false, "tls_ca_file": "ca.pem"}, "tls_ca_file applies only with tls: true"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "start": "committed"}, "start: committed needs a group"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "start": "timestamp"}, "start: timestamp needs start_time"},
		{"provider.kafka", map[string]any{"topics": []any{"t("}, "regex": true, "group": "g"}, `topic regex "t("`},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "regex": true}, "regex needs a group"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "group": "g", "partitions": []any{0}}, "partitions apply only without a group"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "partitions": []any{-1}}, "is not a partition number"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "instance_id": "a"}, "instance_id needs a group"},
		{"provider.kafka", map[string]any{"topics": []any{"t"}, "format": "mdp", "mapping": map[string]any{"ts": "T"}}, "mapping applies only to format json or csv"},
	} {
		spec, _ := component.Lookup(c.typ)
		p, err := component.NewParams(spec, c.params)
		if err == nil {
			err = spec.Validate(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.typ, c.params, err, c.want)
		}
	}
}

// TestSASL: PLAIN and SCRAM against a cluster that requires them; a wrong
// password leaves the node DEGRADED with the password in no error or log.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			topic := unique("mdptest.")
			_, brokers := cluster(t, 1, topic, kfake.EnableSASL(), kfake.Superuser(mech, "mdp", "s3cret-pw"))
			auth := map[string]any{"brokers": brokers, "sasl_mechanism": strings.ToLower(mech), "sasl_username": "mdp", "sasl_password": "s3cret-pw"}
			pub := map[string]any{"topic": topic}
			for k, v := range auth {
				pub[k] = v
			}
			publish(t, &enginetest.Source{Symbols: syms, Trades: trades(300, syms), BatchSize: 100}, pub)
			sub := map[string]any{"topics": []any{topic}}
			for k, v := range auth {
				sub[k] = v
			}
			s, _ := read(t, sub, md.KindTrade, 300, nil)
			if len(s.trades) != 300 {
				t.Fatalf("%d trades", len(s.trades))
			}
			// A wrong password: DEGRADED, the secret nowhere.
			var logs bytes.Buffer
			var mu sync.Mutex
			sub["sasl_password"] = "wrong-pw-123"
			g := &engine.Graph{Nodes: []*engine.Node{node(t, "provider.kafka", "sub", sub), node(t, "sink.null", "null", nil)},
				Edges: []*engine.Edge{{From: "sub", To: "null"}}}
			j, err := engine.New(g, engine.Options{Job: "bad", Logger: slog.New(slog.NewTextHandler(&lockedWriter{&logs, &mu}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if err := j.Start(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for j.Status().Nodes[0].Errors["connect_failed"] == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			st := j.Status().Nodes[0]
			ready := j.Ready()
			cancel()
			_ = j.Wait()
			// Counted errors are what makes the runtime's Health DEGRADED.
			if st.Errors["connect_failed"] == 0 || ready {
				t.Fatalf("ready %v errors %v", ready, st.Errors)
			}
			spec, _ := component.Lookup("provider.kafka")
			for _, f := range spec.Fields {
				if f.Name == "sasl_password" && !f.Secret {
					t.Fatal("sasl_password is not marked Secret")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(st.LastError, "wrong-pw") || strings.Contains(logs.String(), "wrong-pw") || !strings.Contains(logs.String(), "mdp:xxxxx@") {
				t.Fatalf("secret shown or user missing:\n%s\n%s", st.LastError, logs.String())
			}
		})
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// memStore keeps checkpoints in memory.
type memStore struct {
	mu  sync.Mutex
	all []*engine.Checkpoint
}

func (m *memStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = append(m.all, c)
	return 1, nil
}

// TestCheckpointCommits: with checkpoints on, the group's committed
// offsets are exactly those of the last completed checkpoint, and a job
// restored from it reads on from there: nothing lost, nothing twice.
func TestCheckpointCommits(t *testing.T) {
	topic, group := unique("mdptest."), unique("g")
	_, brokers := cluster(t, 1, topic)
	want := trades(3000, syms)
	publish(t, &enginetest.Source{Symbols: syms, Trades: want[:2000], BatchSize: 100}, map[string]any{"brokers": brokers, "topic": topic})
	params := map[string]any{"brokers": brokers, "topics": []any{topic}, "group": group}
	store := &memStore{}
	first := &namedSink{}
	run := func(s *namedSink, restore *engine.Checkpoint, want int) {
		sn := &engine.Node{ID: "got", Type: "sink.test", Kind: engine.KindSink, Accepts: md.KindTrade, Ports: map[string]md.Kind{},
			NewProcessor: func(int) (engine.Processor, error) { return s, nil }}
		g := &engine.Graph{Nodes: []*engine.Node{node(t, "provider.kafka", "sub", params), sn}, Edges: []*engine.Edge{{From: "sub", To: "got"}}}
		j, err := engine.New(g, engine.Options{Job: "ck", Checkpoint: &engine.CheckpointOptions{Interval: 50 * time.Millisecond, Store: store, Restore: restore}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := j.Start(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for s.len() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// Wait for a checkpoint covering everything read.
		store.mu.Lock()
		n := len(store.all)
		store.mu.Unlock()
		for time.Now().Before(deadline) {
			store.mu.Lock()
			k := len(store.all)
			store.mu.Unlock()
			if k > n+2 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	run(first, nil, 2000)
	if len(first.trades) != 2000 {
		t.Fatalf("first run %d trades", len(first.trades))
	}
	store.mu.Lock()
	last := store.all[len(store.all)-1]
	store.mu.Unlock()
	// The group's commits equal the last notified checkpoint's position.
	committed := fetchCommitted(t, brokers, group, topic)
	var msgs int64
	for _, off := range committed {
		msgs += off
	}
	// 2000 trades of 7 symbols in batches of 100: 20 batches, each split
	// into 7 messages.
	if msgs != 20*7 {
		t.Fatalf("committed offsets %v (sum %d), want 140 messages", committed, msgs)
	}
	publish(t, &enginetest.Source{Symbols: syms, Trades: want[2000:], BatchSize: 100}, map[string]any{"brokers": brokers, "topic": topic})
	second := &namedSink{}
	run(second, last, 1000)
	if len(second.trades) != 1000 {
		t.Fatalf("resumed run %d trades, want 1000", len(second.trades))
	}
	perSymbol(t, append(first.trades, second.trades...), append(first.names, second.names...), want, tradeSym, clearTrade, syms)
}

func fetchCommitted(t *testing.T, brokers []any, group, topic string) map[int32]int64 {
	t.Helper()
	cl := client(t, brokers)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{0, 1, 2, 3}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}
