package recfmt

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
)

var syms = []md.Instrument{
	{Provider: "synthetic", Symbol: "AAPL"},
	{Provider: "bin,ance", Symbol: `BTC"USDT`},
}

const (
	t0 = int64(1704205800) * 1e9 // 2024-01-02T14:30:00Z
	s1 = int64(1e9)
)

func tradeBatch() *md.Batch {
	b := md.NewBatch(md.KindTrade)
	b.Trades = append(b.Trades,
		md.Trade{TS: t0 + 123456789, Ingest: t0 + 500000000, Price: 189.25, Size: 100, Side: md.SideBuy, TradeID: 42, Seq: 7, Sym: 0},
		md.Trade{TS: t0, Ingest: t0 + 1, Price: 0.1, Size: 0.0000001, Side: md.SideUnknown, TradeID: -1, Seq: 18446744073709551615, Sym: 1},
	)
	return b
}

func quoteBatch() *md.Batch {
	b := md.NewBatch(md.KindQuote)
	b.Quotes = append(b.Quotes, md.Quote{TS: t0 + 1000, Ingest: t0 + 2000, Bid: 100.5, BidSize: 300, Ask: 100.51, AskSize: 1e21, Seq: 3, Sym: 0})
	return b
}

func barBatch() *md.Batch {
	b := md.NewBatch(md.KindBar)
	b.Bars = append(b.Bars,
		md.Bar{Start: t0, End: t0 + s1, Interval: s1, Open: 100, High: 101.5, Low: 99.25, Close: 100.75, Volume: 1234, VWAP: 100.12345678901234, Trades: 17, Sym: 0},
		md.Bar{Start: t0 + 60*s1, End: t0 + 120*s1, Interval: 60 * s1, Open: 1, High: 1, Low: 1, Close: 1, Volume: 0, VWAP: math.NaN(), Trades: 0, Sym: 0, LabelEnd: true, Update: true},
	)
	return b
}

func TestAppendJSONExact(t *testing.T) {
	cases := []struct {
		b    *md.Batch
		want []string
	}{
		{tradeBatch(), []string{
			`{"type":"trade","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00.123456789Z","ingest_ts":"2024-01-02T14:30:00.5Z","price":189.25,"size":100,"side":"buy","trade_id":42,"seq":7}`,
			`{"type":"trade","provider":"bin,ance","symbol":"BTC\"USDT","ts":"2024-01-02T14:30:00Z","ingest_ts":"2024-01-02T14:30:00.000000001Z","price":0.1,"size":1e-7,"side":"unknown","trade_id":-1,"seq":18446744073709551615}`,
		}},
		{quoteBatch(), []string{
			`{"type":"quote","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00.000001Z","ingest_ts":"2024-01-02T14:30:00.000002Z","bid":100.5,"bid_size":300,"ask":100.51,"ask_size":1e+21,"seq":3}`,
		}},
		{barBatch(), []string{
			`{"type":"bar","provider":"synthetic","symbol":"AAPL","interval":"1s","ts":"2024-01-02T14:30:00Z","start":"2024-01-02T14:30:00Z","end":"2024-01-02T14:30:01Z","open":100,"high":101.5,"low":99.25,"close":100.75,"volume":1234,"vwap":100.12345678901234,"trades":17,"bar_type":"time","source":"trade"}`,
			`{"type":"bar","provider":"synthetic","symbol":"AAPL","interval":"1m","ts":"2024-01-02T14:32:00Z","start":"2024-01-02T14:31:00Z","end":"2024-01-02T14:32:00Z","open":1,"high":1,"low":1,"close":1,"volume":0,"vwap":null,"trades":0,"bar_type":"time","source":"trade","update":true}`,
		}},
	}
	for _, c := range cases {
		for i, want := range c.want {
			got := string(AppendJSON(nil, c.b, i, syms))
			if got != want {
				t.Errorf("%s %d:\n got %s\nwant %s", c.b.Kind, i, got, want)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Errorf("%s %d: not valid JSON: %v", c.b.Kind, i, err)
			}
		}
	}
}

func TestAppendJSONReason(t *testing.T) {
	b := tradeBatch()
	b.Reason = "late: 2s behind\n\"watermark\""
	got := string(AppendJSON(nil, b, 0, syms))
	want := `{"type":"trade","provider":"synthetic","symbol":"AAPL","ts":"2024-01-02T14:30:00.123456789Z","ingest_ts":"2024-01-02T14:30:00.5Z","price":189.25,"size":100,"side":"buy","trade_id":42,"seq":7,"reason":"late: 2s behind\n\"watermark\""}`
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSONUnknownSymbol(t *testing.T) {
	b := tradeBatch()
	b.Trades[0].Sym = 99
	got := string(AppendJSON([]byte("x"), b, 0, syms))
	if !strings.HasPrefix(got, `x{"type":"trade","provider":"","symbol":"","ts"`) {
		t.Fatalf("got %s", got)
	}
}

func TestAppendJSONLines(t *testing.T) {
	got := string(AppendJSONLines(nil, barBatch(), syms))
	if strings.Count(got, "\n") != 2 || !strings.HasSuffix(got, "}\n") || !strings.Contains(got, "}\n{") {
		t.Fatalf("got %q", got)
	}
}

func TestAppendCSVExact(t *testing.T) {
	cases := []struct {
		b      *md.Batch
		reason bool
		want   string
	}{
		{tradeBatch(), false, "provider,symbol,ts,ingest_ts,price,size,side,trade_id,seq\n" +
			"synthetic,AAPL,2024-01-02T14:30:00.123456789Z,2024-01-02T14:30:00.5Z,189.25,100,buy,42,7\n" +
			`"bin,ance","BTC""USDT",2024-01-02T14:30:00Z,2024-01-02T14:30:00.000000001Z,0.1,1e-7,unknown,-1,18446744073709551615` + "\n"},
		{quoteBatch(), false, "provider,symbol,ts,ingest_ts,bid,bid_size,ask,ask_size,seq\n" +
			"synthetic,AAPL,2024-01-02T14:30:00.000001Z,2024-01-02T14:30:00.000002Z,100.5,300,100.51,1e+21,3\n"},
		{barBatch(), false, "provider,symbol,interval,ts,start,end,open,high,low,close,volume,vwap,trades,bar_type,source,partial,update\n" +
			"synthetic,AAPL,1s,2024-01-02T14:30:00Z,2024-01-02T14:30:00Z,2024-01-02T14:30:01Z,100,101.5,99.25,100.75,1234,100.12345678901234,17,time,trade,false,false\n" +
			"synthetic,AAPL,1m,2024-01-02T14:32:00Z,2024-01-02T14:31:00Z,2024-01-02T14:32:00Z,1,1,1,1,0,NaN,0,time,trade,false,true\n"},
		{quoteBatch(), true, "provider,symbol,ts,ingest_ts,bid,bid_size,ask,ask_size,seq,reason\n" +
			"synthetic,AAPL,2024-01-02T14:30:00.000001Z,2024-01-02T14:30:00.000002Z,100.5,300,100.51,1e+21,3,\n"},
	}
	for _, c := range cases {
		got := AppendCSVHeader(nil, c.b.Kind, c.reason)
		for i := 0; i < c.b.Len(); i++ {
			got = AppendCSV(got, c.b, i, syms, c.reason)
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.b.Kind, got, c.want)
		}
		recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
		if err != nil {
			t.Errorf("%s: encoding/csv cannot read it back: %v", c.b.Kind, err)
		}
		if len(recs) != c.b.Len()+1 {
			t.Errorf("%s: %d csv records", c.b.Kind, len(recs))
		}
	}
}

func TestAppendCSVFieldRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "a,b", `say "hi"`, "two\nlines", "cr\rlf", " lead", "trail ", "ünï"} {
		line := appendCSVField(nil, s)
		line = append(line, ",x\n"...)
		rec, err := csv.NewReader(bytes.NewReader(line)).Read()
		if err != nil {
			t.Fatalf("%q: %v (line %q)", s, err, line)
		}
		if rec[0] != s || rec[1] != "x" {
			t.Fatalf("%q read back as %q", s, rec)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{"", "AAPL", "quote\"back\\slash", "ctl\x00\x01\x1f\b\f\t\n\r", "ünïcode €", "bad\xffutf8\xc3", "sep\u2028\u2029", "<html>&"}
	for _, s := range inputs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(AppendJSONString(nil, s)); got != want {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 100.01, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 1e20, 1e21, 123456789012345678901234.0, math.MaxFloat64, math.SmallestNonzeroFloat64, 113.09}
	for i := 0; i < 20000; i++ {
		vals = append(vals, math.Float64frombits(r.Uint64()), float64(r.IntN(1e7))/100, r.NormFloat64()*math.Pow(10, float64(r.IntN(60)-30)))
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendFloat(nil, v); string(got) != string(want) {
			t.Fatalf("%v: got %s want %s", v, got, want)
		}
	}
	if got := string(appendJSONFloat(nil, math.Inf(-1))); got != "null" {
		t.Fatalf("-Inf in JSON: %s", got)
	}
	if got := string(AppendFloat(nil, math.Inf(1))); got != "+Inf" {
		t.Fatalf("+Inf in CSV: %s", got)
	}
}

func TestAppendTimeMatchesFormatTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vals := []int64{0, 1, -1, t0, t0 + 1, t0 + 100, md.MinTime, md.MaxTime, -1e9, -1e9 - 1, 951782400 * 1e9 /* 2000-02-29 */, 4107542399 * 1e9 /* 2100-02-28T23:59:59 */}
	for i := 0; i < 200000; i++ {
		vals = append(vals, int64(r.Uint64()), t0+r.Int64N(1e18)-5e17, r.Int64N(1e9)*1e9)
	}
	for _, ns := range vals {
		if got, want := string(appendTime(nil, ns)), md.FormatTime(ns); got != want {
			t.Fatalf("%d: got %s want %s", ns, got, want)
		}
	}
}

func TestAppendIntervalMatchesFormatInterval(t *testing.T) {
	for _, ns := range []int64{1e9, 60e9, 300e9, 3600e9, 86400e9, 250e6, 1500, 7, 0, -5, 90e9, 36e11 * 25} {
		if got, want := string(appendInterval(nil, ns)), md.FormatInterval(ns); got != want {
			t.Fatalf("%d: got %s want %s", ns, got, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"json": JSON, "JSONL": JSON, "ndjson": JSON, "csv": CSV} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Fatalf("%s: %v %v", in, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || err.Error() != `unknown format "xml" (want json, jsonl or csv)` {
		t.Fatalf("err %v", err)
	}
	for in, want := range map[string]Format{"a/b.csv": CSV, "x.CSV": CSV, "x.jsonl": JSON, "x": JSON, "x.csv.gz": JSON} {
		if f := FormatForPath(in); f != want {
			t.Fatalf("%s: %v", in, f)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, CSV)
	if err := w.WriteBatch(quoteBatch(), syms); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(quoteBatch(), syms); err != nil {
		t.Fatal(err)
	}
	row := "synthetic,AAPL,2024-01-02T14:30:00.000001Z,2024-01-02T14:30:00.000002Z,100.5,300,100.51,1e+21,3\n"
	if want := quoteCSV + "\n" + row + row; buf.String() != want {
		t.Fatalf("got %q", buf.String())
	}
	err := w.WriteBatch(tradeBatch(), syms)
	if err == nil || err.Error() != "csv output holds one record kind: got trade records after quote records (use format json, or one sink per kind)" {
		t.Fatalf("mixed kinds: %v", err)
	}
	late := quoteBatch()
	late.Reason = "late"
	err = w.WriteBatch(late, syms)
	if err == nil || err.Error() != `csv output has no reason column (its first records had none) but got 1 quote records with reason "late" (use format json, or a separate sink for diverted records)` {
		t.Fatalf("reason: %v", err)
	}
	if w.Records() != 2 {
		t.Fatalf("records %d", w.Records())
	}

	// A stream that starts with a reason keeps the column; main-flow batches
	// get an empty reason.
	buf.Reset()
	w = NewWriter(&buf, CSV)
	if err := w.WriteBatch(late, syms); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(quoteBatch(), syms); err != nil {
		t.Fatal(err)
	}
	if want := quoteCSV + ",reason\n" + strings.TrimSuffix(row, "\n") + ",late\n" + strings.TrimSuffix(row, "\n") + ",\n"; buf.String() != want {
		t.Fatalf("got %q", buf.String())
	}

	// JSON takes every kind.
	buf.Reset()
	w = NewWriter(&buf, JSON)
	for _, b := range []*md.Batch{tradeBatch(), quoteBatch(), barBatch()} {
		if err := w.WriteBatch(b, syms); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Fatalf("%d lines", n)
	}
	err = NewWriter(failWriter{}, JSON).WriteBatch(tradeBatch(), syms)
	if err == nil || err.Error() != "write json records: disk full" {
		t.Fatalf("err %v", err)
	}
}

func TestWriterLargeBatchSplitsWrites(t *testing.T) {
	b := md.NewBatch(md.KindTrade)
	for i := 0; i < 5000; i++ {
		b.Trades = append(b.Trades, md.Trade{TS: t0 + int64(i), Price: 1, Size: 1})
	}
	cw := &countWriter{}
	if err := NewWriter(cw, JSON).WriteBatch(b, syms); err != nil {
		t.Fatal(err)
	}
	if cw.writes < 2 || cw.lines != 5000 {
		t.Fatalf("writes %d lines %d", cw.writes, cw.lines)
	}
}

type countWriter struct{ writes, lines int }

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes++
	c.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func TestAppendDoesNotAllocate(t *testing.T) {
	tb, qb, bb := tradeBatch(), quoteBatch(), barBatch()
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		d := dst[:0]
		for _, b := range []*md.Batch{tb, qb, bb} {
			for i := 0; i < b.Len(); i++ {
				d = AppendJSON(d, b, i, syms)
				d = AppendCSV(d, b, i, syms, true)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

func BenchmarkAppendJSONTrade(b *testing.B) {
	tb := tradeBatch()
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendJSON(dst[:0], tb, 0, syms)
	}
}

func BenchmarkAppendCSVTrade(b *testing.B) {
	tb := tradeBatch()
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendCSV(dst[:0], tb, 0, syms, false)
	}
}

func BenchmarkAppendJSONBar(b *testing.B) {
	bb := barBatch()
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendJSON(dst[:0], bb, 0, syms)
	}
}

func BenchmarkAppendTime(b *testing.B) {
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst = appendTime(dst[:0], t0+123456789)
	}
}

// BenchmarkAppendTimeStdlib is the standard library's equivalent, for
// comparison with BenchmarkAppendTime.
func BenchmarkAppendTimeStdlib(b *testing.B) {
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		dst = time.Unix(0, t0+123456789).UTC().AppendFormat(dst[:0], time.RFC3339Nano)
	}
}

// BenchmarkWriterTrades encodes pooled-size batches of trades as JSON lines
// and as CSV to io.Discard (ns/op is per record).
func BenchmarkWriterTrades(b *testing.B) {
	bt := md.NewBatch(md.KindTrade)
	for i := 0; i < md.DefaultBatchSize; i++ {
		bt.Trades = append(bt.Trades, md.Trade{TS: t0 + int64(i)*10_000, Ingest: t0 + int64(i)*10_000, Price: 100 + float64(i%2000)/100, Size: float64(1 + i%100), TradeID: int64(i), Seq: uint64(i), Sym: md.SymID(i % 2)})
	}
	for _, f := range []Format{JSON, CSV} {
		b.Run(f.String(), func(b *testing.B) {
			w := NewWriter(io.Discard, f)
			b.ReportAllocs()
			b.ResetTimer()
			for left := b.N; left > 0; left -= md.DefaultBatchSize {
				if err := w.WriteBatch(bt, syms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
