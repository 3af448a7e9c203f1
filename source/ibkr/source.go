package ibkr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/retry"
	"github.com/mdpio/mdp/source/ibkr/tws"
	"github.com/mdpio/mdp/tsparse"
)

// subKind is what a live subscription streams.
type subKind uint8

const (
	subTrades  subKind = iota // tick-by-tick AllLast / Last
	subQuotes                 // tick-by-tick BidAsk
	subBars                   // real-time 5-second bars
	subMktData                // reqMktData top of book
)

func (k subKind) String() string {
	return [...]string{"trades", "quotes", "bars_5s", "market_data"}[k]
}

// sub is one live subscription. Its request id is stable for the life of
// the source (subBase + index), across reconnects.
type sub struct {
	kind  subKind
	ct    *cstate
	reqID int64
	// ended: IB refused it and on_unavailable is skip; never re-requested.
	ended atomic.Bool
}

// cstate is a contract's state, owned by the reading goroutine except
// where noted.
type cstate struct {
	contract
	sym md.SymID
	seq uint64
	// cut is the backfill cut (ns): live records before it are dropped.
	// Set by the requester before the first live request, read per record.
	cut atomic.Int64
	// backfilled: the backfill of this contract completed (requester).
	backfilled bool
	// lastTS is the event time of the contract's newest record; gapFrom,
	// when not 0, is where an open gap (disconnect, data lost) started.
	lastTS, gapFrom int64
	// Top-of-book state for market_data.
	bid, ask, bidSize, askSize float64
}

const (
	subBase  = 1
	histBase = 1_000_000
	// settle is how long after a bar boundary the backfill request waits,
	// so IB's historical service has the bar that just closed.
	settle = 2 * time.Second
	// histTimeout bounds the wait for one historical reply.
	histTimeout = 2 * time.Minute
	// ibTimeWait bounds the wait for a reqCurrentTime reply.
	ibTimeWait = 5 * time.Second
)

// message type counters.
const (
	msgTickByTick = iota
	msgTickPrice
	msgTickSize
	msgTickString
	msgRealTimeBar
	msgHistorical
	msgError
	msgOther
	nMsgTypes
)

var msgNames = [nMsgTypes]string{"msg_tick_by_tick", "msg_tick_price", "msg_tick_size", "msg_tick_string",
	"msg_real_time_bar", "msg_historical_data", "msg_error", "msg_other"}

// Source is one provider.ibkr node instance.
type Source struct {
	cfg    *config
	log    *slog.Logger
	stats  *engine.NodeStats
	clk    clock
	jitter func() float64

	cts  []*cstate
	subs []*sub

	out        *engine.Output
	tb, qb, bb *md.Batch
	batchSize  int
	recv       int64 // receipt time (ns) of the current socket read
	sizes      *md.SizeDecimals
	syms       *md.SymbolTable // where gaps are recorded
	msgs       [nMsgTypes]int64
	drops      struct{ cut, malformed int64 }
	delivered  int64
	gaps       int64
	conn       *tws.Conn
	sv         int
	ibLost     bool
	probing    bool
	everReady  atomic.Bool
	// state and active feed the gauges (read by metrics scrapes).
	state, active atomic.Int32
	// ibTime is IB\'s clock (Unix s) from the last CURRENT_TIME reply;
	// timeReply signals one to the requester.
	ibTime          atomic.Int64
	timeReply       chan struct{}
	warnedMalformed bool
	fatal           error
	resub           chan struct{}
	resubOne        chan int64
	histMu          sync.Mutex
	histReq         map[int64]*histWait
	histNext        atomic.Int64
	pacer           *pacer
}

// histWait is an outstanding historical request.
type histWait struct {
	ct   *cstate
	done chan struct{}
	n    int
}

func newSource(cfg *config) *Source {
	s := &Source{cfg: cfg, log: slog.New(slog.DiscardHandler), clk: wallClock{}, jitter: rand.Float64,
		resub: make(chan struct{}, 1), resubOne: make(chan int64, 64), timeReply: make(chan struct{}, 1), histReq: map[int64]*histWait{}}
	for i := range cfg.contracts {
		ct := &cstate{contract: cfg.contracts[i]}
		s.cts = append(s.cts, ct)
		add := func(k subKind) {
			s.subs = append(s.subs, &sub{kind: k, ct: ct, reqID: int64(subBase + len(s.subs))})
		}
		if ct.trades != "" {
			add(subTrades)
		}
		if ct.quotes {
			add(subQuotes)
		}
		if ct.bars5s {
			add(subBars)
		}
		if ct.marketData {
			add(subMktData)
		}
	}
	s.pacer = newPacer(s.clk, cfg.rate)
	return s
}

// Connection states, the value of the mdp_ibkr_connection_state gauge.
const (
	stateDisconnected = 0
	stateIBLost       = 1 // connected to TWS, TWS lost IB (1100)
	stateConnected    = 2
)

// Open takes the node's logger and stats and registers its gauges.
func (s *Source) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.log = nc.Logger.With("addr", s.cfg.addr, "client_id", s.cfg.clientID)
	s.stats = nc.Stats
	s.sizes = md.NewSizeDecimals(nc.Symbols)
	s.syms = nc.Symbols
	m := nc.Metrics()
	m.GaugeFunc("mdp_ibkr_connection_state", "0 disconnected from TWS / IB Gateway, 1 connected but TWS lost IB (1100), 2 connected.",
		func() float64 { return float64(s.state.Load()) }, engine.MaxAcrossInstances())
	m.GaugeFunc("mdp_ibkr_subscriptions_active", "Live subscriptions requested on the current connection and not refused.",
		func() float64 { return float64(s.active.Load()) })
	return nil
}

// setState records the connection state for the gauge.
func (s *Source) setState(v int32) { s.state.Store(v) }

// Ready reports whether the API was ready at least once (engine.Readiness):
// a job's /readyz waits for the first connection.
func (s *Source) Ready() bool { return s.everReady.Load() }

// fatalError ends Run: retrying cannot help.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// Run connects and streams until ctx ends, reconnecting after every
// failure. It returns an error for what retrying cannot fix: a config
// error (200, 321), a refused subscription under on_unavailable: fail, a
// client id in use at the first connect, a server version outside the
// text protocol, or max_reconnects attempts in a row that delivered
// nothing.
func (s *Source) Run(ctx context.Context, out *engine.Output) error {
	if s.stats == nil {
		return errors.New("ibkr source: Run before Open")
	}
	s.out = out
	s.batchSize = 1024
	in := md.NewInterner(out.Symbols(), s.cfg.provider)
	for _, ct := range s.cts {
		ct.sym = in.ID(ct.name)
	}
	defer s.discard()
	failures := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.stats.Count("reconnects", 1)
		}
		before := s.delivered
		connected, err := s.connectAndStream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return fe.err
		}
		if s.delivered > before {
			failures = 0
		}
		failures++
		s.openGaps()
		if connected {
			s.stats.Error("disconnect", err.Error())
		} else {
			s.stats.Error("connect_failed", err.Error())
		}
		if s.cfg.maxReconnects > 0 && failures > s.cfg.maxReconnects {
			return fmt.Errorf("ibkr %s: giving up after %d reconnect attempts that delivered no records: %w", s.cfg.addr, s.cfg.maxReconnects, err)
		}
		delay := retry.Backoff{Base: s.cfg.backoff, Max: s.cfg.maxBackoff, Rand: s.jitter}.Delay(failures)
		s.log.Warn("ibkr disconnected; reconnecting", "err", err, "in", delay, "attempt", failures)
		if retry.Sleep(ctx, delay) != nil {
			return nil
		}
	}
}

// Unbounded implements engine.Unbounded: the source streams until the job
// stops it, so with checkpoints on a stop suspends the job instead of
// draining it (open bars stay in the checkpoint). It cannot seek: after a
// restore it resumes live and the job records the gap.
func (s *Source) Unbounded() bool { return true }

// connectAndStream runs one connection. connected reports whether the API
// became ready.
func (s *Source) connectAndStream(ctx context.Context) (connected bool, err error) {
	conn, err := tws.Dial(ctx, tws.Config{
		Addr: s.cfg.addr, ClientID: s.cfg.clientID, Timeout: s.cfg.connectTimeout,
		OnHandshakeMessage: func(m *tws.Message) {
			if m.ID == tws.InErrMsg {
				s.onConnError(m)
			}
		},
	})
	if err != nil {
		if errors.Is(err, tws.ErrVersion) || errors.Is(err, tws.ErrClientIDInUse) && !s.everReady.Load() {
			return false, &fatalError{err}
		}
		return false, err
	}
	first := !s.everReady.Swap(true)
	s.stats.Count("connects", 1)
	s.log.Info("ibkr connected", "server_version", conn.ServerVersion, "accounts", len(conn.Accounts), "subscriptions", len(s.subs))
	s.conn, s.sv = conn, conn.ServerVersion
	s.ibLost, s.probing = false, false
	s.setState(stateConnected)
	defer func() {
		s.setState(stateDisconnected)
		s.active.Store(0)
	}()
	return true, s.session(ctx, conn, first)
}

// session subscribes (on a second goroutine, which owns all pacing waits)
// and reads until the connection fails.
func (s *Source) session(ctx context.Context, conn *tws.Conn, first bool) error {
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sctx, func() { conn.Close() })
	var wg sync.WaitGroup
	var reqErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.requester(sctx, conn, first); err != nil && sctx.Err() == nil {
			reqErr = err
			cancel()
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
		stop()
		conn.Close()
		s.flush()
	}()
	err := s.read(conn)
	cancel()
	wg.Wait()
	if s.fatal != nil {
		return &fatalError{s.fatal}
	}
	if reqErr != nil {
		var fe *fatalError
		if errors.As(reqErr, &fe) {
			return reqErr
		}
		return fmt.Errorf("send: %w", reqErr)
	}
	return err
}

// read is the receive loop: it decodes, routes and emits, and flushes the
// batches whenever no further message is at hand.
//
// Liveness: the socket read deadline is heartbeat from the last moment
// the loop found nothing buffered. When it passes, bytes that arrived
// meanwhile (a frame trickling in) prove the peer alive and re-arm it;
// otherwise a reqCurrentTime goes out, and a second silent heartbeat ends
// the connection.
func (s *Source) read(conn *tws.Conn) error {
	var armedAt int64
	arm := func() error {
		armedAt = conn.BytesRead()
		return conn.SetReadDeadline(time.Now().Add(s.cfg.heartbeat))
	}
	for {
		// A read that finds nothing buffered goes to the socket: first
		// emit what is filled, and stamp what it brings with a new receipt
		// time.
		blocking := !conn.Buffered()
		if blocking {
			if err := s.flush(); err != nil {
				return err
			}
			if err := arm(); err != nil {
				return err
			}
		}
		m, err := conn.Read()
		if err != nil {
			var de *tws.DecodeError
			if errors.As(err, &de) {
				s.drops.malformed++
				if !s.warnedMalformed {
					s.warnedMalformed = true
					s.log.Warn("ibkr: malformed message skipped (further ones are only counted, drop reason malformed)", "err", err)
				}
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if conn.BytesRead() != armedAt {
					if err := arm(); err != nil {
						return err
					}
					continue
				}
				if s.probing {
					return fmt.Errorf("no reply to reqCurrentTime within %s: connection presumed dead", s.cfg.heartbeat)
				}
				if s.ibLost {
					s.stats.Error("ib_connectivity", "IB↔TWS connectivity still lost (1100)")
				}
				s.probing = true
				if err := conn.ReqCurrentTime(); err != nil {
					return err
				}
				if err := arm(); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("read: %w", err)
		}
		if blocking || s.recv == 0 {
			s.recv = time.Now().UnixNano()
		}
		s.probing = false
		s.handle(m)
		if s.fatal != nil {
			return s.fatal
		}
	}
}

// subFor returns the live subscription with reqID, or nil.
func (s *Source) subFor(reqID int64) *sub {
	i := reqID - subBase
	if i < 0 || i >= int64(len(s.subs)) {
		return nil
	}
	return s.subs[i]
}

func (s *Source) handle(m *tws.Message) {
	switch m.ID {
	case tws.InTickByTick:
		s.msgs[msgTickByTick]++
		sb := s.subFor(m.ReqID)
		if sb == nil {
			return
		}
		ct := sb.ct
		ts := m.Time * 1e9
		if ts < ct.cut.Load() {
			s.drops.cut++
			return
		}
		switch m.TickType {
		case tws.TBTLast, tws.TBTAllLast:
			s.trade(ct, md.Trade{TS: ts, Price: m.Price, Size: m.Size}, m.SizeDecimals)
		case tws.TBTBidAsk:
			s.quote(ct, md.Quote{TS: ts, Bid: m.Bid, Ask: m.Ask, BidSize: m.BidSize, AskSize: m.AskSize})
		}
	case tws.InTickPrice:
		s.msgs[msgTickPrice]++
		s.tickPrice(m)
	case tws.InTickSize:
		s.msgs[msgTickSize]++
		s.tickSize(m)
	case tws.InTickString:
		s.msgs[msgTickString]++
		if m.TickType == tws.TickTypeRTVolume {
			s.rtVolume(m)
		}
	case tws.InRealTimeBars:
		s.msgs[msgRealTimeBar]++
		sb := s.subFor(m.ReqID)
		if sb == nil {
			return
		}
		start := m.Bar.Time * 1e9
		if start < sb.ct.cut.Load() {
			s.drops.cut++
			return
		}
		s.bar(sb.ct, start, int64(5*time.Second), realTimeSource(sb.ct), &m.Bar)
	case tws.InHistoricalData:
		s.msgs[msgHistorical]++
		s.historical(m)
	case tws.InHistoricalDataEnd:
		s.msgs[msgHistorical]++
		s.histDone(m.ReqID)
	case tws.InErrMsg:
		s.msgs[msgError]++
		s.onError(m)
	case tws.InCurrentTime:
		s.msgs[msgOther]++
		s.ibTime.Store(m.Time)
		select {
		case s.timeReply <- struct{}{}:
		default:
		}
	default:
		s.msgs[msgOther]++
	}
}

func validPrice(p float64) bool { return p > 0 && !math.IsInf(p, 0) }

// malformed counts a record that breaks the number rules or max_future;
// the first one is logged with its reason.
func (s *Source) malformed(ct *cstate, why string) {
	s.drops.malformed++
	if !s.warnedMalformed {
		s.warnedMalformed = true
		s.log.Warn("ibkr: malformed record dropped (further ones are only counted, drop reason malformed)", "contract", ct.name, "reason", why)
	}
}

// future reports whether an event time is more than max_future ahead of
// the receipt time.
func (s *Source) future(ts int64) bool {
	return s.cfg.maxFuture > 0 && ts > s.recv && ts-s.recv > int64(s.cfg.maxFuture)
}

// note records a contract's record time and closes an open gap, in the
// symbol table too, where bar builders read it (md.SymbolTable.Gapped).
func (s *Source) note(ct *cstate, ts int64) {
	if ct.gapFrom != 0 {
		s.gaps++
		s.log.Warn("ibkr: gap in the stream", "contract", ct.name, "from", time.Unix(0, ct.gapFrom).UTC(), "to", time.Unix(0, ts).UTC())
		ct.gapFrom = 0
		if s.syms != nil {
			s.syms.CloseGap(ct.sym, ts)
		}
	}
	if ts > ct.lastTS {
		ct.lastTS = ts
	}
	s.delivered++
}

// openGaps marks every contract's stream as interrupted from its newest
// record on (or now, before any record), and records the gap in the
// symbol table at once, so a bar that closes while the feed is down is
// already marked partial.
func (s *Source) openGaps() {
	now := time.Now().UnixNano()
	for _, ct := range s.cts {
		if ct.gapFrom == 0 {
			ct.gapFrom = ct.lastTS
			if ct.gapFrom == 0 {
				ct.gapFrom = now
			}
			if s.syms != nil {
				s.syms.OpenGap(ct.sym, ct.gapFrom)
			}
		}
	}
}

// trade emits a trade whose size was sent with dec decimal places.
func (s *Source) trade(ct *cstate, t md.Trade, dec int) {
	if p := md.CheckTrade(&t); !p.OK() {
		s.malformed(ct, p.String())
		return
	}
	if s.future(t.TS) {
		s.malformed(ct, "event time "+md.FormatTime(t.TS)+" is more than max_future ahead of the receipt time")
		return
	}
	s.note(ct, t.TS)
	s.sizes.Note(ct.sym, dec)
	ct.seq++
	t.Seq, t.Sym, t.Ingest = ct.seq, ct.sym, s.recv
	if s.tb == nil {
		s.tb = s.out.NewBatch(md.KindTrade)
	}
	s.tb.Trades = append(s.tb.Trades, t)
	if len(s.tb.Trades) >= s.batchSize {
		s.emit(&s.tb, engine.PortMain)
	}
}

func (s *Source) quote(ct *cstate, q md.Quote) {
	if p := md.CheckQuote(&q); !p.OK() {
		s.malformed(ct, p.String())
		return
	}
	if s.future(q.TS) {
		s.malformed(ct, "event time "+md.FormatTime(q.TS)+" is more than max_future ahead of the receipt time")
		return
	}
	s.note(ct, q.TS)
	ct.seq++
	q.Seq, q.Sym, q.Ingest = ct.seq, ct.sym, s.recv
	if s.qb == nil {
		s.qb = s.out.NewBatch(md.KindQuote)
	}
	s.qb.Quotes = append(s.qb.Quotes, q)
	if len(s.qb.Quotes) >= s.batchSize {
		s.emit(&s.qb, PortQuotes)
	}
}

// bar emits an IB bar; src is what IB built it from (its whatToShow).
func (s *Source) bar(ct *cstate, start, interval int64, src md.BarSource, b *tws.Bar) {
	if !validPrice(b.Open) || !validPrice(b.High) || !validPrice(b.Low) || !validPrice(b.Close) || b.Low > b.High {
		s.malformed(ct, "a bar needs finite positive prices with low <= high")
		return
	}
	if s.future(start) {
		s.malformed(ct, "bar start "+md.FormatTime(start)+" is more than max_future ahead of the receipt time")
		return
	}
	s.note(ct, start)
	s.sizes.Note(ct.sym, b.VolumeDecimals)
	if s.bb == nil {
		s.bb = s.out.NewBatch(md.KindBar)
	}
	s.bb.Bars = append(s.bb.Bars, md.Bar{
		Start: start, End: start + interval, Interval: interval,
		Open: b.Open, High: b.High, Low: b.Low, Close: b.Close,
		Volume: max(b.Volume, 0), VWAP: max(b.WAP, 0), Trades: max(b.Count, 0), Sym: ct.sym, Source: src,
	})
	if len(s.bb.Bars) >= s.batchSize {
		s.emit(&s.bb, PortBars)
	}
}

// emit sends a batch; an emit error (the job is stopping) becomes fatal.
func (s *Source) emit(b **md.Batch, port string) {
	if *b == nil {
		return
	}
	err := s.out.EmitTo(port, *b)
	*b = nil
	if err != nil && s.fatal == nil {
		s.fatal = fmt.Errorf("emit: %w", err)
	}
}

// flush emits the batches being filled and moves counts into the stats.
func (s *Source) flush() error {
	s.emit(&s.tb, engine.PortMain)
	s.emit(&s.qb, PortQuotes)
	s.emit(&s.bb, PortBars)
	for i, n := range s.msgs {
		if n != 0 {
			s.stats.Count(msgNames[i], n)
			s.msgs[i] = 0
		}
	}
	s.stats.Drop("before_backfill_cut", s.drops.cut)
	s.stats.Drop("malformed", s.drops.malformed)
	s.stats.Count("gaps", s.gaps)
	s.drops.cut, s.drops.malformed, s.gaps = 0, 0, 0
	s.stats.Count("pacing_waits", atomic.SwapInt64(&s.pacer.waitsOut, 0))
	s.stats.Count("pacing_wait_ms", atomic.SwapInt64(&s.pacer.waitedMsOut, 0))
	return s.fatal
}

func (s *Source) discard() {
	for _, b := range []*md.Batch{s.tb, s.qb, s.bb} {
		b.Release()
	}
	s.tb, s.qb, s.bb = nil, nil, nil
}

// tickPrice handles reqMktData prices: bid and ask (live or delayed) move
// the contract's top of book and emit a quote stamped with the receipt
// time (reqMktData carries no exchange time). -1 means "no bid/ask now".
func (s *Source) tickPrice(m *tws.Message) {
	sb := s.subFor(m.ReqID)
	if sb == nil || sb.kind != subMktData {
		return
	}
	ct := sb.ct
	p := m.Price
	if p < 0 {
		p = 0
	}
	switch m.TickType {
	case tws.TickTypeBid, tws.TickTypeDelayedBid:
		ct.bid, ct.bidSize = p, m.Size
	case tws.TickTypeAsk, tws.TickTypeDelayedAsk:
		ct.ask, ct.askSize = p, m.Size
	default:
		return
	}
	s.topOfBook(ct)
}

func (s *Source) tickSize(m *tws.Message) {
	sb := s.subFor(m.ReqID)
	if sb == nil || sb.kind != subMktData {
		return
	}
	ct := sb.ct
	switch m.TickType {
	case tws.TickTypeBidSize, tws.TickTypeDelayedBidSize:
		if ct.bidSize == m.Size {
			return
		}
		ct.bidSize = m.Size
	case tws.TickTypeAskSize, tws.TickTypeDelayedAskSize:
		if ct.askSize == m.Size {
			return
		}
		ct.askSize = m.Size
	default:
		return
	}
	s.topOfBook(ct)
}

func (s *Source) topOfBook(ct *cstate) {
	if ct.bid <= 0 || ct.ask <= 0 {
		return
	}
	if s.recv < ct.cut.Load() {
		s.drops.cut++
		return
	}
	s.quote(ct, md.Quote{TS: s.recv, Bid: ct.bid, Ask: ct.ask, BidSize: ct.bidSize, AskSize: ct.askSize})
}

// rtVolume reads an RT_VOLUME tick, "price;size;epochMs;totalVolume;VWAP;single",
// as a trade with a millisecond exchange time. An empty price is a volume
// correction, not a trade.
func (s *Source) rtVolume(m *tws.Message) {
	sb := s.subFor(m.ReqID)
	if sb == nil || sb.kind != subMktData {
		return
	}
	v := m.Text
	var f [3][]byte
	for i := range f {
		j := bytes.IndexByte(v, ';')
		if j < 0 {
			if i < 2 {
				s.drops.malformed++
				return
			}
			j = len(v)
		}
		f[i], v = v[:j], v[min(j+1, len(v)):]
	}
	if len(f[0]) == 0 {
		return
	}
	price, ok1 := tsparse.ParseFloat(f[0])
	size, ok2 := tsparse.ParseFloat(f[1])
	ms, ok3 := tsparse.ParseInt(f[2])
	if !ok1 || !ok2 || !ok3 || ms <= 0 || ms > math.MaxInt64/1_000_000 {
		s.drops.malformed++
		return
	}
	ts := ms * 1e6
	if ts < sb.ct.cut.Load() {
		s.drops.cut++
		return
	}
	s.trade(sb.ct, md.Trade{TS: ts, Price: price, Size: size}, tsparse.Decimals(f[1]))
}

// historical emits a backfill reply's bars.
func (s *Source) historical(m *tws.Message) {
	s.histMu.Lock()
	hw := s.histReq[m.ReqID]
	s.histMu.Unlock()
	if hw == nil {
		return
	}
	ct := hw.ct
	iv := int64(s.cfg.backfill.interval)
	cut := ct.cut.Load()
	for i := range m.Bars {
		b := &m.Bars[i]
		t, ok := tws.HistoricalTime(b.Date)
		if !ok || t > math.MaxInt64/1_000_000_000 || t < 0 {
			s.drops.malformed++
			continue
		}
		start := t * 1e9
		if cut != 0 && start+iv > cut {
			// Only bars that ended before the cut: the live stream owns
			// the rest.
			continue
		}
		s.bar(ct, start, iv, s.cfg.backfill.source, b)
		hw.n++
	}
	if s.sv < 196 {
		s.histDone(m.ReqID)
	}
}

func (s *Source) histDone(reqID int64) {
	s.histMu.Lock()
	hw := s.histReq[reqID]
	delete(s.histReq, reqID)
	s.histMu.Unlock()
	if hw != nil {
		s.stats.Count("backfill_bars", int64(hw.n))
		close(hw.done)
	}
}

// onError acts on an ERR_MSG per its code.
func (s *Source) onError(m *tws.Message) {
	s.histMu.Lock()
	hw := s.histReq[m.ReqID]
	s.histMu.Unlock()
	if hw != nil {
		e := classify(m.Code, true, false)
		if e.class == classInfo || e.class == classWarning || e.class == classAdvisory {
			s.log.Info("ibkr: notice on a backfill request", "contract", hw.ct.name, "code", m.Code, "message", string(m.Text))
			return
		}
		s.stats.Error("backfill", fmt.Sprintf("backfill of %s: IB error %d: %s", hw.ct.name, m.Code, m.Text))
		s.log.Error("ibkr: backfill request failed; the contract streams live without it", "contract", hw.ct.name, "code", m.Code, "meaning", e.what, "message", string(m.Text))
		s.histDone(m.ReqID)
		return
	}
	sb := s.subFor(m.ReqID)
	if sb == nil {
		s.onConnError(m)
		return
	}
	e := classify(m.Code, true, sb.kind == subMktData)
	text := string(m.Text)
	attrs := []any{"contract", sb.ct.name, "stream", sb.kind.String(), "code", m.Code, "meaning", e.what, "message", text}
	switch e.class {
	case classConfig:
		s.fatal = fmt.Errorf("ibkr: contract %s (%s): IB error %d, %s: %s", sb.ct.name, sb.kind, m.Code, e.what, text)
	case classUnavailable:
		msg := fmt.Sprintf("contract %s (%s): IB error %d, %s: %s", sb.ct.name, sb.kind, m.Code, e.what, text)
		if !s.cfg.skip {
			s.fatal = fmt.Errorf("ibkr: %s (on_unavailable: skip would go on without it)", msg)
			return
		}
		if sb.ended.Swap(true) {
			return
		}
		s.active.Add(-1)
		s.stats.Error("entitlement", msg)
		s.stats.Count("subscriptions_skipped", 1)
		s.log.Error("ibkr: subscription refused; skipping it (on_unavailable: skip)", attrs...)
		for _, o := range s.subs {
			if !o.ended.Load() {
				return
			}
		}
		s.fatal = errors.New("ibkr: IB refused every subscription; nothing left to stream (last: " + msg + ")")
	case classAdvisory:
		s.stats.Count("entitlement_notices", 1)
		s.log.Warn("ibkr: market data entitlement notice; data still flows", attrs...)
	case classResubscribe:
		s.log.Warn("ibkr: re-requesting the subscription", attrs...)
		select {
		case s.resubOne <- sb.reqID:
		default:
		}
	case classIgnore, classInfo:
		s.log.Debug("ibkr: notice", attrs...)
	default:
		s.stats.Count("ib_warnings", 1)
		s.log.Warn("ibkr: warning", attrs...)
	}
}

// onConnError handles errors that name no subscription.
func (s *Source) onConnError(m *tws.Message) {
	e := classify(m.Code, false, false)
	text := string(m.Text)
	attrs := []any{"code", m.Code, "meaning", e.what, "message", text}
	switch e.class {
	case classConnLost:
		s.ibLost = true
		s.setState(stateIBLost)
		s.openGaps()
		s.stats.Error("ib_connectivity", fmt.Sprintf("IB error %d: %s", m.Code, text))
		s.log.Warn("ibkr: TWS lost its connection to IB; waiting for it to come back", attrs...)
	case classRestoredLost:
		s.ibLost = false
		s.setState(stateConnected)
		s.log.Warn("ibkr: IB connectivity restored with data lost; re-subscribing everything", attrs...)
		select {
		case s.resub <- struct{}{}:
		default:
		}
	case classRestoredKept:
		// The subscriptions survived, but what IB sent while TWS was cut
		// off is not replayed: the gap closes at the next record.
		s.ibLost = false
		s.setState(stateConnected)
		s.log.Info("ibkr: IB connectivity restored, subscriptions maintained; the gap closes at the next record", attrs...)
	case classFarm:
		s.stats.Error("ib_connectivity", fmt.Sprintf("IB error %d: %s", m.Code, text))
		s.log.Warn("ibkr: data farm connection broken", attrs...)
	case classReconnect:
		s.log.Warn("ibkr: reconnecting", attrs...)
		if s.conn != nil {
			s.conn.Close()
		}
	case classInfo, classIgnore:
		s.log.Info("ibkr: notice", attrs...)
	default:
		s.stats.Count("ib_warnings", 1)
		s.log.Warn("ibkr: TWS error", attrs...)
	}
}

// requester sends the session's requests, paced: the market data type,
// every live subscription, then (once per source) the backfill; then it
// re-subscribes on 1101 and 10225.
func (s *Source) requester(ctx context.Context, conn *tws.Conn, first bool) error {
	if s.cfg.mdType != 1 {
		for _, sb := range s.subs {
			if sb.kind == subMktData {
				if err := s.pacer.message(ctx); err != nil {
					return err
				}
				if err := conn.ReqMarketDataType(s.cfg.mdType); err != nil {
					return err
				}
				break
			}
		}
	}
	if err := s.subscribeAll(ctx, conn, first); err != nil {
		return err
	}
	if s.cfg.backfill != nil {
		if err := s.runBackfill(ctx, conn); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.resub:
			// 1101: TWS lost the subscriptions; cancelling first is harmless
			// (an unknown id gives 300, which is ignored).
			for _, sb := range s.subs {
				if !sb.ended.Load() {
					if err := s.cancel(ctx, conn, sb); err != nil {
						return err
					}
					s.active.Add(-1)
				}
			}
			if err := s.subscribeAll(ctx, conn, false); err != nil {
				return err
			}
		case id := <-s.resubOne:
			sb := s.subFor(id)
			if sb == nil || sb.ended.Load() {
				continue
			}
			if err := s.cancel(ctx, conn, sb); err != nil {
				return err
			}
			if err := s.subscribe(ctx, conn, sb); err != nil {
				return err
			}
			s.stats.Count("resubscriptions", 1)
		}
	}
}

func (s *Source) subscribeAll(ctx context.Context, conn *tws.Conn, first bool) error {
	for _, sb := range s.subs {
		if sb.ended.Load() {
			continue
		}
		if s.cfg.backfill != nil && sb.ct.cut.Load() == 0 {
			iv := s.cfg.backfill.interval
			now := s.clk.Now()
			cut := now.Truncate(iv)
			if cut.Before(now) {
				cut = cut.Add(iv)
			}
			sb.ct.cut.Store(cut.UnixNano())
		}
		if err := s.subscribe(ctx, conn, sb); err != nil {
			return err
		}
		s.active.Add(1)
		if first {
			s.stats.Count("subscriptions", 1)
		} else {
			s.stats.Count("resubscriptions", 1)
		}
	}
	return nil
}

func (s *Source) subscribe(ctx context.Context, conn *tws.Conn, sb *sub) error {
	c := &sb.ct.c
	switch sb.kind {
	case subTrades, subQuotes:
		tt := sb.ct.trades
		if sb.kind == subQuotes {
			tt = tws.TickBidAsk
		}
		if err := s.pacer.tickByTick(ctx, sb.ct.name+"/"+tt); err != nil {
			return err
		}
		return conn.ReqTickByTickData(sb.reqID, c, tt, sb.kind == subQuotes)
	case subBars:
		if err := s.pacer.historical(ctx, "", ""); err != nil {
			return err
		}
		what := "TRADES"
		if realTimeSource(sb.ct) == md.FromMid {
			what = "MIDPOINT"
		}
		return conn.ReqRealTimeBars(sb.reqID, c, what, false)
	default:
		if err := s.pacer.message(ctx); err != nil {
			return err
		}
		// RT_VOLUME (generic tick 233) gives trades with millisecond
		// times; delayed data allows no such generic tick.
		generic := "233"
		if s.cfg.mdType >= 3 {
			generic = ""
		}
		return conn.ReqMktData(sb.reqID, c, generic)
	}
}

// realTimeSource is what a contract's 5-second bars are built from: IB's
// TRADES, or MIDPOINT for forex, which has no trades.
func realTimeSource(ct *cstate) md.BarSource {
	if ct.c.SecType == "CASH" {
		return md.FromMid
	}
	return md.FromTrades
}

func (s *Source) cancel(ctx context.Context, conn *tws.Conn, sb *sub) error {
	if err := s.pacer.message(ctx); err != nil {
		return err
	}
	switch sb.kind {
	case subTrades, subQuotes:
		return conn.CancelTickByTickData(sb.reqID)
	case subBars:
		return conn.CancelRealTimeBars(sb.reqID)
	}
	return conn.CancelMktData(sb.reqID)
}

// waitIBPast waits until IB's own clock (asked with reqCurrentTime) has
// passed t, so a local clock running ahead of IB's cannot ask for a bar IB
// has not closed. Without an answer within ibTimeWait it goes on with the
// local clock.
func (s *Source) waitIBPast(ctx context.Context, conn *tws.Conn, t time.Time) error {
	for range 10 {
		select {
		case <-s.timeReply: // drop a stale signal
		default:
		}
		if err := s.pacer.message(ctx); err != nil {
			return err
		}
		if err := conn.ReqCurrentTime(); err != nil {
			return err
		}
		timer := time.NewTimer(ibTimeWait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
			s.log.Warn("ibkr: no reply to reqCurrentTime; the backfill goes by the local clock")
			return nil
		case <-s.timeReply:
			timer.Stop()
		}
		behind := t.Sub(time.Unix(s.ibTime.Load(), 0))
		if behind <= 0 {
			return nil
		}
		s.log.Info("ibkr: IB's clock is behind the local clock; the backfill waits for it", "behind", behind)
		if err := s.clk.Sleep(ctx, behind); err != nil {
			return err
		}
	}
	return nil
}

// runBackfill requests each contract's historical bars up to its cut, one
// request at a time inside the pacing limits, waiting for each reply.
func (s *Source) runBackfill(ctx context.Context, conn *tws.Conn) error {
	bf := s.cfg.backfill
	for _, ct := range s.cts {
		if ct.backfilled {
			continue
		}
		live := false
		for _, sb := range s.subs {
			live = live || (sb.ct == ct && !sb.ended.Load())
		}
		if !live {
			ct.backfilled = true
			continue
		}
		cut := time.Unix(0, ct.cut.Load())
		if err := s.pacer.waitUntil(ctx, cut.Add(settle)); err != nil {
			return err
		}
		if err := s.waitIBPast(ctx, conn, cut.Add(settle)); err != nil {
			return err
		}
		h := &tws.HistoricalRequest{EndDateTime: cut.UTC().Format("20060102-15:04:05"), Duration: bf.duration,
			BarSize: bf.barSize, WhatToShow: bf.what, UseRTH: bf.useRTH, FormatDate: 2}
		key := ct.name + "/" + bf.what
		if err := s.pacer.historical(ctx, key, fmt.Sprint(key, h)); err != nil {
			return err
		}
		id := histBase + s.histNext.Add(1)
		hw := &histWait{ct: ct, done: make(chan struct{})}
		s.histMu.Lock()
		s.histReq[id] = hw
		s.histMu.Unlock()
		if err := conn.ReqHistoricalData(id, &ct.c, h); err != nil {
			return err
		}
		t := time.NewTimer(histTimeout)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-hw.done:
			t.Stop()
		case <-t.C:
			s.histMu.Lock()
			delete(s.histReq, id)
			s.histMu.Unlock()
			s.stats.Error("backfill", "no reply to the historical request for "+ct.name+" within "+histTimeout.String())
			s.log.Error("ibkr: backfill request timed out", "contract", ct.name)
		}
		ct.backfilled = true
	}
	return nil
}
