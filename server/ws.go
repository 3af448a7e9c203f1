package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/jobs"
)

// StatusMessage is what the status WebSockets push.
//
//   - type "status": one job's status (GET /api/v1/jobs/{name}/ws pushes it
//     with the run's per-node detail, every interval and at every state
//     change; /api/v1/ws pushes it without detail at a state change);
//   - type "jobs": every job's status without detail (/api/v1/ws, every
//     interval);
//   - type "deleted": the job named was deleted.
type StatusMessage struct {
	Type string           `json:"type"`
	Time string           `json:"time"`
	Job  *jobs.JobStatus  `json:"job,omitempty"`
	Jobs []jobs.JobStatus `json:"jobs,omitempty"`
	Name string           `json:"name,omitempty"`
}

// CloseTooSlow is the close code a client gets when it fell so far behind
// that it was dropped (1013, try again later).
const CloseTooSlow = websocket.StatusTryAgainLater

// Reasons a status WebSocket client is dropped, the label reason of
// server_websocket_dropped_total.
const (
	// DropTooSlow: its queue was full when a message was to be queued.
	DropTooSlow = "too_slow"
	// DropWriteTimeout: one message took longer than writeTimeout to write.
	DropWriteTimeout = "write_timeout"
	// DropWriteFailed: a write failed otherwise (the connection broke).
	DropWriteFailed = "write_failed"
)

// writeTimeout bounds one message write to a client.
const writeTimeout = 5 * time.Second

// hub fans status snapshots out to WebSocket clients. Each snapshot is
// built and encoded once per interval for every watched job (and once for
// the all-jobs list), whatever the number of clients; each client has a
// bounded queue and its own writer, and one that falls behind is dropped.
// Nothing here runs on a job's goroutines.
type hub struct {
	jobs     Jobs
	interval time.Duration
	buffer   int
	log      *slog.Logger

	mu      sync.Mutex
	clients map[*client]struct{}
	done    chan struct{}
	closed  bool

	// reg holds server_websocket_clients and
	// server_websocket_dropped_total{reason}, served on /metrics.
	reg     *prometheus.Registry
	dropped *prometheus.CounterVec
}

type client struct {
	job    string // "" for every job
	remote string
	send   chan []byte
	gone   chan struct{} // closed when the hub drops the client
	cancel context.CancelFunc
	once   sync.Once
}

// drop closes gone. The writer finishes the message it is writing (a
// write is bounded by writeTimeout) and then closes the connection with
// CloseTooSlow, so the client learns why after what it was sent. Cancelling
// the write instead would cut the connection without a close frame
// whenever the drop came mid-write. With cancel, a write in progress is cut
// off at once too: the hub does that when the server shuts down.
func (c *client) drop(cancel bool) {
	c.once.Do(func() {
		close(c.gone)
	})
	if cancel && c.cancel != nil {
		c.cancel()
	}
}

func newHub(j Jobs, interval time.Duration, buffer int, log *slog.Logger) *hub {
	h := &hub{jobs: j, interval: interval, buffer: buffer, log: log, clients: map[*client]struct{}{}, done: make(chan struct{}),
		reg: prometheus.NewRegistry(),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "server_websocket_dropped_total",
			Help: "Status WebSocket clients the server dropped, by reason: too_slow (its queue was full), write_timeout, write_failed."}, []string{"reason"}),
	}
	for _, r := range []string{DropTooSlow, DropWriteTimeout, DropWriteFailed} {
		h.dropped.WithLabelValues(r)
	}
	h.reg.MustRegister(h.dropped, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "server_websocket_clients",
		Help: "Status WebSocket clients connected."}, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(len(h.clients))
	}))
	go h.loop()
	return h
}

// drop removes a client for reason, counts and logs it, and ends its
// writes.
func (h *hub) drop(c *client, reason string, err error) {
	h.remove(c)
	select {
	case <-c.gone:
		return // dropped already
	default:
	}
	h.dropped.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "remote", c.remote, "job", c.job}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	h.log.Warn("status websocket: client dropped", attrs...)
	c.drop(false)
}

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	// done first, so a writer that sees its client dropped knows why.
	close(h.done)
	for c := range h.clients {
		c.drop(true)
	}
	h.clients = map[*client]struct{}{}
	h.mu.Unlock()
}

func (h *hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	return true
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// snapshot returns the clients grouped: those of all jobs and those per job.
func (h *hub) snapshot() (all []*client, per map[string][]*client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	per = map[string][]*client{}
	for c := range h.clients {
		if c.job == "" {
			all = append(all, c)
		} else {
			per[c.job] = append(per[c.job], c)
		}
	}
	return all, per
}

func (h *hub) loop() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.tick()
		case <-h.done:
			return
		}
	}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (h *hub) tick() {
	all, per := h.snapshot()
	if len(all) > 0 {
		h.broadcast(all, StatusMessage{Type: "jobs", Time: now(), Jobs: h.jobs.List()})
	}
	for name, cs := range per {
		st, err := h.jobs.Status(name, true)
		if err != nil {
			h.broadcast(cs, StatusMessage{Type: "deleted", Time: now(), Name: name})
			continue
		}
		h.broadcast(cs, StatusMessage{Type: "status", Time: now(), Job: &st})
	}
}

// changed pushes one job's state at once.
func (h *hub) changed(name string) {
	all, per := h.snapshot()
	if len(all) == 0 && len(per[name]) == 0 {
		return
	}
	st, err := h.jobs.Status(name, len(per[name]) > 0)
	if err != nil {
		h.broadcast(append(all, per[name]...), StatusMessage{Type: "deleted", Time: now(), Name: name})
		return
	}
	if len(per[name]) > 0 {
		h.broadcast(per[name], StatusMessage{Type: "status", Time: now(), Job: &st})
	}
	if len(all) > 0 {
		st.Runtime = nil
		h.broadcast(all, StatusMessage{Type: "status", Time: now(), Job: &st})
	}
}

// broadcast encodes m once and queues it for every client; a client whose
// queue is full is dropped.
func (h *hub) broadcast(cs []*client, m StatusMessage) {
	data, err := json.Marshal(m)
	if err != nil {
		h.log.Error("status websocket: encode", "err", err)
		return
	}
	for _, c := range cs {
		select {
		case c.send <- data:
		default:
			h.drop(c, DropTooSlow, nil)
		}
	}
}

func (h *Handler) jobWS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := h.jobs.Status(name, false); err != nil {
		h.fail(w, err)
		return
	}
	h.serveWS(w, r, name)
}

func (h *Handler) allWS(w http.ResponseWriter, r *http.Request) { h.serveWS(w, r, "") }

// acceptWS upgrades a request to a WebSocket for every WebSocket route
// (status and taps): the server's read and write timeouts, which would cut
// a long-lived connection, are cleared first, and Subprotocol is selected
// when offered. A browser offers it beside the token's subprotocol
// (ServeHTTP has checked that one, as for every route), and a browser
// fails a handshake that selects none of the subprotocols it offered. On
// false the response has been written.
func acceptWS(w http.ResponseWriter, r *http.Request) (*websocket.Conn, bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		return nil, false // Accept answered the request
	}
	return conn, true
}

// serveWS upgrades the request and runs the client's writer until the
// client goes, the hub drops it or the server closes.
func (h *Handler) serveWS(w http.ResponseWriter, r *http.Request, name string) {
	conn, ok := acceptWS(w, r)
	if !ok {
		return
	}
	ctx := conn.CloseRead(context.Background())
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &client{job: name, remote: r.RemoteAddr, send: make(chan []byte, h.hub.buffer), gone: make(chan struct{}), cancel: cancel}
	if !h.hub.add(c) {
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer h.hub.remove(c)
	// The first snapshot at once, so a client does not wait an interval.
	if name == "" {
		h.hub.broadcast([]*client{c}, StatusMessage{Type: "jobs", Time: now(), Jobs: h.jobs.List()})
	} else if st, err := h.jobs.Status(name, true); err == nil {
		h.hub.broadcast([]*client{c}, StatusMessage{Type: "status", Time: now(), Job: &st})
	}
	closeGone := func() {
		select {
		case <-h.hub.done:
			_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
		default:
			_ = conn.Close(CloseTooSlow, "client too slow: dropped")
		}
	}
	for {
		select {
		case <-c.gone:
			closeGone()
			return
		case <-ctx.Done():
			return
		case data := <-c.send:
			select {
			case <-c.gone:
				// Dropped: say why. (A write blocked on a client that
				// does not read ends at writeTimeout, and the connection
				// with it.)
				closeGone()
				return
			default:
			}
			tctx, tcancel := context.WithTimeout(wctx, writeTimeout)
			err := conn.Write(tctx, websocket.MessageText, data)
			timedOut := tctx.Err() == context.DeadlineExceeded
			tcancel()
			if err != nil {
				switch {
				case ctx.Err() != nil: // the client went
				case timedOut:
					h.hub.drop(c, DropWriteTimeout, err)
				default:
					h.hub.drop(c, DropWriteFailed, err)
				}
				_ = conn.CloseNow()
				return
			}
		}
	}
}
