package ibkr

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// TestDisconnectMidBarMarksItPartial: through the real engine, the
// connection drops in the middle of a 1-minute bar; the source reconnects,
// re-subscribes and records the gap from the last trade before the drop
// to the first after it. The bar the gap falls in is written partial, the
// bars before and after it are not; 1-second bars are partial only where
// their second touches the gap.
func TestDisconnectMidBarMarksItPartial(t *testing.T) {
	srv := fakeServer(t)
	ispec, _ := component.Lookup(Type)
	ip, err := component.NewParams(ispec, map[string]any{"port": srv.Port(), "quotes": false, "reconnect_backoff": "10ms",
		"reconnect_max_backoff": "20ms", "contracts": []any{map[string]any{"symbol": "AAPL", "primary_exchange": "NASDAQ"}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(ip)
	if err != nil {
		t.Fatal(err)
	}
	node := component.Node(ispec, ip, component.NodeOptions{ID: "src"})
	node.NewSource = func(int) (engine.Source, error) {
		s := newSource(cfg)
		// A fake pacing clock: the re-subscription's 15 s tick-by-tick
		// wait passes at once.
		s.clk = newFakeClock(t0)
		s.pacer = newPacer(s.clk, cfg.rate)
		return s, nil
	}
	j, done, cols := barsJob(t, node)

	const m0 = int64(1764167400) // 14:30:00, a minute boundary
	trade := func(ss *faketws.Session, sec int64) {
		ss.Write(faketws.Text(99, 1, 2, sec, "189.5", "10", 0, "NASDAQ", ""))
	}
	ss, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss.Ready()
	if _, err := ss.Next(5 * time.Second); err != nil { // reqTickByTickData
		t.Fatal(err)
	}
	for _, sec := range []int64{m0 + 5, m0 + 30, m0 + 61, m0 + 62, m0 + 65} {
		trade(ss, sec)
	}
	st := j.NodeContexts("src")[0].Stats
	waitOut := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st.EventsOut.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d trades out, want %d", st.EventsOut.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitOut(5)
	ss.Close() // mid-bar: the minute from m0+60 is open
	ss2, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss2.Ready()
	if _, err := ss2.Next(5 * time.Second); err != nil { // the re-subscription
		t.Fatal(err)
	}
	for _, sec := range []int64{m0 + 100, m0 + 130, m0 + 185} {
		trade(ss2, sec)
	}
	waitOut(8)
	j.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	type want struct {
		start   int64
		partial bool
	}
	check := func(iv string, bars []want, got []namedBar) {
		t.Helper()
		if len(got) != len(bars) {
			t.Fatalf("%s: %d bars, want %d: %+v", iv, len(got), len(bars), got)
		}
		for i, w := range bars {
			if got[i].Start != w.start*1e9 || got[i].Partial != w.partial {
				t.Errorf("%s bar %d: start %d partial %v, want start %d partial %v", iv, i, got[i].Start/1e9, got[i].Partial, w.start, w.partial)
			}
		}
	}
	// The gap is [m0+65, m0+100]: the minute from m0+60 holds both ends.
	check("1m", []want{{m0, false}, {m0 + 60, true}, {m0 + 120, false}, {m0 + 180, false}}, named(j, cols[1].bars))
	check("1s", []want{{m0 + 5, false}, {m0 + 30, false}, {m0 + 61, false}, {m0 + 62, false}, {m0 + 65, true},
		{m0 + 100, true}, {m0 + 130, false}, {m0 + 185, false}}, named(j, cols[0].bars))
	if g := j.Symbols().Gaps(cols[1].bars[0].Sym); len(g) != 1 || g[0].From != (m0+65)*1e9 || g[0].To != (m0+100)*1e9 {
		t.Errorf("gaps %+v", g)
	}
}
