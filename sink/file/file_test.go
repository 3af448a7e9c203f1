package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

const t0 = int64(1704205800) * 1e9

func nc() *engine.NodeContext {
	tab := md.NewSymbolTable()
	tab.Intern("synthetic", "AAPL")
	return &engine.NodeContext{Symbols: tab}
}

func quotes(n int) *md.Batch {
	b := md.NewBatch(md.KindQuote)
	for i := 0; i < n; i++ {
		b.Quotes = append(b.Quotes, md.Quote{TS: t0 + int64(i)*1e9, Ingest: t0 + int64(i)*1e9, Bid: 99.5, BidSize: 100, Ask: 99.52, AskSize: 200, Seq: uint64(i + 1)})
	}
	return b
}

func temps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "quotes.csv")
	s := New(path, recfmt.FormatForPath(path))
	ctx := context.Background()
	if err := s.Open(ctx, nc()); err != nil {
		t.Fatal(err)
	}
	tmp := s.TempPath()
	if !strings.HasPrefix(tmp, path+".tmp-") {
		t.Fatalf("temporary file %s", tmp)
	}
	for i := 0; i < 3; i++ {
		if err := s.Process(ctx, quotes(2), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("target exists before Close: %v", err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	row0 := "synthetic,AAPL,2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,99.5,100,99.52,200,1\n"
	row1 := "synthetic,AAPL,2024-01-02T14:30:01Z,2024-01-02T14:30:01Z,99.5,100,99.52,200,2\n"
	want := "provider,symbol,ts,ingest_ts,bid,bid_size,ask,ask_size,seq\n" + strings.Repeat(row0+row1, 3)
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if m := temps(t, filepath.Dir(path)); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	if s.Records() != 6 {
		t.Fatalf("records %d", s.Records())
	}
}

func TestReplacesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(path, []byte("old content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(path, recfmt.JSON)
	ctx := context.Background()
	if err := s.Open(ctx, nc()); err != nil {
		t.Fatal(err)
	}
	if err := s.Process(ctx, quotes(1), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old content\n" {
		t.Fatalf("old file changed before Close: %q", got)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"quote","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00Z","ingest_ts":"2024-01-02T14:30:00Z","bid":99.5,"bid_size":100,"ask":99.52,"ask_size":200,"seq":1}` + "\n"
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Fatalf("got %s", got)
	}
}

func TestAbortRemovesTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	s := New(path, recfmt.JSON)
	if err := s.Open(context.Background(), nc()); err != nil {
		t.Fatal(err)
	}
	jobCtx, abort := context.WithCancel(context.Background())
	if err := s.Process(jobCtx, quotes(3), nil); err != nil {
		t.Fatal(err)
	}
	abort() // the engine calls Cleanup, not Close, after an abort
	if err := s.Cleanup(context.WithoutCancel(jobCtx)); err != nil {
		t.Fatalf("cleanup after abort: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("target written after abort: %v", err)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestCloseWithCancelledContextDiscards(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	s := New(path, recfmt.JSON)
	if err := s.Open(context.Background(), nc()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("target written: %v", err)
	}
}

func TestCSVRejectsMixedKinds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	s := New(path, recfmt.CSV)
	ctx := context.Background()
	if err := s.Open(ctx, nc()); err != nil {
		t.Fatal(err)
	}
	if err := s.Process(ctx, quotes(1), nil); err != nil {
		t.Fatal(err)
	}
	b := md.NewBatch(md.KindTrade)
	b.Trades = append(b.Trades, md.Trade{})
	err := s.Process(ctx, b, nil)
	want := path + ": csv output holds one record kind: got trade records after quote records (use format json, or one sink per kind)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestParams(t *testing.T) {
	spec, ok := component.Lookup("sink.file")
	if !ok || spec.Accepts != md.KindAny {
		t.Fatalf("sink.file registered %v", ok)
	}
	_, err := component.NewParams(spec, nil)
	if err == nil || err.Error() != `params.path: missing required param "path" (File to write; parent directories are created)` {
		t.Fatalf("err %v", err)
	}
	_, err = component.NewParams(spec, map[string]any{"path": ""})
	if err == nil || err.Error() != `params.path: must not be empty` {
		t.Fatalf("err %v", err)
	}
	for _, c := range []struct {
		params map[string]any
		want   recfmt.Format
	}{
		{map[string]any{"path": "a.csv"}, recfmt.CSV},
		{map[string]any{"path": "a.jsonl"}, recfmt.JSON},
		{map[string]any{"path": "a.out"}, recfmt.JSON},
		{map[string]any{"path": "a.jsonl", "format": "csv"}, recfmt.CSV},
		{map[string]any{"path": "a.csv", "format": "json"}, recfmt.JSON},
		{map[string]any{"path": "a.csv", "format": "jsonl"}, recfmt.JSON},
	} {
		p, err := component.NewParams(spec, c.params)
		if err != nil {
			t.Fatal(err)
		}
		v, err := spec.NewProcessor(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f := v.(*Sink).format; f != c.want {
			t.Errorf("%v: format %v", c.params, f)
		}
	}
	p, _ := component.NewParams(spec, map[string]any{"path": "a.csv"})
	if _, err := spec.NewProcessor(p, 1); err == nil || err.Error() != "sink.file runs as one instance (set parallelism 1): instances would replace each other's file" {
		t.Fatalf("instance 1: %v", err)
	}
}

// src emits n bars in batches of 10.
type src struct{ n int }

func (s src) Run(ctx context.Context, out *engine.Output) error {
	id := out.Symbols().Intern("p", "X")
	b := out.NewBatch(md.KindBar)
	for i := 0; i < s.n; i++ {
		st := t0 + int64(i)*60e9
		b.Bars = append(b.Bars, md.Bar{Start: st, End: st + 60e9, Interval: 60e9, Open: 1, High: 1, Low: 1, Close: 1, Volume: 1, VWAP: 1, Trades: 1, Sym: id})
		if len(b.Bars) == 10 {
			if err := out.Emit(b); err != nil {
				return err
			}
			b = out.NewBatch(md.KindBar)
		}
	}
	return out.Emit(b)
}

func TestInJob(t *testing.T) {
	spec, _ := component.Lookup("sink.file")
	path := filepath.Join(t.TempDir(), "bars.csv")
	p, err := component.NewParams(spec, map[string]any{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindBar}, NewSource: func(int) (engine.Source, error) { return src{n: 95}, nil }},
			component.Node(spec, p, component.NodeOptions{ID: "file"}),
		},
		Edges: []*engine.Edge{{From: "src", To: "file"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 96 || lines[0] != "provider,symbol,interval,ts,start,end,open,high,low,close,volume,vwap,trades,bar_type,source,partial,update" ||
		lines[95] != "p,X,1m,2024-01-02T16:04:00Z,2024-01-02T16:04:00Z,2024-01-02T16:05:00Z,1,1,1,1,1,1,1,time,trade,false,false" {
		t.Fatalf("%d lines, first %q last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if m := temps(t, filepath.Dir(path)); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// signalSink tells the test when the file sink has taken its first batch.
type signalSink struct {
	*Sink
	once sync.Once
	got  chan struct{}
}

func (s *signalSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	err := s.Sink.Process(ctx, b, out)
	s.once.Do(func() { close(s.got) })
	return err
}

// failSrc emits one batch, waits until the sink has it, then fails the job.
type failSrc struct{ got chan struct{} }

func (f failSrc) Run(ctx context.Context, out *engine.Output) error {
	if err := (src{n: 5}).Run(ctx, out); err != nil {
		return err
	}
	<-f.got
	return errors.New("feed lost")
}

func TestFailedJobLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bars.jsonl")
	s := &signalSink{Sink: New(path, recfmt.JSON), got: make(chan struct{})}
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindBar}, NewSource: func(int) (engine.Source, error) { return failSrc{got: s.got}, nil }},
			{ID: "file", Type: "sink.file", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return s, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "file"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "feed lost") {
		t.Fatalf("job error %v", err)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("target written by a failed job: %v", err)
	}
}

// TestNextRunRemovesKilledRunsTemp: a killed run leaves its temporary file
// (251 MB in one report); it has a predictable name, so the next run of the
// same target removes it.
func TestNextRunRemovesKilledRunsTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bars.jsonl")
	if err := os.WriteFile(TempName(path), []byte("half a file from a run killed with -9"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(path, recfmt.FormatForPath(path))
	ctx := context.Background()
	if err := s.Open(ctx, nc()); err != nil {
		t.Fatal(err)
	}
	if s.TempPath() != TempName(path) {
		t.Fatalf("temporary file %s", s.TempPath())
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if got, _ := os.ReadFile(path); strings.Contains(string(got), "killed") {
		t.Fatalf("the predecessor's bytes reached the target: %q", got)
	}
}
