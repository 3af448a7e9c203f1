package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"
)

// testDSN is the server the tests use: MDP_TEST_PG_DSN or the local one.
func testDSN() string {
	if s := os.Getenv("MDP_TEST_PG_DSN"); s != "" {
		return s
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// connectTest connects to the test server. Where no server runs (and not
// in CI) the test is skipped with the reason; in CI a missing server fails.
func connectTest(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		testenv.Missing(tb, "PostgreSQL", fmt.Sprintf("not reachable at %s: %v", redactDSN(testDSN()), err), testenv.PostgresHint)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func randSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSchema returns a fresh schema name (not created) that is dropped with
// everything in it when the test ends.
func newSchema(tb testing.TB, conn *pgx.Conn) string {
	tb.Helper()
	s := "mdp_test_" + randSuffix()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The server may have been restarted by the test: use a new
		// connection, retried until it answers.
		for {
			c, err := pgx.Connect(ctx, testDSN())
			if err == nil {
				_, err = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
				_ = c.Close(ctx)
				if err != nil {
					tb.Errorf("drop schema %s: %v", s, err)
				}
				return
			}
			if ctx.Err() != nil {
				tb.Errorf("drop schema %s: %v", s, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return s
}

// testSymbols is a symbol table with n instruments SYM000.. of provider
// "test", returned with its snapshot.
func testSymbols(n int) (*md.SymbolTable, []md.Instrument) {
	t := md.NewSymbolTable()
	for i := 0; i < n; i++ {
		t.Intern("test", fmt.Sprintf("SYM%03d", i))
	}
	return t, t.Snapshot()
}

// t0 is 2024-01-02T14:30:00Z.
const t0 = int64(1704205800) * int64(time.Second)

// genBars returns n one-second bars over syms symbols: bar i is symbol
// i%syms at t0 + (i/syms) seconds, with prices that are exact in binary
// (multiples of 1/64) so equality checks are exact.
func genBars(n, syms int) []md.Bar {
	bars := make([]md.Bar, n)
	for i := range bars {
		sec := int64(i / syms)
		base := 100 + float64(i%syms) + float64(sec%97)/64
		bars[i] = md.Bar{
			Start: t0 + sec*int64(time.Second), End: t0 + (sec+1)*int64(time.Second), Interval: int64(time.Second),
			Open: base, High: base + 0.5, Low: base - 0.25, Close: base + 0.125,
			Volume: float64(100 + i%1000), VWAP: base + 0.0625, Trades: int64(1 + i%50), Sym: md.SymID(i % syms),
		}
	}
	return bars
}

// barRow is a bars table row as read back.
type barRow struct {
	Provider, Symbol, Interval string
	TS                         time.Time
	Open, High, Low, Close     float64
	Volume, VWAP               float64
	Trades                     int64
}

func (r barRow) String() string {
	return fmt.Sprintf("%s/%s/%s/%s o=%v h=%v l=%v c=%v v=%v vw=%v n=%d", r.Provider, r.Symbol, r.Interval,
		r.TS.UTC().Format(time.RFC3339Nano), r.Open, r.High, r.Low, r.Close, r.Volume, r.VWAP, r.Trades)
}

func expectRow(b *md.Bar, syms []md.Instrument) barRow {
	in := syms[b.Sym]
	return barRow{Provider: in.Provider, Symbol: in.Symbol, Interval: md.FormatInterval(b.Interval),
		TS: time.Unix(0, b.Start).UTC(), Open: b.Open, High: b.High, Low: b.Low, Close: b.Close,
		Volume: b.Volume, VWAP: b.VWAP, Trades: b.Trades}
}

// readBars returns every row of table, ordered by key.
func readBars(tb testing.TB, conn *pgx.Conn, table string) []barRow {
	tb.Helper()
	rows, err := conn.Query(context.Background(), `SELECT provider, symbol, interval, ts, open, high, low, close,
		volume, vwap, trades FROM `+table+` ORDER BY provider COLLATE "C", symbol COLLATE "C", interval COLLATE "C", ts`)
	if err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var out []barRow
	for rows.Next() {
		var r barRow
		var vwap *float64
		var trades *int64
		if err := rows.Scan(&r.Provider, &r.Symbol, &r.Interval, &r.TS, &r.Open, &r.High, &r.Low, &r.Close,
			&r.Volume, &vwap, &trades); err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		if vwap != nil {
			r.VWAP = *vwap
		} else {
			r.VWAP = math.NaN()
		}
		if trades != nil {
			r.Trades = *trades
		}
		r.TS = r.TS.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read %s: %v", table, err)
	}
	return out
}

// expectBars is what the table must hold after writing bars in order: the
// last bar per key, sorted by key.
func expectBars(bars []md.Bar, syms []md.Instrument) []barRow {
	type key struct {
		p, s, iv string
		ts       int64
	}
	last := map[key]barRow{}
	var order []key
	for i := range bars {
		r := expectRow(&bars[i], syms)
		k := key{r.Provider, r.Symbol, r.Interval, bars[i].Start}
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = r
	}
	out := make([]barRow, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	sortRows(out)
	return out
}

func sortRows(rs []barRow) {
	less := func(a, b barRow) bool {
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Symbol != b.Symbol {
			return a.Symbol < b.Symbol
		}
		if a.Interval != b.Interval {
			return a.Interval < b.Interval
		}
		return a.TS.Before(b.TS)
	}
	sort.Slice(rs, func(i, j int) bool { return less(rs[i], rs[j]) })
}

func compareBars(tb testing.TB, got, want []barRow) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("table holds %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			tb.Fatalf("row %d:\n got  %v\n want %v", i, got[i], want[i])
		}
	}
}

func count(tb testing.TB, conn *pgx.Conn, table string) int64 {
	tb.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}
