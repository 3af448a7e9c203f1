package websocket

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	_ "github.com/mdpio/mdp/operator/bars" // operator.bars
	_ "github.com/mdpio/mdp/source/replay" // provider.replay
)

// The replay engineer's copy of the recorded Binance futures trades.
const tardisTrades = "../../testdata/replay/tardis_trades.csv"

// tardisAsBinance renders every row of a Tardis trades CSV as the Binance
// futures trade message the exchange sent for it: T is the µs timestamp in
// ms, t the id, p and q the price and amount text, m true for a sell.
func tardisAsBinance(t testing.TB, path string) [][]byte {
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
	var msgs [][]byte
	for _, r := range rows[1:] { // exchange,symbol,timestamp,local_timestamp,id,side,price,amount
		us, err := strconv.ParseInt(r[2], 10, 64)
		if err != nil || us%1000 != 0 {
			t.Fatalf("row %v: timestamp is not whole ms", r)
		}
		ms := us / 1000
		msgs = append(msgs, fmt.Appendf(nil, `{"e":"trade","E":%d,"T":%d,"s":"%s","t":%s,"p":"%s","q":"%s","X":"MARKET","m":%t}`,
			ms, ms, r[1], r[4], r[6], r[7], r[5] == "sell"))
	}
	return msgs
}

// barsJob builds src -> bars(interval) -> sink for each interval.
func barsJob(t testing.TB, src *engine.Node, intervals []string) (*runningJob, []*collector) {
	t.Helper()
	spec, ok := component.Lookup("operator.bars")
	if !ok {
		t.Fatal("operator.bars is not registered")
	}
	nodes := []*engine.Node{src}
	var edges []*engine.Edge
	var cols []*collector
	for i, iv := range intervals {
		p, err := component.NewParams(spec, map[string]any{"interval": iv})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("bars%d", i)
		sink := sinkNode(&collector{})
		sink.ID = fmt.Sprintf("sink%d", i)
		c := &collector{}
		sink.NewProcessor = func(int) (engine.Processor, error) { return c, nil }
		cols = append(cols, c)
		nodes = append(nodes, component.Node(spec, p, component.NodeOptions{ID: id}), sink)
		edges = append(edges, &engine.Edge{From: src.ID, To: id}, &engine.Edge{From: id, To: sink.ID})
	}
	return startJob(t, nodes, edges), cols
}

// namedBar is a bar with its instrument spelled out, comparable across jobs.
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

func sameBars(t testing.TB, what string, got, want []namedBar) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bars, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: bar %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

var equivalenceIntervals = []string{"1s", "1m"}

// replayBars runs the CSV through provider.replay and operator.bars.
func replayBars(t *testing.T) [][]namedBar {
	spec, ok := component.Lookup("provider.replay")
	if !ok {
		t.Fatal("provider.replay is not registered")
	}
	p, err := component.NewParams(spec, map[string]any{"path": tardisTrades, "preset": "tardis_trades", "progress": "never"})
	if err != nil {
		t.Fatal(err)
	}
	rj, cols := barsJob(t, component.Node(spec, p, component.NodeOptions{ID: "src"}), equivalenceIntervals)
	select {
	case err := <-rj.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(liveness):
		t.Fatal("replay did not finish")
	}
	var out [][]namedBar
	for _, c := range cols {
		out = append(out, named(rj.j, c.bars))
	}
	return out
}

// websocketBars serves msgs from the loopback server by script and returns
// the bars built from what provider.websocket received, once it has emitted
// want trades (then the job is stopped, which flushes every open bar).
func websocketBars(t *testing.T, script connScript, want int64, extra map[string]any) ([][]namedBar, *engine.NodeStats) {
	srv := newWSServer(t, 1, script)
	params := map[string]any{"url": srv.url(), "preset": "binance", "provider": "binance-futures",
		"subscribe": binanceSubscribe, "reconnect_backoff": "10ms"}
	for k, v := range extra {
		params[k] = v
	}
	rj, cols := barsJob(t, sourceNode(t, params), equivalenceIntervals)
	st := rj.stats()
	waitFor(t, fmt.Sprintf("%d trades", want), func() bool { return st.EventsOut.Load() >= want })
	if err := rj.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := st.EventsOut.Load(); n != want {
		t.Fatalf("the source emitted %d trades, want %d", n, want)
	}
	var out [][]namedBar
	for _, c := range cols {
		out = append(out, named(rj.j, c.bars))
	}
	return out, st
}

func TestReplayAndWebSocketProduceIdenticalBars(t *testing.T) {
	if _, err := os.Stat(tardisTrades); err != nil {
		t.Fatalf("the replay test data is missing: %v", err)
	}
	msgs := tardisAsBinance(t, tardisTrades)
	ref := replayBars(t)
	if len(ref[0]) < 100 || len(ref[1]) < 10 {
		t.Fatalf("replay made only %d 1s and %d 1m bars", len(ref[0]), len(ref[1]))
	}
	var trades int64
	for _, b := range ref[1] {
		trades += b.Trades
	}
	if trades != int64(len(msgs)) {
		t.Fatalf("replay bars hold %d trades, the file %d", trades, len(msgs))
	}

	t.Run("one connection", func(t *testing.T) {
		got, _ := websocketBars(t, func(s *wsServer, c *websocket.Conn, n int) {
			if s.send(c, msgs) {
				s.hold(c)
			}
		}, int64(len(msgs)), nil)
		for i, iv := range equivalenceIntervals {
			sameBars(t, iv+" bars", got[i], ref[i])
		}
	})

	t.Run("server closes mid-stream and replays on reconnect", func(t *testing.T) {
		// Connection 0 dies after 40% of the trades; connection 1 starts 100
		// trades back. The duplicates must not reach the bars.
		cut := len(msgs) * 4 / 10
		got, st := websocketBars(t, func(s *wsServer, c *websocket.Conn, n int) {
			switch n {
			case 0:
				if s.send(c, msgs[:cut]) {
					c.Close(websocket.StatusServiceRestart, "restart")
				}
			default:
				if s.send(c, msgs[cut-100:]) {
					s.hold(c)
				}
			}
		}, int64(len(msgs)), nil)
		for i, iv := range equivalenceIntervals {
			sameBars(t, iv+" bars", got[i], ref[i])
		}
		checkCounts(t, "drops", st.Drops(), map[string]int64{"duplicate": 100})
		if c := st.Counters(); c["connects"] != 2 || c["reconnects"] != 1 || c["sequence_gaps"] != 0 {
			t.Errorf("counters %v", c)
		}
	})
}
