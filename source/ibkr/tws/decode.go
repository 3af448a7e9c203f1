package tws

import (
	"errors"

	"github.com/mdpio/mdp/tsparse"
)

// Incoming message ids.
const (
	InTickPrice         = 1
	InTickSize          = 2
	InErrMsg            = 4
	InNextValidID       = 9
	InManagedAccts      = 15
	InHistoricalData    = 17
	InTickGeneric       = 45
	InTickString        = 46
	InCurrentTime       = 49
	InRealTimeBars      = 50
	InTickSnapshotEnd   = 57
	InMarketDataType    = 58
	InTickReqParams     = 81
	InTickByTick        = 99
	InHistoricalDataEnd = 108
)

// Tick-by-tick reply types (field 2 of TICK_BY_TICK).
const (
	TBTLast     = 1
	TBTAllLast  = 2
	TBTBidAsk   = 3
	TBTMidPoint = 4
)

// Tick types of reqMktData replies that mdp reads.
const (
	TickTypeBidSize        = 0
	TickTypeBid            = 1
	TickTypeAsk            = 2
	TickTypeAskSize        = 3
	TickTypeLast           = 4
	TickTypeLastSize       = 5
	TickTypeVolume         = 8
	TickTypeLastTimestamp  = 45
	TickTypeRTVolume       = 48
	TickTypeHalted         = 49
	TickTypeDelayedBid     = 66
	TickTypeDelayedAsk     = 67
	TickTypeDelayedLast    = 68
	TickTypeDelayedBidSize = 69
	TickTypeDelayedAskSize = 70
	TickTypeDelayedLastSz  = 71
	TickTypeRTTrdVolume    = 77
)

// Bar is a real-time or historical bar.
type Bar struct {
	Time                   int64 // Unix seconds of the bar's start
	Open, High, Low, Close float64
	Volume, WAP            float64
	Count                  int64
	// VolumeDecimals is how many decimal places Volume was sent with.
	VolumeDecimals int
	// Date is the raw date field of a historical bar ("1764167400" or
	// "20261126"); nil for real-time bars.
	Date []byte
}

// Message is one decoded incoming message. Decode sets ID and the fields
// its layout carries and leaves the others as they were; byte slices point
// into the frame buffer and are valid until the next read.
type Message struct {
	ID    int
	ReqID int64
	// TickType: the tick type of TICK_PRICE/SIZE/STRING/GENERIC, or the
	// TBT* type of TICK_BY_TICK.
	TickType int
	// Time: Unix seconds (tick-by-tick, real-time bar, current time).
	Time int64
	// Price and Size: a tick-by-tick trade, a TICK_PRICE (with its size) or
	// a TICK_SIZE.
	Price, Size float64
	// SizeDecimals is how many decimal places a tick-by-tick trade's Size
	// was sent with (IB sends sizes as decimal text since version 163).
	SizeDecimals int
	// Mask: tick-by-tick attributes or TICK_PRICE attribute bits.
	Mask int64
	// Exchange and Conditions of a tick-by-tick trade.
	Exchange, Conditions []byte
	// BidAsk tick-by-tick.
	Bid, Ask, BidSize, AskSize float64
	// Mid is a MidPoint tick-by-tick.
	Mid float64
	// Value of a TICK_GENERIC.
	Value float64
	// Text: TICK_STRING value, error message, managed accounts.
	Text []byte
	// Code of an error; ErrorTime its time (Unix ms, 0 before version 194).
	Code      int
	ErrorTime int64
	// OrderID of NEXT_VALID_ID; MarketDataType of MARKET_DATA_TYPE.
	OrderID        int64
	MarketDataType int
	// Bar of REAL_TIME_BARS; Bars of HISTORICAL_DATA (reused between calls).
	Bar  Bar
	Bars []Bar
	// MinTick of TICK_REQ_PARAMS.
	MinTick float64

	f Fields
}

// Known reports whether Decode understood the message id (others are
// skipped whole: they are replies to requests mdp does not make, or news).
func (m *Message) Known() bool {
	switch m.ID {
	case InTickPrice, InTickSize, InErrMsg, InNextValidID, InManagedAccts, InHistoricalData, InTickGeneric,
		InTickString, InCurrentTime, InRealTimeBars, InTickSnapshotEnd, InMarketDataType, InTickReqParams,
		InTickByTick, InHistoricalDataEnd:
		return true
	}
	return false
}

// ErrUnknownTickByTick is a TICK_BY_TICK message of an unknown type.
var ErrUnknownTickByTick = errors.New("tws: unknown tick-by-tick type")

// ErrBinary is a payload in the raw-id or protobuf form, which a session
// at a text version never carries.
var ErrBinary = errors.New("tws: binary message id in a text session")

// Decode decodes the text payload p at server version sv into m.
func Decode(p []byte, sv int, m *Message) error {
	f := &m.f
	f.Reset(p)
	if len(p) > 0 && (p[0] < '0' || p[0] > '9') && p[0] != '-' {
		return ErrBinary
	}
	if len(p) == 0 || p[len(p)-1] != 0 {
		// Every field, the last included, ends in NUL.
		return ErrTruncated
	}
	m.ID = int(f.Int())
	if f.err != nil {
		return f.err
	}
	switch m.ID {
	case InTickByTick:
		m.ReqID = f.Int()
		m.TickType = int(f.Int())
		m.Time = f.Int()
		switch m.TickType {
		case TBTLast, TBTAllLast:
			m.Price = f.Float()
			m.Size, m.SizeDecimals = f.DecimalPlaces()
			m.Mask = f.Int()
			m.Exchange = f.Bytes()
			m.Conditions = f.Bytes()
		case TBTBidAsk:
			m.Bid = f.Float()
			m.Ask = f.Float()
			m.BidSize = f.Decimal()
			m.AskSize = f.Decimal()
			m.Mask = f.Int()
		case TBTMidPoint:
			m.Mid = f.Float()
		default:
			if f.err == nil {
				return ErrUnknownTickByTick
			}
		}
	case InTickPrice:
		f.Skip(1) // version
		m.ReqID = f.Int()
		m.TickType = int(f.Int())
		m.Price = f.Float()
		m.Size = f.Decimal()
		m.Mask = f.Int()
	case InTickSize:
		f.Skip(1)
		m.ReqID = f.Int()
		m.TickType = int(f.Int())
		m.Size = f.Decimal()
	case InTickGeneric:
		f.Skip(1)
		m.ReqID = f.Int()
		m.TickType = int(f.Int())
		m.Value = f.Float()
	case InTickString:
		f.Skip(1)
		m.ReqID = f.Int()
		m.TickType = int(f.Int())
		m.Text = f.Bytes()
	case InRealTimeBars:
		f.Skip(1)
		m.ReqID = f.Int()
		m.Bar.Date = nil
		m.Bar.Time = f.Int()
		m.Bar.Open = f.Float()
		m.Bar.High = f.Float()
		m.Bar.Low = f.Float()
		m.Bar.Close = f.Float()
		m.Bar.Volume, m.Bar.VolumeDecimals = f.DecimalPlaces()
		m.Bar.WAP = f.Decimal()
		m.Bar.Count = f.Int()
	case InHistoricalData:
		m.ReqID = f.Int()
		if sv < versionHistoricalEnd {
			f.Skip(2) // start, end
		}
		n := f.Int()
		if f.err == nil && (n < 0 || n > int64(len(p))/8) {
			return ErrBadNumber
		}
		m.Bars = m.Bars[:0]
		for i := int64(0); i < n && f.err == nil; i++ {
			var b Bar
			b.Date = f.Bytes()
			b.Open = f.Float()
			b.High = f.Float()
			b.Low = f.Float()
			b.Close = f.Float()
			b.Volume, b.VolumeDecimals = f.DecimalPlaces()
			b.WAP = f.Decimal()
			b.Count = f.Int()
			m.Bars = append(m.Bars, b)
		}
	case InHistoricalDataEnd:
		m.ReqID = f.Int()
		f.Skip(2) // start, end
	case InErrMsg:
		if sv < versionErrorTime {
			f.Skip(1)
		}
		m.ReqID = f.Int()
		m.Code = int(f.Int())
		m.Text = f.Bytes()
		m.ErrorTime = 0
		if sv >= versionErrorJSON {
			f.Skip(1) // advancedOrderRejectJson
		}
		if sv >= versionErrorTime {
			m.ErrorTime = f.Int()
		}
	case InNextValidID:
		f.Skip(1)
		m.OrderID = f.Int()
	case InManagedAccts:
		f.Skip(1)
		m.Text = f.Bytes()
	case InCurrentTime:
		f.Skip(1)
		m.Time = f.Int()
	case InMarketDataType:
		f.Skip(1)
		m.ReqID = f.Int()
		m.MarketDataType = int(f.Int())
	case InTickSnapshotEnd:
		f.Skip(1)
		m.ReqID = f.Int()
	case InTickReqParams:
		m.ReqID = f.Int()
		m.MinTick = f.Float()
		f.Skip(2) // bboExchange, snapshotPermissions
	default:
		return nil
	}
	return f.err
}

// HistoricalTime reads a historical bar's date as Unix seconds: the Unix
// seconds that formatDate 2 gives for intraday bars, or yyyymmdd (a daily
// bar) as that day's midnight UTC.
func HistoricalTime(date []byte) (int64, bool) {
	if len(date) == 8 {
		y, ok1 := tsparse.Digits(date[:4])
		mo, ok2 := tsparse.Digits(date[4:6])
		d, ok3 := tsparse.Digits(date[6:8])
		if ok1 && ok2 && ok3 && mo >= 1 && mo <= 12 && d >= 1 && d <= tsparse.DaysIn(y, mo) {
			return tsparse.DaysFromCivil(y, mo, d) * 86400, true
		}
		return 0, false
	}
	return tsparse.ParseInt(date)
}

func parseInt(b []byte) (int64, bool)     { return tsparse.ParseInt(b) }
func parseFloat(b []byte) (float64, bool) { return tsparse.ParseFloat(b) }

func decimals(b []byte) int { return tsparse.Decimals(b) }
