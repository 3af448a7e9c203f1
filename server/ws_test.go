package server

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/jobs"
)

// dropped reports whether the hub has dropped c.
func dropped(c *client) bool {
	select {
	case <-c.gone:
		return true
	default:
		return false
	}
}

// A client whose queue is full is dropped at once — the broadcast never
// waits for it — and its connection is closed with CloseTooSlow; the other
// clients keep their messages.
func TestSlowClientDropped(t *testing.T) {
	m, err := jobs.New(context.Background(), jobs.Options{State: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	h := New(Options{Manager: m, StatusInterval: time.Hour, ClientBuffer: 2})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(srv.URL, "http", "ws", 1) + "/api/v1/ws"
	slow, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	fast, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.CloseNow()
	// Both got their first snapshot.
	for _, c := range []*websocket.Conn{slow, fast} {
		if _, data, err := c.Read(ctx); err != nil || !strings.Contains(string(data), `"type":"jobs"`) {
			t.Fatalf("first message: %v %s", err, data)
		}
	}
	all, _ := h.hub.snapshot()
	if len(all) != 2 {
		t.Fatalf("%d clients", len(all))
	}
	// Either client is made the slow one: the hub's queues are the only
	// place a message waits.
	var slowC *client
	h.hub.mu.Lock()
	for c := range h.hub.clients {
		slowC = c
		break
	}
	h.hub.mu.Unlock()
	// Fill its queue and broadcast at once. The client's writer, on
	// another CPU, may take a message between the two: the broadcast then
	// finds room and rightly keeps the client, so the pair is tried again.
	// A broadcast that waited for room would keep the client every time;
	// the one that never waits drops it once it meets a full queue. (No
	// wall-clock bound: a slow machine is not a defect.)
	for try := 0; !dropped(slowC); try++ {
		if try == 100 {
			t.Fatal("the full client was not dropped")
		}
		for len(slowC.send) < cap(slowC.send) {
			slowC.send <- []byte(`{"type":"filler"}`)
		}
		h.hub.broadcast([]*client{slowC}, StatusMessage{Type: "jobs"})
	}
	if all, _ := h.hub.snapshot(); len(all) != 1 {
		t.Fatalf("%d clients after the drop, want 1", len(all))
	}
	// Whichever connection was the slow one is closed with 1013 after
	// whatever it had queued; the other is not closed. Both are read at
	// once: the close may take a while to arrive on a loaded machine, and
	// the other connection is then given 300 ms more to show it stays open.
	closed := make(chan *websocket.Conn, 2)
	open := make(chan *websocket.Conn, 2)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	for _, c := range []*websocket.Conn{slow, fast} {
		go func() {
			for {
				_, _, err := c.Read(rctx)
				if err == nil {
					continue
				}
				if websocket.CloseStatus(err) == CloseTooSlow {
					closed <- c
				} else {
					open <- c
				}
				return
			}
		}()
	}
	var dropped, kept *websocket.Conn
	select {
	case dropped = <-closed:
	case <-ctx.Done():
	}
	select {
	case c := <-closed:
		t.Fatalf("both connections were closed as too slow (%p, %p)", dropped, c)
	case <-time.After(300 * time.Millisecond):
		rcancel()
		kept = <-open
	}
	if dropped == nil || kept == nil {
		t.Fatalf("dropped %v kept %v", dropped != nil, kept != nil)
	}
}

// With a token, a browser's ways in: the token in a WebSocket subprotocol
// (the server selects mdp.v1, never echoing the token), and the session
// cookie POST /api/v1/login sets. Wrong, missing, tampered and expired
// credentials get 401; a change made with the cookie alone needs the
// server's own Origin.
func TestBrowserAuth(t *testing.T) {
	const token = "s3cr3t/token+with=odd chars"
	m, err := jobs.New(context.Background(), jobs.Options{State: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	h := New(Options{Manager: m, Token: token, StatusInterval: time.Hour, Logger: log})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := strings.Replace(srv.URL, "http", "ws", 1) + "/api/v1/ws"
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	dialStatus := func(opts *websocket.DialOptions) (int, string, *websocket.Conn) {
		t.Helper()
		c, resp, err := websocket.Dial(ctx, wsURL, opts)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), nil
		}
		return http.StatusSwitchingProtocols, "", c
	}
	// No credentials: 401 saying how a browser gets in.
	code, body, _ := dialStatus(nil)
	if code != 401 || !strings.Contains(body, "mdp.bearer.BASE64URL(TOKEN)") || !strings.Contains(body, "POST /api/v1/login") {
		t.Fatalf("no credentials: %d %s", code, body)
	}
	// A wrong token in the subprotocol: 401, and the wrong token is not echoed.
	code, body, _ = dialStatus(&websocket.DialOptions{Subprotocols: []string{Subprotocol, BearerProtocolPrefix + b64("guess-one")}})
	if code != 401 || strings.Contains(body, b64("guess-one")) || !strings.Contains(body, "wrong API token in the WebSocket subprotocol") {
		t.Fatalf("wrong subprotocol token: %d %s", code, body)
	}
	// Not base64: refused too.
	if code, _, _ = dialStatus(&websocket.DialOptions{Subprotocols: []string{Subprotocol, BearerProtocolPrefix + "!!"}}); code != 401 {
		t.Fatalf("bad base64: %d", code)
	}
	// The right token: upgraded, mdp.v1 selected, a snapshot arrives.
	code, _, c := dialStatus(&websocket.DialOptions{Subprotocols: []string{Subprotocol, BearerProtocolPrefix + b64(token)}})
	if code != 101 {
		t.Fatalf("right subprotocol token: %d", code)
	}
	if c.Subprotocol() != Subprotocol {
		t.Fatalf("selected subprotocol %q, want %q", c.Subprotocol(), Subprotocol)
	}
	if _, data, err := c.Read(ctx); err != nil || !strings.Contains(string(data), `"type":"jobs"`) {
		t.Fatalf("first message: %v %s", err, data)
	}
	c.CloseNow()
	// The token subprotocol counts on an upgrade only, not on a plain GET.
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/jobs", nil)
	req.Header.Set("Sec-WebSocket-Protocol", BearerProtocolPrefix+b64(token))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("subprotocol on a plain GET: %v %v", resp, err)
	}

	post := func(path, ctype, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Login: a wrong token is refused and logged without the token.
	if resp := post(LoginPath, "application/json", `{"token":"guess-two"}`); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong login: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp := post(LoginPath, "application/json", `not json`); resp.StatusCode != 400 {
		t.Fatalf("bad login body: %d", resp.StatusCode)
	}
	// JSON, form and header logins all set the cookie.
	var cookie *http.Cookie
	for _, r := range []*http.Response{
		post(LoginPath, "application/json", `{"token":"`+strings.ReplaceAll(token, `"`, `\"`)+`"}`),
		post(LoginPath, "application/x-www-form-urlencoded", "token="+url.QueryEscape(token)),
		post(LoginPath, "", "", "Authorization", "Bearer "+token),
	} {
		if r.StatusCode != 200 || len(r.Cookies()) != 1 {
			t.Fatalf("login: %d %v", r.StatusCode, r.Cookies())
		}
		cookie = r.Cookies()[0]
		if cookie.Name != SessionCookie || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge != int(SessionTTL/time.Second) {
			t.Fatalf("cookie %+v", cookie)
		}
		if strings.Contains(cookie.Value, token) || strings.Contains(cookie.Value, b64(token)) {
			t.Fatalf("the cookie carries the token: %q", cookie.Value)
		}
	}
	mu.Lock()
	if l := logs.String(); !strings.Contains(l, "login refused") || strings.Contains(l, "guess") || strings.Contains(l, token) {
		t.Fatalf("logs: %s", l)
	}
	mu.Unlock()
	// The cookie opens the WebSocket and the GET routes.
	code, _, c = dialStatus(&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {cookie.String()}}})
	if code != 101 {
		t.Fatalf("cookie websocket: %d", code)
	}
	c.CloseNow()
	get := func(path string, hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/api/v1/jobs", "Cookie", cookie.String()); code != 200 {
		t.Fatalf("cookie GET: %d", code)
	}
	// A change with the cookie alone: refused without the server's Origin
	// or from another one; from its own it reaches the route (404: no job).
	if resp := post("/api/v1/jobs/ghost/stop", "", "", "Cookie", cookie.String()); resp.StatusCode != 401 {
		t.Fatalf("cookie POST without Origin: %d", resp.StatusCode)
	}
	if resp := post("/api/v1/jobs/ghost/stop", "", "", "Cookie", cookie.String(), "Origin", "http://evil.example"); resp.StatusCode != 401 {
		t.Fatalf("cookie POST from another origin: %d", resp.StatusCode)
	}
	if resp := post("/api/v1/jobs/ghost/stop", "", "", "Cookie", cookie.String(), "Origin", srv.URL); resp.StatusCode != 404 {
		t.Fatalf("cookie POST from the server's origin: %d", resp.StatusCode)
	}
	// Tampered, expired, or made with another token: refused.
	parts := strings.Split(cookie.Value, ".")
	exp, _ := strconv.ParseInt(parts[1], 10, 64)
	other := New(Options{Manager: m, Token: "another token"})
	defer other.Close()
	for what, v := range map[string]string{
		"tampered":      cookie.Value[:len(cookie.Value)-2] + "xx",
		"later expiry":  "v1." + strconv.FormatInt(exp+3600, 10) + "." + parts[2],
		"expired":       h.session(time.Now().Add(-time.Second)),
		"another token": other.session(time.Now().Add(time.Hour)),
		"garbage":       "v1.x.y",
	} {
		if code := get("/api/v1/jobs", "Cookie", SessionCookie+"="+v); code != 401 {
			t.Errorf("%s cookie: %d", what, code)
		}
	}
	// The bearer header still works, and a wrong one is refused even with a
	// good cookie (the header is what a script meant).
	if code := get("/api/v1/jobs", "Authorization", "Bearer "+token); code != 200 {
		t.Fatalf("bearer: %d", code)
	}
	if code := get("/api/v1/jobs", "Authorization", "Bearer nope", "Cookie", cookie.String()); code != 401 {
		t.Fatalf("wrong bearer with a cookie: %d", code)
	}
	// Logout clears the cookie.
	if resp := post(LogoutPath, "", "", "Authorization", "Bearer "+token); resp.StatusCode != 200 || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Cookies())
	}
	// Without a token there is no login route.
	open := New(Options{Manager: m})
	defer open.Close()
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest("POST", LoginPath, strings.NewReader(`{}`)))
	if rec.Code != 404 {
		t.Fatalf("login without a token: %d", rec.Code)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
