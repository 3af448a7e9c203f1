// Package server is mdp's job server HTTP API: the /api/v1 routes over a
// jobs.Manager (submit, replace, list, status, stop, start, delete,
// validate, logs, components), live status over WebSocket, /metrics,
// /healthz and /readyz on the same listener, and the OpenAPI 3.1 document
// of the API at /api/v1/openapi.json. ReadOnly serves the read-only part
// (list, status, status WebSocket) for one job run by `mdp run`.
//
// Security: a listener that is not loopback needs a token (Options.Token);
// with a token every route but /healthz and /readyz wants
// "Authorization: Bearer TOKEN", compared in constant time, or from a
// browser the token in a WebSocket subprotocol or the session cookie
// POST /api/v1/login sets (see Subprotocol and SessionCookie). Request bodies
// are limited to MaxBody; the server sets read, write and idle timeouts.
// Every text a response carries passes the job's Redactor.
package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/runtime"
)

// MaxBody is the largest request body accepted (413 above).
const MaxBody = 1 << 20

// Timeouts of the HTTP server. WriteTimeout bounds a stop or replace that
// waits for a job to drain; WebSocket connections clear it.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 2 * time.Minute
)

// DefaultListen is where `mdp serve` listens by default.
const DefaultListen = "127.0.0.1:8080"

// TokenEnv is the environment variable holding the API token.
const TokenEnv = "MDP_API_TOKEN"

// Jobs is what the read-only routes ask: a jobs.Manager, or a
// jobs.Single for `mdp run`.
type Jobs interface {
	List() []jobs.JobStatus
	Status(name string, detail bool) (jobs.JobStatus, error)
}

// Options configure a Handler.
type Options struct {
	// Manager serves the whole API; nil with Jobs set serves the read-only
	// part.
	Manager *jobs.Manager
	// Jobs answers list and status; nil means Manager.
	Jobs Jobs
	// Token, when set, is required as a Bearer token on every route but
	// /healthz and /readyz.
	Token string
	// Gatherer is what /metrics serves; nil serves no /metrics (the caller
	// serves it).
	Gatherer prometheus.Gatherer
	// Ready answers /readyz; nil means always ready. Nil Gatherer and nil
	// Ready serve neither /healthz nor /readyz.
	Ready func() (bool, any)
	// Components is what GET /api/v1/components returns (mdp components
	// --json); nil leaves the route out.
	Components func() any
	// StatusInterval is how often the status WebSockets push a snapshot;
	// 0 means one second.
	StatusInterval time.Duration
	// ClientBuffer is how many messages a WebSocket client may fall behind
	// before it is dropped; 0 means 16.
	ClientBuffer int
	Logger       *slog.Logger
}

// Handler is the API's http.Handler.
type Handler struct {
	opts  Options
	jobs  Jobs
	mux   *http.ServeMux
	hub   *hub
	taps  *tapHub
	hist  *historyHub
	log   *slog.Logger
	paths []string // "METHOD /path" of every route registered, for the OpenAPI check
}

// New builds the handler. Close stops its WebSocket hub.
func New(opts Options) *Handler {
	if opts.Jobs == nil && opts.Manager != nil {
		opts.Jobs = opts.Manager
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	if opts.ClientBuffer <= 0 {
		opts.ClientBuffer = 16
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, jobs: opts.Jobs, mux: http.NewServeMux(), log: log}
	h.hub = newHub(opts.Jobs, opts.StatusInterval, opts.ClientBuffer, log)
	h.taps = newTapHub(log)
	h.hist = newHistory(opts.Jobs)
	h.routes()
	return h
}

// Notify pushes a job's state change to the status WebSockets at once
// (jobs.Options.OnChange).
func (h *Handler) Notify(name string) {
	h.hub.changed(name)
	h.taps.changed(name, h.jobs)
}

// Close stops the WebSocket hub and closes every status connection, and
// stops the taps.
func (h *Handler) Close() {
	h.hub.close()
	h.taps.close()
	h.hist.close()
}

// Metrics is the handler's own series (server_websocket_clients,
// server_websocket_dropped_total). The handler serves them on /metrics
// with Options.Gatherer's; a listener that serves /metrics itself (the
// metrics server of `mdp run`, see metrics.APIMetrics) adds them to its
// own.
func (h *Handler) Metrics() prometheus.Gatherer { return h.hub.reg }

// Routes lists "METHOD /path" for every route the handler serves.
func (h *Handler) Routes() []string { return append([]string(nil), h.paths...) }

func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	h.paths = append(h.paths, pattern)
	h.mux.HandleFunc(pattern, fn)
}

func (h *Handler) routes() {
	if h.opts.Gatherer != nil {
		h.paths = append(h.paths, "GET /metrics")
		// The jobs' metrics and the server's own (status WebSocket clients).
		g := prometheus.Gatherers{h.opts.Gatherer, h.Metrics()}
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	if h.opts.Gatherer != nil || h.opts.Ready != nil {
		h.handle("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
		})
		h.handle("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			ready, body := true, any(map[string]string{"status": "ready"})
			if h.opts.Ready != nil {
				ready, body = h.opts.Ready()
			}
			code := http.StatusOK
			if !ready {
				code = http.StatusServiceUnavailable
			}
			writeJSON(w, code, body)
		})
	}
	h.handle("GET /api/v1/openapi.json", h.openAPI)
	if h.opts.Token != "" {
		h.handle("POST "+LoginPath, h.login)
		h.handle("POST "+LogoutPath, h.logout)
	}
	h.handle("GET /api/v1/jobs", h.list)
	h.handle("GET /api/v1/jobs/{name}", h.get)
	h.handle("GET /api/v1/jobs/{name}/ws", h.jobWS)
	h.handle("GET /api/v1/ws", h.allWS)
	// The dashboard's files (package web) at /; they carry no job data.
	h.mux.Handle("/", dashboard())
	// Anything else under /api/ answers in JSON, saying what is served.
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("no route %s %s: the API is described at /api/v1/openapi.json", r.Method, r.URL.Path)
		if h.opts.Manager == nil {
			msg = fmt.Sprintf("no route %s %s: this is mdp run, serving its one job read-only (GET /api/v1/jobs, /api/v1/jobs/{name}, /api/v1/jobs/{name}/ws); stop it with SIGINT, or run the job under mdp serve", r.Method, r.URL.Path)
		}
		writeError(w, http.StatusNotFound, msg)
	})
	h.tapRoutes()
	if h.opts.Manager == nil {
		return
	}
	h.handle("POST /api/v1/jobs", h.submit)
	h.handle("PUT /api/v1/jobs/{name}", h.replace)
	h.handle("DELETE /api/v1/jobs/{name}", h.delete)
	h.handle("POST /api/v1/jobs/{name}/stop", h.stop)
	h.handle("POST /api/v1/jobs/{name}/start", h.start)
	h.handle("GET /api/v1/jobs/{name}/logs", h.logs)
	h.handle("GET /api/v1/jobs/{name}/definition", h.definition)
	h.handle("POST /api/v1/validate", h.validate)
	if h.opts.Components != nil {
		h.handle("GET /api/v1/components", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, h.opts.Components())
		})
	}
}

// ServeHTTP checks the token, limits the body and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != LoginPath && !isDashboardFile(r.URL.Path) {
		if msg := h.authorize(r); msg != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mdp"`)
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}
	h.mux.ServeHTTP(w, r)
}

// Browser credentials. A browser cannot set Authorization on a WebSocket,
// so with a token the server also accepts:
//
//   - on a WebSocket upgrade, the subprotocol "mdp.bearer." followed by the
//     token in unpadded base64url, offered together with Subprotocol (the
//     one the server selects, so the token is never echoed back):
//     new WebSocket(url, ["mdp.v1", "mdp.bearer." + b64url(token)]);
//   - the session cookie POST /api/v1/login sets (HttpOnly,
//     SameSite=Strict): an expiry and an HMAC-SHA256 of it keyed by the
//     token, so the cookie is not the token, lapses after SessionTTL and
//     stops working when the token changes. A request that changes
//     something (not GET or HEAD) authenticated by the cookie alone must
//     come from the server's own origin (its Origin header), so another
//     site cannot make a browser act with it.
const (
	// Subprotocol is the WebSocket subprotocol the status WebSockets select.
	Subprotocol = "mdp.v1"
	// BearerProtocolPrefix starts the subprotocol that carries the token.
	BearerProtocolPrefix = "mdp.bearer."
	// SessionCookie is the name of the cookie POST /api/v1/login sets.
	SessionCookie = "mdp_session"
	// SessionTTL is how long a login lasts.
	SessionTTL = 12 * time.Hour
	// LoginPath and LogoutPath set and clear the session cookie.
	LoginPath  = "/api/v1/login"
	LogoutPath = "/api/v1/logout"
)

// authorize checks a request's credentials; "" when they are good, else
// the reason to refuse it (never the token or what was sent).
func (h *Handler) authorize(r *http.Request) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if h.tokenOK(got) {
			return ""
		}
		return "wrong API token in Authorization: Bearer (want the server's --token or " + TokenEnv + ")"
	}
	if isUpgrade(r) {
		for _, p := range websocketProtocols(r) {
			enc, ok := strings.CutPrefix(p, BearerProtocolPrefix)
			if !ok {
				continue
			}
			tok, err := base64.RawURLEncoding.DecodeString(enc)
			if err == nil && h.tokenOK(string(tok)) {
				return ""
			}
			return "wrong API token in the WebSocket subprotocol " + BearerProtocolPrefix + "…"
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		if !h.sessionOK(c.Value, time.Now()) {
			return "session expired or not valid: log in again (POST " + LoginPath + ")"
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
			return fmt.Sprintf("%s %s with the session cookie must come from this server's own origin (Origin %q); send Authorization: Bearer TOKEN instead", r.Method, r.URL.Path, r.Header.Get("Origin"))
		}
		return ""
	}
	return "missing API token; send the header Authorization: Bearer TOKEN with the server's --token or " + TokenEnv +
		" (a browser: log in with POST " + LoginPath + ", or offer the WebSocket subprotocols " + Subprotocol + " and " + BearerProtocolPrefix + "BASE64URL(TOKEN))"
}

func (h *Handler) tokenOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// websocketProtocols lists the subprotocols a WebSocket handshake offers.
func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// sameOrigin reports whether the request's Origin is the server's own
// (the scheme and the Host the request was sent to).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// sessionMAC is the MAC of a session that lasts until exp.
func (h *Handler) sessionMAC(exp int64) []byte {
	mac := hmac.New(sha256.New, []byte(h.opts.Token))
	fmt.Fprintf(mac, "mdp session v1 %d", exp)
	return mac.Sum(nil)
}

func (h *Handler) session(exp time.Time) string {
	e := exp.Unix()
	return "v1." + strconv.FormatInt(e, 10) + "." + base64.RawURLEncoding.EncodeToString(h.sessionMAC(e))
}

func (h *Handler) sessionOK(v string, now time.Time) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() >= exp {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	return err == nil && hmac.Equal(got, h.sessionMAC(exp))
}

// LoginRequest is the body of POST /api/v1/login (JSON, or a form with the
// field token).
type LoginRequest struct {
	Token string `json:"token"`
}

// login checks the token and sets the session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var tok string
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok = got
	} else if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "read login form: "+err.Error())
			return
		}
		tok = r.PostForm.Get("token")
	} else {
		var req LoginRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, `login: want {"token": "…"} (JSON), a form field token, or Authorization: Bearer TOKEN`)
			return
		}
		tok = req.Token
	}
	if !h.tokenOK(tok) {
		h.log.Warn("login refused: wrong token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "wrong API token")
		return
	}
	exp := time.Now().Add(SessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: h.session(exp), Path: "/", Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, map[string]string{"expires_at": fmtTime(exp)})
}

// logout clears the session cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]bool{"logged_out": true})
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	// Errors lists every problem of an invalid job file.
	Errors []ConfigError `json:"errors,omitempty"`
}

// ConfigError is one problem of a job file, where it is.
type ConfigError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// Compact: a status is polled, and indenting it cost as much as
	// building it (clients re-indent what they print).
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: runtime.Redact(msg)})
}

// fail maps an error to its status code: config.Errors 400 with each
// problem, the jobs sentinels to 400/404/409/503, anything else 500.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var ces config.Errors
	if errors.As(err, &ces) {
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: fmt.Sprintf("invalid job file: %d problem(s)", len(ces)), Errors: configErrors(ces)})
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, jobs.ErrExists), errors.Is(err, jobs.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, jobs.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, jobs.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	writeError(w, code, err.Error())
}

// configErrors lists a job file's problems, secrets masked.
func configErrors(ces config.Errors) []ConfigError {
	out := make([]ConfigError, 0, len(ces))
	for _, e := range ces {
		out = append(out, ConfigError{File: e.File, Line: e.Line, Column: e.Column, Path: e.Path, Message: runtime.Redact(e.Msg)})
	}
	return out
}

// body reads the request body; false when it answered already (413, 400).
func body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxBody))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return nil, false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		writeError(w, http.StatusBadRequest, "empty request body: send a job file (YAML or JSON)")
		return nil, false
	}
	return data, true
}

// filename is the name a submitted file is known by: ?filename=, else
// "job.yaml".
func filename(r *http.Request) string {
	if f := r.URL.Query().Get("filename"); f != "" {
		return f
	}
	return "job.yaml"
}

func boolParam(r *http.Request, key string, def bool) (bool, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s=%q: want true or false: %w", key, v, jobs.ErrInvalid)
	}
	return b, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.jobs.List())
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	st, err := h.jobs.Status(r.PathValue("name"), true)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	start, err := boolParam(r, "start", true)
	if err != nil {
		h.fail(w, err)
		return
	}
	data, ok := body(w, r)
	if !ok {
		return
	}
	st, err := h.opts.Manager.Submit(filename(r), data, r.URL.Query().Get("name"), start)
	if err != nil {
		if st.Name != "" {
			// Registered, but the start failed: the job is there, failed.
			writeJSON(w, http.StatusCreated, st)
			return
		}
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (h *Handler) replace(w http.ResponseWriter, r *http.Request) {
	data, ok := body(w, r)
	if !ok {
		return
	}
	st, err := h.opts.Manager.Replace(r.Context(), r.PathValue("name"), filename(r), data)
	if err != nil && st.Name == "" {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	force, err := boolParam(r, "force", false)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.opts.Manager.Delete(r.PathValue("name"), force); err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("name")})
}

func (h *Handler) stop(w http.ResponseWriter, r *http.Request) {
	st, err := h.opts.Manager.Stop(r.Context(), r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	st, err := h.opts.Manager.Start(r.PathValue("name"))
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrConflict) || st.Name == "" {
			h.fail(w, err)
			return
		}
		// The start failed (a store that cannot be opened): the status says
		// so, and the restart policy applies.
		writeJSON(w, http.StatusOK, st)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tail, since := 100, int64(0)
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter tail=%q: want a count >= 0 (0: every record kept)", v))
			return
		}
		tail = n
	}
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter since=%q: want a sequence number >= 0", v))
			return
		}
		since = n
	}
	follow, err := boolParam(r, "follow", false)
	if err != nil {
		h.fail(w, err)
		return
	}
	recs, err := h.opts.Manager.Logs(r.PathValue("name"), tail, since)
	if err != nil {
		h.fail(w, err)
		return
	}
	if !follow {
		writeJSON(w, http.StatusOK, recs)
		return
	}
	h.followLogs(w, r, r.PathValue("name"), recs, since)
}

// followLogs streams a job's log as NDJSON, one LogRecord a line: recs
// first, then every new record as it arrives, until the client goes, the
// job is deleted or the server closes. A client that does not take a
// write within writeTimeout is cut off; one that fell behind the ring sees
// a gap in the sequence numbers.
func (h *Handler) followLogs(w http.ResponseWriter, r *http.Request, name string, recs []jobs.LogRecord, since int64) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				h.log.Debug("log stream: write", "job", name, "err", err)
				return
			}
			since = rec.Seq
		}
		if err := rc.Flush(); err != nil {
			return
		}
		var wake <-chan struct{}
		var err error
		recs, wake, err = h.opts.Manager.FollowLogs(name, since)
		if err != nil {
			// Deleted: what it logged last has been sent.
			for _, rec := range recs {
				_ = enc.Encode(rec)
			}
			_ = rc.Flush()
			return
		}
		if len(recs) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-h.hub.done:
			return
		}
	}
}

func (h *Handler) definition(w http.ResponseWriter, r *http.Request) {
	file, text, err := h.opts.Manager.Definition(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"filename": file, "definition": text})
}

// ValidateResult is the body of a valid POST /api/v1/validate, and of an
// invalid one with ?lint=true (Valid false, Errors set).
type ValidateResult struct {
	Valid  bool          `json:"valid"`
	Errors []ConfigError `json:"errors,omitempty"`
	Name   string        `json:"name"`
	Mode   string        `json:"mode"`
	Nodes  int           `json:"nodes"`
	Edges  int           `json:"edges"`
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	data, ok := body(w, r)
	if !ok {
		return
	}
	doc, err := h.opts.Manager.Validate(filename(r), data)
	var ces config.Errors
	if err != nil && r.URL.Query().Get("lint") == "true" && errors.As(err, &ces) {
		// An editor validating as its user types: an invalid file is an
		// answer, not a failed request.
		writeJSON(w, http.StatusOK, ValidateResult{Errors: configErrors(ces)})
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ValidateResult{Valid: true, Name: doc.Name, Mode: doc.Mode, Nodes: len(doc.Nodes), Edges: len(doc.Edges)})
}

// IsLoopback reports whether a listen address binds loopback only: a
// loopback IP or "localhost". An empty host binds every interface.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a listening API server.
type Server struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// Bind checks the security rule (a listen address that is not loopback
// needs a token) and binds listen. The refusal comes before anything
// listens.
func Bind(listen, token string) (net.Listener, error) {
	if !IsLoopback(listen) && token == "" {
		return nil, fmt.Errorf("refusing to listen on %s without an API token (a non-loopback address exposes the job API): set --token or %s (or listen on 127.0.0.1)", listen, TokenEnv)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("job server: %w", err)
	}
	return ln, nil
}

// Serve serves h on ln in the background, with the read, write and idle
// timeouts set.
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, err: make(chan error, 1), srv: &http.Server{
		Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err <- err
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting requests and waits for those in flight, at most
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("job server shutdown: %w", err)
	}
	return <-s.err
}
