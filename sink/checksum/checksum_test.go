package checksum

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

const t0 = int64(1704205800) * 1e9

func bar(sym md.SymID, sec int64, o, h, l, c, vol, vwap float64, trades int64) md.Bar {
	return md.Bar{Start: t0 + sec*1e9, End: t0 + (sec+1)*1e9, Interval: 1e9, Open: o, High: h, Low: l, Close: c, Volume: vol, VWAP: vwap, Trades: trades, Sym: sym}
}

func batch(bars ...md.Bar) *md.Batch {
	b := md.NewBatch(md.KindBar)
	b.Bars = append(b.Bars, bars...)
	return b
}

// fixed returns a sink whose clock and source totals are fixed: 2,000,000
// events, the first emitted 2.5 s before Close.
func fixed(w *bytes.Buffer, path string) *Sink {
	s := New(w, path)
	end := time.Unix(0, t0+2_500_000_000)
	s.now = func() time.Time { return end }
	_ = s.Open(context.Background(), &engine.NodeContext{SourceTotals: func() (int64, int64) { return 2_000_000, t0 }})
	return s
}

func TestChecksumExact(t *testing.T) {
	var out bytes.Buffer
	s := fixed(&out, "")
	ctx := context.Background()
	// Prices chosen so that float sums would drift: cents are summed exactly.
	if err := s.Process(ctx, batch(
		bar(0, 0, 100.1, 100.2, 99.9, 100.15, 300, 100.05, 12),
		bar(1, 0, 0.07, 0.29, 0.01, 0.1, 50, 0.123456789, 3),
	), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Process(ctx, batch(bar(0, 1, 100.15, 100.3, 100, 100.3, 17, 100.2, 2)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := `{"events":2000000,"elapsed_s":2.500000,"events_per_s":800000,"bars":3,"trades":17,"volume":367,` +
		`"open_sum":200.32,"high_sum":200.79,"low_sum":199.91,"close_sum":200.55,"vwap_sum":200.373457}` + "\n"
	if out.String() != want {
		t.Fatalf("got  %swant %s", out.String(), want)
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateReplacesBar(t *testing.T) {
	var out bytes.Buffer
	s := fixed(&out, "")
	ctx := context.Background()
	orig := bar(0, 0, 10, 11, 9, 10.5, 100, 10.2, 5)
	other := bar(1, 0, 20, 20, 20, 20, 1, 20, 1)
	upd := bar(0, 0, 10, 12, 9, 11.75, 150, 10.9, 7)
	upd.Update = true
	upd2 := upd
	upd2.Close, upd2.Volume, upd2.Trades = 11.5, 160, 8
	// An update for a bar never seen counts as a new bar.
	lone := bar(2, 5, 1, 1, 1, 1, 1, 1, 1)
	lone.Update = true
	for _, b := range []*md.Batch{batch(orig, other), batch(upd), batch(upd2, lone)} {
		if err := s.Process(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Final bars: upd2 (replacing orig), other, lone.
	want := `{"events":2000000,"elapsed_s":2.500000,"events_per_s":800000,"bars":3,"trades":10,"volume":162,` +
		`"open_sum":31.00,"high_sum":33.00,"low_sum":30.00,"close_sum":32.50,"vwap_sum":31.900000}` + "\n"
	if out.String() != want {
		t.Fatalf("got  %swant %s", out.String(), want)
	}
	if s.Updates() != 3 {
		t.Fatalf("updates %d", s.Updates())
	}
}

// TestUpdateKeepsBarTypeAndSource: a trade bar, a mid bar and a tick bar
// of one symbol share start and interval; an update of the mid bar
// replaces the mid bar only, as a store's key (bar type and source in it)
// would.
func TestUpdateKeepsBarTypeAndSource(t *testing.T) {
	var out bytes.Buffer
	s := fixed(&out, "")
	ctx := context.Background()
	trade := bar(0, 0, 10, 10, 10, 10, 100, 10, 5)
	mid := bar(0, 0, 20, 20, 20, 20, 0, 20, 3)
	mid.Source = md.FromMid
	tick := bar(0, 0, 30, 30, 30, 30, 7, 30, 1)
	tick.Type = md.BarTick
	upd := mid
	upd.Close, upd.Trades, upd.Update = 21, 4, true
	for _, b := range []*md.Batch{batch(trade, mid, tick), batch(upd)} {
		if err := s.Process(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Final bars: trade, the updated mid bar, tick.
	r := s.Result()
	if r.Bars != 3 || r.Trades != 10 || r.CloseCents != 6100 || r.OpenCents != 6000 || r.Volume != 107 {
		t.Fatalf("result %+v, want 3 bars, 10 trades, close 61.00, open 60.00, volume 107", r)
	}
}

func TestEmptyRun(t *testing.T) {
	var out bytes.Buffer
	s := New(&out, "")
	if err := s.Open(context.Background(), &engine.NodeContext{SourceTotals: func() (int64, int64) { return 0, 0 }}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := `{"events":0,"elapsed_s":0.000000,"events_per_s":0,"bars":0,"trades":0,"volume":0,"open_sum":0.00,"high_sum":0.00,"low_sum":0.00,"close_sum":0.00,"vwap_sum":0.000000}` + "\n"
	if out.String() != want {
		t.Fatalf("got %s", out.String())
	}
}

func TestAppendCents(t *testing.T) {
	for c, want := range map[int64]string{0: "0.00", 5: "0.05", 100: "1.00", 148313781: "1483137.81", -5: "-0.05", -12345: "-123.45"} {
		if got := string(appendCents(nil, c)); got != want {
			t.Errorf("%d: %s want %s", c, got, want)
		}
	}
}

func TestPathParam(t *testing.T) {
	spec, ok := component.Lookup("sink.checksum")
	if !ok || spec.Accepts != md.KindBar {
		t.Fatalf("sink.checksum registered %v accepts %v", ok, spec)
	}
	path := filepath.Join(t.TempDir(), "out", "sum.json")
	p, err := component.NewParams(spec, map[string]any{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.NewProcessor(p, 1); err == nil || err.Error() != "sink.checksum runs as one instance (set parallelism 1): it prints one total" {
		t.Fatalf("instance 1: %v", err)
	}
	v, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := v.(*Sink)
	s.w = &out
	ctx := context.Background()
	_ = s.Open(ctx, &engine.NodeContext{})
	if err := s.Process(ctx, batch(bar(0, 0, 1, 2, 0.5, 1.5, 10, 1.25, 4)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"events":0,"elapsed_s":0.000000,"events_per_s":0,"bars":1,"trades":4,"volume":10,"open_sum":1.00,"high_sum":2.00,"low_sum":0.50,"close_sum":1.50,"vwap_sum":1.250000}` + "\n"
	if string(got) != want || out.Len() != 0 {
		t.Fatalf("file %q stdout %q", got, out.String())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp-*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// barSrc emits n one-second bars over 4 symbols, in batches of 7.
type barSrc struct{ n int }

func (s barSrc) Run(ctx context.Context, out *engine.Output) error {
	ids := []md.SymID{}
	for _, name := range []string{"A", "B", "C", "D"} {
		ids = append(ids, out.Symbols().Intern("p", name))
	}
	b := out.NewBatch(md.KindBar)
	for i := 0; i < s.n; i++ {
		b.Bars = append(b.Bars, bar(ids[i%4], int64(i/4), 1.01, 1.02, 1, 1.01, 10, 1.01, 2))
		if len(b.Bars) == 7 {
			if err := out.Emit(b); err != nil {
				return err
			}
			b = out.NewBatch(md.KindBar)
		}
	}
	return out.Emit(b)
}

func TestInJob(t *testing.T) {
	spec, _ := component.Lookup("sink.checksum")
	p, err := component.NewParams(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := component.Node(spec, p, component.NodeOptions{ID: "sum"})
	var out bytes.Buffer
	node.NewProcessor = func(int) (engine.Processor, error) { return New(&out, ""), nil }
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindBar}, NewSource: func(int) (engine.Source, error) { return barSrc{n: 1000}, nil }},
			node,
		},
		Edges: []*engine.Edge{{From: "src", To: "sum"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	var v struct {
		Events   int64   `json:"events"`
		Elapsed  float64 `json:"elapsed_s"`
		Rate     float64 `json:"events_per_s"`
		Bars     int64   `json:"bars"`
		Trades   int64   `json:"trades"`
		Volume   float64 `json:"volume"`
		OpenSum  float64 `json:"open_sum"`
		VWAPSum  float64 `json:"vwap_sum"`
		HighSum  float64 `json:"high_sum"`
		CloseSum float64 `json:"close_sum"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if v.Events != 1000 || v.Bars != 1000 || v.Trades != 2000 || v.Volume != 10000 || v.OpenSum != 1010 || v.HighSum != 1020 || v.CloseSum != 1010 {
		t.Fatalf("checksum %s", out.String())
	}
	if v.Elapsed <= 0 || v.Elapsed > wall || v.Rate <= 0 {
		t.Fatalf("elapsed %v (wall %v) rate %v", v.Elapsed, wall, v.Rate)
	}
	if !strings.HasPrefix(out.String(), `{"events":1000,"elapsed_s":`) || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("line %q", out.String())
	}
}
