package stdout

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

const t0 = int64(1704205800) * 1e9

func trades(ids ...md.SymID) *md.Batch {
	b := md.NewBatch(md.KindTrade)
	for i, id := range ids {
		b.Trades = append(b.Trades, md.Trade{TS: t0 + int64(i)*1e6, Ingest: t0 + int64(i)*1e6, Price: 100.25 + float64(i), Size: 10, Side: md.SideSell, TradeID: int64(i + 1), Seq: uint64(i + 1), Sym: id})
	}
	return b
}

func open(t *testing.T, s *Sink) *md.SymbolTable {
	t.Helper()
	tab := md.NewSymbolTable()
	tab.Intern("synthetic", "AAPL")
	tab.Intern("synthetic", "MSFT")
	if err := s.Open(context.Background(), &engine.NodeContext{Symbols: tab}); err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf, recfmt.JSON)
	open(t, s)
	if err := s.Process(context.Background(), trades(0, 1), nil); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"trade","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00Z","ingest_ts":"2024-01-02T14:30:00Z","price":100.25,"size":10,"side":"sell","trade_id":1,"seq":1}
{"type":"trade","provider":"synthetic","symbol":"MSFT","ts":"2024-01-02T14:30:00.001Z","ingest_ts":"2024-01-02T14:30:00.001Z","price":101.25,"size":10,"side":"sell","trade_id":2,"seq":2}
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	// Flushed per batch: everything is out before the next batch arrives.
	b := md.NewBatch(md.KindBar)
	b.Bars = append(b.Bars, md.Bar{Start: t0, End: t0 + 1e9, Interval: 1e9, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 30, VWAP: 1.25, Trades: 3, Sym: 1})
	b.Reason = "late"
	buf.Reset()
	if err := s.Process(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	want = `{"type":"bar","provider":"synthetic","symbol":"MSFT","interval":"1s","ts":"2024-01-02T14:30:00Z","start":"2024-01-02T14:30:00Z","end":"2024-01-02T14:30:01Z","open":1,"high":2,"low":0.5,"close":1.5,"volume":30,"vwap":1.25,"trades":3,"bar_type":"time","source":"trade","reason":"late"}` + "\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	if s.Records() != 3 {
		t.Fatalf("records %d", s.Records())
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf, recfmt.CSV)
	open(t, s)
	for _, b := range []*md.Batch{trades(1), trades(0)} {
		if err := s.Process(context.Background(), b, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := "provider,symbol,ts,ingest_ts,price,size,side,trade_id,seq\n" +
		"synthetic,MSFT,2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,100.25,10,sell,1,1\n" +
		"synthetic,AAPL,2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,100.25,10,sell,1,1\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	q := md.NewBatch(md.KindQuote)
	q.Quotes = append(q.Quotes, md.Quote{Sym: 0})
	err := s.Process(context.Background(), q, nil)
	if err == nil || err.Error() != "stdout: csv output holds one record kind: got quote records after trade records (use format json, or one sink per kind)" {
		t.Fatalf("err %v", err)
	}
}

// src emits two batches of trades.
type src struct{}

func (src) Run(ctx context.Context, out *engine.Output) error {
	in := md.NewInterner(out.Symbols(), "p")
	for i := 0; i < 2; i++ {
		b := out.NewBatch(md.KindTrade)
		b.Trades = append(b.Trades, md.Trade{TS: t0 + int64(i), Price: 1, Size: 1, Sym: in.ID("X")})
		if err := out.Emit(b); err != nil {
			return err
		}
	}
	return nil
}

func TestRegistryAndJob(t *testing.T) {
	spec, ok := component.Lookup("sink.stdout")
	if !ok {
		t.Fatal("sink.stdout not registered")
	}
	if spec.Accepts != md.KindAny {
		t.Fatalf("accepts %v", spec.Accepts)
	}
	if _, err := component.NewParams(spec, map[string]any{"format": "xml"}); err == nil || err.Error() != `params.format: "xml" is not allowed; want one of json, jsonl, csv` {
		t.Fatalf("err %v", err)
	}
	if _, err := component.NewParams(spec, map[string]any{"format": "jsonl"}); err != nil {
		t.Fatalf("format jsonl: %v", err)
	}
	p, err := component.NewParams(spec, map[string]any{"format": "csv"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.NewProcessor(p, 1); err == nil || !strings.Contains(err.Error(), "runs as one instance") {
		t.Fatalf("instance 1: %v", err)
	}
	v, err := spec.NewProcessor(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.(*Sink).format != recfmt.CSV {
		t.Fatal("format param ignored")
	}

	// The sink built from the spec writes to its job's standard output.
	var buf bytes.Buffer
	s := v
	g := &engine.Graph{
		Nodes: []*engine.Node{
			{ID: "src", Type: "provider.test", Kind: engine.KindSource, Ports: map[string]md.Kind{engine.PortMain: md.KindTrade}, NewSource: func(int) (engine.Source, error) { return src{}, nil }},
			{ID: "out", Type: "sink.stdout", Kind: engine.KindSink, Accepts: md.KindAny, Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return s, nil }},
		},
		Edges: []*engine.Edge{{From: "src", To: "out"}},
	}
	j, err := engine.New(g, engine.Options{Job: "t", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "provider,symbol,ts,ingest_ts,price,size,side,trade_id,seq\n" +
		"p,X,2024-01-02T14:30:00Z,1970-01-01T00:00:00Z,1,1,unknown,0,0\n" +
		"p,X,2024-01-02T14:30:00.000000001Z,1970-01-01T00:00:00Z,1,1,unknown,0,0\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
