package replay

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

const badTrades = `exchange,symbol,timestamp,local_timestamp,id,side,price,amount
x,BTC,1000000,1000001,1,buy,100.5,2
x,BTC,1000002,1000003,2,sell,abc,1
x,BTC,1000004
x,BTC,not-a-time,1000005,3,buy,101,1

x,,1000006,1000007,4,buy,101,1
"x,BTC,1000008,1000009,5,buy,101,1
x,"BTC",1000010,1000011,"6",buy,"102.25",3
x,BTC,1000012,1000013,7,buy,103,
`

func TestMalformedRowsDropped(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "bad.csv"), badTrades)
	r := mustReplay(t, map[string]any{"path": path, "preset": "tardis_trades"})
	if len(r.c.trades) != 2 || r.c.trades[0].Price != 100.5 || r.c.trades[1].Price != 102.25 || r.c.trades[1].TradeID != 6 {
		t.Fatalf("got %+v", r.c.trades)
	}
	if d := r.job.Status().Nodes[0].Drops; len(d) != 1 || d["malformed"] != 6 {
		t.Fatalf("drops %v, want malformed: 6", d)
	}
	logs := r.logs.String()
	for _, want := range []string{
		`line=3 reason="invalid price \"abc\""`,
		`line=4 reason="row has 3 fields, want at least 8"`,
		`line=5 reason="invalid ts \"not-a-time\""`,
		`line=7 reason="empty or missing symbol"`,
		`line=8 reason="unterminated quoted field"`,
		`line=10 reason="empty or missing size"`,
		`msg="replay dropped malformed rows" node=src count=6 policy=drop`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "replay dropped malformed rows"); n != 1 {
		t.Errorf("the total was logged %d times", n)
	}
	if !strings.Contains(logs, "file="+path) {
		t.Errorf("logs lack the file name:\n%s", logs)
	}
}

func TestMalformedRowsDeadLettered(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "bad.csv"), badTrades)
	dl := filepath.Join(dir, "dead.jsonl")
	r := mustReplay(t, map[string]any{"path": path, "preset": "tardis_trades", "on_error": "dead_letter", "dead_letter_path": dl})
	if len(r.c.trades) != 2 {
		t.Fatalf("got %d trades", len(r.c.trades))
	}
	got := jsonLines(t, dl)
	want := []struct {
		line        float64
		reason, raw string
	}{
		{3, `invalid price "abc"`, "x,BTC,1000002,1000003,2,sell,abc,1"},
		{4, "row has 3 fields, want at least 8", "x,BTC,1000004"},
		{5, `invalid ts "not-a-time"`, "x,BTC,not-a-time,1000005,3,buy,101,1"},
		{7, "empty or missing symbol", "x,,1000006,1000007,4,buy,101,1"},
		{8, "unterminated quoted field", `"x,BTC,1000008,1000009,5,buy,101,1`},
		{10, "empty or missing size", "x,BTC,1000012,1000013,7,buy,103,"},
	}
	if len(got) != len(want) {
		t.Fatalf("dead letters: %v", got)
	}
	for i, w := range want {
		g := got[i]
		if g["file"] != path || g["line"] != w.line || g["reason"] != w.reason || g["raw"] != w.raw || len(g) != 4 {
			t.Errorf("dead letter %d: got %v, want %+v", i, g, w)
		}
	}
}

func TestMalformedRowFailsJob(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "bad.csv"), badTrades)
	r := replay(t, map[string]any{"path": path, "preset": "tardis_trades", "on_error": "fail"})
	var ne *engine.NodeError
	if !errors.As(r.err, &ne) || ne.Node != "src" {
		t.Fatalf("err = %v", r.err)
	}
	want := path + `:3: malformed row (invalid price "abc"); on_error is fail`
	if ne.Err.Error() != want {
		t.Fatalf("err = %q, want %q", ne.Err.Error(), want)
	}
}

func TestMalformedJSONLines(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "bad.jsonl"), strings.Join([]string{
		`{"ts":1,"sym":"A","px":1.5,"qty":2,"id":"abc"}`,
		`{"ts":2,"sym":"A","px":"1.75","qty":"3","note":"say \"hi\" \u00e9\ud83d\ude00"}`,
		`{"ts":3,"sym":"A","px":1.5`,
		`[1,2,3]`,
		`{"ts":4,"sym":"A","px":null,"qty":1}`,
		`{"ts":5,"sym":"A\u0042","px":2,"qty":1} x`,
		`{"ts":6,"sym":"A\u0042","px":2,"qty":1,"side":"sell"}`,
	}, "\n")+"\n")
	r := mustReplay(t, map[string]any{"path": path, "kind": "trade", "ts_format": "unix_s",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty", "trade_id": "id", "side": "side"}})
	if len(r.c.trades) != 3 {
		t.Fatalf("got %+v", r.c.trades)
	}
	a, b, c := r.c.trades[0], r.c.trades[1], r.c.trades[2]
	if a.TradeID <= 0 || a.Price != 1.5 || b.Price != 1.75 || b.Size != 3 || b.TradeID != 0 ||
		symText(r.job, c.Sym) != "replay/AB" || c.Side != md.SideSell || c.TS != 6e9 {
		t.Fatalf("got %+v", r.c.trades)
	}
	logs := r.logs.String()
	for _, want := range []string{
		`line=3 reason="unexpected end of line"`,
		`line=4 reason="not a JSON object"`,
		`line=5 reason="empty or missing price"`,
		`line=6 reason="text after the JSON object"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestMalformedLogIsRateLimited(t *testing.T) {
	var b strings.Builder
	b.WriteString("ts,sym,px,qty\n")
	for i := 0; i < 1000; i++ {
		b.WriteString("garbage\n")
	}
	b.WriteString("1,A,1,1\n")
	path := writeFile(t, filepath.Join(t.TempDir(), "g.csv"), b.String())
	r := mustReplay(t, map[string]any{"path": path, "kind": "trade",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}})
	if len(r.c.trades) != 1 || r.job.Status().Nodes[0].Drops["malformed"] != 1000 {
		t.Fatalf("trades %d drops %v", len(r.c.trades), r.job.Status().Nodes[0].Drops)
	}
	logs := r.logs.String()
	if n := strings.Count(logs, `msg="malformed row"`); n != logBurst {
		t.Fatalf("%d rows logged one by one, want %d:\n%s", n, logBurst, logs)
	}
	if !strings.Contains(logs, `msg="malformed rows not logged individually" node=src count=990`) ||
		!strings.Contains(logs, `line=11 reason="row has 1 fields, want at least 4"`) {
		t.Fatalf("logs:\n%s", logs)
	}
}

// genericTrades writes rows "ts,sym,px,qty" and replays them with extra params.
func genericTrades(t *testing.T, rows string, extra map[string]any) *result {
	t.Helper()
	path := writeFile(t, filepath.Join(t.TempDir(), "g.csv"), "ts,sym,px,qty\n"+rows)
	params := map[string]any{"path": path, "kind": "trade",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}}
	for k, v := range extra {
		params[k] = v
	}
	return mustReplay(t, params)
}

func tsList(r *result) string {
	var out []string
	for _, tr := range r.c.trades {
		out = append(out, md.FormatTime(tr.TS))
	}
	return strings.Join(out, " ")
}

func TestTSFormats(t *testing.T) {
	for _, c := range []struct {
		format, rows, want string
	}{
		{"unix_s", "1704205800,A,1,1\n1704205800.25,A,1,1\n", "2024-01-02T14:30:00Z 2024-01-02T14:30:00.25Z"},
		{"unix_ms", "1704205800123,A,1,1\n1704205800123.5,A,1,1\n", "2024-01-02T14:30:00.123Z 2024-01-02T14:30:00.1235Z"},
		{"unix_us", "1704205800123456,A,1,1\n", "2024-01-02T14:30:00.123456Z"},
		{"unix_ns", "1704205800123456789,A,1,1\n", "2024-01-02T14:30:00.123456789Z"},
		{"rfc3339", "2024-01-02T14:30:00Z,A,1,1\n2024-01-02T15:30:00.5+01:00,A,1,1\n2024-01-02 09:30:01-0500,A,1,1\n2024-01-02T14:30:02,A,1,1\n",
			"2024-01-02T14:30:00Z 2024-01-02T14:30:00.5Z 2024-01-02T14:30:01Z 2024-01-02T14:30:02Z"},
		{"02/01/2006 15:04:05.000", "02/01/2024 14:30:00.750,A,1,1\n", "2024-01-02T14:30:00.75Z"},
		{"auto", "1704205800,A,1,1\n1704205800001,A,1,1\n1704205800000002,A,1,1\n1704205800000000003,A,1,1\n2024-01-02T14:30:04Z,A,1,1\n",
			"2024-01-02T14:30:00Z 2024-01-02T14:30:00.001Z 2024-01-02T14:30:00.000002Z 2024-01-02T14:30:00.000000003Z 2024-01-02T14:30:04Z"},
	} {
		t.Run(c.format, func(t *testing.T) {
			r := genericTrades(t, c.rows, map[string]any{"ts_format": c.format})
			if got := tsList(r); got != c.want {
				t.Fatalf("got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestTimezone(t *testing.T) {
	rows := "2024-01-02 09:30:00,A,1,1\n2024-07-02 09:30:00,A,1,1\n2024-07-02T09:30:00Z,A,1,1\n1704205800,A,1,1\n"
	for tz, want := range map[string]string{
		"America/New_York": "2024-01-02T14:30:00Z 2024-07-02T13:30:00Z 2024-07-02T09:30:00Z 2024-01-02T14:30:00Z",
		"+02:00":           "2024-01-02T07:30:00Z 2024-07-02T07:30:00Z 2024-07-02T09:30:00Z 2024-01-02T14:30:00Z",
		"UTC":              "2024-01-02T09:30:00Z 2024-07-02T09:30:00Z 2024-07-02T09:30:00Z 2024-01-02T14:30:00Z",
	} {
		t.Run(tz, func(t *testing.T) {
			// The rows jump months back and forth: max_jump would reject
			// the July ones; this test is about reading zones.
			r := genericTrades(t, rows, map[string]any{"timezone": tz, "max_jump": "0s"})
			if got := tsList(r); got != want {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	rows := "2024-01-02T14:30:00Z,A,1,1\n2024-01-02T14:30:01Z,B,2,1\n2024-01-02T14:30:02Z,C,3,1\n" +
		"2024-01-02T14:30:03Z,A,4,1\n2024-01-02T14:30:04Z,B,5,1\n"
	prices := func(r *result) string {
		var out []string
		for _, tr := range r.c.trades {
			out = append(out, fmt.Sprintf("%s%g", r.job.Symbols().Get(tr.Sym).Symbol, tr.Price))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"symbols", map[string]any{"symbols": []any{"A", "C"}}, "A1 C3 A4"},
		{"start", map[string]any{"start": "2024-01-02T14:30:02Z"}, "C3 A4 B5"},
		{"end", map[string]any{"end": "2024-01-02T14:30:02Z"}, "A1 B2"},
		{"all", map[string]any{"symbols": "B", "start": "2024-01-02T14:30:01Z", "end": "2024-01-02T14:30:04Z"}, "B2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := genericTrades(t, rows, c.params)
			if got := prices(r); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
			// Filtered symbols are never interned.
			if c.name == "symbols" && r.job.Symbols().Len() != 2 {
				t.Fatalf("interned %v", r.job.Symbols().Snapshot())
			}
			if d := r.job.Status().Nodes[0].Drops; len(d) != 0 {
				t.Fatalf("filtered records counted as drops: %v", d)
			}
		})
	}
}

func TestHeaderlessIndexesAndDelimiter(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "x.txt"), "1;EURUSD;1.1;1.2;5;6\n2;EURUSD;1.3;1.4;7;8\n")
	r := mustReplay(t, map[string]any{"path": path, "kind": "quote", "header": false, "delimiter": ";", "ts_format": "unix_s",
		"provider": "fx", "columns": map[string]any{"ts": 0, "symbol": 1, "bid": 2, "ask": 3, "bid_size": 4, "ask_size": 5}})
	want := []md.Quote{{TS: 1e9, Ingest: 1e9, Bid: 1.1, Ask: 1.2, BidSize: 5, AskSize: 6, Seq: 1}, {TS: 2e9, Ingest: 2e9, Bid: 1.3, Ask: 1.4, BidSize: 7, AskSize: 8, Seq: 2}}
	if len(r.c.quotes) != 2 || symText(r.job, r.c.quotes[0].Sym) != "fx/EURUSD" {
		t.Fatalf("got %+v", r.c.quotes)
	}
	for i := range want {
		want[i].Sym = r.c.quotes[i].Sym
		if r.c.quotes[i] != want[i] {
			t.Fatalf("quote %d: got %+v, want %+v", i, r.c.quotes[i], want[i])
		}
	}
}

func TestParamErrors(t *testing.T) {
	spec := specOf(t, "provider.replay")
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"path": "x.csv"}, "params.kind: set preset (histdata, tardis_quotes, tardis_trades, truefx) or kind (trade or quote) with columns"},
		{map[string]any{"path": "x.csv", "preset": "truefx"}, "params.symbol: preset truefx has no symbol column; set symbol (for example USD/JPY)"},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "kind": "quote"}, "params.kind: preset tardis_trades replays trades; kind quote contradicts it"},
		{map[string]any{"path": "x.csv", "kind": "trade", "columns": map[string]any{"ts": "t", "prize": "p"}}, `params.columns: unknown record field "prize"; did you mean "price"?`},
		{map[string]any{"path": "x.csv", "kind": "trade", "columns": map[string]any{"ts": "t", "price": "p"}, "symbol": "A"}, "params.columns: a trade replay needs a column for size"},
		{map[string]any{"path": "x.csv", "kind": "quote", "columns": map[string]any{"ts": "t", "bid": "b", "ask": "a", "price": "p"}, "symbol": "A"}, "params.columns: price does not apply to quote records"},
		{map[string]any{"path": "x.csv", "preset": "histdata", "symbol": "X", "columns": map[string]any{"bid": "bid"}}, `params.columns: bid names column "bid" but header is false; use a zero-based index`},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "ts_format": "yyyy"}, `params.ts_format: ts_format "yyyy" is neither unix_s, unix_ms, unix_us, unix_ns, rfc3339, histdata, auto nor a Go time layout (such as "2006-01-02 15:04:05.000")`},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "timezone": "Mars/Olympus"}, `params.timezone: timezone "Mars/Olympus": want an IANA name such as America/New_York or an offset such as +02:00`},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "on_error": "dead_letter"}, "params.dead_letter_path: on_error: dead_letter needs dead_letter_path (a JSON-lines file)"},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "params.end: end (2024-01-01T00:00:00Z) must be after start (2024-01-02T00:00:00Z)"},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "speed": -1}, "params.speed: -1 is below the minimum 0"},
		{map[string]any{"path": "x.csv", "preset": "tardis_trades", "delimiter": "::"}, `params.delimiter: want one character such as , ; | or \t, got "::"`},
	} {
		_, err := component.NewParams(spec, c.params)
		if err == nil || err.Error() != c.want {
			t.Errorf("params %v:\n got %v\nwant %s", c.params, err, c.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	noHeader := writeFile(t, filepath.Join(dir, "h.csv"), "a,b\n1,2\n")
	for _, c := range []struct {
		path any
		want string
	}{
		{filepath.Join(dir, "nope*.csv"), fmt.Sprintf("path %q matches no files", filepath.Join(dir, "nope*.csv"))},
		{filepath.Join(dir, "missing.csv"), fmt.Sprintf("stat %s: no such file or directory", filepath.Join(dir, "missing.csv"))},
		{writeFile(t, filepath.Join(dir, "x.xlsx"), ""), fmt.Sprintf("%s: cannot tell the format from the extension (want .csv, .jsonl or .parquet, optionally with .gz or .zst); set format", filepath.Join(dir, "x.xlsx"))},
		{noHeader, noHeader + ": column \"timestamp\" (for ts) is not in the header; the columns are: a, b"},
	} {
		r := replay(t, map[string]any{"path": c.path, "preset": "tardis_trades"})
		if r.err == nil || !strings.HasSuffix(r.err.Error(), c.want) {
			t.Errorf("path %v:\n got %v\nwant ...%s", c.path, r.err, c.want)
		}
	}
}

func TestProducesFn(t *testing.T) {
	spec := specOf(t, "provider.replay")
	for params, want := range map[string]md.Kind{"tardis_trades": md.KindTrade, "tardis_quotes": md.KindQuote, "truefx": md.KindQuote, "histdata": md.KindQuote} {
		p := map[string]any{"path": "x.csv", "preset": params, "symbol": "S"}
		if params[0] == 't' && params != "truefx" {
			delete(p, "symbol")
		}
		pp, err := component.NewParams(spec, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := spec.OutKind(pp); got != want {
			t.Errorf("%s produces %s, want %s", params, got, want)
		}
	}
	pp, err := component.NewParams(spec, map[string]any{"path": "x.csv", "kind": "quote", "symbol": "S",
		"columns": map[string]any{"ts": 0, "bid": 1, "ask": 2}})
	if err != nil || spec.OutKind(pp) != md.KindQuote {
		t.Fatalf("kind quote: %v %v", err, spec.OutKind(pp))
	}
}

func TestTimeParsers(t *testing.T) {
	bad := []string{"", "-", "1.2.3", "99999999999999999999", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
		"2024-01-02T25:00:00Z", "2024-01-02T00:00:00+2", "2024-01-02T00:00:00.Z", "2024-01-02X00:00:00Z"}
	p, _ := rowmap.NewTSParser("auto", time.UTC)
	for _, b := range bad {
		if v, ok := p.Parse([]byte(b)); ok {
			t.Errorf("%q parsed as %d", b, v)
		}
	}
	if v, ok := tsparse.ParseRFC3339([]byte("2024-02-29T23:59:59.999999999-00:30"), time.UTC); !ok || md.FormatTime(v) != "2024-03-01T00:29:59.999999999Z" {
		t.Errorf("leap day: %s %v", md.FormatTime(v), ok)
	}
	if v, ok := tsparse.ParseRFC3339([]byte("1969-12-31T23:59:59Z"), time.UTC); !ok || v != -1e9 {
		t.Errorf("before epoch: %d", v)
	}
	if v, ok := tsparse.ParseUnix([]byte("-1.5"), int64(time.Second)); !ok || v != -1.5e9 {
		t.Errorf("negative: %d", v)
	}
	if v, ok := tsparse.ParseUnix([]byte("1.5e9"), int64(time.Second)); !ok || v != 1.5e18 {
		t.Errorf("exponent: %d", v)
	}
}

// TestNumberRules: prices finite and positive, sizes finite and
// non-negative, hex floats and other non-decimals not numbers; a quote side
// may be empty (absent) but not negative. A bar with low = -5 from one bad
// row is then impossible.
func TestNumberRules(t *testing.T) {
	r := genericTrades(t, "1,A,1.5,2\n2,A,-5,1\n3,A,0,1\n4,A,0x1p3,1\n5,A,NaN,1\n6,A,Inf,1\n7,A,1,-1\n8,A,1,1e400\n9,A,1_000,1\n10,A,2.5,0\n",
		map[string]any{"ts_format": "unix_s"})
	if got := tsList(r); got != "1970-01-01T00:00:01Z 1970-01-01T00:00:10Z" {
		t.Fatalf("kept %s", got)
	}
	if d := r.job.Status().Nodes[0].Drops["malformed"]; d != 8 {
		t.Fatalf("malformed %d, want 8", d)
	}
	for _, want := range []string{`line=3 reason="price -5: a price must be finite and positive"`, `line=4 reason="price 0: a price must be finite and positive"`,
		`line=5 reason="invalid price \"0x1p3\""`, `line=8 reason="size -1: a size must be finite and non-negative"`} {
		if !strings.Contains(r.logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, r.logs.String())
		}
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "q.csv"), "ts,sym,bid,ask,bs\n1,A,1.1,1.2,5\n2,A,,1.2,0\n3,A,1.1,,1\n4,A,,,1\n5,A,-1,1.2,1\n6,A,1.1,1.2,-3\n")
	q := mustReplay(t, map[string]any{"path": path, "kind": "quote", "ts_format": "unix_s",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "bid": "bid", "ask": "ask", "bid_size": "bs"}})
	if len(q.c.quotes) != 3 || q.c.quotes[1].Bid != 0 || q.c.quotes[1].Ask != 1.2 || q.c.quotes[2].Ask != 0 {
		t.Fatalf("quotes %+v", q.c.quotes)
	}
	if d := q.job.Status().Nodes[0].Drops["malformed"]; d != 3 {
		t.Fatalf("malformed quotes %d, want 3", d)
	}
}

func TestParseUnixExact(t *testing.T) {
	for _, s := range []string{"1582329602111000", "1704205800123456789", "9223372036854775807", "9223372036854775808", "12345678901234567890"} {
		got, ok := tsparse.ParseUnix([]byte(s), 1)
		want, err := strconv.ParseInt(s, 10, 64)
		// The largest int64 is the end-of-stream sentinel, not an event time.
		if ok != (err == nil && want < math.MaxInt64) || (ok && got != want) {
			t.Errorf("%q: got %d %v, want %d %v", s, got, ok, want, err)
		}
	}
}

// TestOutOfRangeTimestampsAreMalformed: the values, which used to
// wrap into 1677–1816, are malformed rows in every ts_format.
func TestOutOfRangeTimestampsAreMalformed(t *testing.T) {
	for _, c := range []struct{ format, rows string }{
		{"rfc3339", "2300-01-01T00:00:00Z,A,1,1\n0000-01-01T00:00:00Z,A,1,1\n9999-12-31T23:59:59Z,A,1,1\n2024-01-02T14:30:00Z,A,1,1\n"},
		{"auto", "2300-01-01T00:00:00Z,A,1,1\n0000-01-01T00:00:00Z,A,1,1\n9999-12-31T23:59:59Z,A,1,1\n1704205800,A,1,1\n"},
		{"unix_s", "9223372036.9,A,1,1\n-9223372036.999999999,A,1,1\n1e11,A,1,1\n1704205800,A,1,1\n"},
		{"2006-01-02 15:04:05", "2300-01-01 00:00:00,A,1,1\n0000-01-01 00:00:00,A,1,1\n9999-12-31 23:59:59,A,1,1\n2024-01-02 14:30:00,A,1,1\n"},
	} {
		t.Run(c.format, func(t *testing.T) {
			r := genericTrades(t, c.rows, map[string]any{"ts_format": c.format})
			if got := tsList(r); got != "2024-01-02T14:30:00Z" {
				t.Fatalf("got %s", got)
			}
			if d := r.job.Status().Nodes[0].Drops["malformed"]; d != 3 {
				t.Fatalf("malformed %d, want 3", d)
			}
		})
	}
}

// TestLongLineIsMalformedInBoundedMemory: a line longer than max_line_bytes
// is a malformed row, read past without holding it (a 1 GB line used to
// take 4.5 GB of RSS), and only its first 4 KiB is dead-lettered.
func TestLongLineIsMalformedInBoundedMemory(t *testing.T) {
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "long."+format)
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			row := func(i int) string {
				if format == "csv" {
					return fmt.Sprintf("%d,A,1.5,1\n", 1704205800+i)
				}
				return fmt.Sprintf(`{"ts":%d,"sym":"A","px":1.5,"qty":1}`+"\n", 1704205800+i)
			}
			if format == "csv" {
				f.WriteString("ts,sym,px,qty\n")
			}
			f.WriteString(row(0))
			junk := bytes.Repeat([]byte("x"), 1<<20)
			for i := 0; i < 64; i++ { // a 64 MiB line
				f.Write(junk)
			}
			f.WriteString("\n" + row(1))
			for i := 0; i < 3; i++ { // and a 3 MiB last line with no newline
				f.Write(junk)
			}
			f.Close()
			dl := filepath.Join(dir, "dl.jsonl")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := mustReplay(t, map[string]any{"path": path, "kind": "trade", "ts_format": "unix_s", "on_error": "dead_letter", "dead_letter_path": dl,
				"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}})
			runtime.ReadMemStats(&after)
			if len(r.c.trades) != 2 || r.job.Status().Nodes[0].Drops["malformed"] != 2 {
				t.Fatalf("%d trades, drops %v", len(r.c.trades), r.job.Status().Nodes[0].Drops)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
				t.Fatalf("allocated %d MiB reading a 64 MiB line", alloc>>20)
			}
			got := jsonLines(t, dl)
			first := 2
			if format == "csv" {
				first = 3
			}
			if len(got) != 2 || got[0]["line"] != float64(first) || len(got[0]["raw"].(string)) != 4096 || got[0]["raw_bytes"] != float64(64<<20) ||
				got[0]["reason"] != fmt.Sprintf("line of %d bytes is longer than max_line_bytes (1048576)", 64<<20) || got[1]["raw_bytes"] != float64(3<<20) {
				t.Fatalf("dead letters: %v", got)
			}
		})
	}
}

// TestErrorsDoNotRepeatTheirPrefix: "gzip: gzip: invalid header" and
// "open X: open X: …" were each said twice.
func TestErrorsDoNotRepeatTheirPrefix(t *testing.T) {
	dir := t.TempDir()
	gz := writeFile(t, filepath.Join(dir, "bad.csv.gz"), "not gzip at all\n")
	r := replay(t, map[string]any{"path": gz, "preset": "tardis_trades"})
	if r.err == nil || strings.Count(r.err.Error(), "gzip:") != 1 || !strings.Contains(r.err.Error(), "open "+gz+": gzip: invalid header") {
		t.Fatalf("err = %v", r.err)
	}
	missing := filepath.Join(dir, "none.csv")
	r = replay(t, map[string]any{"path": missing, "preset": "tardis_trades"})
	if r.err == nil || strings.Count(r.err.Error(), missing) != 1 {
		t.Fatalf("err = %v", r.err)
	}
}
