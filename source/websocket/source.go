package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
)

// Source is one provider.websocket node instance.
type Source struct {
	cfg    *config
	log    *slog.Logger
	stats  *engine.NodeStats
	fb     *engine.Feedback
	fbLast engine.Level
	jitter func() float64 // in [0, 1); replaced in tests
	buf    []byte         // message buffer, reused
	// tlsConfig, when set, replaces the default TLS settings (system roots);
	// tests use it to trust their own server.
	tlsConfig *tls.Config
	// dial, when set, replaces the TCP dialer; tests use it to fake
	// network failures such as an unknown host.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// everConnected is set at the first successful handshake: until then
	// the source is not ready (engine.Readiness).
	everConnected atomic.Bool
}

// dnsGiveUp is how many attempts in a row may fail with "no such host"
// before the source fails the job: a host the resolver does not know is a
// mistake in the url far more often than an outage.
const dnsGiveUp = 3

// Ready reports whether the source has connected at least once, so a
// job's /readyz stays not-ready while a live feed has never been reached.
func (s *Source) Ready() bool { return s.everConnected.Load() }

func newSource(cfg *config) *Source {
	return &Source{cfg: cfg, jitter: rand.Float64, log: slog.New(slog.DiscardHandler)}
}

// Open takes the node's logger, stats and feedback hub.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.log = nc.Logger.With("url", redactURL(s.cfg.url), "preset", s.cfg.preset.String())
	s.stats = nc.Stats
	s.fb = nc.Feedback
	return nil
}

// Run connects, subscribes and decodes until ctx ends, reconnecting after
// every failure. It returns nil when ctx ends and an error only when
// max_reconnects attempts in a row delivered no record, or an emit failed.
//
// The backoff starts over only after a connection that delivered records: a
// server that accepts, acknowledges and drops the connection again keeps
// backing off, so a flapping endpoint is not hammered (exchanges limit
// connection attempts per IP).
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	if s.stats == nil {
		return errors.New("websocket source: Run before Open")
	}
	d := s.newDecoder(out.Symbols(), out.NewBatch, out.Emit)
	defer d.discard()
	failures, unknownHost := 0, 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.stats.Count("reconnects", 1)
		}
		before := d.accepted
		connected, err := s.session(ctx, d)
		err = maskErr(err, s.cfg.url)
		d.flush()
		if d.err != nil {
			if ctx.Err() != nil && errors.Is(d.err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("emit: %w", d.err)
		}
		if ctx.Err() != nil {
			return nil
		}
		d.openGaps()
		if d.accepted > before {
			failures = 0
		}
		failures++
		if connected {
			s.stats.Error("disconnect", err.Error())
		} else {
			s.stats.Error("connect_failed", err.Error())
		}
		if host, ok := noSuchHost(err); ok && !connected {
			unknownHost++
			if unknownHost >= dnsGiveUp {
				return fmt.Errorf("websocket %s: the host %q is not known to DNS (%d attempts in a row): check the url in the job: %w",
					redactURL(s.cfg.url), host, unknownHost, err)
			}
		} else {
			unknownHost = 0
		}
		if s.cfg.maxReconnects > 0 && failures > s.cfg.maxReconnects {
			return fmt.Errorf("websocket %s: giving up after %d reconnect attempts that delivered no records: %w",
				redactURL(s.cfg.url), s.cfg.maxReconnects, err)
		}
		delay := retry.Backoff{Base: s.cfg.backoff, Max: s.cfg.maxBackoff, Rand: s.jitter}.Delay(failures)
		msg := "websocket connect failed; retrying"
		if s.everConnected.Load() {
			msg = "websocket disconnected; reconnecting"
		}
		s.log.Warn(msg, "err", err, "in", delay.Round(time.Millisecond).String(), "attempt", failures)
		if retry.Sleep(ctx, delay) != nil {
			return nil
		}
	}
}

// noSuchHost reports whether err is a DNS answer that the host does not
// exist, and names the host.
func noSuchHost(err error) (string, bool) {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return de.Name, true
	}
	return "", false
}

func (s *Source) newDecoder(symbols *md.SymbolTable, newBatch func(md.Kind) *md.Batch, emit func(*md.Batch) error) *decoder {
	d := &decoder{
		preset:    s.cfg.preset,
		kind:      s.cfg.kind,
		check:     s.cfg.check,
		generic:   s.cfg.generic,
		maxFuture: int64(s.cfg.maxFuture),
		interner:  md.NewInterner(symbols, s.cfg.provider),
		symtab:    symbols,
		sizes:     md.NewSizeDecimals(symbols),
		syms:      map[string]*symState{},
		log:       s.log,
		newBatch:  newBatch,
		emit:      emit,
		report:    s.report,
		exchErr:   s.exchangeError,
	}
	if len(s.cfg.symbols) > 0 {
		d.filter = map[string]bool{}
		for _, sym := range s.cfg.symbols {
			d.filter[strings.ToUpper(sym)] = true
		}
	}
	return d
}

// report moves a flush's counts into the node's stats.
func (s *Source) report(c counts) {
	st := s.stats
	st.Drop("malformed", c.malformed)
	st.Drop("duplicate", c.duplicate)
	st.Drop("symbol_filter", c.filtered)
	st.Drop("other_kind", c.otherKind)
	st.Count("ignored_messages", c.ignored)
	st.Count("sequence_gaps", c.gaps)
	st.Count("sequence_gap_missing", c.gapMissing)
}

func (s *Source) exchangeError(msg string) {
	const maxShown = 500
	if len(msg) > maxShown {
		msg = msg[:maxShown]
	}
	s.stats.Count("exchange_errors", 1)
	s.stats.Error("exchange_error", msg)
	s.log.Error("exchange sent an error", "message", msg)
}

// checkFeedback logs store feedback level changes. The source does not act on
// them: see the package comment.
func (s *Source) checkFeedback() {
	l := s.fb.Level()
	if l == s.fbLast {
		return
	}
	s.fbLast = l
	switch l {
	case engine.LevelSoft:
		s.stats.Count("feedback_soft", 1)
	case engine.LevelHard:
		s.stats.Count("feedback_hard", 1)
	}
	s.log.Info("store feedback level changed; a live feed cannot be slowed, so the source keeps reading and relies on edge backpressure", "level", l.String())
}

// session runs one connection: dial, subscribe, read until an error.
// connected reports whether the WebSocket handshake succeeded.
func (s *Source) session(ctx context.Context, d *decoder) (connected bool, err error) {
	var (
		mu sync.Mutex
		hc *hookConn
	)
	dialer := &net.Dialer{Timeout: s.cfg.connectTimeout, KeepAlive: 15 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dial := dialer.DialContext
			if s.dial != nil {
				dial = s.dial
			}
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			h := newHookConn(c)
			mu.Lock()
			hc = h
			mu.Unlock()
			return h, nil
		},
		TLSClientConfig:     s.tlsConfig,
		TLSHandshakeTimeout: s.cfg.connectTimeout,
		// Each dial gets a fresh TCP connection; the handshake sets
		// "Connection: Upgrade", which keep-alive settings leave alone.
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()

	dctx, cancel := context.WithTimeout(ctx, s.cfg.connectTimeout)
	conn, _, err := websocket.Dial(dctx, s.cfg.url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.CloseNow()
	mu.Lock()
	h := hc
	mu.Unlock()
	if h == nil {
		return false, errors.New("connect: the transport did not dial a new connection")
	}
	stop := context.AfterFunc(ctx, func() { conn.CloseNow() })
	defer stop()
	conn.SetReadLimit(s.cfg.maxMessage)
	s.stats.Count("connects", 1)
	s.everConnected.Store(true)
	s.log.Info("websocket connected", "subscribe_messages", len(s.cfg.subscribe))

	for i, m := range s.cfg.subscribe {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.connectTimeout)
		err := conn.Write(wctx, websocket.MessageText, m)
		cancel()
		if err != nil {
			return true, fmt.Errorf("send subscribe message %d: %w", i, err)
		}
	}

	if s.cfg.pingInterval > 0 {
		pctx, pcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.pingLoop(pctx, conn)
		}()
		defer func() {
			pcancel()
			wg.Wait()
		}()
	}

	h.arm(s, d)
	defer h.disarm()
	// The read context has no Done channel: coder/websocket then sets up no
	// per-frame timer (which would allocate per message). Cancellation closes
	// the connection instead (AfterFunc above) and dead peers hit the socket
	// deadline that hookConn sets before each blocking read.
	rctx := context.WithoutCancel(ctx)
	for {
		_, r, err := conn.Reader(rctx)
		if err != nil {
			return true, s.readErr(err, h)
		}
		msg, err := s.readMessage(r)
		if err != nil {
			return true, s.readErr(err, h)
		}
		d.handle(msg, h.recv.Load())
		if d.err != nil {
			return true, d.err
		}
	}
}

// readErr explains why reading stopped.
func (s *Source) readErr(err error, h *hookConn) error {
	if h.dead.Load() {
		return fmt.Errorf("no data for %s (read_timeout): connection presumed dead", s.cfg.readTimeout)
	}
	return fmt.Errorf("read: %w", err)
}

// readMessage reads one message into the reused buffer.
func (s *Source) readMessage(r io.Reader) ([]byte, error) {
	if s.buf == nil {
		s.buf = make([]byte, 0, 64<<10)
	}
	buf := s.buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			s.buf = buf
			return buf, nil
		}
		if err != nil {
			s.buf = buf
			return nil, err
		}
	}
}

func (s *Source) pingLoop(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(s.cfg.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, s.cfg.pingInterval)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				// A missing pong is not fatal by itself: read_timeout decides.
				s.log.Debug("websocket ping failed", "err", err)
			}
		}
	}
}

// hookConn wraps the TCP connection under the WebSocket (and TLS) layers.
// It serves reads from its own large buffer and goes to the socket only when
// that buffer is empty, which is the moment no further message is at hand:
// there it first flushes the batch being filled, so a lone trade is emitted
// at once while a burst fills whole batches, and then sets the read deadline
// that detects a dead connection. It also stamps the receipt time.
type hookConn struct {
	net.Conn
	buf  []byte
	r, w int

	armed   atomic.Bool
	src     *Source
	dec     *decoder
	timeout time.Duration
	recv    atomic.Int64 // wall-clock ns of the last socket read
	dead    atomic.Bool  // the last read hit the deadline
}

func newHookConn(c net.Conn) *hookConn {
	return &hookConn{Conn: c, buf: make([]byte, 64<<10)}
}

// arm starts flushing and deadlines; called on the reading goroutine once
// the handshake is done.
func (c *hookConn) arm(s *Source, d *decoder) {
	c.src, c.dec, c.timeout = s, d, s.cfg.readTimeout
	c.armed.Store(true)
}

func (c *hookConn) disarm() { c.armed.Store(false) }

func (c *hookConn) Read(p []byte) (int, error) {
	if c.r == c.w {
		if c.armed.Load() {
			c.dec.flush()
			if c.dec.err != nil {
				return 0, c.dec.err
			}
			if c.src.fb != nil {
				c.src.checkFeedback()
			}
			if c.timeout > 0 {
				if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
					return 0, err
				}
			}
		}
		n, err := c.Conn.Read(c.buf)
		if n > 0 {
			c.recv.Store(time.Now().UnixNano())
		}
		c.r, c.w = 0, n
		if err != nil && n == 0 {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.armed.Load() {
				c.dead.Store(true)
			}
			return 0, err
		}
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// maskedErr is an error whose message has the URL's secrets masked; errors.Is
// and errors.As still see the original.
type maskedErr struct {
	msg string
	err error
}

func (e *maskedErr) Error() string { return e.msg }
func (e *maskedErr) Unwrap() error { return e.err }

// maskErr masks the secrets of url in err's message: a dialer's error
// quotes the URL it dialled (rewritten to https), and the message reaches
// logs, status and the job's error.
func maskErr(err error, url string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, v := range component.URLSecrets(url) {
		msg = strings.ReplaceAll(msg, v, "xxxxx")
	}
	msg = component.MaskQuerySecrets(msg, "xxxxx")
	if msg == err.Error() {
		return err
	}
	return &maskedErr{msg: msg, err: err}
}

// redactURL hides the secrets of a URL: the password in its user info,
// keys in its path and query (see component.URLSecrets).
func redactURL(s string) string { return component.MaskURL(s, "xxxxx") }

// Unbounded implements engine.Unbounded: a live feed never ends by itself,
// so with checkpoints on a stop suspends the job. It cannot seek: after a
// restore it resumes live and the job records the gap.
func (s *Source) Unbounded() bool { return true }
