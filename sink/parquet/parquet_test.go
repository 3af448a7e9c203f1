package parquet

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/sink/storekit"
	"github.com/mdpio/mdp/sink/storekit/storetest"
)

// files lists the files under dir (relative, sorted).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readAll[T any](t *testing.T, path string) ([]T, *pq.File) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := pq.NewGenericReader[T](f)
	defer r.Close()
	rows := make([]T, r.NumRows())
	n, err := r.Read(rows)
	if n != len(rows) {
		t.Fatalf("%s: read %d of %d rows: %v", path, n, len(rows), err)
	}
	return rows, pf
}

func TestWritesPartitionedFilesWithExactValues(t *testing.T) {
	dir := t.TempDir()
	bars := storetest.GenBars(1000, 4)
	// The last 100 bars fall on the next UTC day.
	for i := 900; i < 1000; i++ {
		bars[i].Start += 10 * int64(time.Hour)
		bars[i].End += 10 * int64(time.Hour)
	}
	bars[17].Partial = true
	src := &storetest.Source{Provider: "sim", Bars: bars, Trades: storetest.GenTrades(300, 3), Quotes: storetest.GenQuotes(200, 2), BatchSize: 128}
	j, err := storetest.Run(context.Background(), src, "sink.parquet", map[string]any{"dir": dir, "workers": 1}, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := files(t, dir)
	want := []string{
		"bars/date=2024-01-02/part-20240102T143000.000000Z-test-i0w0-0000.parquet",
		"bars/date=2024-01-03/part-20240103T003345.000000Z-test-i0w0-0000.parquet",
		"quotes/date=2024-01-02/part-20240102T143000.000000Z-test-i0w0-0000.parquet",
		"trades/date=2024-01-02/part-20240102T143000.000000Z-test-i0w0-0000.parquet",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	day1, pf := readAll[barRow](t, filepath.Join(dir, want[0]))
	day2, _ := readAll[barRow](t, filepath.Join(dir, want[1]))
	if len(day1) != 900 || len(day2) != 100 {
		t.Fatalf("rows per day: %d, %d", len(day1), len(day2))
	}
	for i, r := range append(day1, day2...) {
		b := bars[i]
		w := barRow{Provider: "sim", Symbol: b.Symbol, Interval: "1s", TS: b.Start / 1000, Open: b.Open, High: b.High,
			Low: b.Low, Close: b.Close, Volume: b.Volume, VWAP: b.VWAP, Trades: b.Trades, BarType: "time", Source: "trade", Partial: i == 17}
		if r != w {
			t.Fatalf("bar %d = %+v, want %+v", i, r, w)
		}
	}
	// ts is TIMESTAMP(MICROS, isAdjustedToUTC) and the file is zstd.
	var tsType string
	for _, el := range pf.Metadata().Schema {
		if el.Name == "ts" {
			tsType = el.LogicalType.String()
		}
	}
	if tsType != "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)" {
		t.Fatalf("ts logical type = %q", tsType)
	}
	if c := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec; c != format.Zstd {
		t.Fatalf("codec %v, want zstd", c)
	}
	trades, _ := readAll[tradeRow](t, filepath.Join(dir, want[3]))
	gt := storetest.GenTrades(300, 3)
	for i, r := range trades {
		w := tradeRow{Provider: "sim", Symbol: gt[i].Symbol, TS: gt[i].TS / 1000, TradeID: gt[i].TradeID,
			Price: gt[i].Price, Size: gt[i].Size, Side: gt[i].Side.String(), Seq: int64(gt[i].Seq)}
		if r != w {
			t.Fatalf("trade %d = %+v, want %+v", i, r, w)
		}
	}
	quotes, _ := readAll[quoteRow](t, filepath.Join(dir, want[2]))
	gq := storetest.GenQuotes(200, 2)
	if len(trades) != 300 || len(quotes) != 200 {
		t.Fatalf("%d trades, %d quotes", len(trades), len(quotes))
	}
	for i, r := range quotes {
		w := quoteRow{Provider: "sim", Symbol: gq[i].Symbol, TS: gq[i].TS / 1000, Seq: int64(gq[i].Seq),
			Bid: gq[i].Bid, BidSize: gq[i].BidSize, Ask: gq[i].Ask, AskSize: gq[i].AskSize}
		if r != w {
			t.Fatalf("quote %d = %+v, want %+v", i, r, w)
		}
	}
	if st := j.Status().Nodes[1]; st.EventsIn != 1500 || len(st.Errors) != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestPartitionBySymbolRollsByMaxRowsAndRerunReplaces(t *testing.T) {
	dir := t.TempDir()
	params := map[string]any{"dir": dir, "partition_by": "date_symbol", "max_rows": 300, "workers": 2}
	run := func() {
		src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(2000, 2), BatchSize: 100}
		if _, err := storetest.Run(context.Background(), src, "sink.parquet", params, engine.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	first := files(t, dir)
	// 1000 bars per symbol, 300 per file: 4 files per symbol.
	if len(first) != 8 {
		t.Fatalf("files: %v", first)
	}
	total := 0
	for _, f := range first {
		parts := strings.Split(f, "/")
		if len(parts) != 4 || parts[0] != "bars" || parts[1] != "date=2024-01-02" || !strings.HasPrefix(parts[2], "symbol=SYM00") {
			t.Fatalf("bad path %s", f)
		}
		rows, _ := readAll[barRow](t, filepath.Join(dir, f))
		for _, r := range rows {
			if "symbol="+r.Symbol != parts[2] {
				t.Fatalf("%s holds a row of %s", f, r.Symbol)
			}
		}
		if len(rows) != 300 && len(rows) != 100 {
			t.Fatalf("%s has %d rows", f, len(rows))
		}
		total += len(rows)
	}
	if total != 2000 {
		t.Fatalf("%d rows in all", total)
	}
	run()
	if second := files(t, dir); strings.Join(second, ",") != strings.Join(first, ",") {
		t.Fatalf("re-run changed the file set:\n%v\n%v", first, second)
	}
}

func TestMaxAgePublishesFilesWhileRunning(t *testing.T) {
	dir := t.TempDir()
	src := &storetest.Source{Provider: "sim", Bars: storetest.GenBars(3000, 3), BatchSize: 100, Rate: 3000}
	j, err := storetest.Job(src, "sink.parquet", map[string]any{"dir": dir, "max_age": "200ms", "workers": 1}, 1, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A complete file appears while the job is still running.
	deadline := time.Now().Add(30 * time.Second)
	var visible []string
	for time.Now().Before(deadline) {
		for _, f := range files(t, dir) {
			if strings.HasSuffix(f, ".parquet") && !strings.HasPrefix(filepath.Base(f), ".") {
				visible = append(visible, f)
			}
		}
		if len(visible) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-j.Done():
		t.Fatal("the job finished before any file was published; pacing too fast for the test")
	default:
	}
	if len(visible) == 0 {
		t.Fatal("no file published within 30s")
	}
	rows, _ := readAll[barRow](t, filepath.Join(dir, visible[0]))
	if len(rows) == 0 {
		t.Fatal("published file is empty")
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files(t, dir) {
		if strings.HasSuffix(f, ".tmp") {
			t.Fatalf("temporary file left: %s", f)
		}
		r, _ := readAll[barRow](t, filepath.Join(dir, f))
		total += len(r)
	}
	if total != 3000 {
		t.Fatalf("%d rows in all files, want 3000", total)
	}
}

func TestEscapeSymbol(t *testing.T) {
	for in, want := range map[string]string{"BTC/USD": "BTC%2FUSD", "AAPL": "AAPL", ".X": "%2EX", "a=b": "a%3Db"} {
		if got := escapeSymbol(in); got != want {
			t.Errorf("escapeSymbol(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLeftoverTempFiles: a failed file (a full disk) removes its own
// temporary file, and a run removes the temporary files a killed run of the
// same job left, but not another job's.
func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	w := &Writer{Dir: dir}
	if err := w.Open(context.Background(), storekit.Env{Workers: 1, Node: &engine.NodeContext{Job: "pqjob"}}); err != nil {
		t.Fatal(err)
	}
	first := barRow{TS: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC).UnixMicro()}
	f, err := create(w, w.workers[0], "bars", w.key(first.TS*1000, 0), "", &first, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.tmp); err != nil {
		t.Fatal(err)
	}
	f.f.Close() // the footer write now fails, as on a full disk
	if err := f.close(); err == nil {
		t.Fatal("close of a broken file succeeded")
	}
	if _, err := os.Stat(f.tmp); !os.IsNotExist(err) {
		t.Fatalf("the failed file left %s behind: %v", f.tmp, err)
	}

	// Temporaries of a killed run: this job's go, another job's stay.
	day := filepath.Join(dir, "bars", "date=2024-01-02")
	mine := filepath.Join(day, ".part-20240102T000000.000000Z"+w.writer+"-i0w0-0007.parquet.tmp")
	other := filepath.Join(day, ".part-20240102T000000.000000Z-otherjob-i0w0-0007.parquet.tmp")
	for _, p := range []string{mine, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w2 := &Writer{Dir: dir}
	if err := w2.Open(context.Background(), storekit.Env{Workers: 1, Node: &engine.NodeContext{Job: "pqjob"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Fatalf("the killed run's temporary file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another job's temporary file was removed: %v", err)
	}
}

// The row types have exactly rowschema's stored columns, in order.
func TestRowTypesAreRowschemas(t *testing.T) {
	for _, c := range []struct {
		schema *pq.Schema
		table  *rowschema.Table
	}{{pq.SchemaOf(barRow{}), rowschema.Bar}, {pq.SchemaOf(tradeRow{}), rowschema.Trade}, {pq.SchemaOf(quoteRow{}), rowschema.Quote}} {
		var got []string
		for _, f := range c.schema.Fields() {
			got = append(got, f.Name())
		}
		if strings.Join(got, ",") != strings.Join(c.table.StoredNames(), ",") {
			t.Errorf("%s columns %v, want %v", c.table.Name, got, c.table.StoredNames())
		}
	}
}
