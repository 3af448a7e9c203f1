package ibkr

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	_ "github.com/mdpio/mdp/operator/bars" // operator.bars
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
	_ "github.com/mdpio/mdp/source/replay" // provider.replay
)

// collector is a sink that keeps the bars it receives.
type collector struct {
	mu   sync.Mutex
	bars []md.Bar
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	c.bars = append(c.bars, b.Bars...)
	c.mu.Unlock()
	return nil
}

// scriptedTrade is one trade of the script, with its price and size text
// exactly as both the wire and the file carry it.
type scriptedTrade struct {
	sec         int64
	sym         string
	price, size string
}

// script makes n trades of AAPL and MSFT, several per second (so ties in
// IB's whole-second times decide open and close), over about n/4 seconds.
func script(n int) []scriptedTrade {
	r := rand.New(rand.NewPCG(7, 15))
	px := map[string]float64{"AAPL": 189.5, "MSFT": 412.25}
	var out []scriptedTrade
	sec := int64(1764167400)
	for range n {
		if r.IntN(4) == 0 {
			sec++
		}
		sym := [2]string{"AAPL", "MSFT"}[r.IntN(2)]
		px[sym] += float64(r.IntN(21)-10) / 100
		out = append(out, scriptedTrade{sec, sym, strconv.FormatFloat(float64(int(px[sym]*100+0.5))/100, 'f', -1, 64), strconv.Itoa(1 + r.IntN(500))})
	}
	return out
}

// barsJob runs src -> bars(1s) and bars(1m) -> collectors.
func barsJob(t *testing.T, src *engine.Node) (*engine.Job, chan error, []*collector) {
	t.Helper()
	spec, _ := component.Lookup("operator.bars")
	nodes := []*engine.Node{src}
	var edges []*engine.Edge
	var cols []*collector
	for i, iv := range []string{"1s", "1m"} {
		p, err := component.NewParams(spec, map[string]any{"interval": iv})
		if err != nil {
			t.Fatal(err)
		}
		c := &collector{}
		cols = append(cols, c)
		id, sid := fmt.Sprint("bars", i), fmt.Sprint("sink", i)
		nodes = append(nodes, component.Node(spec, p, component.NodeOptions{ID: id}),
			&engine.Node{ID: sid, Type: "sink.collect", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{},
				NewProcessor: func(int) (engine.Processor, error) { return c, nil }})
		edges = append(edges, &engine.Edge{From: src.ID, To: id}, &engine.Edge{From: id, To: sid})
	}
	j, err := engine.New(&engine.Graph{Nodes: nodes, Edges: edges}, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background()) }()
	t.Cleanup(func() {
		j.Stop()
		<-j.Done()
	})
	return j, done, cols
}

type namedBar struct {
	Provider, Symbol string
	md.Bar
}

func named(j *engine.Job, bars []md.Bar) []namedBar {
	out := make([]namedBar, len(bars))
	for i, b := range bars {
		inst := j.Symbols().Get(b.Sym)
		b.Sym = 0
		out[i] = namedBar{inst.Provider, inst.Symbol, b}
	}
	return out
}

// TestLiveAndReplayGiveIdenticalBars: the same trades, once as IB
// tick-by-tick messages through the fake TWS and provider.ibkr, once from a
// CSV file through provider.replay, give identical 1s and 1m bars through
// the real engine — whole-second times and all.
func TestLiveAndReplayGiveIdenticalBars(t *testing.T) {
	trades := script(4000)
	path := filepath.Join(t.TempDir(), "trades.csv")
	csv := []byte("ts,symbol,price,size\n")
	for _, tr := range trades {
		csv = fmt.Appendf(csv, "%d,%s,%s,%s\n", tr.sec, tr.sym, tr.price, tr.size)
	}
	if err := os.WriteFile(path, csv, 0o644); err != nil {
		t.Fatal(err)
	}

	rspec, _ := component.Lookup("provider.replay")
	rp, err := component.NewParams(rspec, map[string]any{"path": path, "kind": "trade", "ts_format": "unix_s", "provider": "ibkr", "progress": "never",
		"columns": map[string]any{"ts": "ts", "symbol": "symbol", "price": "price", "size": "size"}})
	if err != nil {
		t.Fatal(err)
	}
	rj, rdone, rcols := barsJob(t, component.Node(rspec, rp, component.NodeOptions{ID: "src"}))
	select {
	case err := <-rdone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replay did not finish")
	}

	srv := fakeServer(t)
	ispec, _ := component.Lookup(Type)
	ip, err := component.NewParams(ispec, map[string]any{"port": srv.Port(), "quotes": false, "contracts": []any{
		map[string]any{"symbol": "AAPL", "primary_exchange": "NASDAQ"}, map[string]any{"symbol": "MSFT", "primary_exchange": "NASDAQ"}}})
	if err != nil {
		t.Fatal(err)
	}
	lj, ldone, lcols := barsJob(t, component.Node(ispec, ip, component.NodeOptions{ID: "src"}))
	ss, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss.Ready()
	var frames []byte
	for _, tr := range trades {
		id := map[string]int{"AAPL": 1, "MSFT": 2}[tr.sym]
		frames = append(frames, faketws.Text(99, id, 2, tr.sec, tr.price, tr.size, 0, "NASDAQ", "")...)
	}
	for range 2 {
		if _, err := ss.Next(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ss.Write(frames)
	st := lj.NodeContexts("src")[0].Stats
	deadline := time.Now().Add(10 * time.Second)
	for st.EventsOut.Load() < int64(len(trades)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	lj.Stop()
	if err := <-ldone; err != nil {
		t.Fatal(err)
	}
	if n := st.EventsOut.Load(); n != int64(len(trades)) {
		t.Fatalf("provider.ibkr emitted %d trades, want %d", n, len(trades))
	}
	for i, iv := range []string{"1s", "1m"} {
		want, got := named(rj, rcols[i].bars), named(lj, lcols[i].bars)
		if len(want) < 10 || len(got) != len(want) {
			t.Fatalf("%s: %d bars live, %d replayed", iv, len(got), len(want))
		}
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("%s bar %d:\n live   %+v\n replay %+v", iv, k, got[k], want[k])
			}
		}
	}
}
