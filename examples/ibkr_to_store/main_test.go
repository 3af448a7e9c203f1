package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// TestAgainstFakeTWS runs the example against the fake TWS on loopback and
// checks the bars it stored: 1m trade bars and 1m mid bars of AAPL and MSFT.
func TestAgainstFakeTWS(t *testing.T) {
	srv, err := faketws.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	job := make(chan *runtime.Unified, 1)
	go func() {
		code <- run(ctx, options{host: "127.0.0.1", port: srv.Port(), clientID: 17, dataDir: dir,
			started: func(u *runtime.Unified) { job <- u }}, &stdout, &stderr)
	}()
	ss, err := srv.Accept(10 * time.Second)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	if ss.ClientID != 17 {
		t.Errorf("client id %d", ss.ClientID)
	}
	ss.Ready()
	for range 4 { // AAPL trades and quotes, MSFT trades and quotes
		if _, err := ss.Next(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	const t0 = 1764167400 // 14:30:00 UTC
	// Request ids follow the contracts: AAPL trades 1, quotes 2; MSFT 3, 4.
	ss.SendFields(99, 1, 2, t0+1, 189.5, 100, 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, t0+30, 189.9, 50, 0, "NASDAQ", "")
	ss.SendFields(99, 1, 2, t0+61, 189.7, 10, 0, "NASDAQ", "")
	ss.SendFields(99, 3, 2, t0+2, 412.0, 5, 0, "NASDAQ", "")
	ss.SendFields(99, 2, 3, t0+1, 189.4, 189.6, 300, 200, 0)
	ss.SendFields(99, 2, 3, t0+5, 189.5, 189.9, 300, 200, 0)
	ss.SendFields(99, 4, 3, t0+3, 411.9, 412.1, 10, 10, 0)
	u := <-job
	for deadline := time.Now().Add(10 * time.Second); ; {
		st := u.Status()
		if st.Nodes[0].EventsOut == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider emitted %d records, want 7", st.Nodes[0].EventsOut)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the example did not stop")
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "ibkr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func(q string) []string {
		t.Helper()
		r, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var sym, ts string
			var o, h, l, c, v float64
			var n int64
			if err := r.Scan(&sym, &ts, &o, &h, &l, &c, &v, &n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %g %g %g %g %g %d", sym, ts, o, h, l, c, v, n))
		}
		return out
	}
	trade := rows("select symbol, ts, open, high, low, close, volume, trades from bars_ohlcv where provider = 'ibkr' order by symbol, ts")
	want := []string{
		"AAPL 2025-11-26T14:30:00.000000Z 189.5 189.9 189.5 189.9 150 2",
		"AAPL 2025-11-26T14:31:00.000000Z 189.7 189.7 189.7 189.7 10 1",
		"MSFT 2025-11-26T14:30:00.000000Z 412 412 412 412 5 1",
	}
	if fmt.Sprint(trade) != fmt.Sprint(want) {
		t.Errorf("trade bars:\n%v\nwant\n%v", trade, want)
	}
	mid := rows("select symbol, ts, open, high, low, close, volume, trades from bars_mid order by symbol, ts")
	want = []string{
		"AAPL 2025-11-26T14:30:00.000000Z 189.5 189.7 189.5 189.7 0 2",
		"MSFT 2025-11-26T14:30:00.000000Z 412 412 412 412 0 1",
	}
	if fmt.Sprint(mid) != fmt.Sprint(want) {
		t.Errorf("mid bars:\n%v\nwant\n%v", mid, want)
	}
}
