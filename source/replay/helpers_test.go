package replay

import (
	"context"
	"encoding/csv"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

const (
	tardisTrades = "../../testdata/replay/tardis_trades.csv"
	tardisQuotes = "../../testdata/replay/tardis_quotes.csv"
	truefxFile   = "../../testdata/replay/truefx-usdjpy-ticks.csv"
	histdataFile = "../../testdata/replay/histdata-eurusd-ticks.csv"
)

// collector is a sink that keeps everything it receives.
type collector struct {
	mu       sync.Mutex
	trades   []md.Trade
	quotes   []md.Quote
	bars     []md.Bar
	wms      []int64
	arrivals []time.Time // wall time each batch arrived
	batchMax []int64     // max event time per batch
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trades = append(c.trades, b.Trades...)
	c.quotes = append(c.quotes, b.Quotes...)
	c.bars = append(c.bars, b.Bars...)
	mx := md.MinTime
	for _, t := range b.Trades {
		mx = max(mx, t.TS)
	}
	for _, q := range b.Quotes {
		mx = max(mx, q.TS)
	}
	c.arrivals = append(c.arrivals, time.Now())
	c.batchMax = append(c.batchMax, mx)
	return nil
}

func (c *collector) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	c.mu.Lock()
	c.wms = append(c.wms, wm)
	c.mu.Unlock()
	return nil
}

func collectNode(c *collector) *engine.Node {
	return &engine.Node{ID: "sink", Type: "sink.collect", Kind: engine.KindSink, Accepts: md.KindAny,
		Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return c, nil }}
}

func specOf(t testing.TB, typ string) *component.Spec {
	t.Helper()
	s, ok := component.Lookup(typ)
	if !ok {
		t.Fatalf("%s is not registered", typ)
	}
	return s
}

func componentNode(t testing.TB, typ, id string, params map[string]any) *engine.Node {
	t.Helper()
	s := specOf(t, typ)
	p, err := component.NewParams(s, params)
	if err != nil {
		t.Fatalf("params for %s: %v", typ, err)
	}
	return component.Node(s, p, component.NodeOptions{ID: id})
}

// captureSource makes n's NewSource also keep the Source it builds in *s.
func captureSource(n *engine.Node, s **Source) {
	build := n.NewSource
	n.NewSource = func(i int) (engine.Source, error) {
		x, err := build(i)
		*s, _ = x.(*Source)
		return x, err
	}
}

// result of one job run.
type result struct {
	c       *collector
	job     *engine.Job
	err     error
	elapsed time.Duration
	logs    *enginetest.SyncBuffer
}

// runGraph runs nodes src -> [mid...] -> collector and waits for the end.
func runGraph(t testing.TB, fb *engine.Feedback, nodes ...*engine.Node) *result {
	t.Helper()
	return runGraphWith(t, engine.Options{Feedback: fb}, 0, nodes...)
}

// runGraphWith is runGraph with job options (Job and Logger are set here),
// stopping the job gracefully after stopAfter when it is not 0.
func runGraphWith(t testing.TB, opts engine.Options, stopAfter time.Duration, nodes ...*engine.Node) *result {
	t.Helper()
	r := &result{c: &collector{}, logs: &enginetest.SyncBuffer{}}
	g := &engine.Graph{Nodes: append(nodes, collectNode(r.c))}
	for i := 0; i+1 < len(g.Nodes); i++ {
		g.Edges = append(g.Edges, &engine.Edge{From: g.Nodes[i].ID, To: g.Nodes[i+1].ID})
	}
	opts.Job = "test"
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	j, err := engine.New(g, opts)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	r.job = j
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if stopAfter > 0 {
		tm := time.AfterFunc(stopAfter, j.Stop)
		defer tm.Stop()
	}
	start := time.Now()
	r.err = j.Run(ctx)
	r.elapsed = time.Since(start)
	return r
}

// replay runs provider.replay with params straight into a collector.
func replay(t testing.TB, params map[string]any) *result {
	t.Helper()
	return runGraph(t, nil, componentNode(t, "provider.replay", "src", params))
}

func mustReplay(t testing.TB, params map[string]any) *result {
	t.Helper()
	r := replay(t, params)
	if r.err != nil {
		t.Fatalf("replay: %v", r.err)
	}
	return r
}

// symText names a record's instrument as provider/symbol.
func symText(j *engine.Job, id md.SymID) string {
	in := j.Symbols().Get(id)
	return in.Provider + "/" + in.Symbol
}

// readCSV reads a whole CSV file with encoding/csv: the independent reference.
func readCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func atof(t testing.TB, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// refTrade is a trade as the reference parser sees it.
type refTrade struct {
	sym            string
	ts, ingest, id int64
	side           md.Side
	price, size    float64
}

// tardisRef parses a tardis trades CSV independently of the package.
func tardisRef(t testing.TB, path string) []refTrade {
	rows := readCSV(t, path)
	var out []refTrade
	for _, r := range rows[1:] {
		side := md.SideUnknown
		switch r[5] {
		case "buy":
			side = md.SideBuy
		case "sell":
			side = md.SideSell
		}
		out = append(out, refTrade{sym: r[0] + "/" + r[1], ts: atoi(t, r[2]) * 1000, ingest: atoi(t, r[3]) * 1000,
			id: atoi(t, r[4]), side: side, price: atof(t, r[6]), size: atof(t, r[7])})
	}
	return out
}

func checkTrades(t testing.TB, r *result, want []refTrade) {
	t.Helper()
	got := r.c.trades
	if len(got) != len(want) {
		t.Fatalf("got %d trades, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if symText(r.job, g.Sym) != w.sym || g.TS != w.ts || g.Ingest != w.ingest || g.TradeID != w.id ||
			g.Side != w.side || g.Price != w.price || g.Size != w.size || g.Seq != uint64(i+1) {
			t.Fatalf("trade %d: got %+v (%s), want %+v seq %d", i, g, symText(r.job, g.Sym), w, i+1)
		}
	}
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
