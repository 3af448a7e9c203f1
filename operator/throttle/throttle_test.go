package throttle_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
	"github.com/mdpio/mdp/operator/throttle"
)

// With a rate of one token an hour only the burst passes, per symbol, the
// same at any parallelism.
func TestDropKeepsTheBurstPerSymbol(t *testing.T) {
	in := enginetest.Trades(500, 10, 1)
	for _, par := range []int{1, 4} {
		res := optest.Run(t, optest.Job{Src: &enginetest.Source{Symbols: enginetest.Symbols(10), Trades: in, BatchSize: 7},
			Type: throttle.Type, Params: map[string]any{"rate": 1.0 / 3600, "burst": 3}, Parallelism: par})
		var got []int64
		for _, tr := range res.Ports[""].Trades {
			got = append(got, tr.TS)
		}
		slices.Sort(got)
		want := []int64{}
		for i := 0; i < 30; i++ {
			want = append(want, int64(i+1))
		}
		if !slices.Equal(got, want) || res.Drops["throttled"] != 470 {
			t.Fatalf("parallelism %d: passed %v, drops %v", par, got, res.Drops)
		}
	}
}

type clock struct{ now int64 }

func (c *clock) Now() int64 { return c.now }

func batch(ts ...md.Trade) *md.Batch {
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	return b
}

func tss(bs []*md.Batch) []int64 {
	var out []int64
	for _, b := range bs {
		for _, t := range b.Trades {
			out = append(out, t.TS)
		}
		b.Release()
	}
	return out
}

// Conflate: 2 tokens a second, burst 1. Records without a token wait as
// their symbol's latest and go out when the token frees, on the timer.
func TestConflateEmitsTheLatestWhenATokenFrees(t *testing.T) {
	c := &clock{now: 1e9}
	th := throttle.New(throttle.Config{Rate: 2, Burst: 1, Conflate: true, Now: c.Now})
	out := enginetest.NewOutput(nil, 0)
	ctx := t.Context()
	if err := th.Open(ctx, out.NC); err != nil {
		t.Fatal(err)
	}
	a, b := md.SymID(0), md.SymID(1)
	_ = th.Process(ctx, batch(md.Trade{TS: 1, Sym: a}, md.Trade{TS: 2, Sym: a}, md.Trade{TS: 3, Sym: a}, md.Trade{TS: 4, Sym: b}), out.Output)
	if got := tss(out.Drain("")); !slices.Equal(got, []int64{1, 4}) {
		t.Fatalf("at once: %v, want [1 4]", got)
	}
	if wm := th.OutputWatermark(100); wm != 3 {
		t.Fatalf("watermark held at %d, want 3 (the pending record)", wm)
	}
	c.now += 400e6 // 0.4s: 0.8 token
	_ = th.OnTimer(ctx, time.Time{}, out.Output)
	if got := tss(out.Drain("")); len(got) != 0 {
		t.Fatalf("before the token: %v", got)
	}
	c.now += 100e6 // 0.5s: a token
	_ = th.OnTimer(ctx, time.Time{}, out.Output)
	if got := tss(out.Drain("")); !slices.Equal(got, []int64{3}) {
		t.Fatalf("when the token frees: %v, want [3] (2 conflated)", got)
	}
	if d := out.NC.Stats.Drops()["conflated"]; d != 1 {
		t.Fatalf("conflated %d, want 1", d)
	}
	// A record pending at end of stream is emitted by the final watermark.
	_ = th.Process(ctx, batch(md.Trade{TS: 5, Sym: a}, md.Trade{TS: 6, Sym: a}), out.Output)
	_ = th.OnWatermark(ctx, md.MaxTime, out.Output)
	if got := tss(out.Drain("")); !slices.Equal(got, []int64{6}) {
		t.Fatalf("end of stream: %v, want [6]", got)
	}
}

func TestGlobalBucket(t *testing.T) {
	c := &clock{now: 1e9}
	th := throttle.New(throttle.Config{Rate: 1, Burst: 2, Global: true, Now: c.Now})
	out := enginetest.NewOutput(nil, 0)
	_ = th.Open(t.Context(), out.NC)
	_ = th.Process(t.Context(), batch(md.Trade{TS: 1, Sym: 0}, md.Trade{TS: 2, Sym: 1}, md.Trade{TS: 3, Sym: 2}), out.Output)
	if got := tss(out.Drain("")); !slices.Equal(got, []int64{1, 2}) || out.NC.Stats.Drops()["throttled"] != 1 {
		t.Fatalf("global: %v, drops %v", got, out.NC.Stats.Drops())
	}
}

func TestThrottleBadParams(t *testing.T) {
	for _, tc := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{}, `missing required param "rate"`},
		{map[string]any{"rate": 0}, "rate"},
		{map[string]any{"rate": 1, "burst": 0}, "burst"},
		{map[string]any{"rate": 1, "mode": "sample"}, "mode"},
		{map[string]any{"rate": 1, "per": "venue"}, "per"},
	} {
		if err := optest.Params(throttle.Type, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.p, err, tc.want)
		}
	}
}

func BenchmarkThrottleConflate(b *testing.B) {
	st := md.NewSymbolTable()
	for _, n := range enginetest.Symbols(64) {
		st.Intern("test", n)
	}
	c := &clock{now: 1e9}
	th := throttle.New(throttle.Config{Rate: 1000, Burst: 10, Conflate: true, Now: c.Now})
	out := enginetest.NewOutput(&engine.NodeContext{Symbols: st}, 0)
	_ = th.Open(b.Context(), out.NC)
	bt := batch(enginetest.Trades(1024, 64, 0)...)
	run := func() {
		c.now += 1e6
		_ = th.Process(b.Context(), bt, out.Output)
		_ = th.OnTimer(b.Context(), time.Time{}, out.Output)
		for _, o := range out.Drain("") {
			o.Release()
		}
	}
	for i := 0; i < 100; i++ {
		run()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := optest.CPUTime()
	for i := 0; i < b.N; i++ {
		run()
	}
	optest.ReportPerRecord(b, 1024, cpu0)
}
