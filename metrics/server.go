package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// defaultListen is where the metrics server listens when no address is set.
// It binds loopback only: exposing metrics beyond the host is a choice the
// job file makes explicitly (listen: "0.0.0.0:9108").
const defaultListen = "127.0.0.1:9108"

// NewRegistry returns a registry holding c plus the Go runtime and process
// collectors. The collector and the listener are separate: a job run alone
// serves its own collector; a program running many jobs adds them all to one
// collector (runtime.Options.Metrics) and serves its registry once.
func NewRegistry(c *Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Listen is host:port. An empty host (":9108") binds 127.0.0.1; an empty
	// Listen means defaultListen (127.0.0.1:9108); port 0 picks a free port (see Server.Addr).
	Listen string
	// Gatherer is what /metrics serves.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz and a JSON-serialisable body that
	// explains it (the job's health). Nil means always ready.
	Ready func() (ready bool, body any)
	// API, when set, serves every path but /metrics, /healthz and /readyz
	// on the same listener (`mdp run` puts the read-only job API and the
	// dashboard there). When it implements APIMetrics, /metrics serves its
	// series too.
	API    http.Handler
	Logger *slog.Logger
}

// APIMetrics is an API handler with series of its own (the job API's
// WebSocket clients: server.Handler), which /metrics serves beside
// Gatherer's.
type APIMetrics interface {
	Metrics() prometheus.Gatherer
}

// Server serves /metrics, /healthz (200 while the process is alive) and
// /readyz (200 when ready, 503 otherwise, with a JSON body).
type Server struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// listenAddr resolves the address a server with this Listen setting binds.
func listenAddr(listen string) (string, error) {
	if listen == "" {
		return defaultListen, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("metrics listen address %q: %w", listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Serve binds the address (so a port in use fails here, before the job
// starts) and serves in the background until Shutdown.
func Serve(opts ServerOptions) (*Server, error) {
	addr, err := listenAddr(opts.Listen)
	if err != nil {
		return nil, err
	}
	if opts.Gatherer == nil {
		return nil, errors.New("metrics server: no gatherer")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	g := opts.Gatherer
	if a, ok := opts.API.(APIMetrics); ok {
		g = prometheus.Gatherers{g, a.Metrics()}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, body := true, any(map[string]string{"status": "ready"})
		if opts.Ready != nil {
			ready, body = opts.Ready()
		}
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, body)
	})
	if opts.API != nil {
		mux.Handle("/", opts.API)
	}
	s := &Server{
		ln:  ln,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		err: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			logger.Error("metrics server stopped", "err", err)
		}
		s.err <- err
	}()
	logger.Info("metrics server listening", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the address the server listens on (with the real port when the
// configured one was 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and waits for in-flight requests,
// at most until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	return <-s.err
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}
