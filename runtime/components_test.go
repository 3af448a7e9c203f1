package runtime_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// The runtime tests register their own components, so they do not depend on
// the built-in ones other packages provide.

// baseTS is the event time of the first test trade.
const baseTS = int64(1_700_000_000) * 1e9

// testSource emits count trades, 1ms of event time apart, in batches; with
// hold it then waits for a stop.
type testSource struct {
	count, batch int
	interval     time.Duration
	hold         bool
	live         bool // Ready only once liveConnected is set
}

// liveConnected stands for a live source's first connection.
var liveConnected atomic.Bool

// Ready implements engine.Readiness.
func (s *testSource) Ready() bool { return !s.live || liveConnected.Load() }

func (s *testSource) Run(ctx context.Context, out *engine.Output) error {
	sym := out.Symbols().Intern("test", "AAA")
	i := 0
	for i < s.count {
		b := out.NewBatch(md.KindTrade)
		for k := 0; k < s.batch && i < s.count; k++ {
			b.Trades = append(b.Trades, md.Trade{TS: baseTS + int64(i)*1e6, Price: 100, Size: 1, Sym: sym})
			i++
		}
		if err := out.Emit(b); err != nil {
			return err
		}
		if s.interval > 0 && i < s.count {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.interval):
			}
		}
	}
	if s.hold {
		<-ctx.Done()
	}
	return nil
}

// sinkState is what a test sink saw, by the sink's name param.
type sinkState struct {
	mu      sync.Mutex
	records int
	batches int
	closed  bool
	// progress is the job's progress mode as the sink's node context saw it.
	progress string
}

func (s *sinkState) snapshot() (records, batches int, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.batches, s.closed
}

var (
	sinksMu sync.Mutex
	sinks   = map[string]*sinkState{}
)

// freshSink gives a newly built sink a clean state, so a test run twice
// (go test -count) starts from zero.
func freshSink(name string) *sinkState {
	sinksMu.Lock()
	defer sinksMu.Unlock()
	s := &sinkState{}
	sinks[name] = s
	return s
}

func sinkNamed(name string) *sinkState {
	sinksMu.Lock()
	defer sinksMu.Unlock()
	s := sinks[name]
	if s == nil {
		s = &sinkState{}
		sinks[name] = s
	}
	return s
}

type testSink struct {
	st        *sinkState
	nc        *engine.NodeContext
	batchesC  *engine.Counter // registered through the node context
	failOn    int
	drop      bool
	block     bool
	closeWait bool
	openErr   string
	password  string
	dsn       string
}

func (s *testSink) Open(ctx context.Context, nc *engine.NodeContext) error {
	s.nc = nc
	s.batchesC = nc.Metrics().Counter("mdp_test_sink_batches_total", "Batches the runtime test sink received.")
	s.st.mu.Lock()
	s.st.progress = nc.Progress.Mode
	s.st.mu.Unlock()
	if s.openErr != "" {
		return fmt.Errorf("%s (dsn %s)", s.openErr, s.dsn)
	}
	return nil
}

func (s *testSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	s.st.mu.Lock()
	s.st.records += b.Len()
	s.st.batches++
	s.batchesC.Inc()
	n := s.st.batches
	s.st.mu.Unlock()
	if s.drop {
		s.nc.Stats.Drop("test_drop", int64(b.Len()))
	}
	if s.failOn > 0 && n == s.failOn {
		return fmt.Errorf("write to %s failed: password %s rejected", s.dsn, s.password)
	}
	return nil
}

func (s *testSink) Close(ctx context.Context, out *engine.Output) error {
	if s.closeWait {
		<-ctx.Done()
		return ctx.Err()
	}
	s.st.mu.Lock()
	s.st.closed = true
	s.st.mu.Unlock()
	return nil
}

func init() {
	component.Register(component.Spec{
		Type: "provider.test_runtime_src", Kind: engine.KindSource, Summary: "runtime test trades", Produces: md.KindTrade,
		Fields: []component.Field{
			{Name: "count", Type: component.Int, Default: 100, Min: component.Bound(0), Description: "trades to emit"},
			{Name: "batch", Type: component.Int, Default: 10, Min: component.Bound(1), Description: "trades per batch"},
			{Name: "interval", Type: component.Duration, Default: "0s", Description: "pause between batches"},
			{Name: "hold", Type: component.Bool, Default: false, Description: "after the last trade, wait for a stop"},
			{Name: "live", Type: component.Bool, Default: false, Description: "not ready until the test sets liveConnected"},
		},
		NewSource: func(p *component.Params, _ int) (engine.Source, error) {
			return &testSource{count: int(p.Int("count")), batch: int(p.Int("batch")), interval: p.Duration("interval"), hold: p.Bool("hold"), live: p.Bool("live")}, nil
		},
	})
	component.Register(component.Spec{
		Type: "sink.test_runtime_sink", Kind: engine.KindSink, Summary: "runtime test sink", Accepts: md.KindAny,
		Fields: []component.Field{
			{Name: "name", Type: component.String, Required: true, Description: "key of the sink's state in the test"},
			{Name: "fail_on", Type: component.Int, Default: 0, Description: "fail on this batch (1-based); 0 never"},
			{Name: "drop", Type: component.Bool, Default: false, Description: "count every record as dropped"},
			{Name: "block", Type: component.Bool, Default: false, Description: "block in Process until aborted"},
			{Name: "close_wait", Type: component.Bool, Default: false, Description: "block in Close until aborted"},
			{Name: "open_error", Type: component.String, Description: "fail Open with this message"},
			{Name: "password", Type: component.String, Secret: true, Description: "a secret"},
			{Name: "dsn", Type: component.String, Description: "a DSN that may hold a password"},
		},
		NewProcessor: func(p *component.Params, _ int) (engine.Processor, error) {
			return &testSink{
				st: freshSink(p.String("name")), failOn: int(p.Int("fail_on")), drop: p.Bool("drop"), block: p.Bool("block"),
				closeWait: p.Bool("close_wait"), openErr: p.String("open_error"), password: p.String("password"), dsn: p.String("dsn"),
			}, nil
		},
	})
}
