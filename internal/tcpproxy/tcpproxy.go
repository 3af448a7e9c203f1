// Package tcpproxy is a loopback TCP proxy for tests of reconnecting
// clients: a test points a client at the proxy and cuts every connection
// through it (Cut) or refuses new ones for a while (Pause), without
// disturbing the shared broker other tests use.
package tcpproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards connections from its loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
	cuts   int
	wg     sync.WaitGroup

	forwarded atomic.Int64 // bytes copied, both ways
}

// Start listens on a free loopback port and forwards to target; the test's
// cleanup closes it.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, err := io.Copy(dst, &counter{r: src, n: &p.forwarded})
	if errors.Is(err, net.ErrClosed) || err == nil {
		dst.Close()
	}
	src.Close()
	p.mu.Lock()
	delete(p.conns, src)
	delete(p.conns, dst)
	p.mu.Unlock()
}

// counter counts what is read through it.
type counter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// Forwarded is the number of bytes the proxy has copied, both ways.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// CutAfter waits until n more bytes have gone through the proxy (at most
// timeout, then the test fails) and cuts every connection: a cut that
// lands while data flows, however slowly the clients start.
func (p *Proxy) CutAfter(tb testing.TB, n int64, timeout time.Duration) {
	tb.Helper()
	want := p.Forwarded() + n
	deadline := time.Now().Add(timeout)
	for p.Forwarded() < want {
		if time.Now().After(deadline) {
			tb.Errorf("tcpproxy: %d bytes forwarded within %s, want %d", p.Forwarded(), timeout, want)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.Cut()
}

// Cut closes every connection through the proxy now; new ones are
// accepted unless the proxy is paused.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts++
	for c := range p.conns {
		c.Close()
	}
}

// Pause refuses new connections (and cuts the open ones) until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	p.Cut()
}

// Resume accepts connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
