// Package buffer is the operator.buffer component, also what a classic
// job's batcher compiles to: it gathers the records it receives into larger
// batches and emits one when it holds max_rows rows, max_bytes bytes, or its
// oldest record has waited flush_interval (a wall-clock timer, so a lone bar
// is emitted within flush_interval even if nothing else arrives). The final
// watermark and Close emit everything still held.
//
// drop_policy says what happens when the buffer's output cannot keep up:
//
//   - block (default): emitting waits for room downstream, so backpressure
//     reaches the sources and nothing is dropped.
//   - drop_oldest / drop_newest: the buffer never waits on a full downstream
//     queue. Batches that cannot be sent are held, up to max_pending_rows
//     rows in all; beyond that, drop_oldest discards the oldest held batch
//     and drop_newest discards the incoming rows that do not fit. Every
//     dropped row is counted under the node's drops as buffer_full_oldest or
//     buffer_full_newest. Held batches are sent as soon as there is room (on
//     the next input or timer tick).
//
// Records keep their order. A batch of a different kind than the one being
// gathered closes the current batch first. While it holds records the
// buffer holds back the watermark it forwards, so no downstream window sees
// the watermark pass records still in the buffer.
package buffer

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

func init() {
	component.Register(component.Spec{
		Type: "operator.buffer", Kind: engine.KindOperator,
		Summary: "Gather records into batches by rows, bytes or time; block or drop (counted) when the output lags.",
		Description: "Emits a batch when it holds max_rows rows or max_bytes bytes, or when its oldest record has waited " +
			"flush_interval (a wall-clock timer). drop_policy block waits for the downstream queue; drop_oldest and " +
			"drop_newest never wait and hold at most max_pending_rows rows, dropping (and counting) the oldest held batch " +
			"or the newest rows beyond that. Everything held is emitted at end of stream.",
		Accepts: md.KindAny, Produces: engine.SameAsInput,
		Fields: []component.Field{
			{Name: "max_rows", Type: component.Int, Default: 1000, Min: component.Bound(1), Max: component.Bound(md.MaxBatchSize), Description: "Emit when this many rows are gathered."},
			{Name: "max_bytes", Type: component.Int, Default: 1048576, Min: component.Bound(1), Max: component.Bound(1 << 30),
				Description: "Emit when the gathered records take this many bytes (in-memory size per record: trade 56, quote 64, bar 88)."},
			{Name: "flush_interval", Type: component.Duration, Default: "100ms", Min: component.Bound(0.001),
				Description: "Emit when the oldest gathered record has waited this long, even if nothing else arrives."},
			{Name: "drop_policy", Type: component.String, Default: "block", Enum: []string{"block", "drop_oldest", "drop_newest"},
				Description: "What to do when the output lags: block (backpressure), drop_oldest or drop_newest (counted)."},
			{Name: "max_pending_rows", Type: component.Int, Default: 100000, Min: component.Bound(1), Max: component.Bound(1 << 24),
				Description: "With a drop policy: most rows held while the output lags. Must be at least max_rows."},
		},
		Validate: func(p *component.Params) error {
			if p.String("drop_policy") != "block" && p.Int("max_pending_rows") < p.Int("max_rows") {
				return p.Errorf("max_pending_rows", "max_pending_rows (%d) must be at least max_rows (%d)", p.Int("max_pending_rows"), p.Int("max_rows"))
			}
			return nil
		},
		NewProcessor: func(p *component.Params, instance int) (engine.Processor, error) {
			pol, ok := engine.ParsePolicy(p.String("drop_policy"))
			if !ok {
				return nil, errors.New("unknown drop_policy " + p.String("drop_policy"))
			}
			return New(Config{MaxRows: int(p.Int("max_rows")), MaxBytes: int(p.Int("max_bytes")),
				FlushInterval: p.Duration("flush_interval"), Policy: pol, MaxPendingRows: int(p.Int("max_pending_rows"))}), nil
		},
	})
}

// Config is the buffer's settings.
type Config struct {
	MaxRows        int
	MaxBytes       int
	FlushInterval  time.Duration
	Policy         engine.Policy
	MaxPendingRows int
}

// Record sizes used for max_bytes.
const (
	tradeBytes = int(unsafe.Sizeof(md.Trade{}))
	quoteBytes = int(unsafe.Sizeof(md.Quote{}))
	barBytes   = int(unsafe.Sizeof(md.Bar{}))
)

// Buffer is the operator.
type Buffer struct {
	cfg   Config
	tick  time.Duration
	nc    *engine.NodeContext
	cur   *md.Batch // being gathered
	curAt time.Time // arrival of cur's first record
	ready []*md.Batch
	// readyRows counts rows in ready; held is readyRows + cur.Len().
	readyRows int
	inWM      int64 // input watermark
	holdWM    int64 // watermark when the oldest held record arrived
}

// New returns a buffer.
func New(cfg Config) *Buffer {
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 1000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.MaxPendingRows < cfg.MaxRows {
		cfg.MaxPendingRows = cfg.MaxRows
	}
	// Ticking at a quarter of the interval and emitting once the oldest
	// record is within one tick of its deadline keeps every record's wait
	// below flush_interval.
	tick := max(cfg.FlushInterval/4, time.Millisecond)
	return &Buffer{cfg: cfg, tick: tick, inWM: md.MinTime, holdWM: md.MinTime}
}

// Open keeps the node context (for counting drops).
func (bf *Buffer) Open(ctx context.Context, nc *engine.NodeContext) error {
	bf.nc = nc
	return nil
}

func rowBytes(k md.Kind) int {
	switch k {
	case md.KindTrade:
		return tradeBytes
	case md.KindQuote:
		return quoteBytes
	}
	return barBytes
}

// limit is the most rows one emitted batch of kind k holds.
func (bf *Buffer) limit(k md.Kind) int {
	return max(1, min(bf.cfg.MaxRows, bf.cfg.MaxBytes/rowBytes(k)))
}

func (bf *Buffer) held() int {
	n := bf.readyRows
	if bf.cur != nil {
		n += bf.cur.Len()
	}
	return n
}

// Process gathers b's records.
func (bf *Buffer) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	if bf.held() == 0 {
		bf.holdWM = bf.inWM
	}
	if bf.cur != nil && bf.cur.Kind != b.Kind {
		bf.seal()
	}
	limit := bf.limit(b.Kind)
	// A batch that is already big enough passes through whole, uncopied.
	if bf.cur == nil && len(bf.ready) == 0 && n >= limit && (bf.cfg.Policy == engine.Block || !out.Blocked(engine.PortMain)) {
		b.Retain(1)
		return out.Emit(b)
	}
	from := 0
	if bf.cfg.Policy == engine.DropNewest {
		if room := bf.cfg.MaxPendingRows - bf.held(); n > room {
			bf.drop("buffer_full_newest", int64(n-max(room, 0)))
			n = max(room, 0)
		}
	}
	for from < n {
		if bf.cur == nil {
			bf.cur = bf.newBatch(b.Kind, limit)
			bf.curAt = time.Now()
		}
		k := min(n-from, limit-bf.cur.Len())
		switch b.Kind {
		case md.KindTrade:
			bf.cur.Trades = append(bf.cur.Trades, b.Trades[from:from+k]...)
		case md.KindQuote:
			bf.cur.Quotes = append(bf.cur.Quotes, b.Quotes[from:from+k]...)
		case md.KindBar:
			bf.cur.Bars = append(bf.cur.Bars, b.Bars[from:from+k]...)
		}
		from += k
		if bf.cur.Len() >= limit {
			bf.seal()
			if bf.cfg.Policy == engine.Block {
				if err := bf.send(out, true); err != nil {
					return err
				}
			}
		}
	}
	if bf.cfg.Policy == engine.DropOldest {
		for bf.held() > bf.cfg.MaxPendingRows && len(bf.ready) > 0 {
			old := bf.ready[0]
			bf.ready[0] = nil
			bf.ready = bf.ready[1:]
			bf.readyRows -= old.Len()
			bf.drop("buffer_full_oldest", int64(old.Len()))
			old.Release()
		}
	}
	return bf.send(out, bf.cfg.Policy == engine.Block)
}

// newBatch returns a pooled batch with room for limit records, so gathering
// never regrows it.
func (bf *Buffer) newBatch(k md.Kind, limit int) *md.Batch { return bf.nc.Pool.GetCap(k, limit) }

func (bf *Buffer) drop(reason string, n int64) {
	if n > 0 && bf.nc != nil && bf.nc.Stats != nil {
		bf.nc.Stats.Drop(reason, n)
	}
}

// seal moves the batch being gathered to the ready list.
func (bf *Buffer) seal() {
	if bf.cur == nil {
		return
	}
	bf.ready = append(bf.ready, bf.cur)
	bf.readyRows += bf.cur.Len()
	bf.cur = nil
}

// send emits ready batches: all of them when wait is set, otherwise only
// while the output has room.
func (bf *Buffer) send(out *engine.Output, wait bool) error {
	i := 0
	for ; i < len(bf.ready); i++ {
		if !wait && out.Blocked(engine.PortMain) {
			break
		}
		b := bf.ready[i]
		bf.ready[i] = nil
		bf.readyRows -= b.Len()
		if err := out.Emit(b); err != nil {
			for _, r := range bf.ready[i+1:] {
				r.Release()
			}
			bf.ready, bf.readyRows = bf.ready[:0], 0
			return err
		}
	}
	n := copy(bf.ready, bf.ready[i:])
	clear(bf.ready[n:])
	bf.ready = bf.ready[:n]
	return nil
}

// DecoupledOutput keeps the buffer's output a queue under a drop policy:
// it drops when that queue is full (engine.Decoupler), which an output
// chained to its receiver never is.
func (bf *Buffer) DecoupledOutput() bool { return bf.cfg.Policy != engine.Block }

// TimerInterval is a quarter of flush_interval.
func (bf *Buffer) TimerInterval() time.Duration { return bf.tick }

// OnTimer emits the gathered batch once its oldest record is due, and
// retries held batches.
func (bf *Buffer) OnTimer(ctx context.Context, now time.Time, out *engine.Output) error {
	if bf.cur != nil && now.Sub(bf.curAt) >= bf.cfg.FlushInterval-bf.tick {
		bf.seal()
	}
	return bf.send(out, bf.cfg.Policy == engine.Block)
}

// OnWatermark tracks the input watermark; the final one emits everything.
func (bf *Buffer) OnWatermark(ctx context.Context, wm int64, out *engine.Output) error {
	bf.inWM = wm
	if wm == md.MaxTime {
		bf.seal()
		return bf.send(out, true)
	}
	return nil
}

// OutputWatermark holds the watermark back to what it was when the oldest
// held record arrived.
func (bf *Buffer) OutputWatermark(wm int64) int64 {
	if bf.held() == 0 {
		return wm
	}
	return min(wm, bf.holdWM)
}

// OnBarrier implements engine.BarrierHandler: everything held is emitted
// ahead of a checkpoint barrier, so a checkpoint never holds records that
// only this buffer had.
func (bf *Buffer) OnBarrier(ctx context.Context, out *engine.Output) error {
	bf.seal()
	return bf.send(out, true)
}

// Close emits everything still held.
func (bf *Buffer) Close(ctx context.Context, out *engine.Output) error {
	bf.seal()
	return bf.send(out, true)
}
