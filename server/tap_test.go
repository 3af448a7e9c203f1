package server_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/server"
)

// inProcess is a job server in this process: a Manager and its Handler,
// wired as mdp serve wires them.
type inProcess struct {
	m   *jobs.Manager
	h   *server.Handler
	srv *httptest.Server
	dir string
}

func newInProcess(t *testing.T) *inProcess { t.Helper(); return newInProcessToken(t, "") }

// newInProcessToken is newInProcess with the API token set.
func newInProcessToken(t *testing.T, token string) *inProcess {
	t.Helper()
	dir := t.TempDir()
	var hp atomic.Pointer[server.Handler]
	m, err := jobs.New(context.Background(), jobs.Options{
		State:    filepath.Join(dir, "state.db"),
		OnChange: func(name string) { hp.Load().Notify(name) },
		OnRun:    func(name string, u *runtime.Unified) { hp.Load().Run(name, u) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Manager: m, Token: token, StatusInterval: 50 * time.Millisecond})
	hp.Store(h)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
		_ = m.Close(context.Background())
	})
	return &inProcess{m: m, h: h, srv: srv, dir: dir}
}

func (p *inProcess) submit(t *testing.T, job string) {
	t.Helper()
	if _, err := p.m.Submit("job.yaml", []byte(job), "", true); err != nil {
		t.Fatal(err)
	}
}

func (p *inProcess) ws(t *testing.T, ctx context.Context, path string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, strings.Replace(p.srv.URL, "http", "ws", 1)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

type tapMsg struct {
	Type    string            `json:"type"`
	Port    string            `json:"port"`
	Kind    string            `json:"kind"`
	Symbol  string            `json:"symbol"`
	Symbols []string          `json:"symbols"`
	Records []json.RawMessage `json:"records"`
	Skipped int64             `json:"skipped"`
}

type tapBar struct {
	Symbol string  `json:"symbol"`
	Start  string  `json:"start"`
	Open   float64 `json:"open"`
	High   float64 `json:"high"`
	Low    float64 `json:"low"`
	Close  float64 `json:"close"`
	Volume float64 `json:"volume"`
}

func readTap(t *testing.T, ctx context.Context, c *websocket.Conn) tapMsg {
	t.Helper()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("tap read: %v", err)
	}
	var m tapMsg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("tap message %s: %v", data, err)
	}
	return m
}

// dbBars reads a symbol's bars from a job's SQLite file, oldest first.
func dbBars(t *testing.T, path, symbol string) []tapBar {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query(`SELECT symbol, ts, open, high, low, close, volume FROM bars_ohlcv WHERE symbol = ? ORDER BY ts`, symbol)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []tapBar
	for rs.Next() {
		var b tapBar
		if err := rs.Scan(&b.Symbol, &b.Start, &b.Open, &b.High, &b.Low, &b.Close, &b.Volume); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The bars of a finished run are all there when a chart opens: the port
// carrying bars was recorded from the run's first record, and its records
// are the bars the store holds.
func TestTapOpensFilledWithTheRunsBars(t *testing.T) {
	p := newInProcess(t)
	db := filepath.Join(p.dir, "tapbars.db")
	p.submit(t, fmt.Sprintf(`name: tapbars
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], count: 20000, step: 10ms, seed: 7}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, db))
	waitFor(t, "the job to finish", 30*time.Second, func() bool {
		st, _ := p.m.Status("tapbars", false)
		return st.State == "stopped"
	})
	resp, err := http.Get(p.srv.URL + "/api/v1/jobs/tapbars/taps")
	if err != nil {
		t.Fatal(err)
	}
	var ports []server.TapPortInfo
	_ = json.NewDecoder(resp.Body).Decode(&ports)
	resp.Body.Close()
	if fmt.Sprint(ports) != "[{bars bars bar} {bars.dead_letter bars trade} {bars.late bars trade} {src src trade} {store.dead_letter store bar}]" {
		t.Fatalf("taps: %v", ports)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := p.ws(t, ctx, "/api/v1/jobs/tapbars/tap/bars?symbol=MSFT")
	m := readTap(t, ctx, c)
	want := dbBars(t, db, "MSFT")
	if m.Type != "snapshot" || m.Port != "bars" || m.Kind != "bar" || fmt.Sprint(m.Symbols) != "[AAPL MSFT]" || m.Skipped != 0 {
		t.Fatalf("first message %+v", m)
	}
	// 20000 trades, 10 ms apart, alternating between two symbols: 200 s of
	// one-second bars for each.
	if len(want) != 200 || len(m.Records) != len(want) {
		t.Fatalf("tap has %d bars, the store %d; want 200", len(m.Records), len(want))
	}
	for i, raw := range m.Records {
		var b tapBar
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if b.Symbol != "MSFT" || b.Open != w.Open || b.High != w.High || b.Low != w.Low || b.Close != w.Close || b.Volume != w.Volume ||
			!strings.HasPrefix(w.Start, strings.TrimSuffix(b.Start, "Z")) {
			t.Fatalf("bar %d: tap %+v, store %+v", i, b, w)
		}
	}
	if end := readTap(t, ctx, c); end.Type != "end" {
		t.Fatalf("after the snapshot of a finished run: %+v", end)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("close: %v", err)
	}
}

// A port that is not recorded from the start (trades) is recorded from its
// first client on: that client gets new records live, only of its symbol.
func TestTapStreamsALiveNode(t *testing.T) {
	p := newInProcess(t)
	p.submit(t, fmt.Sprintf(`name: taplive
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL, MSFT], rate: 2000, seed: 3}}
    - {id: bars, type: operator.bars, params: {interval: 100ms}}
    - {id: store, type: sink.sqlite, params: {path: %q}}
  edges: [[src, bars], [bars, store]]
`, filepath.Join(p.dir, "taplive.db")))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := p.ws(t, ctx, "/api/v1/jobs/taplive/tap/src?symbol=AAPL")
	if m := readTap(t, ctx, c); m.Type != "snapshot" || m.Kind != "trade" {
		t.Fatalf("first message %+v", m)
	}
	got := 0
	for got < 50 {
		m := readTap(t, ctx, c)
		if m.Type == "symbols" {
			continue
		}
		if m.Type != "records" {
			t.Fatalf("message %+v", m)
		}
		for _, raw := range m.Records {
			var tr struct {
				Symbol string  `json:"symbol"`
				Price  float64 `json:"price"`
			}
			if err := json.Unmarshal(raw, &tr); err != nil || tr.Symbol != "AAPL" || tr.Price <= 0 {
				t.Fatalf("record %s: %v", raw, err)
			}
			got++
		}
	}
	// Unknown ports and jobs are 404 with what there is.
	for path, want := range map[string]string{
		"/api/v1/jobs/taplive/tap/nope": `no output port \"nope\" to tap; ports: [bars bars.dead_letter bars.late src store.dead_letter]`,
		"/api/v1/jobs/nojob/tap/src":    `job \"nojob\": no such job`,
	} {
		resp, err := http.Get(p.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(data)
		if resp.StatusCode != 404 || !strings.Contains(text, want) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, text)
		}
	}
}

// With a token, the tap WebSocket takes the credentials the status
// WebSocket takes, through the same path: the token as a subprotocol
// offered beside mdp.v1 (which is selected, as a browser requires), the
// Authorization header, or the session cookie. Missing or wrong
// credentials get 401 before anything says whether the job exists.
func TestTapAuth(t *testing.T) {
	const token = "tap-t0ken/+="
	p := newInProcessToken(t, token)
	p.submit(t, `name: tapauth
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], count: 3000, step: 10ms, seed: 5}}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`)
	waitFor(t, "the job to finish", 30*time.Second, func() bool {
		st, _ := p.m.Status("tapauth", false)
		return st.State == "stopped"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	wsURL := strings.Replace(p.srv.URL, "http", "ws", 1)
	dial := func(path string, opts *websocket.DialOptions) (int, string, *websocket.Conn) {
		t.Helper()
		c, resp, err := websocket.Dial(ctx, wsURL+path, opts)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial %s: %v", path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), nil
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return http.StatusSwitchingProtocols, "", c
	}
	const tap = "/api/v1/jobs/tapauth/tap/bars?symbol=AAPL"
	withProto := func(tok string) *websocket.DialOptions {
		return &websocket.DialOptions{Subprotocols: []string{server.Subprotocol, server.BearerProtocolPrefix + b64(tok)}}
	}
	// Refused: no credentials, a wrong token in the subprotocol or the
	// header, and an unknown job or port the same way.
	for what, tc := range map[string]struct {
		path string
		opts *websocket.DialOptions
		want string
	}{
		"no credentials":         {tap, nil, "mdp.bearer.BASE64URL(TOKEN)"},
		"wrong subprotocol":      {tap, withProto("guess"), "wrong API token in the WebSocket subprotocol"},
		"wrong header":           {tap, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer guess"}}}, "wrong API token in Authorization"},
		"unknown job, no token":  {"/api/v1/jobs/nojob/tap/bars", nil, "missing API token"},
		"unknown port, no token": {"/api/v1/jobs/tapauth/tap/nope", withProto("guess"), "wrong API token"},
	} {
		code, body, _ := dial(tc.path, tc.opts)
		if code != http.StatusUnauthorized || !strings.Contains(body, tc.want) || strings.Contains(body, b64("guess")) {
			t.Errorf("%s: %d %s", what, code, body)
		}
	}
	// The right token in the subprotocol: upgraded with mdp.v1 selected,
	// the run's bars in the snapshot, then the end of the run.
	code, body, c := dial(tap, withProto(token))
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("right subprotocol token: %d %s", code, body)
	}
	if c.Subprotocol() != server.Subprotocol {
		t.Fatalf("selected subprotocol %q, want %q", c.Subprotocol(), server.Subprotocol)
	}
	// 3000 trades 10 ms apart: 30 one-second bars.
	if m := readTap(t, ctx, c); m.Type != "snapshot" || m.Symbol != "AAPL" || len(m.Records) != 30 {
		t.Fatalf("snapshot: type %s symbol %s, %d records; want 30 bars", m.Type, m.Symbol, len(m.Records))
	}
	if m := readTap(t, ctx, c); m.Type != "end" {
		t.Fatalf("after the snapshot: %+v", m)
	}
	// Past the credentials, an unknown port is the route's 404.
	if code, body, _ := dial("/api/v1/jobs/tapauth/tap/nope", withProto(token)); code != http.StatusNotFound || !strings.Contains(body, `no output port \"nope\"`) {
		t.Fatalf("unknown port with the token: %d %s", code, body)
	}
	// The header and the session cookie open it too.
	if code, body, _ := dial(tap, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}}); code != http.StatusSwitchingProtocols {
		t.Fatalf("bearer header: %d %s", code, body)
	}
	resp, err := http.Post(p.srv.URL+server.LoginPath, "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Cookies())
	}
	code, body, c = dial(tap, &websocket.DialOptions{Subprotocols: []string{server.Subprotocol}, HTTPHeader: http.Header{"Cookie": {resp.Cookies()[0].String()}}})
	if code != http.StatusSwitchingProtocols || c.Subprotocol() != server.Subprotocol {
		t.Fatalf("cookie: %d %s", code, body)
	}
	if m := readTap(t, ctx, c); m.Type != "snapshot" || len(m.Records) != 30 {
		t.Fatalf("snapshot over the cookie: %s, %d records", m.Type, len(m.Records))
	}
}
