package server

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/jobs"
)

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
	// Fill the queues of both without their writers getting a turn: the
	// hub's queues are the only place a message waits.
	var slowC *client
	h.hub.mu.Lock()
	for c := range h.hub.clients {
		slowC = c
		break
	}
	h.hub.mu.Unlock()
	for len(slowC.send) < cap(slowC.send) {
		slowC.send <- []byte(`{"type":"filler"}`)
	}
	start := time.Now()
	h.hub.broadcast([]*client{slowC}, StatusMessage{Type: "jobs"})
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("broadcast to a full client took %v", d)
	}
	select {
	case <-slowC.gone:
	default:
		t.Fatal("the full client was not dropped")
	}
	if all, _ := h.hub.snapshot(); len(all) != 1 {
		t.Fatalf("%d clients after the drop, want 1", len(all))
	}
	// Whichever connection was the slow one is closed with 1013 after
	// whatever it had queued; the other is not closed.
	var dropped, kept *websocket.Conn
	for _, c := range []*websocket.Conn{slow, fast} {
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		for {
			_, _, err := c.Read(rctx)
			if err == nil {
				continue
			}
			if websocket.CloseStatus(err) == CloseTooSlow {
				dropped = c
			} else {
				kept = c
			}
			break
		}
		rcancel()
	}
	if dropped == nil || kept == nil {
		t.Fatalf("dropped %v kept %v", dropped != nil, kept != nil)
	}
}
