package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"

	_ "github.com/mdpio/mdp/operator/bars"

	"github.com/mdpio/mdp/md"
)

func TestTardisTradesPreset(t *testing.T) {
	r := mustReplay(t, map[string]any{"path": tardisTrades, "preset": "tardis_trades"})
	checkTrades(t, r, tardisRef(t, tardisTrades))
	if d := r.job.Status().Nodes[0].Drops; len(d) != 0 {
		t.Fatalf("drops: %v", d)
	}
	// The source watermark ends at the final watermark.
	if r.c.wms[len(r.c.wms)-1] != md.MaxTime {
		t.Fatalf("last watermark %d", r.c.wms[len(r.c.wms)-1])
	}
}

func TestTardisQuotesPreset(t *testing.T) {
	r := mustReplay(t, map[string]any{"path": tardisQuotes, "preset": "tardis_quotes"})
	rows := readCSV(t, tardisQuotes)[1:]
	if len(r.c.quotes) != len(rows) || len(rows) != 5000 {
		t.Fatalf("got %d quotes, want %d", len(r.c.quotes), len(rows))
	}
	// exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
	for i, row := range rows {
		g := r.c.quotes[i]
		w := md.Quote{TS: atoi(t, row[2]) * 1000, Ingest: atoi(t, row[3]) * 1000, AskSize: atof(t, row[4]), Ask: atof(t, row[5]),
			Bid: atof(t, row[6]), BidSize: atof(t, row[7]), Seq: uint64(i + 1), Sym: g.Sym}
		if g != w || symText(r.job, g.Sym) != "binance-futures/BTCUSDT" {
			t.Fatalf("quote %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestTrueFXPreset(t *testing.T) {
	r := mustReplay(t, map[string]any{"path": truefxFile, "preset": "truefx", "symbol": "USD/JPY"})
	rows := readCSV(t, truefxFile)[1:]
	if len(r.c.quotes) != 1000 || len(rows) != 1000 {
		t.Fatalf("got %d quotes, want %d", len(r.c.quotes), len(rows))
	}
	for i, row := range rows {
		ts, err := time.Parse("2006-01-02 15:04:05.999999-07:00", row[0])
		if err != nil {
			t.Fatal(err)
		}
		g := r.c.quotes[i]
		w := md.Quote{TS: ts.UnixNano(), Ingest: ts.UnixNano(), Bid: atof(t, row[1]), Ask: atof(t, row[2]), Seq: uint64(i + 1), Sym: g.Sym}
		if g != w || symText(r.job, g.Sym) != "truefx/USD/JPY" {
			t.Fatalf("quote %d: got %+v, want %+v", i, g, w)
		}
	}
	if got := md.FormatTime(r.c.quotes[0].TS); got != "2013-01-01T22:00:00.295Z" {
		t.Fatalf("first quote at %s", got)
	}
}

func TestHistdataPresetIsEST(t *testing.T) {
	r := mustReplay(t, map[string]any{"path": histdataFile, "preset": "histdata", "symbol": "EUR/USD"})
	rows := readCSV(t, histdataFile)
	if len(r.c.quotes) != len(rows) || len(rows) != 3000 {
		t.Fatalf("got %d quotes, want %d", len(r.c.quotes), len(rows))
	}
	est := time.FixedZone("EST", -5*3600)
	for i, row := range rows {
		ts, err := time.ParseInLocation("20060102 150405.000", row[0][:15]+"."+row[0][15:], est)
		if err != nil {
			t.Fatal(err)
		}
		g := r.c.quotes[i]
		w := md.Quote{TS: ts.UnixNano(), Ingest: ts.UnixNano(), Bid: atof(t, row[1]), Ask: atof(t, row[2]), Seq: uint64(i + 1), Sym: g.Sym}
		if g != w || symText(r.job, g.Sym) != "histdata/EUR/USD" {
			t.Fatalf("quote %d: got %+v, want %+v", i, g, w)
		}
	}
	// 20200101 170000065 EST is 22:00:00.065 UTC.
	if got := md.FormatTime(r.c.quotes[0].TS); got != "2020-01-01T22:00:00.065Z" {
		t.Fatalf("first quote at %s", got)
	}
	// timezone overrides the preset's EST.
	r = mustReplay(t, map[string]any{"path": histdataFile, "preset": "histdata", "symbol": "EUR/USD", "timezone": "UTC"})
	if got := md.FormatTime(r.c.quotes[0].TS); got != "2020-01-01T17:00:00.065Z" {
		t.Fatalf("first quote with timezone UTC at %s", got)
	}
}

// refBar is a bar computed by the simplest possible code. volume is the
// plain float sum (vwap is pvs/volume); milli is the exact sum in
// thousandths (the tardis sizes have at most three decimals), the volume
// operator.bars reports: exact is float64(milli)/1000.
type refBar struct {
	start                               int64
	open, high, low, close, volume, pvs float64
	milli, n                            int64
}

// exact is the bar's exact decimal volume as the nearest float64.
func (b refBar) exact() float64 { return float64(b.milli) / 1000 }

func refBars(trades []refTrade, interval int64) []refBar {
	var out []refBar
	for _, tr := range trades {
		start := tr.ts - tr.ts%interval
		if len(out) == 0 || out[len(out)-1].start != start {
			out = append(out, refBar{start: start, open: tr.price, high: tr.price, low: tr.price})
		}
		b := &out[len(out)-1]
		b.high = max(b.high, tr.price)
		b.low = min(b.low, tr.price)
		b.close = tr.price
		b.volume += tr.size
		b.milli += int64(math.Round(tr.size * 1000))
		b.pvs += tr.price * tr.size
		b.n++
	}
	return out
}

// TestTardisTradesToMinuteBars replays the tardis trades through the real
// operator.bars and compares every bar with one computed independently.
func TestTardisTradesToMinuteBars(t *testing.T) {
	ref := refBars(tardisRef(t, tardisTrades), int64(time.Minute))
	if len(ref) < 50 {
		t.Fatalf("reference has only %d bars", len(ref))
	}
	for _, speed := range []float64{0, 1000} {
		t.Run(fmt.Sprintf("speed=%g", speed), func(t *testing.T) {
			params := map[string]any{"path": tardisTrades, "preset": "tardis_trades", "speed": speed}
			if speed > 0 {
				// 59 minutes of trades at 1000x take about 3.5 s; keep the
				// test short by replaying the first 10 minutes.
				params["end"] = md.FormatTime(ref[10].start)
			}
			r := runGraph(t, nil,
				componentNode(t, "provider.replay", "src", params),
				componentNode(t, "operator.bars", "bars", map[string]any{"interval": "1m"}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			want := ref
			if speed > 0 {
				want = ref[:10]
			}
			if len(r.c.bars) != len(want) {
				t.Fatalf("got %d bars, want %d", len(r.c.bars), len(want))
			}
			for i, w := range want {
				g := r.c.bars[i]
				if g.Start != w.start || g.End != w.start+int64(time.Minute) || g.Interval != int64(time.Minute) ||
					g.Open != w.open || g.High != w.high || g.Low != w.low || g.Close != w.close ||
					g.Volume != w.exact() || g.Trades != w.n || g.VWAP != w.pvs/w.volume ||
					symText(r.job, g.Sym) != "binance-futures/BTCUSDT" {
					t.Fatalf("bar %d: got %+v, want %+v (vwap %v)", i, g, w, w.pvs/w.volume)
				}
			}
		})
	}
}

// variants writes the tardis trades as gzip and zstd CSV, JSON lines (plain,
// gzip, zstd) and Parquet (plain, zstd) in dir.
func variants(t testing.TB, dir string) []string {
	raw, err := os.ReadFile(tardisTrades)
	if err != nil {
		t.Fatal(err)
	}
	var jsonl bytes.Buffer
	type pqRow struct {
		Exchange       string  `parquet:"exchange"`
		Symbol         string  `parquet:"symbol"`
		Timestamp      int64   `parquet:"timestamp"`
		LocalTimestamp int64   `parquet:"local_timestamp"`
		ID             int64   `parquet:"id"`
		Side           string  `parquet:"side"`
		Price          float64 `parquet:"price"`
		Amount         float64 `parquet:"amount"`
	}
	var pq []pqRow
	for _, r := range readCSV(t, tardisTrades)[1:] {
		// Numbers as JSON numbers, text as strings, extra keys ignored.
		fmt.Fprintf(&jsonl, `{"exchange":%q,"symbol":%q,"timestamp":%s,"local_timestamp":%s,"id":%s,"side":%q,"price":%s,"amount":%s,"extra":{"a":[1,"}"]}}`+"\n",
			r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
		pq = append(pq, pqRow{r[0], r[1], atoi(t, r[2]), atoi(t, r[3]), atoi(t, r[4]), r[5], atof(t, r[6]), atof(t, r[7])})
	}
	var pqBuf bytes.Buffer
	if err := parquet.Write(&pqBuf, pq); err != nil {
		t.Fatal(err)
	}
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	zs := func(b []byte) []byte {
		w, _ := zstd.NewWriter(nil)
		defer w.Close()
		return w.EncodeAll(b, nil)
	}
	files := map[string][]byte{
		"t.csv.gz":      gz(raw),
		"t.csv.zst":     zs(raw),
		"t.jsonl":       jsonl.Bytes(),
		"t.jsonl.gz":    gz(jsonl.Bytes()),
		"t.ndjson.zst":  zs(jsonl.Bytes()),
		"t.parquet":     pqBuf.Bytes(),
		"t.parquet.zst": zs(pqBuf.Bytes()),
	}
	var paths []string
	for name, data := range files {
		paths = append(paths, writeFile(t, filepath.Join(dir, name), string(data)))
	}
	sort.Strings(paths)
	return paths
}

func TestFormatVariantsGiveIdenticalRecords(t *testing.T) {
	want := mustReplay(t, map[string]any{"path": tardisTrades, "preset": "tardis_trades"}).c.trades
	if len(want) != 5000 {
		t.Fatalf("csv gave %d trades", len(want))
	}
	for _, path := range variants(t, t.TempDir()) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			r := mustReplay(t, map[string]any{"path": path, "preset": "tardis_trades"})
			if len(r.c.trades) != len(want) {
				t.Fatalf("got %d trades, want %d", len(r.c.trades), len(want))
			}
			for i := range want {
				if r.c.trades[i] != want[i] {
					t.Fatalf("trade %d: got %+v, want %+v", i, r.c.trades[i], want[i])
				}
			}
			if d := r.job.Status().Nodes[0].Drops; len(d) != 0 {
				t.Fatalf("drops: %v", d)
			}
		})
	}
}

func TestParquetTimestampColumnUsesItsUnit(t *testing.T) {
	type row struct {
		TS    time.Time `parquet:"ts,timestamp(millisecond)"`
		Sym   string    `parquet:"sym"`
		Price float64   `parquet:"px"`
		Qty   int32     `parquet:"qty"`
	}
	t0 := time.Date(2024, 1, 2, 14, 30, 0, 0, time.UTC)
	rows := []row{{t0, "AAPL", 187.5, 10}, {t0.Add(1500 * time.Millisecond), "AAPL", 187.25, 5}}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "x.parquet"), buf.String())
	r := mustReplay(t, map[string]any{"path": path, "kind": "trade", "ts_format": "unix_s",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}})
	if len(r.c.trades) != 2 || r.c.trades[0].TS != t0.UnixNano() || r.c.trades[1].TS != t0.Add(1500*time.Millisecond).UnixNano() ||
		r.c.trades[1].Price != 187.25 || r.c.trades[1].Size != 5 || symText(r.job, r.c.trades[0].Sym) != "replay/AAPL" {
		t.Fatalf("got %+v", r.c.trades)
	}
}

// TestMergeOrder splits the trades over three files and checks the merge
// yields event-time order, ties in path order, each file's order kept.
func TestMergeOrder(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(readFile(t, tardisTrades)), "\n")
	header, rows := lines[0], lines[1:]
	dir := t.TempDir()
	var files [3]strings.Builder
	var keys []mergeKey
	for i, row := range rows {
		f := (i / 7) % 3 // runs of 7 rows, so ties cross files
		files[f].WriteString(row + "\n")
		keys = append(keys, mergeKey{atoi(t, strings.Split(row, ",")[2]), f, i})
	}
	var paths []string
	for i := range files {
		paths = append(paths, writeFile(t, filepath.Join(dir, fmt.Sprintf("part%d.csv", i)), header+"\n"+files[i].String()))
	}
	sort.SliceStable(keys, func(a, b int) bool {
		if keys[a].ts != keys[b].ts {
			return keys[a].ts < keys[b].ts
		}
		return keys[a].file < keys[b].file
	})
	ref := tardisRef(t, tardisTrades)
	want := make([]refTrade, len(keys))
	ties := 0
	for i, k := range keys {
		want[i] = ref[k.pos]
		if i > 0 && k.ts == keys[i-1].ts && k.file != keys[i-1].file {
			ties++
		}
	}
	if ties == 0 {
		t.Fatal("test data has no ties across files")
	}
	for name, path := range map[string]any{"glob": filepath.Join(dir, "part*.csv"), "list": []any{paths[2], paths[0], paths[1]}} {
		t.Run(name, func(t *testing.T) {
			params := map[string]any{"path": path, "preset": "tardis_trades"}
			r := mustReplay(t, params)
			w := want
			if name == "list" {
				// The list order decides ties: part2, part0, part1.
				w = mergeRef(keys, ref, map[int]int{2: 0, 0: 1, 1: 2})
			}
			checkTrades(t, r, w)
		})
	}
}

// mergeKey places a row: event time, file, position in the original.
type mergeKey struct {
	ts        int64
	file, pos int
}

// mergeRef orders rows by event time, then by the rank of their file.
func mergeRef(keys []mergeKey, ref []refTrade, rank map[int]int) []refTrade {
	ks := append([]mergeKey(nil), keys...)
	sort.SliceStable(ks, func(a, b int) bool {
		if ks[a].ts != ks[b].ts {
			return ks[a].ts < ks[b].ts
		}
		if rank[ks[a].file] != rank[ks[b].file] {
			return rank[ks[a].file] < rank[ks[b].file]
		}
		return ks[a].pos < ks[b].pos
	})
	out := make([]refTrade, len(ks))
	for i, k := range ks {
		out[i] = ref[k.pos]
	}
	return out
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnsortedFileStillEmitsEveryRecord(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "u.csv"), "ts,sym,px,qty\n3,A,1,1\n1,A,2,1\n2,A,3,1\n")
	other := writeFile(t, filepath.Join(t.TempDir(), "o.csv"), "ts,sym,px,qty\n2,B,4,1\n")
	r := mustReplay(t, map[string]any{"path": []any{path, other}, "kind": "trade", "ts_format": "unix_s",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}})
	var got []string
	for _, tr := range r.c.trades {
		got = append(got, fmt.Sprintf("%d:%g", tr.TS/1e9, tr.Price))
	}
	// The heap sees file u's head (3) after o's (2): 2:4 first, then u in file order.
	if strings.Join(got, " ") != "2:4 3:1 1:2 2:3" {
		t.Fatalf("order: %s", strings.Join(got, " "))
	}
}

func jsonLines(t testing.TB, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, path)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
