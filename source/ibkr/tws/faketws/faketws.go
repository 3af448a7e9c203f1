// Package faketws is an in-process stand-in for TWS / IB Gateway that
// speaks the real wire protocol on a loopback port, for tests: it checks
// the "API\0" greeting and the version range, answers with a scripted
// server version and connection time, reads startApi, and then lets the
// test drive the conversation frame by frame (expect exact request bytes,
// send replies, drop the connection). Every frame it receives is recorded
// with its arrival time.
package faketws

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/source/ibkr/tws"
)

// Config shapes a fake TWS.
type Config struct {
	// Version is the server version answered in the handshake (default
	// 200); ConnTime the connection time (default a fixed Berlin time).
	Version  int
	ConnTime string
	// Before are frames sent before the version frame (TWS may send news
	// first).
	Before [][]byte
	// Fragment makes every write one byte at a time (TCP fragmentation).
	Fragment bool
	// Refuse closes each new connection at once, before the greeting
	// (SetRefuse changes it later).
	Refuse bool
}

// Server is a fake TWS listening on 127.0.0.1.
type Server struct {
	cfg    Config
	refuse atomic.Bool

	ln       net.Listener
	sessions chan *Session
	mu       sync.Mutex
	frames   []Frame
	n        int
	errs     []error
	wg       sync.WaitGroup
	done     chan struct{}
}

// Frame is one frame the server received after the greeting.
type Frame struct {
	Conn    int // 1-based connection number
	At      time.Time
	Payload []byte
}

// Fields renders the frame's payload fields.
func (f Frame) Fields() string { return tws.FieldsString(f.Payload) }

// New starts a server on 127.0.0.1:0 with at most one Config.
func New(cfg ...Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, sessions: make(chan *Session, 16), done: make(chan struct{})}
	if len(cfg) > 0 {
		s.cfg = cfg[0]
	}
	if s.cfg.Version == 0 {
		s.cfg.Version = 200
	}
	if s.cfg.ConnTime == "" {
		s.cfg.ConnTime = "20261126 15:30:00 Europe/Berlin"
	}
	s.refuse.Store(s.cfg.Refuse)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// SetRefuse makes the server close new connections at once (true) or
// serve them again (false).
func (s *Server) SetRefuse(v bool) { s.refuse.Store(v) }

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	close(s.done)
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Errors are protocol violations the server saw (a bad greeting or range).
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// Frames returns a copy of every frame received so far.
func (s *Server) Frames() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.frames...)
}

func (s *Server) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.refuse.Load() {
			c.Close()
			continue
		}
		s.mu.Lock()
		s.n++
		n := s.n
		s.mu.Unlock()
		ss := &Session{srv: s, conn: c, n: n, in: make(chan []byte, 1024), closed: make(chan struct{})}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := ss.handshake(); err != nil {
				s.fail(err)
				c.Close()
				return
			}
			select {
			case s.sessions <- ss:
			case <-s.done:
				c.Close()
				return
			}
			ss.readLoop()
		}()
		go func() {
			select {
			case <-s.done:
				c.Close()
			case <-ss.closed:
			}
		}()
	}
}

// Accept waits for the next client that completed the greeting and sent
// startApi.
func (s *Server) Accept(timeout time.Duration) (*Session, error) {
	select {
	case ss := <-s.sessions:
		return ss, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("faketws: no client connected within %s", timeout)
	}
}

// Session is one client connection.
type Session struct {
	srv  *Server
	conn net.Conn
	n    int
	// Range is the version range the client advertised ("v100..200").
	Range string
	// ClientID is the id the client sent in startApi.
	ClientID int

	rd     *tws.Reader
	wmu    sync.Mutex
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

var rangeRE = regexp.MustCompile(`^v(\d+)\.\.(\d+)( .*)?$`)

func (ss *Session) handshake() error {
	ss.conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer ss.conn.SetDeadline(time.Time{})
	greet := make([]byte, 4)
	if _, err := io.ReadFull(ss.conn, greet); err != nil {
		return fmt.Errorf("faketws: read greeting: %w", err)
	}
	if string(greet) != "API\x00" {
		return fmt.Errorf("faketws: greeting %q, want \"API\\x00\"", greet)
	}
	rd := tws.NewReader(ss.conn)
	p, err := rd.Next()
	if err != nil {
		return fmt.Errorf("faketws: read version range: %w", err)
	}
	if !rangeRE.Match(p) {
		return fmt.Errorf("faketws: version range %q does not match v<min>..<max>", p)
	}
	ss.Range = string(p)
	for _, b := range ss.srv.cfg.Before {
		ss.Write(b)
	}
	ss.Write(Text(strconv.Itoa(ss.srv.cfg.Version), ss.srv.cfg.ConnTime))
	p, err = rd.Next()
	if err != nil {
		return fmt.Errorf("faketws: read startApi: %w", err)
	}
	var f tws.Fields
	f.Reset(p)
	if id := string(f.Bytes()); id != "71" {
		return fmt.Errorf("faketws: first message after the version is %s, want startApi (71)", tws.FieldsString(p))
	}
	f.Bytes()
	cid, _ := strconv.Atoi(string(f.Bytes()))
	ss.ClientID = cid
	ss.record(p)
	// The rest of the stream is read by readLoop, which must continue with
	// rd's buffered bytes.
	ss.rd = rd
	return nil
}

func (ss *Session) record(p []byte) {
	ss.srv.mu.Lock()
	ss.srv.frames = append(ss.srv.frames, Frame{Conn: ss.n, At: time.Now(), Payload: bytes.Clone(p)})
	ss.srv.mu.Unlock()
}

func (ss *Session) readLoop() {
	defer ss.once.Do(func() { close(ss.closed) })
	defer close(ss.in)
	for {
		p, err := ss.rd.Next()
		if err != nil {
			return
		}
		ss.record(p)
		select {
		case ss.in <- bytes.Clone(p):
		default:
		}
	}
}

// Write sends raw bytes (whole frames) to the client.
func (ss *Session) Write(b []byte) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if ss.srv.cfg.Fragment {
		for i := range b {
			if _, err := ss.conn.Write(b[i : i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := ss.conn.Write(b)
	return err
}

// Send writes frames given in hex (spaces allowed).
func (ss *Session) Send(hexFrames ...string) error {
	for _, h := range hexFrames {
		if err := ss.Write(Hex(h)); err != nil {
			return err
		}
	}
	return nil
}

// SendFields writes one text frame with these fields.
func (ss *Session) SendFields(fields ...any) error { return ss.Write(Text(fields...)) }

// Ready sends MANAGED_ACCTS and NEXT_VALID_ID, the client's ready condition.
func (ss *Session) Ready() error {
	if err := ss.SendFields(15, 1, "DU1234567"); err != nil {
		return err
	}
	return ss.SendFields(9, 1, 1)
}

// Next returns the payload of the next frame the client sent after
// startApi. Up to 1024 unread frames wait for Next; beyond that they are
// only in Frames (the server never stops reading, as TWS does not).
func (ss *Session) Next(timeout time.Duration) ([]byte, error) {
	select {
	case p, ok := <-ss.in:
		if !ok {
			return nil, io.EOF
		}
		return p, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("faketws: nothing received within %s", timeout)
	}
}

// Expect reads the next frame and compares it with the full frame given in
// hex (length prefix included); a mismatch names the fields.
func (ss *Session) Expect(hexFrame string, timeout time.Duration) error {
	want := Hex(hexFrame)
	p, err := ss.Next(timeout)
	if err != nil {
		return fmt.Errorf("%w (waiting for %s)", err, tws.FieldsString(want[4:]))
	}
	got, _ := tws.AppendFrame(nil, p)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("faketws: got frame %x\n  fields %s\nwant %x\n  fields %s", got, tws.FieldsString(p), want, tws.FieldsString(want[4:]))
	}
	return nil
}

// ExpectFields reads the next frame and compares its fields.
func (ss *Session) ExpectFields(timeout time.Duration, fields ...any) error {
	fr := Text(fields...)
	return ss.Expect(hex.EncodeToString(fr), timeout)
}

// Close drops the connection (TWS restart, daily reset).
func (ss *Session) Close() error {
	err := ss.conn.Close()
	return err
}

// Done is closed when the client's side of the connection ended.
func (ss *Session) Done() <-chan struct{} { return ss.closed }

// Hex decodes hex with optional spaces; it panics on bad input (test data).
func Hex(h string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
	if err != nil {
		panic(fmt.Sprintf("faketws.Hex(%q): %v", h, err))
	}
	return b
}

// Text builds one text frame: each field formatted with %v and terminated
// by NUL.
func Text(fields ...any) []byte {
	var p []byte
	for _, f := range fields {
		p = fmt.Append(p, f)
		p = append(p, 0)
	}
	fr, err := tws.AppendFrame(nil, p)
	if err != nil {
		panic(err)
	}
	return fr
}

// WaitFrames waits until at least n frames (startApi included) were received.
func (s *Server) WaitFrames(ctx context.Context, n int) ([]Frame, error) {
	for {
		fr := s.Frames()
		if len(fr) >= n {
			return fr, nil
		}
		select {
		case <-ctx.Done():
			return fr, errors.New("faketws: timed out waiting for frames")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
