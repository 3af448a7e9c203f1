package window

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/operator/internal/optest"
)

const (
	t0  = int64(1704205800) * int64(time.Second) // 2024-01-02T14:30:00Z
	sec = int64(time.Second)
	ms  = int64(time.Millisecond)
)

const (
	symA md.SymID = iota
	symB
)

// row is one output record, its fields by name.
type row struct {
	Sym   md.SymID
	TS    int64
	F     map[string]float64
	Early bool
	Upd   bool
}

func (r row) String() string {
	keys := make([]string, 0, len(r.F))
	for k := range r.F {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "{sym %d ts +%dms", r.Sym, (r.TS-t0)/ms)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, r.F[k])
	}
	if r.Early {
		b.WriteString(" early")
	}
	if r.Upd {
		b.WriteString(" update")
	}
	return b.String() + "}"
}

func rowsOf(b *md.Batch) []row {
	var out []row
	sc := b.Schema
	for i, d := range b.Derived {
		r := row{Sym: d.Sym, TS: d.TS, F: map[string]float64{}}
		for j, v := range b.Row(i) {
			f := sc.Field(j)
			switch f.Name {
			case "early":
				r.Early = v.Int() == 1
			case "update":
				r.Upd = v.Int() == 1
			case "end":
				r.F["end"] = float64((v.Int() - t0) / ms)
			default:
				if f.Type == md.Int {
					r.F[f.Name] = float64(v.Int())
				} else {
					r.F[f.Name] = v.Float()
				}
			}
		}
		out = append(out, r)
	}
	return out
}

type harness struct {
	t  *testing.T
	w  *Window
	to *enginetest.Output
}

func newHarness(t *testing.T, typ string, params map[string]any) *harness {
	t.Helper()
	in := optest.NewInstance(t, typ, params, []string{"A", "B"}, engine.PortLate)
	return &harness{t: t, w: in.Impl.(*Window), to: in.Out}
}

func tr(sym md.SymID, ts int64, price, size float64) md.Trade {
	return md.Trade{Sym: sym, TS: ts, Price: price, Size: size}
}

func (h *harness) trades(ts ...md.Trade) {
	h.t.Helper()
	b := md.NewBatch(md.KindTrade)
	b.Trades = ts
	if err := h.w.Process(context.Background(), b, h.to.Output); err != nil {
		h.t.Fatalf("process: %v", err)
	}
}

func (h *harness) wm(w int64) {
	h.t.Helper()
	if err := h.w.OnWatermark(context.Background(), w, h.to.Output); err != nil {
		h.t.Fatalf("watermark: %v", err)
	}
}

func (h *harness) rows() []row {
	var out []row
	for _, b := range h.to.Drain(engine.PortMain) {
		out = append(out, rowsOf(b)...)
		b.Release()
	}
	return out
}

func (h *harness) expect(step string, want ...row) {
	h.t.Helper()
	got := h.rows()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("%s:\n got: %v\nwant: %v", step, got, want)
	}
}

func (h *harness) lateTrades() []md.Trade {
	var out []md.Trade
	for _, b := range h.to.Drain(engine.PortLate) {
		if b.Reason != DropLate {
			h.t.Errorf("late batch reason %q", b.Reason)
		}
		out = append(out, b.Trades...)
		b.Release()
	}
	return out
}

// r builds an expected row; fields alternate name, value; end is in ms
// after t0.
func r(sym md.SymID, startMS int64, kv ...any) row {
	x := row{Sym: sym, TS: t0 + startMS*ms, F: map[string]float64{}}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case int:
			x.F[kv[i].(string)] = float64(v)
		case float64:
			x.F[kv[i].(string)] = v
		}
	}
	return x
}

func upd(x row) row   { x.Upd = true; return x }
func early(x row) row { x.Early = true; return x }

var allAggs = []string{"count", "sum(size)", "min(price)", "max(price)", "first(price)", "last(price)", "mean(price)", "stddev(price)", "vwap", "quantile(price, 0.5)"}

// Every aggregation over hand-written trades, out of order within the
// watermark, a record exactly at a window's end (it belongs to the next),
// an empty window (nothing emitted) and the end-of-stream flush.
func TestTumblingAllAggregations(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "aggregations": allAggs})
	h.trades(
		tr(symA, t0+500*ms, 10, 1),
		tr(symA, t0+100*ms, 14, 3), // out of order: the first
		tr(symB, t0+200*ms, 7, 2),
		tr(symA, t0+900*ms, 12, 4),
		tr(symA, t0+sec, 99, 1), // exactly at the end of [t0, t0+1s): next window
	)
	h.wm(t0 + 500*ms)
	h.expect("nothing closed yet")
	h.trades(tr(symA, t0+700*ms, 8, 2)) // still on time
	h.wm(t0 + sec)
	// A: prices 14(3) 10(1) 8(2) 12(4); sum size 10; mean 11;
	// variance ((9+1+9+1)/4) = 5; vwap (42+10+16+48)/10 = 11.6;
	// median of 8 10 12 14 = 11
	h.expect("first second",
		r(symA, 0, "end", 1000, "count", 4, "sum_size", 10, "min_price", 8, "max_price", 14, "first_price", 14, "last_price", 12,
			"mean_price", 11, "stddev_price", math.Sqrt(5), "vwap", 11.6, "p50_price", 11),
		r(symB, 0, "end", 1000, "count", 1, "sum_size", 2, "min_price", 7, "max_price", 7, "first_price", 7, "last_price", 7,
			"mean_price", 7, "stddev_price", 0, "vwap", 7, "p50_price", 7),
	)
	h.trades(tr(symA, t0+3500*ms, 50, 1)) // [t0+1s, t0+2s) and [2s, 3s) of B are empty
	h.wm(md.MaxTime)
	h.expect("flush",
		r(symA, 1000, "end", 2000, "count", 1, "sum_size", 1, "min_price", 99, "max_price", 99, "first_price", 99, "last_price", 99,
			"mean_price", 99, "stddev_price", 0, "vwap", 99, "p50_price", 99),
		r(symA, 3000, "end", 4000, "count", 1, "sum_size", 1, "min_price", 50, "max_price", 50, "first_price", 50, "last_price", 50,
			"mean_price", 50, "stddev_price", 0, "vwap", 50, "p50_price", 50),
	)
}

func TestTumblingOffset(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "offset": "250ms", "aggregations": []string{"count"}})
	h.trades(tr(symA, t0+100*ms, 1, 1), tr(symA, t0+250*ms, 1, 1), tr(symA, t0+1249*ms, 1, 1))
	h.wm(md.MaxTime)
	h.expect("offset", r(symA, -750, "end", 250, "count", 1), r(symA, 250, "end", 1250, "count", 2))
}

func TestLateDrop(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"count"}})
	h.trades(tr(symA, t0+100*ms, 1, 1))
	h.wm(t0 + sec)
	h.expect("closed", r(symA, 0, "end", 1000, "count", 1))
	h.trades(tr(symA, t0+900*ms, 1, 1), tr(symA, t0+sec, 1, 1))
	h.wm(md.MaxTime)
	h.expect("late dropped", r(symA, 1000, "end", 2000, "count", 1))
	if d := h.to.NC.Stats.Drops(); d[DropLate] != 1 {
		t.Fatalf("drops %v", d)
	}
}

func TestLateSideOutput(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "late_policy": "side_output", "aggregations": []string{"count"}})
	h.trades(tr(symA, t0+100*ms, 1, 1))
	h.wm(t0 + 1500*ms)
	h.expect("closed", r(symA, 0, "end", 1000, "count", 1))
	lateT := tr(symA, t0+999*ms, 5, 1)
	h.trades(lateT, tr(symA, t0+1400*ms, 1, 1)) // 1.4s: its window is open
	if got := h.lateTrades(); !reflect.DeepEqual(got, []md.Trade{lateT}) {
		t.Fatalf("late port: %v", got)
	}
	h.wm(md.MaxTime)
	h.expect("open window", r(symA, 1000, "end", 2000, "count", 1))
}

func TestLateUpdateWithinAndBeyondAllowedLateness(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "late_policy": "update", "allowed_lateness": "2s",
		"aggregations": []string{"count", "sum(size)"}})
	h.trades(tr(symA, t0+100*ms, 1, 1))
	h.wm(t0 + 2*sec)
	h.expect("closed", r(symA, 0, "end", 1000, "count", 1, "sum_size", 1))
	h.trades(tr(symA, t0+500*ms, 1, 2), tr(symA, t0+1500*ms, 1, 4)) // both late: [0,1s) corrected, [1s,2s) new
	h.expect("updates", upd(r(symA, 0, "end", 1000, "count", 2, "sum_size", 3)), upd(r(symA, 1000, "end", 2000, "count", 1, "sum_size", 4)))
	h.wm(t0 + 3*sec) // [0,1s) ends at 1s: kept until 3s
	h.trades(tr(symA, t0+900*ms, 1, 8))
	h.expect("too late")
	if d := h.to.NC.Stats.Drops(); d[DropTooLate] != 1 {
		t.Fatalf("drops %v", d)
	}
	h.trades(tr(symA, t0+1900*ms, 1, 8)) // [1s,2s) kept until 4s
	h.expect("within", upd(r(symA, 1000, "end", 2000, "count", 2, "sum_size", 12)))
	h.wm(md.MaxTime)
	h.expect("nothing more")
}

func TestSlidingHandComputed(t *testing.T) {
	h := newHarness(t, Type, map[string]any{"window": "sliding", "size": "3s", "slide": "1s", "aggregations": []string{"count", "sum(size)", "max(price)"}})
	h.trades(tr(symA, t0+500*ms, 5, 1), tr(symA, t0+1500*ms, 7, 2), tr(symA, t0+4200*ms, 3, 4))
	h.wm(md.MaxTime)
	h.expect("sliding",
		r(symA, -2000, "end", 1000, "count", 1, "sum_size", 1, "max_price", 5),
		r(symA, -1000, "end", 2000, "count", 2, "sum_size", 3, "max_price", 7),
		r(symA, 0, "end", 3000, "count", 2, "sum_size", 3, "max_price", 7),
		r(symA, 1000, "end", 4000, "count", 1, "sum_size", 2, "max_price", 7),
		// [2s,5s) has the 4.2s trade
		r(symA, 2000, "end", 5000, "count", 1, "sum_size", 4, "max_price", 3),
		r(symA, 3000, "end", 6000, "count", 1, "sum_size", 4, "max_price", 3),
		r(symA, 4000, "end", 7000, "count", 1, "sum_size", 4, "max_price", 3),
	)
}

func TestSessionHandComputed(t *testing.T) {
	h := newHarness(t, Type, map[string]any{"window": "session", "gap": "1s", "aggregations": []string{"count", "first(price)", "last(price)"}})
	h.trades(tr(symA, t0, 1, 1), tr(symA, t0+800*ms, 2, 1), tr(symA, t0+2500*ms, 3, 1))
	h.wm(t0 + 1800*ms)
	h.expect("first session closes at 1.8s", r(symA, 0, "end", 1800, "count", 2, "first_price", 1, "last_price", 2))
	// a record bridging nothing: 3.2s joins the 2.5s session; 4.3s is more than a gap after 3.2s
	h.trades(tr(symA, t0+3200*ms, 4, 1), tr(symA, t0+4300*ms, 5, 1))
	h.wm(md.MaxTime)
	h.expect("flush",
		r(symA, 2500, "end", 4200, "count", 2, "first_price", 3, "last_price", 4),
		r(symA, 4300, "end", 5300, "count", 1, "first_price", 5, "last_price", 5))
}

func TestSessionOutOfOrderMerge(t *testing.T) {
	h := newHarness(t, Type, map[string]any{"window": "session", "gap": "1s", "aggregations": []string{"count", "first(price)"}})
	h.trades(tr(symA, t0, 1, 1), tr(symA, t0+1500*ms, 2, 1), tr(symA, t0+800*ms, 3, 1)) // 0.8s bridges the two
	h.wm(md.MaxTime)
	h.expect("merged", r(symA, 0, "end", 2500, "count", 3, "first_price", 1))
}

func TestSessionLatePolicies(t *testing.T) {
	h := newHarness(t, Type, map[string]any{"window": "session", "gap": "1s", "late_policy": "update", "allowed_lateness": "1s", "aggregations": []string{"count"}})
	h.trades(tr(symA, t0, 1, 1))
	h.wm(t0 + 1500*ms)
	h.expect("closed", r(symA, 0, "end", 1000, "count", 1))
	h.trades(tr(symA, t0+200*ms, 1, 1)) // merged end 1.2s <= wm 1.5s: late, within 1s
	h.expect("update", upd(r(symA, 0, "end", 1200, "count", 2)))
	h.wm(t0 + 2500*ms)
	h.trades(tr(symA, t0+300*ms, 1, 1)) // end 1.3s + 1s <= 2.5s: too late
	h.expect("too late")
	if d := h.to.NC.Stats.Drops(); d[DropTooLate] != 1 {
		t.Fatalf("drops %v", d)
	}
	d := newHarness(t, Type, map[string]any{"window": "session", "gap": "1s", "aggregations": []string{"count"}})
	d.trades(tr(symA, t0, 1, 1))
	d.wm(t0 + 1500*ms)
	d.rows()
	d.trades(tr(symA, t0+100*ms, 1, 1))
	if got := d.to.NC.Stats.Drops()[DropLate]; got != 1 {
		t.Fatalf("late drops %d", got)
	}
}

func TestEveryRecordMarksEarlyFirings(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "emit": "every_record", "aggregations": []string{"count", "sum(size)"}})
	h.trades(tr(symA, t0+100*ms, 1, 1), tr(symA, t0+200*ms, 1, 2))
	h.expect("early", early(r(symA, 0, "end", 1000, "count", 1, "sum_size", 1)), early(r(symA, 0, "end", 1000, "count", 2, "sum_size", 3)))
	h.wm(md.MaxTime)
	h.expect("close", r(symA, 0, "end", 1000, "count", 2, "sum_size", 3))
}

func TestQuotesAndBarsFields(t *testing.T) {
	h := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"mean(spread)", "max(mid)"}})
	b := md.NewBatch(md.KindQuote)
	b.Quotes = []md.Quote{{Sym: symA, TS: t0, Bid: 10, Ask: 11}, {Sym: symA, TS: t0 + 1, Bid: 10, Ask: 13}}
	if err := h.w.Process(context.Background(), b, h.to.Output); err != nil {
		t.Fatal(err)
	}
	h.wm(md.MaxTime)
	h.expect("quotes", r(symA, 0, "end", 1000, "mean_spread", 2, "max_mid", 11.5))

	v := newHarness(t, TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"vwap"}})
	b = md.NewBatch(md.KindQuote)
	b.Quotes = []md.Quote{{Sym: symA, TS: t0, Bid: 10, Ask: 11}}
	if err := v.w.Process(context.Background(), b, v.to.Output); err == nil || !strings.Contains(err.Error(), "vwap needs traded size") {
		t.Fatalf("vwap over quotes: %v", err)
	}
}

func TestBadParams(t *testing.T) {
	cases := []struct {
		typ    string
		params map[string]any
		want   string
	}{
		{Type, map[string]any{"window": "sliding", "size": "3s", "slide": "2s", "aggregations": []string{"count"}}, "size 3s must be a multiple of slide 2s"},
		{Type, map[string]any{"window": "sliding", "size": "3s", "aggregations": []string{"count"}}, "a sliding window needs size and slide"},
		{Type, map[string]any{"window": "session", "aggregations": []string{"count"}}, "a session window needs gap"},
		{Type, map[string]any{"window": "session", "gap": "1s", "size": "1s", "aggregations": []string{"count"}}, "size does not apply to session windows"},
		{Type, map[string]any{"size": "1s", "gap": "1s", "aggregations": []string{"count"}}, "gap applies to session windows, not tumbling ones"},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"median(price)"}}, `unknown function "median"`},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"sum(prize)"}}, `unknown field "prize"`},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"quantile(price, 1.5)"}}, "the quantile must be a number from 0 to 1"},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"count", "count"}}, "field count declared twice"},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"count"}, "allowed_lateness": "1s"}, "allowed_lateness applies only with late_policy: update"},
		{TypeTumbling, map[string]any{"size": "1s", "aggregations": []string{"count"}, "name": "Bad-Name"}, "not a lower-case identifier"},
		{TypeTumbling, map[string]any{"aggregations": []string{"count"}}, `missing required param "size"`},
	}
	for _, c := range cases {
		spec, _ := component.Lookup(c.typ)
		_, err := component.NewParams(spec, c.params)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.params, err, c.want)
		}
	}
}

// derivedSink collects derived rows from every instance.
type derivedSink struct {
	mu   sync.Mutex
	rows []row
}

func (s *derivedSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Kind == md.KindDerived {
		s.rows = append(s.rows, rowsOf(b)...)
	}
	return nil
}

// runJob runs trades through a real job: a source with max_out_of_orderness
// ooo, the window node at parallelism par, a collecting sink. The rows come
// back sorted by (ts, end, symbol) since instances interleave.
func runJob(t *testing.T, typ string, params map[string]any, symbols []string, trades []md.Trade, ooo time.Duration, par int) []row {
	t.Helper()
	spec, _ := component.Lookup(typ)
	p, err := component.NewParams(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	src := &enginetest.Source{Symbols: symbols, Trades: trades, BatchSize: 7}
	sink := &derivedSink{}
	srcNode := enginetest.SourceNode("src", md.KindTrade, src)
	srcNode.MaxOutOfOrderness = ooo
	g := &engine.Graph{
		Nodes: []*engine.Node{srcNode, component.Node(spec, p, component.NodeOptions{ID: "win", Parallelism: par}), enginetest.SinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "src", To: "win"}, {From: "win", To: "sink"}},
	}
	j, err := engine.New(g, engine.Options{Job: "window-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sortRows(sink.rows)
	return sink.rows
}

func sortRows(rs []row) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		if a.F["end"] != b.F["end"] {
			return a.F["end"] < b.F["end"]
		}
		return a.Sym < b.Sym
	})
}

func TestParallelismFourIsIdentical(t *testing.T) {
	syms := enginetest.Symbols(12)
	trades := randomTrades(42, 3000, len(syms), 800*ms)
	for _, params := range []map[string]any{
		{"window": "tumbling", "size": "1s", "aggregations": allAggs},
		{"window": "sliding", "size": "2s", "slide": "500ms", "aggregations": allAggs},
		{"window": "session", "gap": "300ms", "aggregations": allAggs},
	} {
		one := runJob(t, Type, params, syms, trades, 800*time.Millisecond, 1)
		four := runJob(t, Type, params, syms, trades, 800*time.Millisecond, 4)
		if len(one) == 0 || !reflect.DeepEqual(one, four) {
			t.Fatalf("%v: parallelism 4 differs (%d vs %d rows)", params["window"], len(four), len(one))
		}
	}
}
