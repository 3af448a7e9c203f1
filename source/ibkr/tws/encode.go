package tws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Protocol versions.
const (
	// MinVersion is the lowest server version the client accepts: 163
	// brought decimal (fractional) sizes, which the decoder assumes.
	MinVersion = 163
	// MaxVersion is the highest server version the client advertises: the
	// last one at which every message is text.
	MaxVersion = 200
	// AdvertisedMin is the low end of the range sent in the greeting.
	AdvertisedMin = 100

	// Versions at which layouts change (facts from the protocol notes).
	versionErrorJSON      = 166 // ERR_MSG gains advancedOrderRejectJson
	versionErrorTime      = 194 // ERR_MSG drops its version field, gains errorTime
	versionHistoricalEnd  = 196 // HISTORICAL_DATA loses start/end, HISTORICAL_DATA_END is its own message
	versionRawMsgID       = 201 // message id as a raw 4-byte int
	versionProtoMktData   = 206 // protobuf for reqMktData and reqMarketDataType
	versionProtoTickBars  = 208 // protobuf for tick-by-tick, real-time and historical bars
	versionProtoStartAPI  = 213 // protobuf for startApi, reqIds, reqCurrentTime
	versionSyntRealtimeBr = 124 // reqHistoricalData drops its version field
)

// Outgoing message ids.
const (
	OutReqMktData           = 1
	OutCancelMktData        = 2
	OutReqIDs               = 8
	OutReqHistoricalData    = 20
	OutCancelHistoricalData = 25
	OutReqCurrentTime       = 49
	OutReqRealTimeBars      = 50
	OutCancelRealTimeBars   = 51
	OutReqMarketDataType    = 59
	OutStartAPI             = 71
	OutReqTickByTickData    = 97
	OutCancelTickByTickData = 98
)

// ErrNeedsProtobuf is returned when the negotiated server version requires
// the protobuf form of a message, which this client does not encode.
var ErrNeedsProtobuf = errors.New("tws: this server version needs the protobuf form of the message")

// Contract identifies an instrument, in the 12 fields every market-data
// request carries. Zero values encode as empty fields, except ConID, which
// encodes as 0 (IB's "not set"). A zero Strike is empty: no listed option
// has a strike of 0.
type Contract struct {
	ConID                        int64
	Symbol                       string
	SecType                      string // STK, FUT, CASH, CRYPTO, IND, OPT, FOP, CONTFUT
	LastTradeDateOrContractMonth string // YYYYMM or YYYYMMDD
	Strike                       float64
	Right                        string // C or P
	Multiplier                   string
	Exchange                     string
	PrimaryExchange              string
	Currency                     string
	LocalSymbol                  string
	TradingClass                 string
}

// Encoder builds request frames for one negotiated server version. It
// reuses one buffer: a returned frame is valid until the next call.
type Encoder struct {
	// ServerVersion is the negotiated version; it gates message forms.
	ServerVersion int
	buf           []byte
}

// begin starts a frame for message id, returning ErrNeedsProtobuf when the
// version needs the protobuf form (from protoAt on).
func (e *Encoder) begin(id, protoAt int) error {
	if e.ServerVersion >= protoAt {
		return fmt.Errorf("message %d at server version %d: %w", id, e.ServerVersion, ErrNeedsProtobuf)
	}
	e.buf = append(e.buf[:0], 0, 0, 0, 0)
	if e.ServerVersion >= versionRawMsgID {
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(id))
		return nil
	}
	e.int(int64(id))
	return nil
}

func (e *Encoder) finish() ([]byte, error) {
	n := len(e.buf) - 4
	if n > MaxFrame {
		return nil, ErrFrameTooLarge
	}
	binary.BigEndian.PutUint32(e.buf, uint32(n))
	return e.buf, nil
}

func (e *Encoder) int(v int64) { e.buf = append(strconv.AppendInt(e.buf, v, 10), 0) }

func (e *Encoder) bool(v bool) {
	if v {
		e.buf = append(e.buf, '1', 0)
	} else {
		e.buf = append(e.buf, '0', 0)
	}
}

func (e *Encoder) str(s string) { e.buf = append(append(e.buf, s...), 0) }

// float writes v the way the reference encoder does: the shortest
// round-trip decimal, with ".0" on integral values ("189.5", "150.0").
func (e *Encoder) float(v float64) {
	e.buf = appendFloat(e.buf, v)
	e.buf = append(e.buf, 0)
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "Infinity"...)
	case math.IsInf(v, -1):
		return append(b, "-Infinity"...)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e16 {
		return append(strconv.AppendFloat(b, v, 'f', -1, 64), '.', '0')
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func (e *Encoder) contract(c *Contract) {
	e.int(c.ConID)
	e.str(c.Symbol)
	e.str(c.SecType)
	e.str(c.LastTradeDateOrContractMonth)
	if c.Strike == 0 {
		e.str("")
	} else {
		e.float(c.Strike)
	}
	e.str(c.Right)
	e.str(c.Multiplier)
	e.str(c.Exchange)
	e.str(c.PrimaryExchange)
	e.str(c.Currency)
	e.str(c.LocalSymbol)
	e.str(c.TradingClass)
}

// checkASCII rejects strings the server would not take: only printable
// ASCII (and tab, CR, LF) may go on the wire.
func checkASCII(c *Contract, more ...string) error {
	for _, s := range append([]string{c.Symbol, c.SecType, c.LastTradeDateOrContractMonth, c.Right, c.Multiplier,
		c.Exchange, c.PrimaryExchange, c.Currency, c.LocalSymbol, c.TradingClass}, more...) {
		for i := 0; i < len(s); i++ {
			if ch := s[i]; (ch < 0x20 || ch > 0x7e) && ch != '\t' && ch != '\r' && ch != '\n' {
				return fmt.Errorf("tws: %q has a character that is not printable ASCII", s)
			}
		}
	}
	return nil
}

// StartAPI is startApi: [71, 2, clientId, optionalCapabilities].
func (e *Encoder) StartAPI(clientID int, capabilities string) ([]byte, error) {
	if err := e.begin(OutStartAPI, versionProtoStartAPI); err != nil {
		return nil, err
	}
	e.int(2)
	e.int(int64(clientID))
	e.str(capabilities)
	return e.finish()
}

// ReqMarketDataType is [59, 1, type]: 1 live, 2 frozen, 3 delayed, 4
// delayed-frozen.
func (e *Encoder) ReqMarketDataType(t int) ([]byte, error) {
	if err := e.begin(OutReqMarketDataType, versionProtoMktData); err != nil {
		return nil, err
	}
	e.int(1)
	e.int(int64(t))
	return e.finish()
}

// ReqMktData is reqMktData (version 11) without combo legs or a delta-neutral
// contract: [1, 11, reqId, contract…, 0, genericTicks, snapshot,
// regulatorySnapshot, ""].
func (e *Encoder) ReqMktData(reqID int64, c *Contract, genericTicks string, snapshot, regulatory bool) ([]byte, error) {
	if err := checkASCII(c, genericTicks); err != nil {
		return nil, err
	}
	if err := e.begin(OutReqMktData, versionProtoMktData); err != nil {
		return nil, err
	}
	e.int(11)
	e.int(reqID)
	e.contract(c)
	e.bool(false) // no delta-neutral contract
	e.str(genericTicks)
	e.bool(snapshot)
	e.bool(regulatory)
	e.str("")
	return e.finish()
}

// CancelMktData is [2, 2, reqId].
func (e *Encoder) CancelMktData(reqID int64) ([]byte, error) {
	if err := e.begin(OutCancelMktData, versionProtoMktData); err != nil {
		return nil, err
	}
	e.int(2)
	e.int(reqID)
	return e.finish()
}

// Tick-by-tick request types (case-sensitive on the wire).
const (
	TickLast     = "Last"
	TickAllLast  = "AllLast"
	TickBidAsk   = "BidAsk"
	TickMidPoint = "MidPoint"
)

// ReqTickByTickData is [97, reqId, contract…, tickType, numberOfTicks,
// ignoreSize]; it has no version field.
func (e *Encoder) ReqTickByTickData(reqID int64, c *Contract, tickType string, numberOfTicks int, ignoreSize bool) ([]byte, error) {
	switch tickType {
	case TickLast, TickAllLast, TickBidAsk, TickMidPoint:
	default:
		return nil, fmt.Errorf("tws: tick-by-tick type %q (want Last, AllLast, BidAsk or MidPoint)", tickType)
	}
	if err := checkASCII(c); err != nil {
		return nil, err
	}
	if err := e.begin(OutReqTickByTickData, versionProtoTickBars); err != nil {
		return nil, err
	}
	e.int(reqID)
	e.contract(c)
	e.str(tickType)
	e.int(int64(numberOfTicks))
	e.bool(ignoreSize)
	return e.finish()
}

// CancelTickByTickData is [98, reqId].
func (e *Encoder) CancelTickByTickData(reqID int64) ([]byte, error) {
	if err := e.begin(OutCancelTickByTickData, versionProtoTickBars); err != nil {
		return nil, err
	}
	e.int(reqID)
	return e.finish()
}

// ReqRealTimeBars is [50, 3, reqId, contract…, barSize, whatToShow, useRTH,
// ""]. IB serves only 5-second bars.
func (e *Encoder) ReqRealTimeBars(reqID int64, c *Contract, barSize int, whatToShow string, useRTH bool) ([]byte, error) {
	if err := checkASCII(c, whatToShow); err != nil {
		return nil, err
	}
	if err := e.begin(OutReqRealTimeBars, versionProtoTickBars); err != nil {
		return nil, err
	}
	e.int(3)
	e.int(reqID)
	e.contract(c)
	e.int(int64(barSize))
	e.str(whatToShow)
	e.bool(useRTH)
	e.str("")
	return e.finish()
}

// CancelRealTimeBars is [51, 1, reqId].
func (e *Encoder) CancelRealTimeBars(reqID int64) ([]byte, error) {
	if err := e.begin(OutCancelRealTimeBars, versionProtoTickBars); err != nil {
		return nil, err
	}
	e.int(1)
	e.int(reqID)
	return e.finish()
}

// HistoricalRequest is the part of reqHistoricalData besides the contract.
type HistoricalRequest struct {
	EndDateTime string // "" for now, or "yyyymmdd-hh:mm:ss" (UTC)
	Duration    string // "2 D", "3600 S", "1 W"
	BarSize     string // "1 min", "5 secs", "1 hour"
	WhatToShow  string // TRADES, MIDPOINT, BID_ASK, BID, ASK
	UseRTH      bool
	// FormatDate 2 asks for bar times as Unix seconds (intraday bars).
	FormatDate   int
	KeepUpToDate bool
}

// ReqHistoricalData is [20, reqId, contract…, includeExpired, endDateTime,
// barSize, duration, useRTH, whatToShow, formatDate, keepUpToDate, ""]
// (no version field from server version 124).
func (e *Encoder) ReqHistoricalData(reqID int64, c *Contract, h *HistoricalRequest) ([]byte, error) {
	if err := checkASCII(c, h.EndDateTime, h.Duration, h.BarSize, h.WhatToShow); err != nil {
		return nil, err
	}
	if err := e.begin(OutReqHistoricalData, versionProtoTickBars); err != nil {
		return nil, err
	}
	if e.ServerVersion < versionSyntRealtimeBr {
		e.int(6)
	}
	e.int(reqID)
	e.contract(c)
	e.bool(false) // includeExpired
	e.str(h.EndDateTime)
	e.str(h.BarSize)
	e.str(h.Duration)
	e.bool(h.UseRTH)
	e.str(h.WhatToShow)
	e.int(int64(h.FormatDate))
	e.bool(h.KeepUpToDate)
	e.str("")
	return e.finish()
}

// CancelHistoricalData is [25, 1, reqId].
func (e *Encoder) CancelHistoricalData(reqID int64) ([]byte, error) {
	if err := e.begin(OutCancelHistoricalData, versionProtoTickBars); err != nil {
		return nil, err
	}
	e.int(1)
	e.int(reqID)
	return e.finish()
}

// ReqCurrentTime is [49, 1]: a cheap liveness probe.
func (e *Encoder) ReqCurrentTime() ([]byte, error) {
	if err := e.begin(OutReqCurrentTime, versionProtoStartAPI); err != nil {
		return nil, err
	}
	e.int(1)
	return e.finish()
}

// ReqIDs is [8, 1, numIds].
func (e *Encoder) ReqIDs(n int) ([]byte, error) {
	if err := e.begin(OutReqIDs, versionProtoStartAPI); err != nil {
		return nil, err
	}
	e.int(1)
	e.int(int64(n))
	return e.finish()
}
