package tws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdpio/mdp/tsparse"
)

// Error codes with a meaning to the connection itself.
const (
	CodeClientIDInUse = 326
)

// ErrClientIDInUse is returned by Dial when TWS refuses the client id
// (error 326): another API client of the same TWS uses it.
var ErrClientIDInUse = errors.New("client id already in use")

// ErrVersion is returned by Dial when the server negotiates a version this
// client does not speak: retrying cannot help until TWS is changed.
var ErrVersion = errors.New("server version outside what this client speaks")

// ServerError is an ERR_MSG that ended a handshake.
type ServerError struct {
	Code int
	Msg  string
}

func (e *ServerError) Error() string { return fmt.Sprintf("TWS error %d: %s", e.Code, e.Msg) }

// Config says where and how to connect.
type Config struct {
	// Addr is host:port (7497 TWS paper, 7496 TWS live, 4002 / 4001 IB
	// Gateway paper / live).
	Addr     string
	ClientID int
	// MinVersion and MaxVersion are the advertised range; zero values mean
	// AdvertisedMin and MaxVersion. A MaxVersion above MaxVersion is refused.
	MinVersion, MaxVersion int
	// ConnectOptions are appended to the version range ("+PACEAPI").
	ConnectOptions string
	// Timeout bounds the dial and the handshake up to the ready state.
	Timeout time.Duration
	// OnHandshakeMessage, when set, sees the messages that arrive during the
	// handshake other than the ready pair (farm status notices, errors).
	OnHandshakeMessage func(m *Message)
}

// Conn is a connected, ready API session. Reads must come from one
// goroutine; the request methods may be called from any goroutine.
type Conn struct {
	nc  net.Conn
	rd  *Reader
	msg Message

	// ServerVersion is the negotiated version; ConnTime the server's
	// connection time, as it sent it ("20261126 15:30:00 Europe/Berlin").
	ServerVersion int
	ConnTime      string
	// Accounts are the managed accounts; NextOrderID the first valid id.
	Accounts    []string
	NextOrderID int64

	wmu sync.Mutex
	enc Encoder
}

// Dial connects, negotiates the version, starts the API and waits for the
// ready condition: both NEXT_VALID_ID and MANAGED_ACCTS, as requests sent
// before them may be dropped by TWS.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	minV, maxV := cfg.MinVersion, cfg.MaxVersion
	if minV == 0 {
		minV = AdvertisedMin
	}
	if maxV == 0 {
		maxV = MaxVersion
	}
	if maxV > MaxVersion || minV > maxV {
		return nil, fmt.Errorf("tws: version range v%d..%d: this client speaks the text protocol, at most v%d", minV, maxV, MaxVersion)
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("tws: connect %s: %w", cfg.Addr, err)
	}
	c := &Conn{nc: nc, rd: NewReader(nc)}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake(cfg, minV, maxV)
	if !stop() || ctx.Err() != nil {
		if err == nil || isTimeout(err) {
			err = fmt.Errorf("tws: handshake with %s: %w", cfg.Addr, context.Cause(ctx))
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Conn) handshake(cfg Config, minV, maxV int) error {
	greet := []byte("API\x00")
	rng := "v" + strconv.Itoa(minV) + ".." + strconv.Itoa(maxV)
	if cfg.ConnectOptions != "" {
		rng += " " + cfg.ConnectOptions
	}
	greet, _ = AppendFrame(greet, []byte(rng))
	if _, err := c.nc.Write(greet); err != nil {
		return fmt.Errorf("tws: send greeting: %w", err)
	}
	// The server answers with a two-field frame: version and time. Other
	// frames may come first; the reference client skips them too.
	var f Fields
	for {
		p, err := c.rd.Next()
		if err != nil {
			return fmt.Errorf("tws: read server version: %w", err)
		}
		f.Reset(p)
		if f.Count() != 2 || len(p) == 0 || p[len(p)-1] != 0 {
			continue
		}
		v, ok := tsparse.ParseInt(f.Bytes())
		if !ok {
			return fmt.Errorf("tws: server version frame %s is not a number", FieldsString(p))
		}
		c.ServerVersion = int(v)
		c.ConnTime = string(f.Bytes())
		break
	}
	if c.ServerVersion < MinVersion || c.ServerVersion > maxV {
		return fmt.Errorf("tws: server version %d: %w (%d..%d): use TWS / IB Gateway 10.x",
			c.ServerVersion, ErrVersion, MinVersion, maxV)
	}
	c.enc.ServerVersion = c.ServerVersion
	if err := c.send(func(e *Encoder) ([]byte, error) { return e.StartAPI(cfg.ClientID, "") }); err != nil {
		return err
	}
	gotID, gotAccts := false, false
	for !gotID || !gotAccts {
		m, err := c.Read()
		if err != nil {
			return fmt.Errorf("tws: waiting for nextValidId and managedAccounts: %w", err)
		}
		switch m.ID {
		case InNextValidID:
			c.NextOrderID, gotID = m.OrderID, true
		case InManagedAccts:
			gotAccts = true
			c.Accounts = c.Accounts[:0]
			for _, a := range strings.Split(string(m.Text), ",") {
				if a = strings.TrimSpace(a); a != "" {
					c.Accounts = append(c.Accounts, a)
				}
			}
		case InErrMsg:
			if m.Code == CodeClientIDInUse {
				return fmt.Errorf("tws: client_id %d: %w (TWS error 326: %s); give each API client of one TWS / IB Gateway its own client_id",
					cfg.ClientID, ErrClientIDInUse, m.Text)
			}
			if cfg.OnHandshakeMessage != nil {
				cfg.OnHandshakeMessage(m)
			}
		default:
			if cfg.OnHandshakeMessage != nil {
				cfg.OnHandshakeMessage(m)
			}
		}
	}
	return nil
}

// Read reads and decodes the next message. The message and its byte
// slices are valid until the next Read. Messages of unknown ids come back
// with only ID set (m.Known() is false).
func (c *Conn) Read() (*Message, error) {
	p, err := c.rd.Next()
	if err != nil {
		return nil, err
	}
	if err := Decode(p, c.ServerVersion, &c.msg); err != nil {
		return &c.msg, &DecodeError{Err: err, Payload: bytes.Clone(p)}
	}
	return &c.msg, nil
}

// Buffered reports whether a further message is already read from the
// socket (the caller is inside a burst).
func (c *Conn) Buffered() bool { return c.rd.Buffered() }

// BytesRead is the number of bytes received so far (see Reader.BytesRead).
func (c *Conn) BytesRead() int64 { return c.rd.BytesRead() }

// DecodeError is a message that did not decode; the connection stays usable.
type DecodeError struct {
	Err     error
	Payload []byte
}

func (e *DecodeError) Error() string {
	p := FieldsString(e.Payload)
	if len(p) > 300 {
		p = p[:300] + "…"
	}
	return fmt.Sprintf("%v: %s", e.Err, p)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// SetReadDeadline bounds the next Read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close closes the socket; a blocked Read returns.
func (c *Conn) Close() error { return c.nc.Close() }

// send encodes one frame under the write lock and writes it.
func (c *Conn) send(build func(e *Encoder) ([]byte, error)) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	fr, err := build(&c.enc)
	if err != nil {
		return err
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return fmt.Errorf("tws: write: %w", err)
	}
	if _, err := c.nc.Write(fr); err != nil {
		return fmt.Errorf("tws: write: %w", err)
	}
	return nil
}

// ReqMarketDataType sends reqMarketDataType.
func (c *Conn) ReqMarketDataType(t int) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqMarketDataType(t) })
}

// ReqMktData sends reqMktData.
func (c *Conn) ReqMktData(reqID int64, ct *Contract, genericTicks string) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqMktData(reqID, ct, genericTicks, false, false) })
}

// CancelMktData sends cancelMktData.
func (c *Conn) CancelMktData(reqID int64) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.CancelMktData(reqID) })
}

// ReqTickByTickData sends reqTickByTickData with no history (numberOfTicks 0).
func (c *Conn) ReqTickByTickData(reqID int64, ct *Contract, tickType string, ignoreSize bool) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqTickByTickData(reqID, ct, tickType, 0, ignoreSize) })
}

// CancelTickByTickData sends cancelTickByTickData.
func (c *Conn) CancelTickByTickData(reqID int64) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.CancelTickByTickData(reqID) })
}

// ReqRealTimeBars sends reqRealTimeBars for 5-second bars.
func (c *Conn) ReqRealTimeBars(reqID int64, ct *Contract, whatToShow string, useRTH bool) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqRealTimeBars(reqID, ct, 5, whatToShow, useRTH) })
}

// CancelRealTimeBars sends cancelRealTimeBars.
func (c *Conn) CancelRealTimeBars(reqID int64) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.CancelRealTimeBars(reqID) })
}

// ReqHistoricalData sends reqHistoricalData.
func (c *Conn) ReqHistoricalData(reqID int64, ct *Contract, h *HistoricalRequest) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqHistoricalData(reqID, ct, h) })
}

// CancelHistoricalData sends cancelHistoricalData.
func (c *Conn) CancelHistoricalData(reqID int64) error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.CancelHistoricalData(reqID) })
}

// ReqCurrentTime sends reqCurrentTime.
func (c *Conn) ReqCurrentTime() error {
	return c.send(func(e *Encoder) ([]byte, error) { return e.ReqCurrentTime() })
}
