package resample

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/quick"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/bars"
	"github.com/mdpio/mdp/operator/internal/optest"
)

const (
	t0  = int64(1704205800) * int64(time.Second) // 2024-01-02T14:30:00Z
	sec = int64(time.Second)
	ms  = int64(time.Millisecond)
)

type node interface {
	engine.Processor
	engine.WatermarkHandler
	engine.WatermarkHolder
	engine.Opener
}

// stage is one operator driven directly on its own output.
type stage struct {
	n  node
	to *enginetest.Output
}

func newStage(t *testing.T, typ string, params map[string]any, syms *md.SymbolTable) *stage {
	t.Helper()
	spec, _ := component.Lookup(typ)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatalf("%s params: %v", typ, err)
	}
	impl, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &stage{n: impl.(node), to: enginetest.NewOutput(&engine.NodeContext{Symbols: syms}, 0, engine.PortLate)}
	if err := s.n.Open(context.Background(), s.to.NC); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stage) feed(t *testing.T, b *md.Batch) {
	t.Helper()
	if err := s.n.Process(context.Background(), b, s.to.Output); err != nil {
		t.Fatal(err)
	}
}

// wm advances the stage's watermark and returns what it forwards.
func (s *stage) wm(t *testing.T, w int64) int64 {
	t.Helper()
	if err := s.n.OnWatermark(context.Background(), w, s.to.Output); err != nil {
		t.Fatal(err)
	}
	return s.n.OutputWatermark(w)
}

func (s *stage) bars() []md.Bar {
	var out []md.Bar
	for _, b := range s.to.Drain(engine.PortMain) {
		out = append(out, b.Bars...)
		b.Release()
	}
	return out
}

// randomTrades: n trades over 3 symbols spread over span, each up to
// disorder behind the newest; prices in cents, sizes in thousandths.
func randomTrades(seed uint64, n int, span, disorder int64) []md.Trade {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]md.Trade, n)
	base := t0
	step := span / int64(n)
	for i := range out {
		base += rng.Int64N(2*step + 1)
		out[i] = md.Trade{Sym: md.SymID(rng.IntN(3)), TS: base - rng.Int64N(disorder+1),
			Price: float64(9000+rng.IntN(2000)) / 100, Size: float64(1+rng.IntN(5000)) / 1000}
	}
	return out
}

func newSyms() *md.SymbolTable {
	syms := md.NewSymbolTable()
	for _, s := range []string{"A", "B", "C"} {
		id := syms.Intern("test", s)
		syms.NoteSizeDecimals(id, 3)
	}
	return syms
}

// pipeline drives trades through operator.bars (fine) and resample_ohlc
// (coarse) in random batches with the watermark at the newest time minus
// disorder, and returns the coarse bars in order of start, then symbol.
func pipeline(t *testing.T, trades []md.Trade, fine string, params map[string]any, disorder int64, seed uint64) []md.Bar {
	syms := newSyms()
	b := newStage(t, bars.Type, map[string]any{"interval": fine}, syms)
	r := newStage(t, Type, params, syms)
	rng := rand.New(rand.NewPCG(seed, 2))
	newest := md.MinTime
	var got []md.Bar
	step := func(w int64) {
		fw := b.wm(t, w)
		if fb := b.bars(); len(fb) > 0 {
			x := md.NewBatch(md.KindBar)
			x.Bars = fb
			r.feed(t, x)
		}
		r.wm(t, fw)
		got = append(got, r.bars()...)
	}
	for i := 0; i < len(trades); {
		n := 1 + rng.IntN(50)
		x := md.NewBatch(md.KindTrade)
		x.Trades = trades[i:min(i+n, len(trades))]
		for _, tr := range x.Trades {
			newest = max(newest, tr.TS)
		}
		b.feed(t, x)
		step(newest - disorder)
		i += n
	}
	step(md.MaxTime)
	sortBars(got)
	return got
}

func sortBars(bs []md.Bar) {
	slices.SortStableFunc(bs, func(a, b md.Bar) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Sym, b.Sym)
	})
}

// direct builds the coarse bars from the trades themselves: per symbol and
// bucket, open and close by event time (ties in arrival order), the sums.
func direct(r *Resample, trades []md.Trade) []md.Bar {
	type key struct {
		sym   md.SymID
		start int64
	}
	groups := map[key][]md.Trade{}
	ends := map[key]int64{}
	for _, tr := range trades {
		s, e := r.Bucket(tr.TS)
		k := key{tr.Sym, s}
		groups[k] = append(groups[k], tr)
		ends[k] = e
	}
	var out []md.Bar
	for k, ts := range groups {
		sorted := slices.Clone(ts)
		slices.SortStableFunc(sorted, func(a, b md.Trade) int { return cmp.Compare(a.TS, b.TS) })
		b := md.Bar{Start: k.start, End: ends[k], Interval: r.cfg.Interval, Sym: k.sym,
			Open: sorted[0].Price, Close: sorted[len(sorted)-1].Price, High: math.Inf(-1), Low: math.Inf(1)}
		var pv float64
		for _, tr := range ts {
			b.High, b.Low = max(b.High, tr.Price), min(b.Low, tr.Price)
			b.Volume += tr.Size
			pv += tr.Price * tr.Size
			b.Trades++
		}
		b.VWAP = pv / b.Volume
		b.Volume = md.RoundSum(b.Volume, b.Trades, 3)
		out = append(out, b)
	}
	sortBars(out)
	return out
}

func same(t *testing.T, got, want []md.Bar) bool {
	t.Helper()
	if len(got) != len(want) {
		t.Logf("%d bars, want %d", len(got), len(want))
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		vw := math.Abs(g.VWAP-w.VWAP) <= 1e-12*math.Abs(w.VWAP)
		g.VWAP = w.VWAP
		if g != w || !vw {
			t.Logf("bar %d:\n got %+v\nwant %+v (vwap within 1e-12: %v)", i, got[i], w, vw)
			return false
		}
	}
	return true
}

// 1s bars resampled to 1m and to 1h, and 1m bars to 1d in New York, equal
// the bars built from the trades directly: open, high, low, close, trades
// and the exact decimal volume bit for bit, vwap to 1e-12.
func TestResampledEqualsDirect(t *testing.T) {
	cases := []struct {
		fine, coarse, tz string
		span             int64
	}{
		{"1s", "1m", "UTC", 10 * 60 * sec},
		{"1s", "1h", "UTC", 3 * 3600 * sec},
		{"1m", "24h", "America/New_York", 5 * 24 * 3600 * sec},
	}
	for _, c := range cases {
		f := func(seed uint64, d uint8) bool {
			disorder := int64(d%4) * 300 * ms
			trades := randomTrades(seed, 600, c.span, disorder)
			params := map[string]any{"interval": c.coarse, "timezone": c.tz}
			got := pipeline(t, trades, c.fine, params, disorder, seed)
			r, _ := New(Config{Interval: mustDur(c.coarse), Location: mustLoc(c.tz)})
			return same(t, got, direct(r, trades))
		}
		if err := quick.Check(f, &quick.Config{MaxCount: 25}); err != nil {
			t.Fatalf("%s → %s %s: %v", c.fine, c.coarse, c.tz, err)
		}
	}
}

// The same as operator.bars with the coarse interval builds.
func TestResampledEqualsOperatorBars(t *testing.T) {
	trades := randomTrades(9, 5000, 30*60*sec, 500*ms)
	got := pipeline(t, trades, "1s", map[string]any{"interval": "5m"}, 500*ms, 9)
	b := newStage(t, bars.Type, map[string]any{"interval": "5m"}, newSyms())
	x := md.NewBatch(md.KindTrade)
	x.Trades = trades
	b.feed(t, x)
	b.wm(t, md.MaxTime)
	want := b.bars()
	sortBars(want)
	if !same(t, got, want) {
		t.Fatal("resampled 1s bars differ from 5m bars")
	}
}

func mustDur(s string) int64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d.Nanoseconds()
}

func mustLoc(s string) *time.Location {
	l, err := time.LoadLocation(s)
	if err != nil {
		panic(err)
	}
	return l
}

// Days in New York: 2024-03-10 (the spring DST change) is 23 hours long;
// a session start of 17h makes an FX day; bars exactly at the end go to the
// next day; late bars are dropped or side-output.
func TestDayBarsInATimeZone(t *testing.T) {
	r, _ := New(Config{Interval: 24 * 3600 * sec, Location: mustLoc("America/New_York")})
	ts := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC).UnixNano()
	s, e := r.Bucket(ts)
	if got := time.Unix(0, s).UTC().Format(time.RFC3339); got != "2024-03-10T05:00:00Z" {
		t.Fatalf("start %s", got)
	}
	if e-s != 23*3600*sec {
		t.Fatalf("DST day is %v long", time.Duration(e-s))
	}
	fx, _ := New(Config{Interval: 24 * 3600 * sec, Location: mustLoc("America/New_York"), SessionStart: 17 * 3600 * sec})
	s, _ = fx.Bucket(time.Date(2024, 1, 2, 21, 59, 0, 0, time.UTC).UnixNano()) // 16:59 New York
	if got := time.Unix(0, s).UTC().Format(time.RFC3339); got != "2024-01-01T22:00:00Z" {
		t.Fatalf("fx day start %s", got)
	}
	s, _ = fx.Bucket(time.Date(2024, 1, 2, 22, 0, 0, 0, time.UTC).UnixNano()) // exactly 17:00: the next day
	if got := time.Unix(0, s).UTC().Format(time.RFC3339); got != "2024-01-02T22:00:00Z" {
		t.Fatalf("fx day start at the boundary %s", got)
	}
}

func bar(sym md.SymID, start, iv int64, o, h, l, c, vol, vwap float64, n int64) md.Bar {
	return md.Bar{Start: start, End: start + iv, Interval: iv, Open: o, High: h, Low: l, Close: c, Volume: vol, VWAP: vwap, Trades: n, Sym: sym}
}

func TestLateAndCorrectedBars(t *testing.T) {
	for _, policy := range []string{"drop", "side_output"} {
		s := newStage(t, Type, map[string]any{"interval": "1m", "late_policy": policy}, newSyms())
		in := md.NewBatch(md.KindBar)
		in.Bars = []md.Bar{bar(0, t0, sec, 10, 12, 9, 11, 2, 10.5, 2), bar(0, t0+sec, sec, 11, 11, 11, 11, 1, 11, 1)}
		s.feed(t, in)
		// a correction of the second bar replaces it
		corr := bar(0, t0+sec, sec, 11, 13, 11, 13, 3, 12, 3)
		corr.Update = true
		in = md.NewBatch(md.KindBar)
		in.Bars = []md.Bar{corr}
		s.feed(t, in)
		s.wm(t, t0+60*sec)
		got := s.bars()
		want := bar(0, t0, 60*sec, 10, 13, 9, 13, 5, (10.5*2+12*3)/5, 5)
		if len(got) != 1 || got[0] != want {
			t.Fatalf("%s: got %+v want %+v", policy, got, want)
		}
		in = md.NewBatch(md.KindBar)
		in.Bars = []md.Bar{bar(0, t0+30*sec, sec, 1, 1, 1, 1, 1, 1, 1)}
		s.feed(t, in)
		late := s.to.Drain(engine.PortLate)
		if policy == "drop" && (len(late) != 0 || s.to.NC.Stats.Drops()[DropLate] != 1) {
			t.Fatalf("drop: late port %d, drops %v", len(late), s.to.NC.Stats.Drops())
		}
		if policy == "side_output" && (len(late) != 1 || late[0].Bars[0].Start != t0+30*sec) {
			t.Fatalf("side_output: %v", late)
		}
		s.wm(t, md.MaxTime)
		if got := s.bars(); len(got) != 0 {
			t.Fatalf("late bar emitted: %v", got)
		}
	}
}

// TestPartialCarriesOver: a coarse bar is partial when a fine bar in it is,
// or when its symbol's feed had a gap in its interval (in which no fine bar
// may exist at all); the others are not.
func TestPartialCarriesOver(t *testing.T) {
	syms := newSyms()
	s := newStage(t, Type, map[string]any{"interval": "1m"}, syms)
	syms.OpenGap(1, t0+150*sec)
	syms.CloseGap(1, t0+170*sec)
	in := md.NewBatch(md.KindBar)
	in.Bars = []md.Bar{bar(0, t0, sec, 1, 1, 1, 1, 1, 1, 1), bar(0, t0+60*sec, sec, 1, 1, 1, 1, 1, 1, 1),
		bar(1, t0+120*sec, sec, 1, 1, 1, 1, 1, 1, 1), bar(1, t0+180*sec, sec, 1, 1, 1, 1, 1, 1, 1)}
	in.Bars[1].Partial = true
	s.feed(t, in)
	s.wm(t, md.MaxTime)
	got := s.bars()
	if len(got) != 4 {
		t.Fatalf("%d bars", len(got))
	}
	for i, want := range []bool{false, true, true, false} {
		if got[i].Partial != want {
			t.Errorf("bar %d (%+v): partial %v, want %v", i, got[i], got[i].Partial, want)
		}
	}
}

func TestBadInputAndParams(t *testing.T) {
	s := newStage(t, Type, map[string]any{"interval": "1m"}, newSyms())
	in := md.NewBatch(md.KindBar)
	in.Bars = []md.Bar{bar(0, t0+50*sec, 20*sec, 1, 1, 1, 1, 1, 1, 1)}
	if err := s.n.Process(context.Background(), in, s.to.Output); err == nil || !strings.Contains(err.Error(), "does not fit in the output bar") {
		t.Fatalf("misaligned: %v", err)
	}
	spec, _ := component.Lookup(Type)
	for _, c := range []struct {
		p    map[string]any
		want string
	}{
		{map[string]any{"interval": "1d", "timezone": "Mars/Olympus"}, `unknown time zone "Mars/Olympus"`},
		{map[string]any{"interval": "1h", "timezone": "Europe/London"}, "apply to intervals of whole days"},
		{map[string]any{}, `missing required param "interval"`},
	} {
		if _, err := component.NewParams(spec, c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.p, err, c.want)
		}
	}
}

// BenchmarkResample folds 1s bars of 100 symbols into 1m bars; ns and
// allocations per input bar.
func BenchmarkResample(b *testing.B) {
	in := optest.NewInstance(b, Type, map[string]any{"interval": "1m"}, enginetest.Symbols(100), engine.PortLate)
	batch := md.NewBatch(md.KindBar)
	batch.Bars = make([]md.Bar, 100)
	start := t0
	optest.Bench(b, in, 100, 64, func(int) {
		for k := range batch.Bars {
			batch.Bars[k] = bar(md.SymID(k), start, sec, 10, 11, 9, 10, 1, 10, 1)
		}
		in.Process(batch)
		start += sec
		in.Watermark(start)
	})
}

type barSink struct {
	mu   sync.Mutex
	bars []md.Bar
}

func (s *barSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bars = append(s.bars, b.Bars...)
	return nil
}

func runJob(t *testing.T, trades []md.Trade, syms []string, par int) []md.Bar {
	t.Helper()
	bs, _ := component.Lookup(bars.Type)
	bp, _ := component.NewParams(bs, map[string]any{"interval": "1s"})
	rs, _ := component.Lookup(Type)
	rp, _ := component.NewParams(rs, map[string]any{"interval": "1m"})
	src := enginetest.SourceNode("src", md.KindTrade, &enginetest.Source{Symbols: syms, Trades: trades, BatchSize: 13})
	src.MaxOutOfOrderness = 500 * time.Millisecond
	sink := &barSink{}
	g := &engine.Graph{
		Nodes: []*engine.Node{src,
			component.Node(bs, bp, component.NodeOptions{ID: "bars", Parallelism: par}),
			component.Node(rs, rp, component.NodeOptions{ID: "resample", Parallelism: par}),
			enginetest.SinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "src", To: "bars"}, {From: "bars", To: "resample"}, {From: "resample", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "resample-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sortBars(sink.bars)
	return sink.bars
}

func TestParallelismFourIsIdentical(t *testing.T) {
	syms := enginetest.Symbols(10)
	trades := randomTrades(5, 20000, 20*60*sec, 500*ms)
	for i := range trades {
		trades[i].Sym = md.SymID(i % len(syms))
	}
	one, four := runJob(t, trades, syms, 1), runJob(t, trades, syms, 4)
	if len(one) < 100 || !slices.Equal(one, four) {
		t.Fatalf("parallelism 4: %d bars, parallelism 1: %d", len(four), len(one))
	}
}
